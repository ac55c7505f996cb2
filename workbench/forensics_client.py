"""Forensics from the app: re-runs and comparisons in a child process, diffs of stored episodes.

Re-playing an episode needs torch, the model and the MCP servers, none of which the UI process may
load; :func:`run_json` runs the trainer's ``rerun`` / ``compare`` commands as asyncio children (off
the terminal's stdin) and reads the one JSON object they print. Diffing two stored episodes needs
only the run store, so :func:`stored_diff` does it in-process (call it from a worker thread).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.curation import compare_argv, rerun_argv
from trainer.episode_diff import EpisodeDiff, TurnSide, diff_episodes
from trainer.store import RunReader
from workbench.runs import child_env

RERUN_TIMEOUT_S = 900.0
COMPARE_TIMEOUT_S = 3600.0


class ForensicsFailed(RuntimeError):
    """A forensics child that failed; the message is its own one-line error."""


async def run_json(argv: Sequence[str], timeout_s: float) -> dict[str, Any]:
    """Run ``argv`` (a ``--json`` trainer command) and return the object it printed on stdout."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=child_env(),
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout_s)
    except (TimeoutError, asyncio.CancelledError) as exc:  # the screen closed, or the child hangs
        with suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        if isinstance(exc, TimeoutError):
            raise ForensicsFailed(f"{argv[3]} took longer than {timeout_s:g} s and was stopped") from None
        raise
    if process.returncode != 0:
        lines = [line.strip() for line in err.decode(errors="replace").splitlines() if line.strip()]
        message = lines[-1].removeprefix("error: ") if lines else f"{argv[3]} exited with status {process.returncode}"
        raise ForensicsFailed(message)
    try:
        data = json.loads(out)
    except json.JSONDecodeError:
        raise ForensicsFailed(f"{argv[3]} printed something that is not JSON") from None
    if not isinstance(data, dict):
        raise ForensicsFailed(f"{argv[3]} printed {type(data).__name__}, not an object")
    return data


@dataclass(frozen=True)
class Rerun:
    """A re-run as the app shows it: the diff, and whether the stored episode was sampled."""

    diff: EpisodeDiff
    phase: str
    policy_label: str

    @property
    def sampled(self) -> bool:
        """Training episodes were sampled: a greedy re-run differs even with the same weights."""
        return self.phase not in ("eval", "compare")


async def rerun_episode(run_dir: Path, episode_id: int, checkpoint: str | None) -> Rerun:
    """Re-play ``episode_id`` with ``checkpoint`` (None: the weights that played it) in a child."""
    data = await run_json(rerun_argv(run_dir, episode_id, checkpoint), RERUN_TIMEOUT_S)
    label = str((data.get("policy") or {}).get("label") or checkpoint or "re-run")
    diff = diff_episodes(data.get("stored") or {}, data.get("rerun") or {}, f"episode {episode_id}", label)
    return Rerun(diff, str(data.get("phase") or ""), label)


async def compare_checkpoints(run_dir: Path, checkpoints: Sequence[str], n: int | None) -> dict[str, Any]:
    """Evaluate ``checkpoints`` on the same held-out tasks in a child; ComparisonResult.to_dict()."""
    return await run_json(compare_argv(run_dir, checkpoints, n), COMPARE_TIMEOUT_S)


def stored_diff(run_dir: Path, left_id: int, right_id: int, left_label: str, right_label: str) -> EpisodeDiff:
    """The diff of two stored episodes of one task (a comparison's disagreement). Blocking."""
    with RunReader(run_dir) as reader:
        left, right = reader.episode(left_id), reader.episode(right_id)
    return diff_episodes(left, right, left_label, right_label)


def disagreement_pair(item: dict[str, Any], labels: Sequence[str]) -> tuple[tuple[str, int], tuple[str, int]] | None:
    """The first two policies of a disagreement that have stored episodes: ((label, id), (label, id))."""
    outcomes = item.get("outcomes") or {}
    stored = [(label, outcomes[label]["episode_id"]) for label in labels
              if isinstance(outcomes.get(label), dict) and isinstance(outcomes[label].get("episode_id"), int)]
    return (stored[0], stored[1]) if len(stored) >= 2 else None


def side_cells(side: TurnSide | None, differs: Sequence[str]) -> tuple[str, str, str]:
    """One side of a turn as (call, status, reward) cells; ``*`` marks what differs from the other side."""
    if side is None:
        return ("(episode over)", "", "")

    def mark(text: str, aspect: str) -> str:
        return f"{text} *" if aspect in differs else text

    return (mark(side.call_text, "call"), mark(side.status, "status"), mark(f"{side.reward:+g}", "reward"))
