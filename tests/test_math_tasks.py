"""The math suite: every sampled task is solved by its reference calls on a real in-process server.

Answers are computed by the generator in plain Python, so these tests also check the server's
arithmetic against an independent computation.
"""

from __future__ import annotations

import json
import re
from typing import Any

import mcp
import pytest

from mcp_servers.math import build_server
from mcp_servers.tasks.model import Task, ToolCall, ToolResult
from mcp_servers.tasks.suites import sample_tasks, split_of

N = 40
SEED = 7
EXPRESSION = re.compile(r"^(?:Evaluate|Calculate|Compute) (.+)\.$")


async def call(client: mcp.Client, tool: ToolCall) -> ToolResult:
    """Run one call and convert the MCP result into the trainer's ToolResult."""
    result = await client.call_tool(tool.name, tool.arguments)
    text = "".join(getattr(block, "text", "") for block in result.content)
    return ToolResult(text=text, structured=result.structured_content, is_error=bool(result.is_error))


async def play(task: Task) -> list[tuple[ToolResult, bool]]:
    """The reference calls on a fresh server: each result and whether the verifier then holds."""
    played: list[tuple[ToolResult, bool]] = []
    async with mcp.Client(build_server()) as client:

        async def call_tool(tool: ToolCall) -> ToolResult:
            return await call(client, tool)

        for reference in task.reference_calls:
            result = await call_tool(reference)
            played.append((result, await task.verifier.holds(reference, result, call_tool)))
    return played


@pytest.fixture(scope="module", params=["train", "heldout"])
def tasks(request: pytest.FixtureRequest) -> list[Task]:
    return sample_tasks("math", request.param, N, SEED)


async def test_reference_calls_solve_every_task(tasks):
    assert len(tasks) == N
    for task in tasks:
        played = await play(task)
        assert played, task.instruction
        for result, _ in played:
            assert not result.is_error, f"{task.instruction}: {result.text}"
        assert played[-1][1], f"{task.instruction}: last result {played[-1][0].text} is not {task.answer}"
        assert not any(ok for _, ok in played[:-1]), f"{task.instruction}: an earlier call already verifies"
        assert played[-1][0].value() == pytest.approx(task.answer)
        if "multi_step" in task.tags:
            assert_chained(task, played[0][0])


def assert_chained(task: Task, first: ToolResult) -> None:
    """The second call uses the first call's result, which the instruction does not state."""
    assert len(task.reference_calls) == 2, task.instruction
    arguments = task.reference_calls[1].arguments
    used = arguments.get("a", arguments.get("value"))
    assert used == pytest.approx(first.value()), f"{task.instruction}: step 2 ignores step 1"
    assert used not in stated_numbers(task.instruction), f"{task.instruction}: the first result is stated"


def stated_numbers(instruction: str) -> list[float]:
    return [float(n) for n in re.findall(r"\d+(?:\.\d+)?", instruction.replace(",", ""))]


# the fix each kind of everyday notation must be told about
HINTS = {"^": "write powers with **", " x ": "write multiplication with *", ",": "remove the commas"}


async def test_recovery_tasks_fail_as_written_and_say_how_to_fix_it(tasks):
    recoveries = [task for task in tasks if "recovery" in task.tags]
    assert recoveries
    async with mcp.Client(build_server()) as client:
        for task in recoveries:
            match = EXPRESSION.match(task.instruction)
            assert match, task.instruction
            naive = await call(client, ToolCall("calculate", {"expression": match.group(1)}))
            assert naive.is_error, f"{task.instruction}: the literal expression works"
            written = match.group(1)
            hint = next((h for mark, h in HINTS.items() if mark in written), "write 3 * (4 + 5)")
            assert hint in naive.text, f"{written!r}: {naive.text}"
            assert not task.verifier.check(ToolCall("calculate", {"expression": match.group(1)}), naive)


def test_tasks_are_well_formed(tasks):
    for task in tasks:
        assert task.suite == "math" and task.servers == ("math",)
        assert task.tools and {c.name for c in task.reference_calls} <= set(task.tools)
        assert set(task.tools) <= {"calculate", "arithmetic", "percent"}
        assert task.verifier.kind == "value" and task.verifier.tool == task.reference_calls[-1].name
        assert len(task.instruction.split()) <= 20, task.instruction
        assert task.answer not in stated_numbers(task.instruction), (
            f"{task.instruction}: the answer is stated"
        )
        assert task.max_turns >= len(task.reference_calls) + 1


def test_tasks_round_trip_through_json(tasks):
    for task in tasks:
        data: Any = json.loads(json.dumps(task.to_dict()))
        again = Task.from_dict(data)
        assert again == task
        assert again.to_dict() == task.to_dict()


def test_splits_are_disjoint_and_cover_every_kind():
    train, heldout = sample_tasks("math", "train", N, SEED), sample_tasks("math", "heldout", N, SEED)
    assert not {t.id for t in train} & {t.id for t in heldout}
    assert all(split_of(t.instruction) == "train" for t in train)
    assert all(split_of(t.instruction) == "heldout" for t in heldout)
    for split in (train, heldout):
        tags = {tag for task in split for tag in task.tags}
        assert {"single_step", "multi_step", "recovery"} <= tags
        assert {"calculate", "arithmetic", "percent"} <= {tool for task in split for tool in task.tools}


def test_sampling_is_deterministic_and_varied():
    first = sample_tasks("math", "train", 300, 1)
    assert [t.id for t in first] == [t.id for t in sample_tasks("math", "train", 300, 1)]
    assert len({t.id for t in first}) == 300
    assert [t.id for t in first] != [t.id for t in sample_tasks("math", "train", 300, 2)]
    templates = {re.sub(r"[\d,.]+", "#", t.instruction) for t in first}
    assert len(templates) > 40
