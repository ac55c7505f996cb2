"""Held-out evaluation: play N episodes with batched generation and summarise what happened."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from trainer.config import RolloutConfig
from trainer.rewards import STATUSES
from trainer.rollout import EpisodeRollout, SamplingSettings, play_episodes


@dataclass(frozen=True)
class EvalReport:
    """Outcome of an evaluation; shares are fractions of all turns played."""

    suite: str
    split: str
    episodes: int
    success_rate: float
    status_shares: dict[str, float]
    mean_return: float
    turns_per_episode: float
    tokens_per_s: float
    episodes_per_s: float
    wall_s: float
    success_by_suite: dict[str, float] = field(default_factory=dict)  # a mixture's suites, each on its own

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        shares = "  ".join(f"{k} {v:.0%}" for k, v in self.status_shares.items())
        return (f"{self.suite}/{self.split}: success {self.success_rate:.1%} over {self.episodes} episodes; "
                f"return {self.mean_return:+.2f}; {self.turns_per_episode:.2f} turns/episode; "
                f"{self.tokens_per_s:.0f} tokens/s\n  turns: {shares}")


def summarise(rollouts: Sequence[EpisodeRollout], suite: str, split: str, tokens: int, generation_s: float,
              wall_s: float) -> EvalReport:
    turns = [turn for r in rollouts for turn in r.record.turns]
    counts = Counter(turn.status for turn in turns)
    n = max(1, len(rollouts))
    wins_by_suite: dict[str, list[bool]] = {}
    for rollout in rollouts:
        wins_by_suite.setdefault(rollout.record.task["suite"], []).append(rollout.record.outcome == "success")
    return EvalReport(
        suite=suite,
        split=split,
        episodes=len(rollouts),
        success_rate=sum(r.record.outcome == "success" for r in rollouts) / n,
        status_shares={status.value: counts[status.value] / max(1, len(turns)) for status in STATUSES},
        mean_return=sum(r.record.total_reward for r in rollouts) / n,
        turns_per_episode=len(turns) / n,
        tokens_per_s=tokens / generation_s if generation_s > 0 else 0.0,
        episodes_per_s=len(rollouts) / wall_s if wall_s > 0 else 0.0,
        wall_s=wall_s,
        success_by_suite={suite: sum(wins) / len(wins) for suite, wins in sorted(wins_by_suite.items())},
    )


def pass_at_k(samples: int, successes: int, k: int) -> float:
    """The chance that at least one of k samples drawn without replacement from ``samples`` succeeds.

    pass@k = 1 - C(n - c, k) / C(n, k)   (n samples of a task, c of them successes; Chen et al., 2021)

    It is the unbiased estimate of "some one of k fresh samples solves it"; with k = n it is 1 when
    any sample succeeded.
    """
    if not 0 <= successes <= samples or not 1 <= k <= samples:
        raise ValueError(f"need 0 <= successes <= samples and 1 <= k <= samples, got {successes}, {samples}, {k}")
    if samples - successes < k:
        return 1.0
    return 1.0 - math.comb(samples - successes, k) / math.comb(samples, k)


def make_eval_env(suite: str, split: str, task_file: str | None = None, servers_config: str | None = None):
    """The environment evaluations play in (each task's own turn limit, the default rewards).

    Forensics re-plays stored evaluation episodes in the same environment, so both build it here.
    """
    from trainer.env import MCPGymEnv

    return MCPGymEnv(suite=suite, split=split, task_file=task_file, servers_config=servers_config)


def evaluate(
    policy: Any,
    *,
    suite: str = "all",
    split: str = "heldout",
    episodes: int = 64,
    batch_size: int = 16,
    settings: SamplingSettings | None = None,
    seed: int = 0,
    task_file: str | None = None,
    servers_config: str | None = None,
    progress=None,
    tasks: Sequence[Any] | None = None,
) -> tuple[EvalReport, list[EpisodeRollout]]:
    """Play ``episodes`` tasks of ``split`` (seeds ``seed``, ``seed+1``, ...) in batches; same seeds, same tasks.

    With ``tasks`` (e.g. a run's regression file), each of those tasks is played exactly once instead.
    """
    if tasks is not None:
        tasks = list(tasks)
        episodes = len(tasks)
    settings = settings or SamplingSettings(greedy=True)
    envs = [make_eval_env(suite, split, task_file, servers_config) for _ in range(min(batch_size, episodes))]
    rollouts: list[EpisodeRollout] = []
    tokens = 0
    generation_s = 0.0
    started = time.perf_counter()
    try:
        for start in range(0, episodes, batch_size):
            seeds = list(range(seed + start, seed + min(episodes, start + batch_size)))
            chosen = tasks[start : start + len(seeds)] if tasks is not None else None
            batch, stats = play_episodes(policy, envs[: len(seeds)], seeds, settings, generation_seed=seed + start,
                                         tasks=chosen)
            rollouts.extend(batch)
            tokens += stats.generated_tokens
            generation_s += stats.generation_s
            if progress is not None:
                progress(len(rollouts), episodes)
    finally:
        for env in envs:
            env.close()
    return summarise(rollouts, suite, split, tokens, generation_s, time.perf_counter() - started), rollouts


def add_eval_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("eval", help="evaluate a model or checkpoint on held-out tasks")
    parser.add_argument("--model", default="tiny", help="'tiny' (embedded), a hub id, or a local folder")
    parser.add_argument("--adapter", help="a LoRA checkpoint folder to load on top of the model")
    parser.add_argument("--suite", default="all")
    parser.add_argument("--split", default="heldout", choices=["train", "heldout"])
    parser.add_argument("--task-file", help="evaluate on a JSONL task file instead of a suite")
    parser.add_argument("--servers-config", help="an mcpServers JSON file adding external servers")
    parser.add_argument("-n", "--episodes", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--temperature", type=float, default=0.0, help="0 means greedy decoding")
    parser.add_argument("--max-new-tokens", type=int, default=RolloutConfig.max_new_tokens)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--thinking", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(run=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from mcp_servers.config import ConfigError
    from mcp_servers.hub import HubError
    from mcp_servers.tasks.model import TaskFormatError
    from mcp_servers.tasks.suites import UnknownSuiteError
    from trainer.model_loading import ModelLoadError, load_policy

    if args.episodes < 1 or args.batch_size < 1:
        print("error: -n and --batch-size must be at least 1", file=sys.stderr)
        return 2
    model = args.adapter or args.model
    try:
        policy = load_policy(model, device=args.device, lora=None, thinking=args.thinking)
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    settings = SamplingSettings(max_new_tokens=args.max_new_tokens, temperature=max(args.temperature, 1e-6),
                                greedy=args.temperature <= 0)
    console = Console(stderr=True)
    try:
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("eval", total=args.episodes)
            report, _ = evaluate(policy, suite=args.suite, split=args.split, episodes=args.episodes,
                                 batch_size=args.batch_size, settings=settings, seed=args.seed,
                                 task_file=args.task_file, servers_config=args.servers_config,
                                 progress=lambda done, total: bar.update(task, completed=done))
    except (UnknownSuiteError, TaskFormatError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except HubError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(report.summary())
    return 0
