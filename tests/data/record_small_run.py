"""Record ``tests/data/recorded/small``: a real tiny-model run the workbench tests replay.

    python tests/data/record_small_run.py [--model tiny]

Three PPO iterations of four episodes with one held-out evaluation and checkpoints at iterations 2 and 3
(the weights of that evaluation, and the final ones; LoRA
rank 2, so the folder stays well under 2 MB). The workbench tests copy it to a temporary folder;
re-record it when the embedded model or the store's schema changes (the snapshots change with it).
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUN = HERE / "recorded" / "small"  # not under a folder named runs/, which .gitignore skips
SETTINGS = (
    "run.iterations=3",
    "run.seed=0",
    "rollout.batch_size=4",
    "rollout.max_new_tokens=48",
    "eval.every=2",
    "eval.num_tasks=4",
    "checkpoint.every=2",
    "checkpoint.keep_last=2",
    "lora.r=2",
    "lora.alpha=4",
    "ppo.epochs=1",
    "ppo.minibatch_size=4",
    "ppo.micro_batch_size=4",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="model.name of the run (default: the embedded tiny model)")
    args = parser.parse_args()
    if RUN.exists():
        shutil.rmtree(RUN)
    argv = [sys.executable, "-m", "trainer", "train", "--run-dir", str(RUN), "--set", f"model.name={args.model}"]
    for item in SETTINGS:
        argv += ["--set", item]
    subprocess.run(argv, check=True, cwd=HERE.parent.parent)
    # Fold the WAL into the database so the folder is two files and a checkpoint, nothing half-written.
    with sqlite3.connect(RUN / "run.db") as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("VACUUM")
    for leftover in ("run.db-wal", "run.db-shm"):
        (RUN / leftover).unlink(missing_ok=True)
    for optimizer in RUN.glob("checkpoints/*/optimizer.pt"):
        print(f"{optimizer}: {optimizer.stat().st_size} bytes")
    size = sum(p.stat().st_size for p in RUN.rglob("*") if p.is_file())
    print(f"recorded {RUN} ({size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
