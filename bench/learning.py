"""Does PPO learn? Held-out success before and after a wall-clock budget of PPO (prints JSON).

    python bench/learning.py [--minutes 20] [--eval-tasks 128] [--set KEY=VALUE ...]

From the shipped tiny model with the default ``tiny-cpu`` settings: evaluate on held-out tasks,
train until the budget is spent (whole iterations), evaluate again on the same tasks. Reports every
status's share before and after, and the mean split of an iteration into rollout, reference/value
pass and update.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from trainer.config import load_config
from trainer.evaluation import evaluate
from trainer.rollout import SamplingSettings
from trainer.train import Trainer


def held_out(trainer: Trainer, tasks: int) -> dict:
    settings = SamplingSettings(max_new_tokens=trainer.config.rollout.max_new_tokens, greedy=True)
    report, _ = evaluate(trainer.policy, suite=trainer.config.task.suite, split="heldout", episodes=tasks,
                         batch_size=16, settings=settings, seed=trainer.config.eval.seed)
    return report.to_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--eval-tasks", type=int, default=128)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--run-dir", type=Path)
    args = parser.parse_args()
    overrides = ["eval.every=0", "checkpoint.every=0", "run.iterations=100000", *args.set]
    config = load_config(overrides=overrides)
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="learning-")) / "run"
    trainer = Trainer(config, run_dir, echo=lambda line: print(line, flush=True, file=__import__("sys").stderr))
    try:
        before = held_out(trainer, args.eval_tasks)
        budget = args.minutes * 60
        started = time.perf_counter()
        iterations = []
        while time.perf_counter() - started < budget:
            iterations.append(trainer.train_iteration())
            trainer.iteration += 1
        trained_s = time.perf_counter() - started
        after = held_out(trainer, args.eval_tasks)
    finally:
        trainer.store.set_state("finished")
        trainer.close()
    mean = lambda key: round(sum(m[key] for m in iterations) / max(1, len(iterations)), 2)  # noqa: E731
    print(json.dumps({
        "benchmark": "learning",
        "budget_minutes": args.minutes,
        "trained_s": round(trained_s, 1),
        "iterations": len(iterations),
        "episodes": len(iterations) * config.rollout.batch_size,
        "overrides": args.set,
        "heldout_tasks": args.eval_tasks,
        **{name: {key: report[key] for key in ("success_rate", "success_by_suite", "status_shares", "mean_return")}
           for name, report in (("before", before), ("after", after))},
        "success_gain_points": round(100 * (after["success_rate"] - before["success_rate"]), 1),
        "iteration_time_split_s": {"rollout": mean("rollout_time_s"), "reference_and_value": mean("ref_value_time_s"),
                                   "update": mean("update_time_s"), "total": mean("step_time_s")},
        "train_curve": [{"iteration": i, "success_rate": round(m["success_rate"], 3),
                         "mean_return": round(m["mean_return"], 3), "kl": round(m["kl"], 4),
                         "clip_fraction": round(m["clip_fraction"], 4),
                         "explained_variance": round(m["explained_variance"], 3)}
                        for i, m in enumerate(iterations)],
        "run_dir": str(run_dir),
    }, indent=2))


if __name__ == "__main__":
    main()
