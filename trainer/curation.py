"""Curation: finding runs and episodes, flags, and promoting flagged episodes to regression tasks.

Torch-free, so the Textual app can call every function here directly:

- :func:`resolve_run` turns "my-run" or "runs/my-run" into the run folder;
- :func:`parse_filter` turns ``key=value`` words into the store's :class:`EpisodeFilter`;
- :func:`flag_episode` / :func:`unflag_episode` write flags (short transactions, safe while a
  trainer writes the same run);
- :func:`resolve_checkpoint` / :func:`checkpoint_choices` name the policies forensics can load
  ("base", "best", "latest", an iteration, a checkpoint folder or an adapter folder);
- :func:`rerun_argv` / :func:`compare_argv` / :func:`export_argv` are the child-process command
  lines for the forensics that need the model or the MCP servers (run them, read their ``--json``);
- :func:`promote` writes the tasks of flagged episodes to ``runs/<run>/regression.jsonl`` in the
  user task-file format. The trainer's held-out evaluation then also plays that file, every task
  once, and stores it as an evaluation with suite and split ``regression``.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from mcp_servers.tasks.model import Task, TaskFormatError
from mcp_servers.tasks.taskfile import load_task_file, write_task_file
from trainer.store import (
    CHECKPOINTS_DIR,
    FLAG_KINDS,
    PHASES,
    STATUSES,
    EpisodeFilter,
    Flag,
    RunReader,
    StoreError,
    add_flag,
    remove_flag,
)

REGRESSION_NAME = "regression.jsonl"
REGRESSION_SUITE = "regression"
DEFAULT_RUNS_DIR = "runs"
_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}


class CurationError(ValueError):
    """A curation request that cannot be met; the message is one line saying what to do."""


def resolve_run(run: str | Path, runs_dir: str | Path = DEFAULT_RUNS_DIR) -> Path:
    """The run folder named by ``run``: a path to it, or a run name under ``runs_dir``."""
    path = Path(run).expanduser()
    if path.is_dir():
        return path
    under = Path(runs_dir) / str(run)
    if under.is_dir():
        return under
    raise StoreError(f"no run folder {run} (nor {under}); pass a run folder or a run name under {runs_dir}/")


def regression_file(run_dir: str | Path) -> Path:
    """Where a run's regression task file lives (it may not exist)."""
    return Path(run_dir) / REGRESSION_NAME


def regression_tasks(run_dir: str | Path) -> list[Task] | None:
    """The run's regression tasks, or None when it has no regression file (TaskFormatError if broken)."""
    path = regression_file(run_dir)
    return load_task_file(path, suite=REGRESSION_SUITE) if path.is_file() else None


# --------------------------------------------------------------------------------------------
# Checkpoints

_ITER_NAME = re.compile(r"^iter-(\d+)$")


@dataclass(frozen=True)
class PolicyChoice:
    """A policy forensics can load: the base model, a LoRA adapter folder, or a full model folder."""

    label: str
    kind: str  # "base" | "adapter" | "model"
    path: Path | None
    iteration: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "kind": self.kind, "path": None if self.path is None else str(self.path),
                "iteration": self.iteration}


BASE = PolicyChoice("base", "base", None, 0)


def _checkpoint_folders(run_dir: Path) -> list[Path]:
    """Complete checkpoint folders of a run on disk, oldest first."""
    folder = run_dir / CHECKPOINTS_DIR
    return sorted(p for p in folder.glob("iter-*") if (p / "state.json").is_file()) if folder.is_dir() else []


def checkpoint_choices(run_dir: str | Path) -> list[str]:
    """What :func:`resolve_checkpoint` accepts for this run, for a picker: base and each checkpoint."""
    return ["base", *(p.name for p in _checkpoint_folders(Path(run_dir)))]


def _iteration_of(folder: Path) -> int | None:
    """A checkpoint's iteration, from its state.json or its iter-NNNNNN name."""
    for candidate in (folder, folder.parent):
        state = candidate / "state.json"
        if state.is_file():
            try:
                return int(json.loads(state.read_text(encoding="utf-8"))["iteration"])
            except (ValueError, KeyError, TypeError):
                pass
        match = _ITER_NAME.match(candidate.name)
        if match:
            return int(match.group(1))
    return None


def _choice_from_folder(folder: Path, spec: str, run_dir: Path) -> PolicyChoice:
    label = folder.parent.name if folder.name in ("adapter", "model") else folder.name
    for path, kind in ((folder / "adapter", "adapter"), (folder, "adapter"), (folder / "model", "model"),
                       (folder, "model")):
        marker = "adapter_config.json" if kind == "adapter" else "config.json"
        if (path / marker).is_file():
            return PolicyChoice(label, kind, path, _iteration_of(path if path == folder else folder))
    choices = ", ".join(checkpoint_choices(run_dir))
    raise CurationError(f"{spec!r} is not a checkpoint, adapter or model folder; choose one of: {choices}, "
                        "best, latest, an iteration number, or a folder path")


