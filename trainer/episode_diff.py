"""Turn-by-turn differences between two episodes of the same task (torch-free: the UI uses it).

Two plays of one task line up by turn index. For each turn the diff says whether the calls (tool
names and arguments), the status, the reward, the raw text and the tool responses agree, and an
episode diff says where the two first part ways. Records are the dicts the run store keeps
(``EpisodeRecord.to_dict()``, or ``RunReader.episode(...)`` with its extra ``_row``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

# The fields a turn diff compares, in the order a person reads them.
ASPECTS = ("call", "status", "reward", "text", "response")


@dataclass(frozen=True)
class TurnSide:
    """One episode's side of a turn: what was written, called, answered and awarded."""

    status: str
    reward: float
    calls: tuple[str, ...]  # "name {json arguments}" per call, in order
    text: str
    responses: tuple[str, ...]  # each call's response, or the feedback when no call ran
    parse_error: str | None

    @property
    def call_text(self) -> str:
        """The calls in one line ("(no call)" when the turn had none)."""
        return "; ".join(self.calls) if self.calls else "(no call)"


@dataclass(frozen=True)
class TurnDiff:
    """Both sides of turn ``index`` (a side is None where that episode had ended) and what differs."""

    index: int
    left: TurnSide | None
    right: TurnSide | None
    differs: tuple[str, ...]  # the ASPECTS that differ; every aspect when a side is missing

    @property
    def same(self) -> bool:
        return not self.differs


@dataclass(frozen=True)
class EpisodeDiff:
    """Two episodes of one task side by side, turn by turn."""

    left_label: str
    right_label: str
    task_id: str
    instruction: str
    left_outcome: str
    right_outcome: str
    left_reward: float
    right_reward: float
    turns: tuple[TurnDiff, ...]

    @property
    def identical(self) -> bool:
        """Same turns in every aspect and the same outcome."""
        return self.left_outcome == self.right_outcome and all(turn.same for turn in self.turns)

    @property
    def first_difference(self) -> int | None:
        """The index of the first turn that differs, None when none does."""
        return next((turn.index for turn in self.turns if not turn.same), None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["identical"] = self.identical
        data["first_difference"] = self.first_difference
        return data

    def lines(self, width: int = 100) -> list[str]:
        """A plain-text rendering: each turn's two sides, with ``*`` after every differing field."""
        name_width = max(len(self.left_label), len(self.right_label))
        out = [f"task {self.task_id}: {self.instruction}"]
        for turn in self.turns:
            marks = f"  differs: {', '.join(turn.differs)}" if turn.differs else "  same"
            out.append(f"turn {turn.index}{marks}")
            for label, side in ((self.left_label, turn.left), (self.right_label, turn.right)):
                out.append(f"  {label:<{name_width}}  {_side_line(side, turn.differs, width)}")
            if "text" in turn.differs:  # the calls may agree while the words differ: show them
                for label, side in ((self.left_label, turn.left), (self.right_label, turn.right)):
                    if side is not None:
                        out.append(f"  {label:<{name_width}}  wrote {_clip(repr(side.text), width)}")
        out.append(
            f"outcome  {self.left_label}: {self.left_outcome} ({self.left_reward:+g})   "
            f"{self.right_label}: {self.right_outcome} ({self.right_reward:+g})"
            + ("" if self.left_outcome == self.right_outcome else "  *")
        )
        if self.identical:
            out.append("the two episodes are identical")
        else:
            out.append(f"first difference at turn {self.first_difference}"
                       if self.first_difference is not None else "same turns, different outcome")
        return out


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _mark(text: str, aspect: str, differs: Sequence[str]) -> str:
    return f"{text}*" if aspect in differs else text


def _side_line(side: TurnSide | None, differs: Sequence[str], width: int) -> str:
    if side is None:
        return "(episode over)"
    call = _clip(side.call_text, width)
    return "  ".join((
        _mark(call, "call", differs),
        _mark(side.status, "status", differs),
        _mark(f"{side.reward:+g}", "reward", differs),
    ))


def turn_side(turn: Mapping[str, Any]) -> TurnSide:
    """One stored turn (a ``TurnRecord`` dict) as a comparable side."""
    calls = [call for call in turn.get("calls") or [] if isinstance(call, Mapping)]
    rendered = tuple(
        f"{call.get('name')} {json.dumps(call.get('arguments'), sort_keys=True, ensure_ascii=False)}"
        for call in calls
    )
    responses = tuple(str(call.get("response", "")) for call in calls) or (str(turn.get("feedback") or ""),)
    return TurnSide(
        status=str(turn.get("status") or ""),
        reward=float(turn.get("reward") or 0.0),
        calls=rendered,
        text=str(turn.get("raw_text") or ""),
        responses=responses,
        parse_error=turn.get("parse_error"),
    )


def _differences(left: TurnSide | None, right: TurnSide | None) -> tuple[str, ...]:
    if left is None or right is None:
        return ASPECTS
    checks = {
        "call": left.calls == right.calls,
        "status": left.status == right.status,
        "reward": abs(left.reward - right.reward) < 1e-9,
        "text": left.text == right.text,
        "response": left.responses == right.responses,
    }
    return tuple(aspect for aspect in ASPECTS if not checks[aspect])


def diff_episodes(
    left: Mapping[str, Any], right: Mapping[str, Any], left_label: str = "stored", right_label: str = "rerun"
) -> EpisodeDiff:
    """Line two episode records up turn by turn (see the module docstring)."""
    left_turns = [turn_side(t) for t in left.get("turns") or [] if isinstance(t, Mapping)]
    right_turns = [turn_side(t) for t in right.get("turns") or [] if isinstance(t, Mapping)]
    turns = []
    for index in range(max(len(left_turns), len(right_turns))):
        a = left_turns[index] if index < len(left_turns) else None
        b = right_turns[index] if index < len(right_turns) else None
        turns.append(TurnDiff(index, a, b, _differences(a, b)))
    task = left.get("task") if isinstance(left.get("task"), Mapping) else {}
    return EpisodeDiff(
        left_label=left_label,
        right_label=right_label,
        task_id=str(task.get("id", "")),
        instruction=str(task.get("instruction", "")),
        left_outcome=str(left.get("outcome") or ""),
        right_outcome=str(right.get("outcome") or ""),
        left_reward=float(left.get("total_reward") or 0.0),
        right_reward=float(right.get("total_reward") or 0.0),
        turns=tuple(turns),
    )
