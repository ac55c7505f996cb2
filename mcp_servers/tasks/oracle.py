"""Play a task's reference calls on a hub and report whether its verifier accepts the result."""

from __future__ import annotations

from dataclasses import dataclass

from mcp_servers.hub import ToolHub, UnknownToolError
from mcp_servers.tasks.model import Task, ToolCall, ToolResult


@dataclass(frozen=True)
class OracleReport:
    """What playing the reference calls showed: per call, its result and whether it verified."""

    task_id: str
    results: tuple[ToolResult, ...]
    verified: tuple[bool, ...]

    @property
    def passed(self) -> bool:
        """The last call verifies and no earlier one does (success means the objective was reached)."""
        return bool(self.verified) and self.verified[-1] and not any(self.verified[:-1])


async def play_reference(task: Task, hub: ToolHub) -> OracleReport:
    """Run the reference calls in order on fresh server state, checking the verifier after each."""
    await hub.reset(task.servers)
    results: list[ToolResult] = []
    verified: list[bool] = []
    for call in task.reference_calls:
        try:
            result = await hub.call(call)
        except UnknownToolError:
            result = ToolResult(f"unknown tool {call.name!r}", is_error=True)
        results.append(result)
        verified.append(await task.verifier.holds(call, result, _caller(hub)))
    return OracleReport(task.id, tuple(results), tuple(verified))


def _caller(hub: ToolHub):
    async def call_tool(call: ToolCall) -> ToolResult:
        try:
            return await hub.call(call)
        except UnknownToolError:
            return ToolResult(f"unknown tool {call.name!r}", is_error=True)

    return call_tool
