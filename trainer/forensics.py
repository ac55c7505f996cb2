"""Episode forensics that need the model: re-running a stored episode, comparing checkpoints.

- :func:`rerun` re-plays a stored episode's task, from its seed, with another checkpoint (or the
  base model) under greedy decoding, in the environment the episode was played in, and diffs the
  two episodes turn by turn (``trainer.episode_diff``). With the checkpoint that played it, an
  evaluation episode (greedy) comes back identical.
- :func:`compare` evaluates two or more policies on the same held-out tasks and seeds, stores every
  episode in the run with phase ``compare`` (and the comparison itself, with the episode ids), and
  lists the tasks where the policies disagree.

Both load policies the way ``trainer.model_loading.load_policy`` does; the UI runs them in a
``python -m trainer rerun|compare ... --json`` child process, since the UI never imports torch.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mcp_servers.tasks.model import Task, TaskFormatError
from trainer.config import Config
from trainer.curation import BASE, CurationError, PolicyChoice, checkpoint_for_iteration, resolve_checkpoint
from trainer.env import MCPGymEnv
from trainer.episode_diff import EpisodeDiff, diff_episodes
from trainer.evaluation import EvalReport, evaluate, make_eval_env
from trainer.model_loading import Policy, load_policy
from trainer.rollout import EpisodeRollout, SamplingSettings, play_episodes
from trainer.store import EpisodeEntry, RunAnnotator, RunReader

EVAL_PHASES = ("eval", "compare")  # episodes played by evaluate(): its environment, greedy decoding


class ForensicsError(CurationError):
    """A forensics request that cannot be met; the message is one line saying what to do."""


# --------------------------------------------------------------------------------------------
# Loading what a run used


def run_config(run_dir: str | Path) -> Config:
    """The config a run was trained with (its stored copy)."""
    with RunReader(run_dir) as reader:
        return Config.from_dict(reader.run_info().config)


def load_choice(choice: PolicyChoice, config: Config, device: str | None = None) -> Policy:
    """Load a policy for inference: the run's base model, with the chosen adapter or weights."""
    common = {"device": device or config.model.device, "quantize_4bit": config.model.quantize_4bit,
              "lora": None, "thinking": config.model.thinking}
    if choice.kind == "adapter":
        return load_policy(str(choice.path), **common)
    policy = load_policy(config.model.name, **common)
    if choice.kind == "model":  # a full fine-tune's checkpoint: the base architecture, its weights
        from transformers import AutoModelForCausalLM

        saved = AutoModelForCausalLM.from_pretrained(str(choice.path))
        policy.model.load_state_dict(saved.state_dict())
        del saved
    return policy


def _free_memory() -> None:
    """Reclaim a dropped policy before the next one loads (a 4B model should not be held twice)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def greedy_settings(config: Config) -> SamplingSettings:
    """The decoding of a run's evaluations, greedy: what re-runs and comparisons use."""
    rollout = config.rollout
    return SamplingSettings(max_new_tokens=rollout.max_new_tokens, greedy=True, temperature=rollout.temperature,
                            max_context_tokens=rollout.max_episode_tokens)


def episode_env(config: Config, phase: str) -> MCPGymEnv:
    """The environment an episode of ``phase`` was played in.

    Evaluations (and comparisons) play in ``evaluate``'s environment; training and chat episodes
    in the trainer's, built from the run's task and reward settings (as ``Trainer._env`` does).
    """
    task = config.task
    if phase in EVAL_PHASES:
        return make_eval_env(task.suite, task.eval_split, task.task_file, task.servers_config)
    return MCPGymEnv(
        suite=task.suite, split=task.train_split, task_file=task.task_file, servers_config=task.servers_config,
        transport=task.transport, rewards=config.rewards.as_reward_config(), max_turns=task.max_turns,
        max_structural_failures=task.max_structural_failures, call_timeout_s=task.call_timeout_s,
    )


# --------------------------------------------------------------------------------------------
# Re-run


