"""Workbench start-up: from launching the process to the first painted screen (prints JSON).

    python bench/ui_startup.py [--repeats 5]

Each sample is a fresh ``python`` process (cold imports), timed from the parent's spawn to the
first frame the app produces, for a newcomer's empty runs folder (the welcome screen) and for
``open`` on the recorded test run (the Live screen; ``data_s`` is when its turns are on screen).
Target: first paint under 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SMALL_RUN = REPO / "tests" / "data" / "recorded" / "small"

CHILD = r"""
import asyncio, json, os, sys, time
t_spawn = float(os.environ["UI_BENCH_T0"])
sys.path.insert(0, os.environ["UI_BENCH_DIR"])
from ui_frames import FramedApp
imported = time.time()
run_dir = os.environ.get("UI_BENCH_RUN") or None
app = FramedApp(runs_dir=os.environ["UI_BENCH_RUNS"], run_dir=run_dir)
result = {}

async def main():
    async with app.run_test(size=(140, 40)) as pilot:
        while not app.frames:
            await asyncio.sleep(0.001)
        result["first_paint_s"] = time.time() - t_spawn
        if run_dir:
            from workbench.app.widgets.turn_table import TurnTable
            while not app.screen.query(TurnTable) or not app.screen.query_one(TurnTable).row_count:
                await asyncio.sleep(0.005)
            frames = len(app.frames)
            while len(app.frames) == frames:
                await asyncio.sleep(0.001)
            result["data_s"] = time.time() - t_spawn
        result["screen"] = type(app.screen).__name__

asyncio.run(main())
result["imports_s"] = imported - t_spawn
result["torch_loaded"] = "torch" in sys.modules
print(json.dumps(result))
"""


def sample(runs_dir: Path, run_dir: Path | None) -> dict:
    env = dict(os.environ, UI_BENCH_T0=repr(time.time()), UI_BENCH_DIR=str(Path(__file__).parent),
               UI_BENCH_RUNS=str(runs_dir), UI_BENCH_RUN=str(run_dir or ""), PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        runs = root / "runs"
        shutil.copytree(SMALL_RUN, runs / "small")
        report = {"bench": "ui_startup", "target_first_paint_s": 1.0}
        for name, runs_dir, run_dir in (("welcome", root / "empty-runs", None), ("open_run", runs, runs / "small")):
            samples = [sample(runs_dir, run_dir) for _ in range(args.repeats)]
            keys = [k for k in ("first_paint_s", "data_s", "imports_s") if k in samples[0]]
            report[name] = {
                "screen": samples[0]["screen"],
                **{f"{k}_median": round(sorted(s[k] for s in samples)[len(samples) // 2], 3) for k in keys},
                **{f"{k}_max": round(max(s[k] for s in samples), 3) for k in keys},
                "torch_loaded": any(s["torch_loaded"] for s in samples),
            }
        report["ok"] = all(report[n]["first_paint_s_median"] < 1.0 for n in ("welcome", "open_run"))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
