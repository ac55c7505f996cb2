"""Export episodes for supervised fine-tuning, and metrics for other tools (torch-free).

Episodes become chat examples in the OpenAI / Hugging Face tool-calling format::

    {"messages": [
        {"role": "system", "content": "You solve tasks by calling tools. ..."},
        {"role": "user", "content": "What is (14 + 9) * 3?"},
        {"role": "assistant", "content": "",
         "tool_calls": [{"id": "call_0_0", "type": "function",
                         "function": {"name": "calculate", "arguments": "{\\"expression\\": \\"(14 + 9) * 3\\"}"}}]},
        {"role": "tool", "tool_call_id": "call_0_0", "name": "calculate", "content": "69"}],
     "tools": "[{\\"type\\": \\"function\\", \\"function\\": {...}}]",
     "episode_id": 12, "task_id": "math-...", "outcome": "success", "total_reward": 10.0, ...}

Two fields are JSON *strings* on purpose: a tool call's ``arguments`` (as in OpenAI's API) and the
example's ``tools``. Apache Arrow, under ``datasets``, gives a column one type, so dicts with
different keys would be merged into one struct and come back padded with nulls, changing what the
chat template renders. Chat templates (Qwen3's included) print string arguments as they are, and
TRL's SFTTrainer parses a string ``tools`` column. Decode ``tools`` with ``json.loads`` before
``tokenizer.apply_chat_template(messages, tools=...)``.

A turn whose call could not be parsed keeps the model's text as the assistant content, with no
``tool_calls``, followed by the environment's feedback as the tool message: the example is the
episode as the model lived it. Filter with ``success=true`` (or a flag) for clean SFT data.

The tool schemas are the ones the environment offered: the task's tools, or every tool of its
servers, in compact form, read from the servers themselves (the run's ``servers_config`` included).

Metrics go to CSV (one row per iteration, held-out evaluations as extra columns) or to TensorBoard
event files (``trainer.tb_events``).
"""

from __future__ import annotations

import asyncio
import csv
import json
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.parsing import split_thinking
from trainer.store import ITERATION_METRICS, MAX_PAGE, STATUSES, EpisodeFilter, EpisodeRow, RunReader

EPISODE_FORMATS = ("jsonl", "hf")
METRIC_FORMATS = ("csv", "tensorboard")
SYSTEM_PROMPT_FALLBACK = "You solve tasks by calling tools. Reply with one tool call."
_CALL_BLOCK = re.compile(r"<tool_call>.*?</tool_call>", re.DOTALL)
_PAGE = 500


class ExportError(ValueError):
    """An export that cannot be done; the message is one line saying what to do."""


@dataclass(frozen=True)
class ExportResult:
    """Where an export went and how much it holds."""

    path: Path
    count: int
    format: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "count": self.count, "format": self.format}


# --------------------------------------------------------------------------------------------
# Episodes as chat examples


def _system_prompt() -> str:
    """The environment's system prompt (imported lazily: trainer.env loads gymnasium and mcp)."""
    try:
        from trainer.env import SYSTEM_PROMPT
    except ImportError:  # pragma: no cover - the env is part of this package
        return SYSTEM_PROMPT_FALLBACK
    return SYSTEM_PROMPT


def turn_messages(turn: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One stored turn as an assistant message and the tool message(s) that answered it."""
    index = int(turn.get("index") or 0)
    thinking, visible = split_thinking(str(turn.get("raw_text") or "").replace("<|im_end|>", ""))
    calls = [call for call in turn.get("calls") or [] if isinstance(call, Mapping)]
    assistant: dict[str, Any] = {"role": "assistant"}
    if calls:  # the turn parsed: the calls become tool_calls, the text around them the content
        assistant["content"] = _CALL_BLOCK.sub("", visible).strip()
        ids = [f"call_{index}_{k}" for k in range(len(calls))]
        assistant["tool_calls"] = [
            {"id": call_id, "type": "function",
             "function": {"name": str(call.get("name")),
                          "arguments": json.dumps(call.get("arguments") or {}, ensure_ascii=False)}}
            for call_id, call in zip(ids, calls, strict=True)
        ]
        tools = [{"role": "tool", "tool_call_id": call_id, "name": str(call.get("name")),
                  "content": str(call.get("response") or "")} for call_id, call in zip(ids, calls, strict=True)]
    else:  # no call could be taken: what the model wrote, verbatim, and the environment's feedback
        assistant["content"] = visible.lstrip("\n") if thinking else visible
        tools = [{"role": "tool", "content": str(turn.get("feedback") or "")}]
    if thinking:
        assistant["reasoning_content"] = thinking
    return [assistant, *tools]


def episode_messages(record: Mapping[str, Any], system_prompt: str | None = None) -> list[dict[str, Any]]:
    """The whole episode as chat messages: system, the task's instruction, then every turn."""
    task = record.get("task") if isinstance(record.get("task"), Mapping) else {}
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system_prompt or _system_prompt()},
        {"role": "user", "content": str(task.get("instruction", ""))},
    ]
    for turn in record.get("turns") or []:
        if isinstance(turn, Mapping):
            messages.extend(turn_messages(turn))
    return messages


