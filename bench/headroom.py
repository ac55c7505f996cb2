"""What can RL sharpen? Greedy success beside pass@1 and pass@k of sampled episodes (prints JSON).

    python bench/headroom.py [--model tiny] [--tasks 64] [--samples 8] [--temperatures 1.0,0.7]

PPO learns from the episodes it samples. A task that no sample solves gives it nothing to reinforce,
so pass@k at the rollout temperature bounds what a short run can teach, and tasks that greedy decoding
fails but some sample solves are where greedy held-out success can rise. For each temperature this
plays ``--samples`` episodes of each of ``--tasks`` held-out tasks (the evaluation's seeds: the first of
the tasks ``bench/learning.py`` evaluates) and reports, overall and per suite: pass@1, pass@k, and the share of
tasks greedy fails that some sample solves.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict

from trainer.config import load_config
from trainer.env import draw_task
from trainer.evaluation import evaluate, pass_at_k
from trainer.model_loading import load_policy
from trainer.rollout import SamplingSettings


def held_out_tasks(suite: str, count: int, seed: int) -> list:
    """The distinct tasks among those ``evaluate(episodes=count, seed=seed)`` plays, in its order
    (each seed draws as ``MCPGymEnv.reset(seed=...)`` does)."""
    tasks = {}
    for index in range(count):
        task = draw_task(suite, "heldout", seed + index)
        tasks.setdefault(task.id, task)
    return list(tasks.values())


def outcomes(policy, tasks: list, samples: int, settings: SamplingSettings) -> dict[str, list[bool]]:
    """Task id -> whether each of its ``samples`` episodes succeeded."""
    _, rollouts = evaluate(policy, tasks=[task for task in tasks for _ in range(samples)], batch_size=16,
                           settings=settings, seed=7)
    by_task: dict[str, list[bool]] = defaultdict(list)
    for rollout in rollouts:
        by_task[rollout.record.task["id"]].append(rollout.record.outcome == "success")
    return by_task


def summary(tasks: list, sampled: dict[str, list[bool]], greedy: dict[str, bool], samples: int) -> dict:
    """pass@1, pass@k and greedy-failures-some-sample-solves, overall and per suite."""
    groups: dict[str, list] = defaultdict(list)
    for task in tasks:
        groups["all"].append(task)
        groups[task.suite].append(task)
    out = {}
    for name, members in groups.items():
        wins = [sum(sampled[task.id]) for task in members]
        greedy_failed = [task for task in members if not greedy[task.id]]
        out[name] = {
            "tasks": len(members),
            "greedy": round(sum(greedy[task.id] for task in members) / len(members), 3),
            "pass@1": round(sum(pass_at_k(samples, c, 1) for c in wins) / len(members), 3),
            f"pass@{samples}": round(sum(pass_at_k(samples, c, samples) for c in wins) / len(members), 3),
            "greedy_failures_some_sample_solves": round(
                sum(any(sampled[task.id]) for task in greedy_failed) / max(1, len(greedy_failed)), 3),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="'tiny', a hub id, a local folder or a LoRA checkpoint")
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--temperatures", default="1.0,0.7", help="comma-separated sampling temperatures")
    args = parser.parse_args()
    temperatures = [float(value) for value in args.temperatures.split(",")]
    if args.tasks < 1 or args.samples < 1 or any(t <= 0 for t in temperatures):
        parser.error("--tasks and --samples must be at least 1 and every temperature above 0")
    config = load_config()
    policy = load_policy(args.model, device="cpu", lora=None)
    tasks = held_out_tasks(config.task.suite, args.tasks, config.eval.seed)
    max_new = config.rollout.max_new_tokens
    started = time.perf_counter()
    greedy = {task_id: wins[0] for task_id, wins in
              outcomes(policy, tasks, 1, SamplingSettings(max_new_tokens=max_new, greedy=True)).items()}
    result = {"benchmark": "headroom", "model": args.model, "tasks": args.tasks, "samples": args.samples,
              "eval_seed": config.eval.seed, "by_temperature": {}}
    for temperature in temperatures:
        settings = SamplingSettings(max_new_tokens=max_new, temperature=temperature)
        sampled = outcomes(policy, tasks, args.samples, settings)
        result["by_temperature"][str(temperature)] = summary(tasks, sampled, greedy, args.samples)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
