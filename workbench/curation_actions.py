"""What the app's flag and checkpoint pickers do, torch-free and Textual-free (tests call these).

trainer.curation (and with it the task model) is imported where it is used: the dialogs import this
module at start-up, and the app should not pay for curation before the first flag or re-run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PLAYED_IT = "played-it"  # the picker's id for "the weights that played the episode"


@dataclass(frozen=True)
class FlagRequest:
    """What the flag dialog asks for: a kind of FLAG_KINDS ("" removes every flag) and a note."""

    episode_id: int
    kind: str
    note: str | None = None


def apply_flag(run_dir: Path, request: FlagRequest) -> str:
    """Write (or remove) the flag; returns the one line to tell the user. Blocking (a short transaction)."""
    from trainer.curation import flag_episode, unflag_episode

    if not request.kind:
        removed = unflag_episode(run_dir, request.episode_id)
        return f"episode #{request.episode_id}: {removed} flag(s) removed"
    flag = flag_episode(run_dir, request.episode_id, request.kind, request.note)
    note = f" ({flag.note})" if flag.note else ""
    return f"episode #{request.episode_id} flagged {flag.kind}{note}"


def current_flags(run_dir: Path, episode_id: int) -> list[str]:
    """The kinds an episode is flagged with now (for the dialog's "flagged now" line)."""
    from trainer.curation import episode_flags

    return [flag.kind for flag in episode_flags(run_dir, episode_id)]


def rerun_choices(run_dir: Path, live: bool) -> list[tuple[str, str]]:
    """(label, checkpoint spec) for the re-run picker; spec "" re-uses the weights that played it.

    The live policy is the trainer's newest checkpoint ("latest"): a trainer's weights live in its
    own process, so a re-run reads what it last saved (press k on Live first for a fresh one).
    """
    from trainer.curation import checkpoint_choices

    choices = [("the weights that played it (reproduces an eval episode)", ""), ("base model", "base")]
    checkpoints = [name for name in checkpoint_choices(run_dir) if name != "base"]
    if checkpoints:
        label = "live policy: newest checkpoint" if live else "newest checkpoint"
        choices.append((f"{label} ({checkpoints[-1]})", "latest"))
        choices.extend((name, name) for name in reversed(checkpoints))
    return choices


def compare_preselection(choices: list[str]) -> list[str]:
    """Base against the newest checkpoint: the question most people ask first."""
    return [choices[0], choices[-1]] if len(choices) >= 2 else list(choices)
