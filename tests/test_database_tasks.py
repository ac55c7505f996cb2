"""The database suite: every sampled task is solved by its reference calls on a real server.

Each task runs on a fresh in-process server. The verifier must accept the last reference call and
reject every earlier one; recovery tasks must really need recovering (the table the instruction
names does not exist); multi-step tasks must really need the first call's answer.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

import mcp
import pytest

from mcp_servers.database import build_server
from mcp_servers.tasks import database as suite
from mcp_servers.tasks.model import Task, ToolCall, ToolResult
from mcp_servers.tasks.suites import sample_tasks, split_of

SPLITS = ("train", "heldout")
N = 40
SEED = 11


def to_result(result: Any) -> ToolResult:
    text = "".join(getattr(block, "text", "") for block in result.content)
    return ToolResult(text=text, structured=result.structured_content, is_error=result.is_error)


async def play(task: Task) -> tuple[list[ToolResult], list[bool]]:
    """Run the reference calls on a fresh server; per call, its result and whether it verified."""
    async with mcp.Client(build_server()) as client:

        async def call_tool(call: ToolCall) -> ToolResult:
            return to_result(await client.call_tool(call.name, call.arguments))

        results, verified = [], []
        for call in task.reference_calls:
            result = await call_tool(call)
            results.append(result)
            verified.append(await task.verifier.holds(call, result, call_tool))
    return results, verified


@pytest.fixture(scope="module")
def tasks() -> dict[str, list[Task]]:
    return {split: sample_tasks("database", split, N, SEED) for split in SPLITS}


@pytest.mark.parametrize("split", SPLITS)
async def test_reference_calls_solve_every_task(tasks: dict[str, list[Task]], split: str) -> None:
    assert len(tasks[split]) == N
    for task in tasks[split]:
        results, verified = await play(task)
        assert not any(r.is_error for r in results), (task.instruction, [r.text for r in results])
        assert verified[-1], (task.instruction, task.answer, results[-1].text)
        assert not any(verified[:-1]), (task.instruction, "an earlier call already satisfies the verifier")


@pytest.mark.parametrize("split", SPLITS)
def test_task_shape(tasks: dict[str, list[Task]], split: str) -> None:
    for task in tasks[split]:
        assert task.suite == "database" and task.servers == ("database",)
        assert task.id.startswith("database-")
        assert len(task.instruction.split()) <= 20, task.instruction
        assert task.verifier.kind == "value" and task.verifier.tool == "query"
        assert task.verifier.path == "$.rows[0][0]"
        assert task.verifier.equals == task.answer
        assert task.reference_calls[-1].name == "query"
        assert task.max_turns >= len(task.reference_calls) + 1
        assert split_of(task.instruction) == split


@pytest.mark.parametrize("split", SPLITS)
def test_round_trip(tasks: dict[str, list[Task]], split: str) -> None:
    for task in tasks[split]:
        line = json.dumps(task.to_dict())
        assert Task.from_dict(json.loads(line)) == task


def test_splits_disjoint_and_deterministic(tasks: dict[str, list[Task]]) -> None:
    train = {t.instruction for t in tasks["train"]}
    heldout = {t.instruction for t in tasks["heldout"]}
    assert not train & heldout
    assert len(train) == N and len(heldout) == N
    again = sample_tasks("database", "train", N, SEED)
    assert [t.to_dict() for t in again] == [t.to_dict() for t in tasks["train"]]
    assert [t.id for t in sample_tasks("database", "train", N, SEED + 1)] != [t.id for t in again]


def test_tags_and_variety(tasks: dict[str, list[Task]]) -> None:
    every = tasks["train"] + tasks["heldout"]
    tags = {tag for task in every for tag in task.tags}
    assert {"multi_step", "recovery", "single_step", "aggregate"} <= tags
    assert len({json.dumps(t.answer) for t in every}) > 25
    rng = random.Random(3)
    distinct = {suite.generate(rng).instruction for _ in range(5000)}
    assert len(distinct) > 1500  # thousands of instances across the templates


async def test_recovery_tasks_really_need_recovery() -> None:
    """The table the instruction names does not exist, and the server says which ones do."""
    rng = random.Random(5)
    recovery = [t for t in (suite.generate(rng) for _ in range(400)) if "recovery" in t.tags][:15]
    assert len(recovery) == 15
    async with mcp.Client(build_server()) as client:
        for task in recovery:
            wrong = re.search(r"the (\w+) table", task.instruction)
            assert wrong is not None, task.instruction
            right = next(real for real, names in suite.WRONG_TABLES.items() if wrong.group(1) in names)
            sql = re.sub(rf"\b{right}\b", wrong.group(1), task.reference_calls[-1].arguments["sql"], count=1)
            naive = to_result(await client.call_tool("query", {"sql": sql}))
            assert naive.is_error, sql
            assert f"no such table: {wrong.group(1)}" in naive.text
            assert right in naive.text  # the error names the real tables, so one retry can fix it


async def test_multi_step_second_call_needs_the_first() -> None:
    """The second call's arguments contain something only the first call's result reveals."""
    rng = random.Random(9)
    multi = [t for t in (suite.generate(rng) for _ in range(300)) if "multi_step" in t.tags][:20]
    assert len(multi) == 20
    async with mcp.Client(build_server()) as client:
        for task in multi:
            first, second = task.reference_calls
            result = to_result(await client.call_tool(first.name, first.arguments))
            data = result.value()
            if first.name == "describe":  # a column the instruction does not spell out
                words = set(re.findall(r"\w+", task.instruction.lower()))
                needed = [c for c in data["columns"] if c not in words]
                assert any(re.search(rf"\b{c}\b", second.arguments["sql"]) for c in needed), task.instruction
            else:  # the id (or other value) the first query returned
                assert re.search(rf"\b{data['rows'][0][0]}\b", second.arguments["sql"]), task.instruction


def test_generate_never_gives_up() -> None:
    rng = random.Random(0)
    for _ in range(2000):
        assert isinstance(suite.generate(rng), Task)
