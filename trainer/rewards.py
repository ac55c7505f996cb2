"""Turn statuses and the reward each one earns (the execution-reward matrix)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum


class Status(StrEnum):
    """What one assistant turn achieved, from best to worst."""

    SUCCESS = "success"  # the call ran cleanly and the task's expected state now holds
    TOOL_EXECUTION = "tool_execution"  # the call ran cleanly; the objective is not complete yet
    TOOL_ERROR = "tool_error"  # a real tool was called and failed (bad arguments, fault, timeout)
    INVALID_JSON = "invalid_json"  # a call was attempted; its JSON does not parse or lacks name/arguments
    STRUCTURAL_FAIL = "structural_fail"  # unknown tool, no call where one was due, or protocol broken


STATUSES: tuple[Status, ...] = tuple(Status)
_SEVERITY = {status: rank for rank, status in enumerate(STATUSES)}


def worst(statuses: list[Status]) -> Status:
    """The most severe status of several calls in one turn."""
    return max(statuses, key=_SEVERITY.__getitem__)


@dataclass(frozen=True)
class RewardConfig:
    """The reward of each status; the defaults are the published recipe's matrix."""

    success: float = 10.0
    tool_execution: float = 0.0
    tool_error: float = -0.5
    invalid_json: float = -0.8
    structural_fail: float = -1.0

    def reward(self, status: Status) -> float:
        return float(getattr(self, status.value))

    def to_dict(self) -> dict[str, float]:
        return asdict(self)
