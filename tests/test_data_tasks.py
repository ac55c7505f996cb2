"""The data suite: every sampled task is solved by its reference calls on a fresh in-process server.

Answers are computed by the generator from the shipped files in plain Python, so these tests also
check the server's filtering, grouping, joining and unit conversion against an independent
computation. Recovery tasks are checked to really need recovery: the obvious first call fails.
"""

from __future__ import annotations

import json
import re
from typing import Any

import mcp
import pytest

from mcp_servers.data import build_server
from mcp_servers.tasks import data as suite
from mcp_servers.tasks.model import Task, ToolCall, ToolResult
from mcp_servers.tasks.suites import sample_tasks, split_of

N = 40
SEED = 11
SERVER_TOOLS = {"load", "filter", "sort", "aggregate", "join", "convert", "tables"}
WORDS_CONVERT = re.compile(r"^Convert (\S+) (.+) to (.+)\.$")


async def call(client: mcp.Client, tool: ToolCall) -> ToolResult:
    """Run one call and convert the MCP result into the trainer's ToolResult."""
    result = await client.call_tool(tool.name, tool.arguments)
    text = "".join(getattr(block, "text", "") for block in result.content)
    return ToolResult(text=text, structured=result.structured_content, is_error=bool(result.is_error))


async def play(task: Task, calls: tuple[ToolCall, ...] | None = None) -> list[tuple[ToolResult, bool]]:
    """Calls (the reference ones by default) on a fresh server: each result and whether the verifier holds."""
    played: list[tuple[ToolResult, bool]] = []
    async with mcp.Client(build_server()) as client:

        async def call_tool(tool: ToolCall) -> ToolResult:
            return await call(client, tool)

        for reference in calls if calls is not None else task.reference_calls:
            result = await call_tool(reference)
            played.append((result, await task.verifier.holds(reference, result, call_tool)))
    return played


@pytest.fixture(scope="module", params=["train", "heldout"])
def tasks(request: pytest.FixtureRequest) -> list[Task]:
    return sample_tasks("data", request.param, N, SEED)


async def test_reference_calls_solve_every_task(tasks):
    assert len(tasks) == N
    for task in tasks:
        played = await play(task)
        for result, _ in played:
            assert not result.is_error, f"{task.instruction}: {result.text}"
        assert played[-1][1], (
            f"{task.instruction}: last result {played[-1][0].text[:200]} is not {task.answer}"
        )
        assert not any(ok for _, ok in played[:-1]), f"{task.instruction}: an earlier call already verifies"


async def test_a_wrong_answer_does_not_verify(tasks):
    """The objective must really be reached: the same calls without their key step fail."""
    checked = 0
    for task in tasks:
        calls = task.reference_calls
        if task.verifier.kind == "probe":
            # saving under another name leaves the probed table missing
            last = ToolCall(calls[-1].name, {**calls[-1].arguments, "save_as": "elsewhere"})
            wrong = (*calls[:-1], last)
        elif calls[-1].name == "aggregate" and calls[-1].arguments["table"] == "t1":
            # aggregating the unfiltered table gives another answer
            source = calls[0].arguments["dataset"]
            wrong = (calls[0], ToolCall("aggregate", {**calls[-1].arguments, "table": source}))
        elif calls[-1].name == "convert":
            arguments = calls[-1].arguments
            wrong = (*calls[:-1], ToolCall("convert", {**arguments, "value": arguments["value"] * 1.01 + 1}))
        else:
            continue
        played = await play(task, wrong)
        assert not any(ok for _, ok in played), f"{task.instruction}: a wrong solution verifies"
        checked += 1
    assert checked >= N // 3


async def test_recovery_tasks_really_need_recovery(tasks):
    """The call a model would make first, straight from the instruction, fails with a helpful error."""
    recovery = [task for task in tasks if "recovery" in task.tags]
    assert recovery
    for task in recovery:
        naive, fragment = obvious_first_call(task)
        played = await play(task, naive)
        result = played[-1][0]
        assert result.is_error and fragment in result.text, f"{task.instruction}: {result.text}"
        assert not any(ok for _, ok in played)


def obvious_first_call(task: Task) -> tuple[tuple[ToolCall, ...], str]:
    """The calls an instruction suggests when taken literally, and what their error must say."""
    last = task.reference_calls[-1]
    if last.name == "convert":
        match = WORDS_CONVERT.match(task.instruction)
        assert match, task.instruction
        literal = {"value": float(match.group(1)), "from_unit": match.group(2), "to_unit": match.group(3)}
        return (ToolCall("convert", literal),), "valid units are"
    if "load" not in task.instruction.lower():
        return (last,), "is not loaded; call load"
    column = last.arguments["column"]
    word = suite.WORDS[column]
    assert word in task.instruction and column not in task.instruction
    return (task.reference_calls[0], ToolCall("aggregate", {**last.arguments, "column": word})), "columns: "


def test_tasks_round_trip_through_json(tasks):
    for task in tasks:
        assert Task.from_dict(json.loads(json.dumps(task.to_dict()))) == task


def test_tasks_are_well_formed(tasks):
    for task in tasks:
        assert task.suite == "data" and task.servers == ("data",)
        assert len(task.instruction.split()) <= 20, task.instruction
        assert set(task.tools) <= SERVER_TOOLS
        assert {c.name for c in task.reference_calls} == set(task.tools)
        assert task.max_turns >= len(task.reference_calls) + 1
        assert task.tags and task.answer is not None
        if task.verifier.kind == "probe":
            assert task.verifier.probe is not None and task.verifier.probe.name in SERVER_TOOLS
        else:
            assert task.verifier.tool == task.reference_calls[-1].name


def test_splits_are_disjoint_and_sampling_is_repeatable():
    train = sample_tasks("data", "train", N, SEED)
    heldout = sample_tasks("data", "heldout", N, SEED)
    assert not {t.id for t in train} & {t.id for t in heldout}
    assert not {t.instruction for t in train} & {t.instruction for t in heldout}
    assert all(split_of(t.instruction) == "train" for t in train)
    assert all(split_of(t.instruction) == "heldout" for t in heldout)
    assert [t.id for t in sample_tasks("data", "train", N, SEED)] == [t.id for t in train]
    assert len({t.id for t in train}) == N


def test_every_kind_of_task_occurs(tasks):
    tags = {tag for task in tasks for tag in task.tags}
    assert {"single_step", "multi_step", "recovery", "state"} <= tags


def test_the_suite_has_thousands_of_instances():
    import random

    rng = random.Random(0)
    instructions = {suite.generate(rng).instruction for _ in range(6_000)}
    assert len(instructions) > 3_000


async def test_multi_step_tasks_use_what_an_earlier_call_returns(tasks):
    """Filter-then-aggregate aggregates the table name the filter answered with; aggregate-then-convert
    converts the value the aggregate answered with."""
    filtered = [t for t in tasks if len(t.reference_calls) == 3 and t.reference_calls[1].name == "filter"]
    converted = [t for t in tasks if len(t.reference_calls) == 3 and t.reference_calls[2].name == "convert"]
    assert filtered or converted
    for task in filtered:
        played = await play(task)
        assert task.reference_calls[2].arguments["table"] == played[1][0].value()["table"] == "t1"
        assert "t1" not in task.instruction
    for task in converted:
        played = await play(task)
        assert task.reference_calls[2].arguments["value"] == played[1][0].value()["value"]
        assert number_text(task.reference_calls[2].arguments["value"]) not in task.instruction


def number_text(value: Any) -> str:
    return str(value)
