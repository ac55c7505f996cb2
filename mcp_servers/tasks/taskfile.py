"""User task files: JSONL, one task per line, in the format of ``Task.to_dict``.

Each line is a JSON object::

    {"id": "weather-1", "instruction": "What is the temperature in Oslo?", "servers": ["weather"],
     "tools": ["get_temperature"],
     "reference_calls": [{"name": "get_temperature", "arguments": {"city": "Oslo"}}],
     "verifier": {"kind": "contains", "contains": "Oslo", "tool": "get_temperature"},
     "max_turns": 4, "tags": ["single_step"]}

Required: ``id``, ``instruction``, ``servers``, ``verifier``. Blank lines and lines starting with
``#`` are skipped. Every error names the file and the line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from mcp_servers.tasks.model import Task, TaskFormatError

MAX_TASK_FILE_BYTES = 50_000_000
MAX_LINE_CHARS = 200_000


def load_task_file(path: str | Path, *, suite: str | None = None) -> list[Task]:
    """Parse a task file; raises ``TaskFormatError`` naming the file and line of the first problem."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise TaskFormatError(f"cannot read task file {path}: {exc.strerror or exc}") from None
    if size > MAX_TASK_FILE_BYTES:
        raise TaskFormatError(f"task file {path} is larger than {MAX_TASK_FILE_BYTES} bytes")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TaskFormatError(f"task file {path} is not UTF-8: {exc.reason} at byte {exc.start}") from None
    return parse_task_lines(text.splitlines(), source=str(path), suite=suite or path.stem)


def parse_task_lines(lines: Iterable[str], *, source: str = "tasks", suite: str = "user") -> list[Task]:
    tasks: list[Task] = []
    ids: set[str] = set()
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        where = f"{source}:{number}"
        if len(stripped) > MAX_LINE_CHARS:
            raise TaskFormatError(f"{where}: line longer than {MAX_LINE_CHARS} characters")
        try:
            data = json.loads(stripped)
        except (ValueError, RecursionError) as exc:
            raise TaskFormatError(f"{where}: not valid JSON ({exc})") from None
        try:
            task = Task.from_dict(data, default_suite=suite)
        except TaskFormatError as exc:
            raise TaskFormatError(f"{where}: {exc}") from None
        if task.id in ids:
            raise TaskFormatError(f"{where}: duplicate task id {task.id!r}")
        ids.add(task.id)
        tasks.append(task)
    if not tasks:
        raise TaskFormatError(f"{source}: no tasks found")
    return tasks


def write_task_file(tasks: Iterable[Task], path: str | Path) -> None:
    with Path(path).open("w", encoding="utf-8") as handle:
        for task in tasks:
            handle.write(json.dumps(task.to_dict(), ensure_ascii=False) + "\n")
