"""Rollout throughput of the embedded tiny model on the CPU at batch 1, 4 and 16 (prints JSON).

    python bench/rollout.py [--episodes 16] [--model tiny]

The same 16 held-out tasks are played at every batch size (greedy decoding, so the work is the
same); batched generation must beat one-at-a-time by a wide margin.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from trainer.env import MCPGymEnv
from trainer.model_loading import load_policy
from trainer.rollout import SamplingSettings, play_episodes


def measure(policy, batch: int, episodes: int, settings: SamplingSettings) -> dict:
    envs = [MCPGymEnv(suite="all", split="heldout") for _ in range(batch)]
    tokens = 0
    generation_s = 0.0
    started = time.perf_counter()
    try:
        for start in range(0, episodes, batch):
            seeds = list(range(start, min(start + batch, episodes)))
            _, stats = play_episodes(policy, envs[: len(seeds)], seeds, settings, generation_seed=start)
            tokens += stats.generated_tokens
            generation_s += stats.generation_s
    finally:
        for env in envs:
            env.close()
    wall = time.perf_counter() - started
    return {"batch": batch, "episodes": episodes, "generated_tokens": tokens, "wall_s": round(wall, 2),
            "tokens_per_s": round(tokens / wall, 1), "generation_tokens_per_s": round(tokens / generation_s, 1),
            "episodes_per_s": round(episodes / wall, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()
    policy = load_policy(args.model, device="cpu", lora=None)
    settings = SamplingSettings(max_new_tokens=args.max_new_tokens, greedy=True)
    measure(policy, 4, 4, settings)  # warm-up: first-call overheads out of the measurement
    results = [measure(policy, batch, args.episodes, settings) for batch in (1, 4, 16)]
    single = results[0]["tokens_per_s"]
    print(json.dumps({
        "benchmark": "rollout", "model": args.model, "device": "cpu", "threads": torch.get_num_threads(),
        "results": results,
        "speedup_vs_batch1": {str(r["batch"]): round(r["tokens_per_s"] / single, 2) for r in results},
    }, indent=2))


if __name__ == "__main__":
    main()
