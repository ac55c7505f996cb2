"""Declarative verifiers, JSON paths, task (de)serialisation, task files and server configs."""

from __future__ import annotations

import json

import pytest

from mcp_servers.config import ConfigError, load_server_config, parse_server_config, server_specs
from mcp_servers.tasks.model import (
    Task,
    TaskFormatError,
    ToolCall,
    ToolResult,
    Verifier,
    select,
    values_match,
)
from mcp_servers.tasks.taskfile import load_task_file, parse_task_lines, write_task_file

OK = ToolResult(text='{"rows": [[3, "x"]]}', structured={"rows": [[3, "x"]]})


def test_value_verifier_reads_paths_and_tolerates_float_noise():
    verifier = Verifier("value", equals=3, path="$.rows[0][0]")
    assert verifier.check(ToolCall("query"), OK)
    assert not Verifier("value", equals=4, path="$.rows[0][0]").check(ToolCall("query"), OK)
    assert Verifier("value", equals=0.3).check(
        ToolCall("calc"), ToolResult("0.30000000000000004", structured={"result": 0.1 + 0.2})
    )


def test_verifier_never_accepts_an_error_or_another_tool():
    verifier = Verifier("contains", contains="x", tool="query")
    assert verifier.check(ToolCall("query"), OK)
    assert not verifier.check(ToolCall("other"), OK)
    assert not verifier.check(ToolCall("query"), ToolResult("x", is_error=True))


def test_call_verifier_matches_argument_subset():
    verifier = Verifier("call", name="add", arguments={"a": 2})
    assert verifier.check(ToolCall("add", {"a": 2.0, "b": 1}), OK)
    assert not verifier.check(ToolCall("add", {"a": 3}), OK)


def test_missing_path_is_a_miss_not_a_crash():
    assert not Verifier("value", equals=1, path="$.nope[3]").check(ToolCall("q"), OK)


@pytest.mark.parametrize("path", ["rows", "$.", "$[x]", "$[0", "$.a..b"])
def test_bad_paths_are_refused(path):
    with pytest.raises(TaskFormatError):
        Verifier("value", equals=1, path=path)


def test_select_and_match_helpers():
    assert select({"a": [{"b": 5}]}, '$.a[0]["b"]') == 5
    assert values_match(" Hello  World ", "hello world")
    assert not values_match(float("nan"), 1.0)
    assert not values_match(True, 1)


async def test_probe_verifier_calls_the_probe():
    seen = []

    async def call_tool(call: ToolCall) -> ToolResult:
        seen.append(call)
        return ToolResult("2", structured={"result": 2})

    verifier = Verifier("probe", probe=ToolCall("count", {}), expect=Verifier("value", equals=2))
    assert await verifier.holds(ToolCall("save"), ToolResult("ok"), call_tool)
    assert seen == [ToolCall("count", {})]
    assert not await verifier.holds(ToolCall("save"), ToolResult("bad", is_error=True), call_tool)


def make_task(**overrides) -> dict:
    data = {
        "id": "t1",
        "instruction": "Echo hi.",
        "servers": ["flaky"],
        "tools": ["echo"],
        "reference_calls": [{"name": "echo", "arguments": {"text": "hi"}}],
        "verifier": {"kind": "value", "equals": "hi", "tool": "echo"},
    }
    data.update(overrides)
    return data


def test_task_round_trip():
    task = Task.from_dict(make_task(tags=["x"], answer="hi"))
    assert Task.from_dict(json.loads(json.dumps(task.to_dict()))) == task


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"servers": []}, "servers"),
        ({"instruction": " "}, "instruction"),
        ({"verifier": {"kind": "magic"}}, "unknown verifier kind"),
        ({"verifier": {"kind": "value"}}, "equals"),
        ({"verifier": {"kind": "value", "equals": 1, "bogus": 2}}, "bogus"),
        ({"max_turns": 10_000}, "max_turns"),
        ({"reference_calls": [{"name": "echo", "arguments": [1]}]}, "arguments"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_tasks_name_their_problem(overrides, message):
    with pytest.raises(TaskFormatError, match=message):
        Task.from_dict(make_task(**overrides))


def test_task_file_round_trip_and_line_numbers(tmp_path):
    path = tmp_path / "mine.jsonl"
    write_task_file([Task.from_dict(make_task())], path)
    assert load_task_file(path)[0].id == "t1"
    with pytest.raises(TaskFormatError, match=r":3: not valid JSON"):
        parse_task_lines(["# comment", json.dumps(make_task()), "{oops"], source="f")
    with pytest.raises(TaskFormatError, match="duplicate task id"):
        parse_task_lines([json.dumps(make_task()), json.dumps(make_task())])
    (tmp_path / "bin.jsonl").write_bytes(b"\xff\xfe")
    with pytest.raises(TaskFormatError, match="not UTF-8"):
        load_task_file(tmp_path / "bin.jsonl")


def test_server_config_validation(tmp_path):
    specs = parse_server_config(
        {
            "mcpServers": {
                "w": {"command": "python", "args": ["-m", "w"]},
                "r": {"url": "http://127.0.0.1:9/mcp"},
            }
        }
    )
    assert [(s.name, s.transport) for s in specs] == [("w", "stdio"), ("r", "http")]
    bad = [
        {"servers": {}},
        {"mcpServers": {"../x": {"command": "a"}}},
        {"mcpServers": {"math": {"command": "a"}}},
        {"mcpServers": {"x": {"command": "a", "url": "http://h"}}},
        {"mcpServers": {"x": {"command": "a", "args": "not a list"}}},
        {"mcpServers": {"x": {"command": "a", "env": {"K": 1}}}},
        {"mcpServers": {"x": {"url": "file:///etc/passwd"}}},
    ]
    for data in bad:
        with pytest.raises(ConfigError):
            parse_server_config(data)
    (tmp_path / "c.json").write_text("{nope")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_server_config(tmp_path / "c.json")
    with pytest.raises(ConfigError, match="cannot read"):
        load_server_config(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="unknown server 'nope'"):
        server_specs(["nope"])