def resolve_checkpoint(run_dir: str | Path, spec: str | Path) -> PolicyChoice:
    """The policy named by ``spec``: "base", "best", "latest", an iteration number, a checkpoint name
    of the run (iter-000010), or a path to a checkpoint, adapter or full model folder."""
    run_dir = Path(run_dir)
    text = str(spec).strip()
    if text == "base":
        return BASE
    if text in ("best", "latest", "last"):
        folders = _checkpoint_folders(run_dir)
        if text == "best":
            with RunReader(run_dir) as reader:
                best = reader.best_checkpoint()
            folders = [Path(best.path)] if best is not None and best.kept and Path(best.path).is_dir() else []
        if not folders:
            raise CurationError(f"run {run_dir.name} has no {text} checkpoint on disk; "
                                f"choose one of: {', '.join(checkpoint_choices(run_dir))}")
        return _choice_from_folder(folders[-1], text, run_dir)
    if text.isdigit():
        folder = run_dir / CHECKPOINTS_DIR / f"iter-{int(text):06d}"
    else:
        path = Path(text).expanduser()
        folder = path if path.exists() else run_dir / CHECKPOINTS_DIR / text
    if not folder.is_dir():
        raise CurationError(f"no checkpoint {text!r} in run {run_dir.name}; choose one of: "
                            f"{', '.join(checkpoint_choices(run_dir))}, best, latest, or a folder path")
    return _choice_from_folder(folder, text, run_dir)


def checkpoint_for_iteration(run_dir: str | Path, iteration: int) -> PolicyChoice | None:
    """The checkpoint holding the weights that played iteration ``iteration``'s episodes, if still on disk.

    A checkpoint named iter-N is saved after N updates: exactly the weights that played the
    episodes (train and eval) stored with iteration N. Iteration 0 played with the base model.
    """
    folder = Path(run_dir) / CHECKPOINTS_DIR / f"iter-{int(iteration):06d}"
    if folder.is_dir():
        return _choice_from_folder(folder, folder.name, Path(run_dir))
    return BASE if iteration == 0 else None


# --------------------------------------------------------------------------------------------
# Filters


_INT_FIELDS = {"iteration", "min_iteration", "max_iteration"}
_FLOAT_FIELDS = {"min_reward", "max_reward"}
_CHOICES: dict[str, tuple[str, ...]] = {
    "phase": PHASES,
    "status": STATUSES,
    "any_status": STATUSES,
    "flagged": (*FLAG_KINDS, "any"),
}


def filter_keys() -> list[str]:
    """The keys :func:`parse_filter` accepts (the fields of EpisodeFilter)."""
    return [f.name for f in fields(EpisodeFilter)]


def _filter_value(key: str, text: str) -> Any:
    """One typed filter value, or a CurationError naming the key and what it accepts."""
    if key in _INT_FIELDS:
        try:
            return int(text)
        except ValueError:
            raise CurationError(f"filter {key} needs a whole number, not {text!r}") from None
    if key in _FLOAT_FIELDS:
        try:
            return float(text)
        except ValueError:
            raise CurationError(f"filter {key} needs a number, not {text!r}") from None
    if key == "success":
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise CurationError(f"filter success needs true or false, not {text!r}")
    if key in _CHOICES and text not in _CHOICES[key]:
        raise CurationError(f"filter {key} must be one of {', '.join(_CHOICES[key])}, not {text!r}")
    return text


def parse_filter(items: Iterable[str], base: EpisodeFilter | None = None) -> EpisodeFilter:
    """``["phase=eval", "success=true", "flagged=bad"]`` as an EpisodeFilter (dashes work as underscores)."""
    criteria: dict[str, Any] = {}
    known = set(filter_keys())
    for item in items:
        key, sep, value = str(item).partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise CurationError(f"a filter is KEY=VALUE, not {item!r}; keys: {', '.join(filter_keys())}")
        if key not in known:
            raise CurationError(f"unknown filter {key!r}; keys: {', '.join(filter_keys())}")
        criteria[key] = _filter_value(key, value.strip())
    base = base or EpisodeFilter()
    return EpisodeFilter(**{**{f.name: getattr(base, f.name) for f in fields(base)}, **criteria})


# --------------------------------------------------------------------------------------------
# Flags


def flag_episode(run_dir: str | Path, episode_id: int, kind: str, note: str | None = None) -> Flag:
    """Flag an episode as a good example, a bad example or a bug (replacing that kind's note)."""
    return add_flag(run_dir, episode_id, kind, note)


