"""The command line as a user runs it: the installed console script, its output and exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO
from workbench.cli import main

EXE = shutil.which("qwen-workbench")


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    command = [EXE, *args] if EXE else [sys.executable, "-m", "workbench", *args]
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # so the test's own server module imports
    return subprocess.run(command, capture_output=True, text=True, input=stdin, timeout=120, env=env)


def test_tools_list_json_has_every_bundled_server_and_schema():
    result = run("tools", "list", "--json")
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert set(listing) == {"math", "search", "database", "data"}
    calculate = next(t for t in listing["math"] if t["name"] == "calculate")
    assert calculate["input_schema"]["required"] == ["expression"]


def test_tools_call_success_tool_error_and_usage_errors(capsys):
    assert main(["tools", "call", "math", "calculate", '{"expression": "(14 + 9) * 3"}']) == 0
    assert capsys.readouterr().out.strip() == "69"
    assert main(["tools", "call", "math", "calculate", '{"expression": "9**9**9"}']) == 1
    assert "too large" in capsys.readouterr().err
    for argv, message in [
        (["tools", "call", "math", "calculate", "{oops"], "not valid JSON"),
        (["tools", "call", "math", "calculate", "[1]"], "must be a JSON object"),
        (["tools", "call", "nope", "x", "{}"], "unknown server 'nope'"),
        (["tools", "call", "math", "nope", "{}"], "has no tool 'nope'"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1


def test_tools_call_over_stdio_and_an_external_server(flaky_config, capsys):
    assert main(["tools", "call", "--transport", "stdio", "database", "list_tables", "{}"]) == 0
    assert "orders" in capsys.readouterr().out
    assert main(["tools", "call", "--servers-config", str(flaky_config), "flaky", "echo", '{"text": "hi"}']) == 0
    assert capsys.readouterr().out.strip() == "hi"


def test_unreachable_external_server_exits_3(tmp_path, capsys):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"mcpServers": {"ghost": {"command": "/nonexistent/ghost"}}}))
    assert main(["tools", "list", "--servers-config", str(config), "--server", "ghost"]) == 3
    assert "ghost" in capsys.readouterr().err


def test_tasks_sample_checks_reference_calls(capsys):
    assert main(["tasks", "sample", "all", "--split", "heldout", "-n", "6", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 6 and all(line["reference_passes"] for line in lines)
    assert main(["tasks", "sample", "maths"]) == 2


def test_tasks_sample_reports_a_task_file_whose_oracle_fails(tmp_path, flaky_inprocess_config, capsys):
    good = {"id": "ok", "instruction": "Echo hi.", "servers": ["flaky"],
            "reference_calls": [{"name": "echo", "arguments": {"text": "hi"}}],
            "verifier": {"kind": "value", "equals": "hi"}}
    bad = {**good, "id": "bad", "verifier": {"kind": "value", "equals": "bye"}}
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    code = main(["tasks", "sample", str(path), "--servers-config", str(flaky_inprocess_config)])
    out = capsys.readouterr().out
    assert code == 1 and "1 of 2 tasks" in out
    path.write_text("{broken\n")
    assert main(["tasks", "sample", str(path)]) == 2


@pytest.mark.parametrize(
    "turn, status",
    [
        ('<tool_call>{"name": "echo", "arguments": {"text": "hi"}}</tool_call>', "success"),
        ('<tool_call>{"name": "echo", "arguments": {"text": "no"}}</tool_call>', "tool_execution"),
        ('<tool_call>{"name": "echo", "arguments": {}}</tool_call>', "tool_error"),
        ('<tool_call>{"name": "echo", "arguments": {</tool_call>', "invalid_json"),
        ("no call", "structural_fail"),
    ],
)
def test_play_reads_turns_and_shows_status(tmp_path, flaky_inprocess_config, turn, status):
    task = {"id": "ok", "instruction": "Echo hi.", "servers": ["flaky"], "tools": ["echo"],
            "reference_calls": [{"name": "echo", "arguments": {"text": "hi"}}],
            "verifier": {"kind": "value", "equals": "hi"}}
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps(task) + "\n")
    result = run("play", "--task-file", str(path), "--servers-config", str(flaky_inprocess_config),
                 stdin=f"{turn}\n:quit\n")
    assert result.returncode == 0, result.stderr
    assert "<|im_start|>system" in result.stdout and '"name": "echo"' in result.stdout
    assert f"status: {status}" in result.stdout