def _tool_key(task: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(task.get("servers") or ()), tuple(task.get("tools") or ())


def tool_schemas(
    tasks: Sequence[Mapping[str, Any]], servers_config: str | None = None
) -> dict[tuple[tuple[str, ...], tuple[str, ...]], list[dict[str, Any]]]:
    """The schemas the environment offered each kind of task, keyed by (servers, tools).

    The servers are started once (in-process for the bundled ones) and asked for their tools.
    """
    from mcp_servers.config import ConfigError, server_specs
    from mcp_servers.hub import HubError, ToolHub

    keys = {_tool_key(task) for task in tasks}
    names = sorted({server for servers, _ in keys for server in servers})
    if not names:
        return {key: [] for key in keys}

    async def collect() -> dict[tuple[tuple[str, ...], tuple[str, ...]], list[dict[str, Any]]]:
        async with ToolHub(server_specs(names, config_path=servers_config)) as hub:
            return {
                (servers, tools): hub.schemas(list(tools) if tools else hub.tools_of(servers), compact=True)
                for servers, tools in keys
            }

    try:
        return asyncio.run(collect())
    except (ConfigError, HubError, OSError) as exc:
        raise ExportError(f"cannot read the tool schemas from the servers {', '.join(names)}: {exc}") from exc


def episode_example(
    record: Mapping[str, Any],
    row: EpisodeRow,
    tools: list[dict[str, Any]],
    flags: Sequence[str] = (),
    system_prompt: str | None = None,
) -> dict[str, Any]:
    """One SFT example: messages, tools (a JSON string, see the module docstring) and metadata."""
    return {
        "messages": episode_messages(record, system_prompt),
        "tools": json.dumps(tools, ensure_ascii=False),
        "episode_id": row.id,
        "iteration": row.iteration,
        "phase": row.phase,
        "task_id": row.task_id,
        "suite": row.suite,
        "split": row.split,
        "seed": row.seed,
        "outcome": row.outcome,
        "success": row.success,
        "total_reward": row.total_reward,
        "flags": list(flags),
    }


def _rows(reader: RunReader, filters: EpisodeFilter | None, limit: int | None) -> Iterator[EpisodeRow]:
    """Matching episode rows, oldest first, a page at a time."""
    offset, page = 0, min(_PAGE, MAX_PAGE)
    while limit is None or offset < limit:
        size = page if limit is None else min(page, limit - offset)
        rows = reader.episodes(filters, limit=size, offset=offset, order="oldest")
        yield from rows
        if len(rows) < size:
            return
        offset += len(rows)


def episode_examples(
    run_dir: str | Path,
    filters: EpisodeFilter | None = None,
    *,
    servers_config: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Every matching episode of a run as an SFT example (see :func:`episode_example`).

    ``servers_config`` defaults to the run's own (its config's ``task.servers_config``).
    """
    with RunReader(run_dir) as reader:
        config = reader.run_info().config
        if servers_config is None:
            servers_config = (config.get("task") or {}).get("servers_config")
        flags: dict[int, list[str]] = {}
        for flag in reader.flags():
            flags.setdefault(flag.episode_id, []).append(flag.kind)
        pairs = []
        for row in _rows(reader, filters, limit):
            record = reader.episode(row.id)
            record.pop("_row", None)
            pairs.append((row, record))
    tasks = [record.get("task") or {} for _, record in pairs]
    schemas = tool_schemas(tasks, servers_config)
    system_prompt = _system_prompt()
    return [
        episode_example(record, row, schemas[_tool_key(record.get("task") or {})], flags.get(row.id, ()),
                        system_prompt)
        for row, record in pairs
    ]


def export_episodes(
    run_dir: str | Path,
    out: str | Path,
    *,
    format: str = "jsonl",
    filters: EpisodeFilter | None = None,
    servers_config: str | None = None,
    limit: int | None = None,
) -> ExportResult:
    """Write matching episodes as JSONL (one example a line) or as a ``datasets`` folder (``hf``)."""
    if format not in EPISODE_FORMATS:
        raise ExportError(f"unknown episode format {format!r}; choose one of {', '.join(EPISODE_FORMATS)}")
    examples = episode_examples(run_dir, filters, servers_config=servers_config, limit=limit)
    if not examples:
        raise ExportError(f"no episodes of {Path(run_dir).name} match the filter; nothing to export")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if format == "jsonl":
        _write_atomically(out, "".join(json.dumps(example, ensure_ascii=False) + "\n" for example in examples))
    else:
        from datasets import Dataset

        Dataset.from_list(examples).save_to_disk(str(out))
    return ExportResult(out, len(examples), format)


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# Metrics


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def metric_rows(run_dir: str | Path) -> tuple[list[str], list[dict[str, Any]]]:
    """Per-iteration metrics with held-out evaluations as columns: (column names, rows by iteration).

    Eval columns are ``eval_<suite>_<split>_success_rate`` and ``..._mean_return``, on the row of the
    iteration the evaluation ran at.
    """
    with RunReader(run_dir) as reader:
        iterations = reader.iterations()
        evals = reader.evals()
    rows: dict[int, dict[str, Any]] = {}
    extra: set[str] = set()
    known = {"iteration", "time", *ITERATION_METRICS}
    for item in iterations:
        rows[int(item["iteration"])] = dict(item)
        extra.update(key for key, value in item.items() if key not in known and _finite(value) is not None)
    eval_columns: list[str] = []
    for row in evals:
        prefix = f"eval_{row.suite}_{row.split}"
        for name, value in (("success_rate", row.success_rate), ("mean_return", row.mean_return)):
            column = f"{prefix}_{name}"
            if column not in eval_columns:
                eval_columns.append(column)
            rows.setdefault(row.iteration, {"iteration": row.iteration})[column] = value
    columns = ["iteration", "time", *ITERATION_METRICS, *sorted(extra), *eval_columns]
    return columns, [rows[key] for key in sorted(rows)]


def export_metrics(run_dir: str | Path, out: str | Path, *, format: str = "csv") -> ExportResult:
    """Write per-iteration metrics to a CSV file, or TensorBoard event files under the folder ``out``."""
    if format not in METRIC_FORMATS:
        raise ExportError(f"unknown metrics format {format!r}; choose one of {', '.join(METRIC_FORMATS)}")
    out = Path(out)
    if format == "csv":
        columns, rows = metric_rows(run_dir)
        out.parent.mkdir(parents=True, exist_ok=True)
        temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        try:
            with temporary.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
                writer.writeheader()
                writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
            temporary.replace(out)
        finally:
            temporary.unlink(missing_ok=True)
        return ExportResult(out, len(rows), format)
    return ExportResult(*_write_tensorboard(run_dir, out), format)


def _write_tensorboard(run_dir: str | Path, out: Path) -> tuple[Path, int]:
    """Training metrics as ``train/<name>``, evaluations as ``eval/<suite>/<split>/<name>``."""
    from trainer.tb_events import ScalarWriter

    with RunReader(run_dir) as reader:
        iterations = reader.iterations()
        evals = reader.evals()
    count = 0
    with ScalarWriter(out) as writer:
        for item in iterations:
            scalars = [(f"train/{key}", number) for key, raw in item.items()
                       if key not in ("iteration", "time") and (number := _finite(raw)) is not None]
            writer.add(int(item["iteration"]), scalars, wall_time=item.get("time"))
            count += 1
        for row in evals:
            base = f"eval/{row.suite}/{row.split}"
            values = [("success_rate", row.success_rate), ("mean_return", row.mean_return),
                      *((f"share_{status}", row.shares.get(status)) for status in STATUSES)]
            scalars = [(f"{base}/{name}", v) for name, value in values if (v := _finite(value)) is not None]
            writer.add(row.iteration, scalars, wall_time=row.created_at)
    return out, count