def unflag_episode(run_dir: str | Path, episode_id: int, kind: str | None = None) -> int:
    """Remove an episode's flag of ``kind`` (all of its flags when None); how many were removed."""
    return remove_flag(run_dir, episode_id, kind)


def episode_flags(run_dir: str | Path, episode_id: int) -> list[Flag]:
    """The flags of one episode (for a badge next to it)."""
    with RunReader(run_dir) as reader:
        return reader.flags(episode_id=episode_id)


# --------------------------------------------------------------------------------------------
# Promotion


@dataclass
class PromoteResult:
    """What :func:`promote` wrote: the file, its task ids, the episodes they came from, and skips."""

    path: Path
    task_ids: list[str] = field(default_factory=list)
    episode_ids: list[int] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "episode N: why"

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "task_ids": self.task_ids, "episode_ids": self.episode_ids,
                "skipped": self.skipped}


def _regression_task(record: dict[str, Any], kinds: list[str]) -> Task:
    """The stored task of an episode, verifier kept, tagged so the file says where it came from."""
    task = Task.from_dict(record.get("task"))
    tags = [*task.tags, *(tag for tag in ("regression", *(f"flagged_{k}" for k in kinds)) if tag not in task.tags)]
    return Task.from_dict({**task.to_dict(), "tags": tags})


def promote(run_dir: str | Path, kind: str | None = None, out: str | Path | None = None) -> PromoteResult:
    """Write the tasks of the run's flagged episodes (of ``kind``; every kind when None or "any")
    as a task file, one task per distinct task, default ``runs/<run>/regression.jsonl``.

    The file is rebuilt from the current flags each time and replaced atomically, so a trainer
    reading it at its next evaluation never sees half a file.
    """
    run_dir = Path(run_dir)
    if kind not in (None, "any") and kind not in FLAG_KINDS:
        raise CurationError(f"unknown flag kind {kind!r}; choose one of {', '.join(FLAG_KINDS)} or any")
    path = Path(out) if out is not None else regression_file(run_dir)
    result = PromoteResult(path=path)
    tasks: dict[str, Task] = {}
    with RunReader(run_dir) as reader:
        flags = reader.flags(kind=kind or "any")
        kinds_of: dict[int, list[str]] = {}
        for flag in flags:
            kinds_of.setdefault(flag.episode_id, []).append(flag.kind)
        for episode_id, kinds in kinds_of.items():
            try:
                task = _regression_task(reader.episode(episode_id), kinds)
            except (TaskFormatError, StoreError) as exc:
                result.skipped.append(f"episode {episode_id}: {exc}")
                continue
            if task.id not in tasks:
                tasks[task.id] = task
                result.task_ids.append(task.id)
            result.episode_ids.append(episode_id)
    if not tasks:
        which = "flagged" if kind in (None, "any") else f"flagged {kind}"
        raise CurationError(
            f"no {which} episodes with a replayable task in {run_dir.name}; "
            "flag some first (qwen-workbench flag RUN EPISODE --kind bad)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write_task_file(tasks.values(), temporary)
        load_task_file(temporary, suite=REGRESSION_SUITE)  # what the trainer will read must load
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
    return result


# --------------------------------------------------------------------------------------------
# Child processes for the forensics the UI must not run in-process (torch, MCP servers)


def trainer_argv(command: str, *arguments: str) -> list[str]:
    """``python -m trainer COMMAND ...`` with this interpreter."""
    return [sys.executable, "-m", "trainer", command, *arguments]


def rerun_argv(run_dir: str | Path, episode_id: int, checkpoint: str | None = None) -> list[str]:
    """Re-run an episode; stdout is one JSON object (RerunResult.to_dict: diff, stored, rerun)."""
    extra = ["--adapter", str(checkpoint)] if checkpoint is not None else []
    return trainer_argv("rerun", str(run_dir), str(int(episode_id)), *extra, "--json")


def compare_argv(run_dir: str | Path, checkpoints: Sequence[str], n: int | None = None) -> list[str]:
    """Compare checkpoints; stdout is one JSON object (ComparisonResult.to_dict, stored with its id)."""
    extra = ["-n", str(int(n))] if n is not None else []
    return trainer_argv("compare", str(run_dir), *map(str, checkpoints), *extra, "--json")


def export_argv(
    run_dir: str | Path, out: str | Path, format: str = "jsonl", filters: Sequence[str] = ()
) -> list[str]:
    """Export episodes (``format`` jsonl or hf) matching ``KEY=VALUE`` filters; stdout is JSON."""
    extra = [word for item in filters for word in ("--filter", str(item))]
    return trainer_argv("export", str(run_dir), str(out), "--format", format, *extra, "--json")
