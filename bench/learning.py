"""Does PPO learn? Held-out success before and after a wall-clock budget of PPO (prints JSON).

    python bench/learning.py [--minutes 20] [--eval-tasks 128] [--pool N] [--checkpoints K] [--set KEY=VALUE ...]

From the shipped tiny model with the default ``tiny-cpu`` settings: evaluate on held-out tasks,
train until the budget is spent (whole iterations), evaluate again on the same tasks. Reports every
status's share before and after, and the mean split of an iteration into rollout, reference/value
pass and update.

``--pool N`` trains on N fixed train-split tasks only and also reports greedy success on exactly
those N before and after: whether PPO learns what it is shown, apart from whether that transfers
to tasks it has not seen (the held-out figures). The pool is written to the run folder as a task file.

``--checkpoints K`` also evaluates held-out success (and the pool's) after each K-th of the budget,
for a learning curve over time; evaluation time is not counted against the budget.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from mcp_servers.tasks.suites import sample_tasks
from mcp_servers.tasks.taskfile import write_task_file
from trainer.config import load_config
from trainer.evaluation import evaluate
from trainer.rollout import SamplingSettings
from trainer.train import Trainer

POOL_SEED = 4242  # which train tasks form a --pool


def greedy_report(trainer: Trainer, **which) -> dict:
    """Greedy evaluation of the current policy on ``which`` tasks (a split and a count, or a task list)."""
    settings = SamplingSettings(max_new_tokens=trainer.config.rollout.max_new_tokens, greedy=True)
    report, _ = evaluate(trainer.policy, suite=trainer.config.task.suite, batch_size=16, settings=settings,
                         seed=trainer.config.eval.seed, **which)
    return report.to_dict()


def reported(report: dict) -> dict:
    return {key: report[key] for key in ("success_rate", "success_by_suite", "status_shares", "mean_return")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--eval-tasks", type=int, default=128)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--pool", type=int, metavar="N", help="train on N fixed train tasks only")
    parser.add_argument("--checkpoints", type=int, default=1, metavar="K",
                        help="evaluate after each K-th of the budget (1 = only at the end)")
    parser.add_argument("--run-dir", type=Path)
    args = parser.parse_args()
    if args.pool is not None and args.pool < 1:
        parser.error(f"--pool needs at least one task, got {args.pool}")
    if args.checkpoints < 1:
        parser.error(f"--checkpoints needs at least 1, got {args.checkpoints}")
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="learning-")) / "run"
    config = load_config(overrides=["eval.every=0", "checkpoint.every=0", "run.iterations=100000", *args.set])
    pool = []
    if args.pool:
        pool = sample_tasks(config.task.suite, config.task.train_split, args.pool, seed=POOL_SEED)
        pool_file = run_dir.parent / f"{run_dir.name}-pool.jsonl"
        pool_file.parent.mkdir(parents=True, exist_ok=True)
        write_task_file(pool, pool_file)
        config.task.task_file = str(pool_file)
    trainer = Trainer(config, run_dir, echo=lambda line: print(line, flush=True, file=sys.stderr))
    try:
        before = greedy_report(trainer, split="heldout", episodes=args.eval_tasks)
        pool_before = greedy_report(trainer, split="train", tasks=pool) if pool else None
        budget = args.minutes * 60
        trained_s = 0.0
        iterations = []
        curve = []
        for checkpoint in range(1, args.checkpoints + 1):
            while trained_s < budget * checkpoint / args.checkpoints:
                started = time.perf_counter()
                iterations.append(trainer.train_iteration())
                trainer.iteration += 1
                trained_s += time.perf_counter() - started
            after = greedy_report(trainer, split="heldout", episodes=args.eval_tasks)
            pool_after = greedy_report(trainer, split="train", tasks=pool) if pool else None
            curve.append({"trained_s": round(trained_s, 1), "iterations": len(iterations),
                          "heldout_success": after["success_rate"],
                          **({"pool_success": pool_after["success_rate"]} if pool else {})})
            print(f"checkpoint {checkpoint}/{args.checkpoints}: {curve[-1]}", flush=True, file=sys.stderr)
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
        "before": reported(before),
        "after": reported(after),
        "success_gain_points": round(100 * (after["success_rate"] - before["success_rate"]), 1),
        **({"checkpoints": curve} if args.checkpoints > 1 else {}),
        **({"pool": {"tasks": len(pool), "seed": POOL_SEED, "before": reported(pool_before),
                     "after": reported(pool_after),
                     "success_gain_points": round(100 * (pool_after["success_rate"] - pool_before["success_rate"]), 1)}}
           if pool else {}),
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