@dataclass(frozen=True)
class RerunResult:
    """A stored episode, its re-run, and their turn-by-turn diff."""

    episode_id: int
    phase: str
    policy: PolicyChoice
    stored: dict[str, Any]
    rerun: dict[str, Any]
    diff: EpisodeDiff

    def to_dict(self) -> dict[str, Any]:
        return {"episode_id": self.episode_id, "phase": self.phase, "policy": self.policy.to_dict(),
                "identical": self.diff.identical, "diff": self.diff.to_dict(), "stored": self.stored,
                "rerun": self.rerun}


def _stored_episode(run_dir: Path, episode_id: int) -> tuple[dict[str, Any], Any]:
    with RunReader(run_dir) as reader:
        record = reader.episode(episode_id)
    row = record.pop("_row")
    return record, row


def rerun(
    run_dir: str | Path,
    episode_id: int,
    checkpoint: str | Path | None = None,
    *,
    device: str | None = None,
    policy: Policy | None = None,
) -> RerunResult:
    """Re-play stored episode ``episode_id`` with ``checkpoint`` (see ``resolve_checkpoint``) from its seed.

    Without a checkpoint, the one holding the weights that played the episode is used (iter-N for an
    episode of iteration N), which reproduces a greedy evaluation episode. ``policy`` reuses an
    already loaded policy (it must match ``checkpoint``).
    """
    run_dir = Path(run_dir)
    record, row = _stored_episode(run_dir, episode_id)
    try:
        task = Task.from_dict(record.get("task"))
    except TaskFormatError as exc:
        raise ForensicsError(f"episode {episode_id} has no replayable task ({exc})") from None
    if checkpoint is not None:
        choice = resolve_checkpoint(run_dir, checkpoint)
    else:
        found = checkpoint_for_iteration(run_dir, row.iteration)
        if found is None:
            raise ForensicsError(f"the checkpoint of iteration {row.iteration} is not on disk (rotated away); "
                                 "pass --adapter with another checkpoint or base")
        choice = found
    config = run_config(run_dir)
    loaded = policy or load_choice(choice, config, device)
    env = episode_env(config, row.phase)
    try:
        seed = record.get("seed")
        rollouts, _ = play_episodes(loaded, [env], [seed], greedy_settings(config),
                                    generation_seed=seed if isinstance(seed, int) else 0, tasks=[task])
    finally:
        env.close()
        del loaded
        _free_memory()
    replayed = rollouts[0].record.to_dict()
    diff = diff_episodes(record, replayed, f"episode {episode_id}", choice.label)
    return RerunResult(episode_id, row.phase, choice, record, replayed, diff)


# --------------------------------------------------------------------------------------------
# Compare


@dataclass
class ComparisonResult:
    """Policies side by side on the same tasks; see :meth:`to_dict` for the stored JSON."""

    id: int | None
    suite: str
    split: str
    n: int
    seed: int
    policies: list[PolicyChoice]
    reports: dict[str, EvalReport]
    episode_ids: dict[str, list[int]]
    tasks: list[dict[str, Any]]  # per task index: id, instruction, seed, outcomes per label
    disagreements: list[dict[str, Any]]

    @property
    def labels(self) -> list[str]:
        return [choice.label for choice in self.policies]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "suite": self.suite, "split": self.split, "n": self.n, "seed": self.seed,
            "labels": self.labels,
            "policies": {
                choice.label: {**choice.to_dict(), "success_rate": self.reports[choice.label].success_rate,
                               "mean_return": self.reports[choice.label].mean_return,
                               "status_shares": self.reports[choice.label].status_shares,
                               "episode_ids": self.episode_ids.get(choice.label, [])}
                for choice in self.policies
            },
            "disagreements": self.disagreements,
            "agreements": self.n - len(self.disagreements),
        }


def _choices(run_dir: Path, checkpoints: Sequence[str | Path]) -> list[PolicyChoice]:
    """Resolve the checkpoints; one alone is compared with the base model."""
    choices = [resolve_checkpoint(run_dir, spec) for spec in checkpoints]
    if len(choices) == 1 and choices[0] != BASE:
        choices.insert(0, BASE)
    labels = [choice.label for choice in choices]
    duplicated = sorted({label for label in labels if labels.count(label) > 1})
    if duplicated:
        raise ForensicsError(f"{', '.join(duplicated)} named twice; compare different checkpoints")
    if len(choices) < 2:
        raise ForensicsError("compare needs two policies, e.g. base iter-000010")
    return choices


