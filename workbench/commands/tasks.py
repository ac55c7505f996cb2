"""`qwen-workbench tasks sample`: show generated tasks and check their oracle against the verifier."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from mcp_servers.config import ConfigError, server_specs
from mcp_servers.hub import HubError, ToolHub
from mcp_servers.tasks.model import Task, TaskFormatError
from mcp_servers.tasks.oracle import OracleReport, play_reference
from mcp_servers.tasks.suites import SPLITS, UnknownSuiteError, sample_tasks, suite_names
from mcp_servers.tasks.taskfile import load_task_file
from workbench.commands.exits import EXIT_OK, EXIT_TOOL_ERROR, EXIT_UNREACHABLE, EXIT_USAGE, fail


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    tasks = subparsers.add_parser("tasks", help="sample tasks from a suite or a task file")
    actions = tasks.add_subparsers(dest="tasks_command", required=True)
    sample = actions.add_parser(
        "sample", help="show tasks with their reference calls, checked by their verifier"
    )
    sample.add_argument("suite", help=f"a suite ({', '.join(suite_names())}) or a .jsonl task file")
    sample.add_argument("--split", choices=SPLITS, default="train")
    sample.add_argument("-n", type=int, default=5, help="how many tasks")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--json", action="store_true", help="one JSON object per task")
    sample.add_argument("--no-check", action="store_true", help="do not run the reference calls")
    sample.add_argument("--servers-config", help="an mcpServers JSON file adding external servers")
    sample.set_defaults(run=run_sample)


def load_tasks(suite: str, split: str, n: int, seed: int) -> list[Task]:
    """Tasks from a suite name, or the first ``n`` of a task file."""
    if suite.endswith(".jsonl") or Path(suite).is_file():
        return load_task_file(suite)[:n]
    return sample_tasks(suite, split, n, seed)


def run_sample(args: argparse.Namespace) -> int:
    if args.n < 1:
        return fail("-n must be at least 1", EXIT_USAGE)
    try:
        tasks = load_tasks(args.suite, args.split, args.n, args.seed)
        servers = sorted({name for task in tasks for name in task.servers})
        specs = server_specs(servers, config_path=args.servers_config)
    except (UnknownSuiteError, TaskFormatError, ConfigError) as exc:
        return fail(str(exc), EXIT_USAGE)
    reports: list[OracleReport | None] = [None] * len(tasks)
    if not args.no_check:
        try:
            reports = asyncio.run(_check_all(tasks, specs))
        except HubError as exc:
            return fail(str(exc), EXIT_UNREACHABLE)
    for task, report in zip(tasks, reports, strict=True):
        if args.json:
            record = task.to_dict()
            if report is not None:
                record["reference_passes"] = report.passed
            print(json.dumps(record, ensure_ascii=False))
        else:
            _print_task(task, report)
    failed = sum(1 for report in reports if report is not None and not report.passed)
    if failed and not args.json:
        print(f"{failed} of {len(tasks)} tasks: reference calls did not pass their verifier")
    return EXIT_TOOL_ERROR if failed else EXIT_OK


async def _check_all(tasks: list[Task], specs) -> list[OracleReport]:
    async with ToolHub(specs) as hub:
        return [await play_reference(task, hub) for task in tasks]


def _print_task(task: Task, report: OracleReport | None) -> None:
    tags = f" [{', '.join(task.tags)}]" if task.tags else ""
    print(f"{task.id}{tags}")
    print(f"  {task.instruction}")
    results = report.results if report is not None else [None] * len(task.reference_calls)
    for call, result in zip(task.reference_calls, results, strict=True):
        print(f"  -> {call.name} {json.dumps(call.arguments, ensure_ascii=False)}")
        if result is not None:
            mark = "error: " if result.is_error else ""
            print(f"     {mark}{result.text[:160]}")
    if report is not None:
        print(f"  verifier: {'passes' if report.passed else 'FAILS'}")
