"""The search suite: every sampled task is solved by its reference calls on a real server, and only then."""

from __future__ import annotations

import json
import random
import re
from typing import Any

import mcp
import pytest

from mcp_servers.search import build_server, load_pages
from mcp_servers.tasks.model import Task, ToolCall, ToolResult
from mcp_servers.tasks.search import catalog, generate, wrong_ids
from mcp_servers.tasks.suites import sample_tasks, split_of

SPLITS = ("train", "heldout")
N = 40
SEED = 11


def to_result(result: Any) -> ToolResult:
    text = "\n".join(block.text for block in result.content if block.type == "text")
    return ToolResult(text=text, structured=result.structured_content, is_error=result.is_error)


async def play(task: Task, extra: list[ToolCall] = ()) -> list[tuple[ToolCall, ToolResult, bool]]:
    """Run ``extra`` then the reference calls on a fresh server; each call with its result and verdict."""
    async with mcp.Client(build_server()) as client:

        async def call_tool(call: ToolCall) -> ToolResult:
            return to_result(await client.call_tool(call.name, call.arguments))

        played = []
        for call in [*extra, *task.reference_calls]:
            result = await call_tool(call)
            played.append((call, result, await task.verifier.holds(call, result, call_tool)))
        return played


@pytest.fixture(scope="module", params=SPLITS)
def split_tasks(request: pytest.FixtureRequest) -> tuple[str, list[Task]]:
    return request.param, sample_tasks("search", request.param, N, SEED)


async def test_reference_calls_solve_each_task_only_at_the_end(split_tasks: tuple[str, list[Task]]) -> None:
    _, tasks = split_tasks
    for task in tasks:
        played = await play(task)
        assert all(not result.is_error for _, result, _ in played), (task.instruction, played)
        assert played[-1][2], (task.instruction, played[-1][1].text)
        assert not any(ok for _, _, ok in played[:-1]), task.instruction


async def test_recovery_tasks_offer_an_id_that_fails(split_tasks: tuple[str, list[Task]]) -> None:
    _, tasks = split_tasks
    recoveries = [t for t in tasks if "recovery" in t.tags]
    assert recoveries
    for task in recoveries:
        guess = re.search(r"page '([^']+)'", task.instruction).group(1)
        played = await play(task, [ToolCall("fetch", {"id": guess})])
        call, result, ok = played[0]
        assert result.is_error and not ok, (guess, result.text)
        assert "search(" in result.text
        assert played[-1][2]


async def test_other_pages_never_satisfy_an_answer(split_tasks: tuple[str, list[Task]]) -> None:
    """A fetch of a wrong page fails the verifier, so success means the right page was read."""
    _, tasks = split_tasks
    pages = load_pages()
    rng = random.Random(3)
    for task in tasks:
        target = task.reference_calls[-1]
        others = [ToolCall("fetch", {"id": p.id}) for p in rng.sample(pages, 15) if p.id != target.arguments.get("id")]
        if target.name == "fetch":
            # The same page reached through search instead: the search result must not count.
            others.append(ToolCall("search", {"query": task.instruction}))
        played = await play(task, others)
        assert not any(ok for _, _, ok in played[: len(others)]), task.instruction


def test_tasks_round_trip_and_are_well_formed(split_tasks: tuple[str, list[Task]]) -> None:
    split, tasks = split_tasks
    assert len(tasks) == N and len({t.id for t in tasks}) == N
    for task in tasks:
        assert Task.from_dict(json.loads(json.dumps(task.to_dict()))) == task
        assert task.suite == "search" and task.servers == ("search",)
        assert split_of(task.instruction) == split
        assert len(task.instruction.split()) < 20, task.instruction
        assert task.max_turns >= len(task.reference_calls) + 1
        assert {c.name for c in task.reference_calls} <= {"search", "fetch"}
        if task.verifier.kind == "contains":
            assert task.verifier.contains.lower() not in task.instruction.lower()


def test_tags_cover_multi_step_and_recovery(split_tasks: tuple[str, list[Task]]) -> None:
    _, tasks = split_tasks
    tags = [tag for task in tasks for tag in task.tags]
    assert "multi_step" in tags and "recovery" in tags
    assert any(not task.tags for task in tasks)
    for task in tasks:
        if "multi_step" in task.tags:
            first, *rest = task.reference_calls
            assert first.name == "search" and rest, task.instruction


def test_multi_step_instructions_name_the_entity_not_the_id() -> None:
    for task in sample_tasks("search", "train", 60, SEED):
        if "multi_step" in task.tags or "recovery" in task.tags:
            title = task.reference_calls[0].arguments["query"]
            assert title in task.instruction
        if "multi_step" in task.tags:
            assert all(f"'{c.arguments['id']}'" not in task.instruction for c in task.reference_calls if c.name == "fetch")


def test_splits_are_disjoint_and_sampling_is_repeatable() -> None:
    train = sample_tasks("search", "train", N, SEED)
    heldout = sample_tasks("search", "heldout", N, SEED)
    assert not {t.id for t in train} & {t.id for t in heldout}
    assert not {t.instruction for t in train} & {t.instruction for t in heldout}
    assert [t.to_dict() for t in sample_tasks("search", "train", N, SEED)] == [t.to_dict() for t in train]


def test_generator_has_thousands_of_instances() -> None:
    rng = random.Random(0)
    instructions = {generate(rng).instruction for _ in range(4000)}
    assert len(instructions) > 2500


def test_wrong_ids_are_never_real_ids() -> None:
    cat = catalog()
    for page in cat.pages:
        guesses = wrong_ids(page, cat.by_id)
        assert guesses and not set(guesses) & set(cat.by_id)


def test_askable_answers_occur_on_one_page_only() -> None:
    cat = catalog()
    assert len(cat.facts) > 500
    for fact in cat.facts[::5]:
        holders = [p.id for p in cat.pages if str(fact.value).lower() in p.text.lower()]
        assert holders == [fact.page.id], (fact, holders)