def _outcome(rollout: EpisodeRollout, episode_id: int | None) -> dict[str, Any]:
    record = rollout.record
    statuses = [turn.status for turn in record.turns]
    return {"outcome": record.outcome, "success": record.success, "final_status": statuses[-1] if statuses else None,
            "total_reward": record.total_reward, "turns": len(statuses), "episode_id": episode_id}


def compare(
    run_dir: str | Path,
    checkpoints: Sequence[str | Path],
    *,
    n: int | None = None,
    seed: int | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    store: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> ComparisonResult:
    """Evaluate each policy on the same ``n`` held-out tasks (seeds ``seed``..), greedy; see the module doc.

    A task is a disagreement when the policies' outcome or final status differ (``success_differs``
    says whether one solved it and another did not). ``progress(label, done, total)`` is called as
    episodes finish.
    """
    run_dir = Path(run_dir)
    config = run_config(run_dir)
    choices = _choices(run_dir, checkpoints)
    n = n or config.eval.num_tasks
    seed = config.eval.seed if seed is None else seed
    if n < 1:
        raise ForensicsError("-n must be at least 1")
    task = config.task
    reports: dict[str, EvalReport] = {}
    played: dict[str, list[EpisodeRollout]] = {}
    for choice in choices:
        policy = load_choice(choice, config, device)
        try:
            report, rollouts = evaluate(
                policy, suite=task.suite, split=task.eval_split, episodes=n,
                batch_size=batch_size or config.rollout.batch_size, settings=greedy_settings(config), seed=seed,
                task_file=task.task_file, servers_config=task.servers_config,
                progress=None if progress is None else (lambda done, total, c=choice: progress(c.label, done, total)),
            )
        finally:
            del policy
            _free_memory()
        reports[choice.label], played[choice.label] = report, rollouts
    _check_same_tasks(played)
    episode_ids: dict[str, list[int]] = {}
    if store:
        with RunAnnotator(run_dir) as annotator:
            for choice in choices:
                entries = [EpisodeEntry({**r.record.to_dict(), "policy": choice.label}, split=task.eval_split)
                           for r in played[choice.label]]
                episode_ids[choice.label] = annotator.add_episodes(entries, choice.iteration or 0, phase="compare")
    tasks, disagreements = per_task_outcomes(choices, played, episode_ids, seed)
    result = ComparisonResult(None, task.suite, task.eval_split, n, seed, choices, reports, episode_ids, tasks,
                              disagreements)
    if store:
        with RunAnnotator(run_dir) as annotator:
            result.id = annotator.add_comparison(result.labels, task.suite, task.eval_split, n, seed,
                                                 result.to_dict())
    return result


def _check_same_tasks(played: dict[str, list[EpisodeRollout]]) -> None:
    """Same seeds must have drawn the same tasks for every policy, or the comparison means nothing."""
    columns = [[r.record.task.get("id") for r in rollouts] for rollouts in played.values()]
    if any(column != columns[0] for column in columns[1:]):
        raise ForensicsError("the policies were given different tasks for the same seeds; is the task file changing?")


def per_task_outcomes(
    choices: Sequence[PolicyChoice], played: dict[str, list[EpisodeRollout]], episode_ids: dict[str, list[int]],
    seed: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each task's outcome under every policy, and the tasks where they disagree (success first)."""
    first = played[choices[0].label]
    tasks, disagreements = [], []
    for index, rollout in enumerate(first):
        outcomes = {
            choice.label: _outcome(played[choice.label][index],
                                   episode_ids[choice.label][index] if choice.label in episode_ids else None)
            for choice in choices
        }
        kinds = {(o["outcome"], o["final_status"]) for o in outcomes.values()}
        successes = {o["success"] for o in outcomes.values()}
        entry = {"index": index, "seed": seed + index, "task_id": rollout.record.task.get("id"),
                 "instruction": rollout.record.task.get("instruction"), "outcomes": outcomes,
                 "disagree": len(kinds) > 1, "success_differs": len(successes) > 1}
        tasks.append(entry)
        if entry["disagree"]:
            disagreements.append(entry)
    disagreements.sort(key=lambda e: (not e["success_differs"], e["index"]))
    return tasks, disagreements
