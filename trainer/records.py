"""The episode record: one self-contained, JSON-serialisable account of an episode.

The run store persists these and the workbench renders them; nothing else about an episode needs
to be kept to replay it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class CallRecord:
    """One executed (or refused) call of a turn and what came back."""

    name: str
    arguments: dict[str, Any]
    response: str
    is_error: bool
    latency_s: float
    status: str


@dataclass
class TurnRecord:
    """One assistant turn: raw text, what was parsed, what the servers answered, and the outcome."""

    index: int
    raw_text: str
    thinking: str
    calls: list[CallRecord]
    parse_error: str | None
    feedback: str  # the tool-response text sent back to the model
    status: str
    reward: float
    latency_s: float  # time spent executing this turn's calls and verifier


@dataclass
class EpisodeRecord:
    """A whole episode: the task, every turn, and how it ended."""

    task: dict[str, Any]
    seed: int | None
    turns: list[TurnRecord] = field(default_factory=list)
    outcome: str = "running"  # success | terminated | truncated | running
    total_reward: float = 0.0
    started_at: float = 0.0
    duration_s: float = 0.0

    @property
    def success(self) -> bool:
        return self.outcome == "success"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpisodeRecord:
        turns = [
            TurnRecord(**{**turn, "calls": [CallRecord(**call) for call in turn["calls"]]})
            for turn in data.get("turns", [])
        ]
        return cls(**{**data, "turns": turns})
