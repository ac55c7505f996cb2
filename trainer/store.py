"""The run store: one SQLite database per run, the bus between the trainer and every viewer.

A run is a folder ``runs/<run>/`` holding ``config.json`` (a readable copy of the config, which is
also kept in the database), ``run.db`` (SQLite in WAL mode), ``checkpoints/`` and ``trainer.log``.

Who writes what, and why it cannot jam:

- The trainer process is the only writer of results (:class:`RunStore`). Its transactions are short
  (one batch of episodes, one iteration row) so the database is never held for long.
- Viewers (:class:`RunReader`, :func:`list_runs`) open the file read-only (``mode=ro``). In WAL mode a
  reader sees the last committed state and never blocks the writer, nor is blocked by it.
- Anyone may queue a command (:func:`send_command`): the UI's only write is one short INSERT into
  ``commands``; the trainer takes pending commands between steps and records their result.
- A crash of the writer (even ``kill -9`` mid-transaction) loses only the transaction in flight:
  every committed episode stays readable. ``synchronous=NORMAL`` keeps that guarantee for process
  crashes (a power cut may lose the last few commits, never consistency).

This module imports only the standard library: the Textual process imports it, and the UI must
never pull in torch.

Schema (version :data:`SCHEMA_VERSION`; ``meta.schema_version`` records it):

``meta(key, value)``
    ``schema_version``. A newer version than this code knows is refused with a clear error; an
    older one is upgraded by the functions in :data:`MIGRATIONS` when a writer opens it.
``run`` (exactly one row, ``id = 1``)
    name, created_at, config (JSON), model, state (created/running/paused/stopped/crashed/finished),
    pid, host, heartbeat_at, heartbeat_interval_s, started_at, ended_at, error. The trainer refreshes
    ``heartbeat_at``; :func:`effective_state` turns a "running" run whose heartbeat went stale or whose
    pid is dead into "crashed".
``iterations`` (one row per PPO iteration, keyed by ``iteration``)
    time plus the columns in :data:`ITERATION_METRICS` (mean_return, success_rate, one
    ``share_<status>`` column per turn status, kl, losses, timings, peak_gpu_mem_mb, lr, kl_coef...)
    and ``extra`` (JSON) for any other metric.
``episodes`` (light, indexed columns for lists and filters)
    id, iteration, phase (train/eval/chat), task_id, suite, split, seed, outcome, final_status (the
    last turn's status), statuses (",a,b," every turn status, for "any turn had X"), total_reward,
    n_turns, success, created_at, instruction, search_text (casefolded text for search).
``episode_records(episode_id, record)``
    The full ``EpisodeRecord.to_dict()`` JSON, in its own table so list queries and table scans
    never touch it; fetched one at a time by :meth:`RunReader.episode`.
``turn_tokens(episode_id, turn_index, ...)``
    token_ids (int32), logprobs, ref_logprobs, "values", advantages, returns (float32), each a
    little-endian BLOB (see :func:`encode_ints` / :func:`encode_floats`). Never read by list queries.
``tool_stats(iteration, tool, calls, errors, latency_s)``
    Per iteration and tool; error rate and mean latency derive (:meth:`RunReader.tool_health`).
``checkpoints(id, iteration, path, created_at, heldout_success, is_best, kept)``
    At most one row has ``is_best = 1``; ``kept = 0`` once rotation deleted the files.
``evals(id, iteration, suite, split, n, success_rate, mean_return, share_<status>..., created_at, extra)``
``commands(id, kind, payload, created_at, status, result, started_at, done_at)``
    kind in :data:`COMMAND_KINDS`; status pending -> running -> done | failed.
``flags(episode_id, kind, note, created_at)`` (version 2)
    A person's verdict on an episode (:data:`FLAG_KINDS`: good example, bad example, bug), at most
    one per episode and kind. Written by viewers through :class:`RunAnnotator` (:func:`add_flag`).
``comparisons(id, created_at, labels, suite, split, n, seed, result)`` (version 2)
    A side-by-side evaluation of checkpoints; its episodes are stored with phase ``compare``.

Version 2 also lets ``episodes.phase`` be ``compare`` (episodes a forensics command played).

Viewers that annotate (flags, comparisons) write through :class:`RunAnnotator`: it never claims
the run (pid and heartbeat stay the trainer's), and each write is one short ``BEGIN IMMEDIATE``
transaction that waits up to :data:`WRITER_BUSY_S` for the trainer's, so both can write at once.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import sqlite3
import sys
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 2
DB_NAME = "run.db"
CONFIG_NAME = "config.json"
LOG_NAME = "trainer.log"
CHECKPOINTS_DIR = "checkpoints"

RUN_STATES = ("created", "running", "paused", "stopped", "crashed", "finished")
LIVE_STATES = ("running", "paused")  # states that need a live trainer behind them
PHASES = ("train", "eval", "chat", "compare")
FLAG_KINDS = ("good", "bad", "bug")
STATUSES = ("success", "tool_execution", "tool_error", "invalid_json", "structural_fail")
COMMAND_KINDS = ("pause", "resume", "stop", "checkpoint", "eval", "chat")
COMMAND_STATUSES = ("pending", "running", "done", "failed")
EPISODE_ORDERS = {
    "newest": "id DESC",
    "oldest": "id ASC",
    "best": "total_reward DESC, id DESC",
    "worst": "total_reward ASC, id DESC",
}
SHARE_COLUMNS = tuple(f"share_{status}" for status in STATUSES)
ITERATION_METRICS = (
    "mean_return",
    "success_rate",
    *SHARE_COLUMNS,
    "kl",
    "policy_loss",
    "value_loss",
    "entropy",
    "clip_fraction",
    "explained_variance",
    "grad_norm",
    "tokens_per_s",
    "episodes_per_s",
    "step_time_s",
    "rollout_time_s",
    "ref_value_time_s",
    "update_time_s",
    "peak_gpu_mem_mb",
    "lr",
    "kl_coef",
)
TOKEN_FIELDS = ("logprobs", "ref_logprobs", "values", "advantages", "returns")

DEFAULT_HEARTBEAT_S = 5.0
MIN_STALE_S = 15.0  # a heartbeat older than max(this, 4 intervals) means the trainer is gone
WRITER_BUSY_S = 10.0
READER_BUSY_S = 2.0
SEARCH_TEXT_MAX = 3000
MAX_PAGE = 10_000


class StoreError(Exception):
    """A run folder or database that cannot be used, with a one-line reason a person can act on."""


class CommandTimeout(StoreError):
    """A command was not finished by the trainer within the time waited."""


# --------------------------------------------------------------------------------------------
# Schema


_SCHEMA_V1 = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE run (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        name TEXT NOT NULL, created_at REAL NOT NULL, config TEXT NOT NULL, model TEXT NOT NULL,
        state TEXT NOT NULL, pid INTEGER, host TEXT, heartbeat_at REAL, heartbeat_interval_s REAL,
        started_at REAL, ended_at REAL, error TEXT)""",
    """CREATE TABLE iterations (
        iteration INTEGER PRIMARY KEY, time REAL NOT NULL,
        mean_return REAL, success_rate REAL,
        share_success REAL, share_tool_execution REAL, share_tool_error REAL,
        share_invalid_json REAL, share_structural_fail REAL,
        kl REAL, policy_loss REAL, value_loss REAL, entropy REAL, clip_fraction REAL,
        explained_variance REAL, grad_norm REAL, tokens_per_s REAL, episodes_per_s REAL,
        step_time_s REAL, rollout_time_s REAL, ref_value_time_s REAL, update_time_s REAL,
        peak_gpu_mem_mb REAL, lr REAL, kl_coef REAL,
        extra TEXT NOT NULL DEFAULT '{}')""",
    """CREATE TABLE episodes (
        id INTEGER PRIMARY KEY, iteration INTEGER NOT NULL,
        phase TEXT NOT NULL CHECK (phase IN ('train', 'eval', 'chat')),
        task_id TEXT NOT NULL, suite TEXT NOT NULL, split TEXT, seed INTEGER,
        outcome TEXT NOT NULL, final_status TEXT, statuses TEXT NOT NULL,
        total_reward REAL NOT NULL, n_turns INTEGER NOT NULL, success INTEGER NOT NULL,
        created_at REAL NOT NULL, instruction TEXT NOT NULL, search_text TEXT NOT NULL)""",
    "CREATE INDEX episodes_iteration ON episodes (iteration)",
    "CREATE INDEX episodes_phase ON episodes (phase)",
    "CREATE INDEX episodes_outcome ON episodes (outcome)",
    "CREATE INDEX episodes_final_status ON episodes (final_status)",
    "CREATE INDEX episodes_suite ON episodes (suite)",
    "CREATE INDEX episodes_reward ON episodes (total_reward)",
    "CREATE INDEX episodes_task ON episodes (task_id)",
    """CREATE TABLE episode_records (
        episode_id INTEGER PRIMARY KEY REFERENCES episodes (id) ON DELETE CASCADE,
        record TEXT NOT NULL)""",
    """CREATE TABLE turn_tokens (
        episode_id INTEGER NOT NULL REFERENCES episodes (id) ON DELETE CASCADE,
        turn_index INTEGER NOT NULL, token_ids BLOB NOT NULL, logprobs BLOB, ref_logprobs BLOB,
        "values" BLOB, advantages BLOB, returns BLOB,
        PRIMARY KEY (episode_id, turn_index)) WITHOUT ROWID""",
    """CREATE TABLE tool_stats (
        iteration INTEGER NOT NULL, tool TEXT NOT NULL, calls INTEGER NOT NULL,
        errors INTEGER NOT NULL, latency_s REAL NOT NULL,
        PRIMARY KEY (iteration, tool)) WITHOUT ROWID""",
    """CREATE TABLE checkpoints (
        id INTEGER PRIMARY KEY, iteration INTEGER NOT NULL, path TEXT NOT NULL,
        created_at REAL NOT NULL, heldout_success REAL, is_best INTEGER NOT NULL DEFAULT 0,
        kept INTEGER NOT NULL DEFAULT 1)""",
    """CREATE TABLE evals (
        id INTEGER PRIMARY KEY, iteration INTEGER NOT NULL, suite TEXT NOT NULL, split TEXT NOT NULL,
        n INTEGER NOT NULL, success_rate REAL, mean_return REAL,
        share_success REAL, share_tool_execution REAL, share_tool_error REAL,
        share_invalid_json REAL, share_structural_fail REAL,
        created_at REAL NOT NULL, extra TEXT NOT NULL DEFAULT '{}')""",
    "CREATE INDEX evals_iteration ON evals (iteration)",
    """CREATE TABLE commands (
        id INTEGER PRIMARY KEY, kind TEXT NOT NULL, payload TEXT NOT NULL, created_at REAL NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending', result TEXT, started_at REAL, done_at REAL)""",
    "CREATE INDEX commands_status ON commands (status)",
)

# MIGRATIONS[v] upgrades a database from schema version v to v + 1, inside the writer's
# transaction. Adding a column or table to the schema means: bump SCHEMA_VERSION, add the change
# to a new migration here, and keep _SCHEMA_V1 as it is (new databases run the migrations too).
_EPISODES_V2 = """CREATE TABLE {name} (
        id INTEGER PRIMARY KEY, iteration INTEGER NOT NULL,
        phase TEXT NOT NULL CHECK (phase IN ('train', 'eval', 'chat', 'compare')),
        task_id TEXT NOT NULL, suite TEXT NOT NULL, split TEXT, seed INTEGER,
        outcome TEXT NOT NULL, final_status TEXT, statuses TEXT NOT NULL,
        total_reward REAL NOT NULL, n_turns INTEGER NOT NULL, success INTEGER NOT NULL,
        created_at REAL NOT NULL, instruction TEXT NOT NULL, search_text TEXT NOT NULL)"""


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    """Version 2: episodes may have phase 'compare'; the flags and comparisons tables.

    SQLite cannot alter a CHECK constraint, so ``episodes`` is rebuilt the way SQLite documents
    (new table, copy, drop, rename, indexes). ``_migrate`` turns foreign keys off around it, so
    dropping the old table cascades nothing into ``episode_records`` and ``turn_tokens``; their
    references resolve to the renamed table. Only the light columns are copied: fast on big runs.
    """
    conn.execute(_EPISODES_V2.format(name="episodes_v2"))
    conn.execute("INSERT INTO episodes_v2 SELECT * FROM episodes")
    conn.execute("DROP TABLE episodes")
    conn.execute("ALTER TABLE episodes_v2 RENAME TO episodes")
    for statement in _SCHEMA_V1:
        if statement.startswith("CREATE INDEX episodes_"):
            conn.execute(statement)
    conn.execute(
        """CREATE TABLE flags (
        episode_id INTEGER NOT NULL REFERENCES episodes (id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('good', 'bad', 'bug')),
        note TEXT, created_at REAL NOT NULL,
        PRIMARY KEY (episode_id, kind)) WITHOUT ROWID"""
    )
    conn.execute("CREATE INDEX flags_kind ON flags (kind)")
    conn.execute(
        """CREATE TABLE comparisons (
        id INTEGER PRIMARY KEY, created_at REAL NOT NULL, labels TEXT NOT NULL, suite TEXT NOT NULL,
        split TEXT NOT NULL, n INTEGER NOT NULL, seed INTEGER, result TEXT NOT NULL DEFAULT '{}')"""
    )


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _migrate_1_to_2}


# --------------------------------------------------------------------------------------------
# Compact arrays


def _little_endian(values: array) -> bytes:
    """The array's bytes in little-endian order, so a database moves between machines intact."""
    if sys.byteorder == "big":
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def _from_little_endian(typecode: str, blob: bytes | None) -> list[Any] | None:
    if blob is None:
        return None
    values = array(typecode)
    values.frombytes(blob)
    if sys.byteorder == "big":
        values.byteswap()
    return values.tolist()


def encode_ints(values: Iterable[int]) -> bytes:
    """Token ids as int32 bytes (4 bytes per token instead of a JSON number)."""
    try:
        return _little_endian(array("i", values))
    except (OverflowError, TypeError) as exc:
        raise StoreError(f"token ids must be 32-bit integers: {exc}") from exc


def decode_ints(blob: bytes | None) -> list[int] | None:
    """The inverse of :func:`encode_ints` (None stays None)."""
    return _from_little_endian("i", blob)


def encode_floats(values: Iterable[float] | None) -> bytes | None:
    """Per-token floats as float32 bytes; float32 is what the trainer computes in anyway."""
    if values is None:
        return None
    try:
        return _little_endian(array("f", values))
    except TypeError as exc:
        raise StoreError(f"per-token values must be numbers: {exc}") from exc


def decode_floats(blob: bytes | None) -> list[float] | None:
    """The inverse of :func:`encode_floats` (None stays None)."""
    return _from_little_endian("f", blob)


# --------------------------------------------------------------------------------------------
# Value types


@dataclass
class TurnTokens:
    """The tokens of one assistant turn and the per-token PPO quantities computed for them."""

    turn_index: int
    token_ids: list[int]
    logprobs: list[float] | None = None
    ref_logprobs: list[float] | None = None
    values: list[float] | None = None
    advantages: list[float] | None = None
    returns: list[float] | None = None


@dataclass
class EpisodeEntry:
    """An episode to store: its record (an EpisodeRecord or its dict), split, and optional tokens."""

    record: Any
    split: str | None = None
    tokens: Sequence[TurnTokens] = ()


@dataclass(frozen=True, slots=True)
class EpisodeRow:
    """A light episode row for lists: everything but the record JSON and the tokens."""

    id: int
    iteration: int
    phase: str
    task_id: str
    suite: str
    split: str | None
    seed: int | None
    outcome: str
    final_status: str | None
    total_reward: float
    n_turns: int
    success: bool
    created_at: float
    instruction: str


_ROW_COLUMNS = ", ".join(f.name for f in fields(EpisodeRow))


@dataclass(frozen=True)
class EpisodeFilter:
    """Criteria for episode lists; None means "any". All given criteria must hold.

    ``status`` matches the last turn's status, ``any_status`` a status of any turn. ``search`` is a
    case-insensitive substring match; several words must all appear. ``flagged`` keeps episodes
    with a flag of that kind (one of :data:`FLAG_KINDS`), or with any flag when it is ``"any"``.
    """

    iteration: int | None = None
    min_iteration: int | None = None
    max_iteration: int | None = None
    phase: str | None = None
    outcome: str | None = None
    status: str | None = None
    any_status: str | None = None
    suite: str | None = None
    split: str | None = None
    task_id: str | None = None
    success: bool | None = None
    min_reward: float | None = None
    max_reward: float | None = None
    search: str | None = None
    flagged: str | None = None


@dataclass(frozen=True)
class Flag:
    """A person's verdict on an episode: a good example, a bad example, or a bug, with a note."""

    episode_id: int
    kind: str
    note: str | None
    created_at: float


@dataclass(frozen=True)
class Comparison:
    """A stored side-by-side evaluation of checkpoints; ``result`` is the comparison's JSON."""

    id: int
    created_at: float
    labels: list[str]
    suite: str
    split: str
    n: int
    seed: int | None
    result: dict[str, Any]


@dataclass(frozen=True)
class RunInfo:
    """The run row, with the state a viewer should show (a dead trainer's run reads "crashed")."""

    path: Path
    name: str
    created_at: float
    config: dict[str, Any]
    model: str
    state: str
    effective_state: str
    pid: int | None
    host: str | None
    heartbeat_at: float | None
    heartbeat_interval_s: float | None
    started_at: float | None
    ended_at: float | None
    error: str | None
    schema_version: int


@dataclass(frozen=True)
class ToolStat:
    """Calls, errors and total latency of one tool over some iterations."""

    calls: int = 0
    errors: int = 0
    latency_s: float = 0.0

    def __add__(self, other: ToolStat) -> ToolStat:
        return ToolStat(
            self.calls + other.calls, self.errors + other.errors, self.latency_s + other.latency_s
        )


@dataclass(frozen=True)
class ToolHealth:
    """One tool's health over a window: the derived rates a dashboard shows."""

    tool: str
    calls: int
    errors: int
    error_rate: float
    mean_latency_s: float


@dataclass(frozen=True)
class Checkpoint:
    """A saved checkpoint; ``kept`` is False once rotation deleted its files."""

    id: int
    iteration: int
    path: str
    created_at: float
    heldout_success: float | None
    is_best: bool
    kept: bool


@dataclass(frozen=True)
class EvalRow:
    """One evaluation of the policy on a suite split."""

    id: int
    iteration: int
    suite: str
    split: str
    n: int
    success_rate: float | None
    mean_return: float | None
    shares: dict[str, float | None]
    created_at: float
    extra: dict[str, Any]


@dataclass(frozen=True)
class Command:
    """A command queued for the trainer and, once handled, its result."""

    id: int
    kind: str
    payload: dict[str, Any]
    created_at: float
    status: str
    result: Any
    started_at: float | None
    done_at: float | None

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")


@dataclass(frozen=True)
class RunSummary:
    """One line of a runs list; ``error`` says why a folder could not be read (other fields None)."""

    name: str
    path: Path
    model: str | None = None
    state: str | None = None
    iterations: int | None = None
    last_iteration: int | None = None
    episodes: int | None = None
    best_heldout_success: float | None = None
    created_at: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


# --------------------------------------------------------------------------------------------
# Helpers


def _json_default(value: Any) -> Any:
    """Make numpy/torch scalars, paths, sets and dataclasses JSON-able without importing those libs."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False)


def _loads(text: str | None, default: Any = None) -> Any:
    """Parse stored JSON; a damaged value reads as ``default`` rather than breaking a whole view."""
    if text is None:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def _number(value: Any, what: str = "metric value") -> float | None:
    """A number as a float column value (0-d tensors and numpy scalars work through float())."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what} {value!r} is not a number") from exc
    return None if math.isnan(number) else number


def _pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (signal 0 checks without signalling)."""
    if os.name == "nt":  # os.kill would terminate the process on Windows; rely on the heartbeat
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def effective_state(
    state: str,
    pid: int | None,
    host: str | None,
    heartbeat_at: float | None,
    heartbeat_interval_s: float | None = None,
    now: float | None = None,
) -> str:
    """The state a viewer should believe: a running or paused run with no live trainer is "crashed".

    A trainer is gone when its heartbeat is older than max(15 s, 4 intervals), or when it ran on
    this host and its pid no longer exists. Terminal and "created" states are returned unchanged.
    """
    if state not in LIVE_STATES:
        return state
    now = time.time() if now is None else now
    stale_after = max(MIN_STALE_S, 4 * (heartbeat_interval_s or DEFAULT_HEARTBEAT_S))
    if heartbeat_at is None or now - heartbeat_at > stale_after:
        return "crashed"
    if pid is not None and host == socket.gethostname() and not _pid_alive(pid):
        return "crashed"
    return state


def _casefold(text: Any) -> str:
    return str(text).casefold() if text else ""


def _search_text(record: Mapping[str, Any], task: Mapping[str, Any]) -> str:
    """The text a search looks through: instruction, ids, and each turn's output, calls and feedback.

    Capped so a 10,000-episode scan stays in the tens of milliseconds.
    """
    parts = [task.get("instruction", ""), task.get("id", ""), task.get("suite", ""), record.get("outcome")]
    for turn in record.get("turns") or []:
        if not isinstance(turn, Mapping):
            continue
        parts += [turn.get("status"), str(turn.get("raw_text") or "")[:600], turn.get("parse_error")]
        for call in turn.get("calls") or []:
            if isinstance(call, Mapping):
                parts += [call.get("name"), _dumps(call.get("arguments"))[:200]]
                parts.append(str(call.get("response") or "")[:200])
        parts.append(str(turn.get("feedback") or "")[:300])
    return "\n".join(_casefold(part) for part in parts if part)[:SEARCH_TEXT_MAX]


def _record_dict(item: Any) -> dict[str, Any]:
    """An episode record as a dict, from an EpisodeRecord-like object or a mapping."""
    if hasattr(item, "to_dict"):
        item = item.to_dict()
    if not isinstance(item, Mapping):
        raise StoreError(f"an episode record must be a dict or have to_dict(), not {type(item).__name__}")
    record = dict(item)
    if not isinstance(record.get("task"), Mapping):
        raise StoreError("an episode record needs a 'task' object (EpisodeRecord.to_dict() has one)")
    if not isinstance(record.get("turns", []), list):
        raise StoreError("an episode record's 'turns' must be a list")
    return record


def _episode_columns(
    record: Mapping[str, Any], iteration: int, phase: str, split: str | None, now: float
) -> tuple[Any, ...]:
    """The light, indexed columns of an episode, derived once from its record."""
    task = record["task"]
    turns = [turn for turn in record.get("turns") or [] if isinstance(turn, Mapping)]
    statuses = [str(turn.get("status")) for turn in turns if turn.get("status")]
    outcome = str(record.get("outcome") or "running")
    seed = record.get("seed")
    split = split or record.get("split") or task.get("split")
    return (
        iteration,
        phase,
        str(task.get("id", "")),
        str(task.get("suite", "")),
        split,
        seed if isinstance(seed, int) else None,
        outcome,
        statuses[-1] if statuses else None,
        "," + ",".join(dict.fromkeys(statuses)) + ",",
        _number(record.get("total_reward"), "total_reward") or 0.0,
        len(turns),
        int(outcome == "success"),
        now,
        str(task.get("instruction", "")),
        _search_text(record, task),
    )


def _token_row(episode_id: int, tokens: TurnTokens) -> tuple[Any, ...]:
    return (
        episode_id,
        int(tokens.turn_index),
        encode_ints(tokens.token_ids),
        *(encode_floats(getattr(tokens, name)) for name in TOKEN_FIELDS),
    )


def _entries(batch: Iterable[Any]) -> list[EpisodeEntry]:
    return [item if isinstance(item, EpisodeEntry) else EpisodeEntry(item) for item in batch]


def collect_tool_stats(records: Iterable[Any]) -> dict[str, ToolStat]:
    """Per-tool calls, errors and latency from episode records, ready for :meth:`RunStore.add_tool_stats`.

    Calls refused as structural failures (hallucinated tool names) are left out: they are not a
    tool's health, and counting them would fill the table with invented names.
    """
    stats: dict[str, ToolStat] = {}
    for item in records:
        record = _record_dict(item)
        for turn in record.get("turns") or []:
            for call in turn.get("calls") or []:
                if call.get("status") == "structural_fail" or not call.get("name"):
                    continue
                one = ToolStat(1, int(bool(call.get("is_error"))), float(call.get("latency_s") or 0.0))
                stats[call["name"]] = stats.get(call["name"], ToolStat()) + one
    return stats


def _db_path(run_dir: Path | str) -> Path:
    """The run's database path, refusing folders that are not runs with a one-line reason."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise StoreError(f"run folder {run_dir} does not exist")
    if not run_dir.is_dir():
        raise StoreError(f"{run_dir} is not a folder, so not a run")
    db = run_dir / DB_NAME
    if not db.is_file():
        raise StoreError(f"{run_dir} is not a run: it has no {DB_NAME}")
    return db


def _connect_reader(db: Path) -> sqlite3.Connection:
    """A read-only connection; it can never take the write lock, so it never delays the trainer."""
    try:
        conn = sqlite3.connect(
            f"{db.resolve().as_uri()}?mode=ro",
            uri=True,
            timeout=READER_BUSY_S,
            isolation_level=None,
            check_same_thread=False,
        )
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {db}: {exc}") from exc
    conn.row_factory = sqlite3.Row
    return conn


def _connect_writer(db: Path, *, new: bool = False) -> sqlite3.Connection:
    """A read-write connection in WAL mode; transactions are opened explicitly (BEGIN IMMEDIATE).

    An existing file must be a run database of a version we can handle before anything is set on
    it, so a stray SQLite file is refused untouched.
    """
    try:
        conn = sqlite3.connect(db, timeout=WRITER_BUSY_S, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {db} for writing: {exc}") from exc
    conn.row_factory = sqlite3.Row
    try:
        if not new:
            _check_version(_schema_version(conn, db), db, can_migrate=True)
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"cannot open {db} for writing: {exc}") from exc
    except StoreError:
        conn.close()
        raise
    if str(mode).lower() != "wal":
        conn.close()
        raise StoreError(
            f"{db} cannot use WAL mode (journal_mode is {mode}); is the folder on a network share?"
        )
    return conn


def _schema_version(conn: sqlite3.Connection, db: Path) -> int:
    """The database's schema version, or a StoreError naming what is wrong with the file."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError as exc:
        if "no such table" in str(exc):
            raise StoreError(f"{db} is not a run database (no meta table; still being created?)") from exc
        raise StoreError(f"{db} is not a readable run database: {exc}") from exc
    try:
        return int(row[0])
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{db} has no valid schema_version in its meta table") from exc


def _check_version(version: int, db: Path, *, can_migrate: bool) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{db} has schema version {version}, newer than this qwen-workbench supports "
            f"({SCHEMA_VERSION}); upgrade qwen-workbench to open it"
        )
    if version < SCHEMA_VERSION and not can_migrate:
        raise StoreError(
            f"{db} has old schema version {version} (current {SCHEMA_VERSION}); "
            "resume the run or call trainer.store.migrate(run_dir) to upgrade it"
        )


def _migrate(conn: sqlite3.Connection, db: Path, version: int) -> None:
    """Run the migrations from ``version`` to SCHEMA_VERSION in one transaction."""
    if version >= SCHEMA_VERSION:
        return
    # Table rebuilds must not cascade deletes; the pragma only changes outside a transaction.
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read inside the lock: another process may have migrated meanwhile.
            version = _schema_version(conn, db)
            for step in range(version, SCHEMA_VERSION):
                if step not in MIGRATIONS:
                    raise StoreError(f"{db}: no migration from schema version {step} to {step + 1}")
                MIGRATIONS[step](conn)
            broken = conn.execute("PRAGMA foreign_key_check").fetchone()
            if broken is not None:
                raise StoreError(f"{db}: migration left a dangling reference in table {broken[0]}")
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot upgrade {db} to schema version {SCHEMA_VERSION}: {exc}") from exc
    finally:
        conn.execute("PRAGMA foreign_keys = ON")


# --------------------------------------------------------------------------------------------
# Reading


class _Queries:
    """Every read query, shared by the read-only viewer and the writer (which reads its own run)."""

    run_dir: Path
    _db: Path
    _conn: sqlite3.Connection
    _lock: threading.RLock

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run one read statement; any SQLite failure becomes a one-line StoreError."""
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"reading {self._db} failed: {exc}") from exc

    def _one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        rows = self._all(sql, params)
        return rows[0] if rows else None

    # -- the run

    def run_info(self) -> RunInfo:
        """The run row, its config, and the effective state (crashed if the trainer is gone)."""
        row = self._one("SELECT * FROM run WHERE id = 1")
        if row is None:
            raise StoreError(f"{self._db} has no run row; it was not created by RunStore.create")
        return RunInfo(
            path=self.run_dir,
            name=row["name"],
            created_at=row["created_at"],
            config=_loads(row["config"], {}),
            model=row["model"],
            state=row["state"],
            effective_state=effective_state(
                row["state"], row["pid"], row["host"], row["heartbeat_at"], row["heartbeat_interval_s"]
            ),
            pid=row["pid"],
            host=row["host"],
            heartbeat_at=row["heartbeat_at"],
            heartbeat_interval_s=row["heartbeat_interval_s"],
            started_at=row["started_at"],
            ended_at=row["ended_at"],
            error=row["error"],
            schema_version=self._version(),
        )

    def _version(self) -> int:
        with self._lock:
            return _schema_version(self._conn, self._db)

    def effective_state(self) -> str:
        """The run's state as a viewer should show it (see :func:`effective_state`)."""
        return self.run_info().effective_state

    # -- iterations

    def iterations(self, since: int | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Iteration metrics in order, those after ``since`` only when given (cheap polling).

        Each dict has ``iteration``, ``time``, every column of ITERATION_METRICS (None when not
        logged) and the ``extra`` metrics merged in.
        """
        sql, params = "SELECT * FROM iterations", []
        if since is not None:
            sql += " WHERE iteration > ?"
            params.append(int(since))
        sql += " ORDER BY iteration"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        result = []
        for row in self._all(sql, params):
            data = dict(row)
            extra = _loads(data.pop("extra"), {})
            result.append({**(extra if isinstance(extra, dict) else {}), **data})
        return result

    def last_iteration(self) -> int | None:
        """The highest iteration with metrics, None before the first."""
        row = self._one("SELECT max(iteration) FROM iterations")
        return None if row is None else row[0]

    # -- episodes

    def episodes(
        self,
        filters: EpisodeFilter | None = None,
        *,
        limit: int = 50,
        offset: int = 0,
        order: str = "newest",
        **criteria: Any,
    ) -> list[EpisodeRow]:
        """One page of light episode rows matching the filters (keyword criteria are merged in)."""
        if order not in EPISODE_ORDERS:
            raise StoreError(f"unknown order {order!r}; choose one of {', '.join(EPISODE_ORDERS)}")
        if not 0 <= limit <= MAX_PAGE or offset < 0:
            raise StoreError(f"limit must be 0..{MAX_PAGE} and offset >= 0")
        where, params = _where(_merge(filters, criteria))
        sql = f"SELECT {_ROW_COLUMNS} FROM episodes{where} ORDER BY {EPISODE_ORDERS[order]} LIMIT ? OFFSET ?"
        return [_episode_row(row) for row in self._all(sql, [*params, int(limit), int(offset)])]

    def count_episodes(self, filters: EpisodeFilter | None = None, **criteria: Any) -> int:
        """How many episodes match (for a pager's "page 3 of 41")."""
        where, params = _where(_merge(filters, criteria))
        row = self._one(f"SELECT count(*) FROM episodes{where}", params)
        return int(row[0]) if row else 0

    def episode(self, episode_id: int) -> dict[str, Any]:
        """The full EpisodeRecord dict of one episode, with its stored columns under ``"_row"``."""
        row = self._one(
            f"SELECT {_ROW_COLUMNS}, r.record FROM episodes e JOIN episode_records r "
            "ON r.episode_id = e.id WHERE e.id = ?",
            (int(episode_id),),
        )
        if row is None:
            raise StoreError(f"no episode with id {episode_id} in {self.run_dir.name}")
        record = _loads(row["record"])
        if not isinstance(record, dict):
            raise StoreError(f"episode {episode_id}'s record is damaged (not a JSON object)")
        record["_row"] = _episode_row(row)
        return record

    def turn_tokens(self, episode_id: int) -> list[TurnTokens]:
        """The stored tokens of an episode's turns, in turn order (empty when none were stored)."""
        rows = self._all(
            'SELECT turn_index, token_ids, logprobs, ref_logprobs, "values", advantages, returns '
            "FROM turn_tokens WHERE episode_id = ? ORDER BY turn_index",
            (int(episode_id),),
        )
        return [
            TurnTokens(
                turn_index=row["turn_index"],
                token_ids=decode_ints(row["token_ids"]) or [],
                **{name: decode_floats(row[name]) for name in TOKEN_FIELDS},
            )
            for row in rows
        ]

    def latest_episode_id(self) -> int:
        """The newest episode id, 0 when there is none; a live view remembers it between polls."""
        row = self._one("SELECT max(id) FROM episodes")
        return int(row[0]) if row and row[0] is not None else 0

    def episodes_after(self, episode_id: int, limit: int = 200) -> list[EpisodeRow]:
        """Episodes newer than ``episode_id``, oldest first: a cheap primary-key range scan."""
        rows = self._all(
            f"SELECT {_ROW_COLUMNS} FROM episodes WHERE id > ? ORDER BY id LIMIT ?",
            (int(episode_id), int(limit)),
        )
        return [_episode_row(row) for row in rows]

    # -- tools, checkpoints, evals, commands

    def tool_health(self, last_n: int | None = None) -> list[ToolHealth]:
        """Per-tool calls, errors, error rate and mean latency over the run or its last N iterations."""
        sql = "SELECT tool, sum(calls), sum(errors), sum(latency_s) FROM tool_stats"
        params: list[Any] = []
        if last_n is not None:
            sql += " WHERE iteration > (SELECT max(iteration) FROM tool_stats) - ?"
            params.append(int(last_n))
        rows = self._all(sql + " GROUP BY tool ORDER BY tool", params)
        return [
            ToolHealth(
                tool=row[0],
                calls=int(row[1]),
                errors=int(row[2]),
                error_rate=row[2] / row[1] if row[1] else 0.0,
                mean_latency_s=row[3] / row[1] if row[1] else 0.0,
            )
            for row in rows
        ]

    def checkpoints(self) -> list[Checkpoint]:
        """Every checkpoint, oldest first."""
        return [
            Checkpoint(
                id=row["id"],
                iteration=row["iteration"],
                path=str(_checkpoint_path(self.run_dir, row["path"])),
                created_at=row["created_at"],
                heldout_success=row["heldout_success"],
                is_best=bool(row["is_best"]),
                kept=bool(row["kept"]),
            )
            for row in self._all("SELECT * FROM checkpoints ORDER BY id")
        ]

    def best_checkpoint(self) -> Checkpoint | None:
        """The checkpoint marked best, if any."""
        return next((c for c in self.checkpoints() if c.is_best), None)

    def evals(self, suite: str | None = None, split: str | None = None) -> list[EvalRow]:
        """Evaluations in order, optionally of one suite and split."""
        sql, params = "SELECT * FROM evals WHERE 1", []
        for column, value in (("suite", suite), ("split", split)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        return [
            EvalRow(
                id=row["id"],
                iteration=row["iteration"],
                suite=row["suite"],
                split=row["split"],
                n=row["n"],
                success_rate=row["success_rate"],
                mean_return=row["mean_return"],
                shares={status: row[f"share_{status}"] for status in STATUSES},
                created_at=row["created_at"],
                extra=_loads(row["extra"], {}),
            )
            for row in self._all(sql + " ORDER BY id", params)
        ]

    def commands(self, status: str | None = None, limit: int = 50) -> list[Command]:
        """The newest commands first, optionally of one status."""
        sql, params = "SELECT * FROM commands", []
        if status is not None:
            sql += " WHERE status = ?"
            params.append(status)
        return [_command(row) for row in self._all(sql + " ORDER BY id DESC LIMIT ?", [*params, int(limit)])]

    def command(self, command_id: int) -> Command:
        """One command by id."""
        row = self._one("SELECT * FROM commands WHERE id = ?", (int(command_id),))
        if row is None:
            raise StoreError(f"no command with id {command_id} in {self.run_dir.name}")
        return _command(row)

    # -- flags and comparisons

    def flags(self, kind: str | None = None, episode_id: int | None = None) -> list[Flag]:
        """Flags, oldest first, optionally of one kind ("any" for all) and/or one episode."""
        sql, params = "SELECT episode_id, kind, note, created_at FROM flags WHERE 1", []
        if kind not in (None, "any"):
            sql += " AND kind = ?"
            params.append(_flag_kind(kind))
        if episode_id is not None:
            sql += " AND episode_id = ?"
            params.append(int(episode_id))
        return [Flag(*row) for row in self._all(sql + " ORDER BY created_at, episode_id, kind", params)]

    def comparisons(self) -> list[Comparison]:
        """Every stored checkpoint comparison, oldest first."""
        return [_comparison(row) for row in self._all("SELECT * FROM comparisons ORDER BY id")]

    def comparison(self, comparison_id: int) -> Comparison:
        """One stored comparison by id."""
        row = self._one("SELECT * FROM comparisons WHERE id = ?", (int(comparison_id),))
        if row is None:
            raise StoreError(f"no comparison with id {comparison_id} in {self.run_dir.name}")
        return _comparison(row)

    def integrity_check(self) -> str:
        """SQLite's full integrity check: "ok" or the first problems found (slow on big runs)."""
        rows = self._all("PRAGMA integrity_check")
        return "; ".join(str(row[0]) for row in rows[:5])


def _merge(filters: EpisodeFilter | None, criteria: Mapping[str, Any]) -> EpisodeFilter:
    try:
        return replace(filters or EpisodeFilter(), **criteria)
    except TypeError as exc:
        known = ", ".join(f.name for f in fields(EpisodeFilter))
        raise StoreError(f"unknown episode filter in {sorted(criteria)}; known: {known}") from exc


def _where(flt: EpisodeFilter) -> tuple[str, list[Any]]:
    """The WHERE clause and parameters of a filter (values are always bound, never interpolated)."""
    clauses: list[str] = []
    params: list[Any] = []

    def add(clause: str, *values: Any) -> None:
        clauses.append(clause)
        params.extend(values)

    for column in ("iteration", "phase", "outcome", "suite", "split", "task_id"):
        value = getattr(flt, column)
        if value is not None:
            add(f"{column} = ?", value)
    if flt.status is not None:
        add("final_status = ?", flt.status)
    if flt.any_status is not None:
        add("instr(statuses, ?) > 0", f",{flt.any_status},")
    if flt.success is not None:
        add("success = ?", int(bool(flt.success)))
    if flt.min_iteration is not None:
        add("iteration >= ?", flt.min_iteration)
    if flt.max_iteration is not None:
        add("iteration <= ?", flt.max_iteration)
    if flt.min_reward is not None:
        add("total_reward >= ?", flt.min_reward)
    if flt.max_reward is not None:
        add("total_reward <= ?", flt.max_reward)
    for word in (flt.search or "").casefold().split():
        add("instr(search_text, ?) > 0", word)
    if flt.flagged == "any":
        clauses.append("id IN (SELECT episode_id FROM flags)")
    elif flt.flagged is not None:
        add("id IN (SELECT episode_id FROM flags WHERE kind = ?)", _flag_kind(flt.flagged))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _episode_row(row: sqlite3.Row) -> EpisodeRow:
    return EpisodeRow(
        id=row["id"],
        iteration=row["iteration"],
        phase=row["phase"],
        task_id=row["task_id"],
        suite=row["suite"],
        split=row["split"],
        seed=row["seed"],
        outcome=row["outcome"],
        final_status=row["final_status"],
        total_reward=row["total_reward"],
        n_turns=row["n_turns"],
        success=bool(row["success"]),
        created_at=row["created_at"],
        instruction=row["instruction"],
    )


def _flag_kind(kind: str) -> str:
    if kind not in FLAG_KINDS:
        raise StoreError(f"unknown flag kind {kind!r}; choose one of {', '.join(FLAG_KINDS)}")
    return kind


def _comparison(row: sqlite3.Row) -> Comparison:
    return Comparison(
        id=row["id"],
        created_at=row["created_at"],
        labels=list(_loads(row["labels"], [])),
        suite=row["suite"],
        split=row["split"],
        n=row["n"],
        seed=row["seed"],
        result=_loads(row["result"], {}),
    )


def _checkpoint_path(run_dir: Path, stored: str) -> Path:
    """Where a stored checkpoint path points now: relative ones live in the run folder; an absolute
    one written before paths were relative falls back to the run's own checkpoints folder once the
    run folder has moved."""
    path = Path(stored)
    if not path.is_absolute():
        return run_dir / path
    moved = run_dir / CHECKPOINTS_DIR / path.name
    return moved if not path.exists() and moved.exists() else path


def _command(row: sqlite3.Row) -> Command:
    return Command(
        id=row["id"],
        kind=row["kind"],
        payload=_loads(row["payload"], {}),
        created_at=row["created_at"],
        status=row["status"],
        result=_loads(row["result"]),
        started_at=row["started_at"],
        done_at=row["done_at"],
    )


class RunReader(_Queries):
    """A read-only view of a run, safe to hold open while the trainer writes (WAL snapshots).

    Each query reads the latest committed state. Thread-safe: queries are serialised by a lock,
    so a Textual worker thread may share one reader.
    """

    def __init__(self, run_dir: Path | str) -> None:
        self.run_dir = Path(run_dir)
        self._db = _db_path(self.run_dir)
        self._lock = threading.RLock()
        self._conn = _connect_reader(self._db)
        try:
            _check_version(_schema_version(self._conn, self._db), self._db, can_migrate=False)
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> RunReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------------
# Writing


class _Writes(_Queries):
    """Short write transactions on a read-write connection (shared by the trainer and annotators)."""

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction; BEGIN IMMEDIATE takes the write lock up front, so no deadlock."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write {self._db}: {exc}") from exc
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"writing {self._db} failed: {exc}") from exc
                raise


_PreparedEpisode = tuple[EpisodeEntry, tuple[Any, ...], str]


def _prepare_episodes(
    batch: Iterable[Any], iteration: int, phase: str, split: str | None, now: float
) -> list[_PreparedEpisode]:
    """Check and serialise a batch before any lock is taken, so the write transaction stays short."""
    if phase not in PHASES:
        raise StoreError(f"unknown phase {phase!r}; choose one of {', '.join(PHASES)}")
    entries = _entries(batch)
    records = [_record_dict(entry.record) for entry in entries]
    return [
        (entry, _episode_columns(record, int(iteration), phase, entry.split or split, now), _dumps(record))
        for entry, record in zip(entries, records, strict=True)
    ]


def _insert_episodes(db: sqlite3.Connection, prepared: list[_PreparedEpisode]) -> list[int]:
    """Insert prepared episodes inside the caller's transaction; the new ids in batch order."""
    ids: list[int] = []
    for entry, row, text in prepared:
        cursor = db.execute(
            "INSERT INTO episodes (iteration, phase, task_id, suite, split, seed, outcome, "
            "final_status, statuses, total_reward, n_turns, success, created_at, instruction, "
            "search_text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )
        episode_id = int(cursor.lastrowid or 0)
        db.execute("INSERT INTO episode_records VALUES (?, ?)", (episode_id, text))
        RunStore._insert_tokens(db, episode_id, entry.tokens)
        ids.append(episode_id)
    return ids


class RunStore(_Writes):
    """The trainer's handle on its run: the single writer of episodes, metrics and checkpoints.

    Create a run with :meth:`create`, resume one with :meth:`open_writer`. Every write is one short
    transaction that also refreshes the heartbeat; :meth:`start_heartbeat` keeps the run looking
    alive through long steps (a 4B model's PPO update can take minutes).
    """

    def __init__(self, run_dir: Path, conn: sqlite3.Connection) -> None:
        """Use :meth:`create` or :meth:`open_writer`; this only wires an open connection."""
        self.run_dir = run_dir
        self._db = run_dir / DB_NAME
        self._conn = conn
        self._lock = threading.RLock()
        self._heartbeat: _HeartbeatThread | None = None
        self.claims_run = True  # False for a policy process: its writes leave the heartbeat alone

    # -- opening

    @classmethod
    def create(
        cls,
        run_dir: Path | str,
        name: str,
        config: Mapping[str, Any],
        model: str,
        heartbeat_interval_s: float = DEFAULT_HEARTBEAT_S,
    ) -> RunStore:
        """Make a new run folder (config.json, checkpoints/, run.db) and return its writer."""
        run_dir = Path(run_dir)
        if run_dir.exists() and not run_dir.is_dir():
            raise StoreError(f"{run_dir} exists and is not a folder")
        if (run_dir / DB_NAME).exists():
            raise StoreError(f"run {run_dir} already exists; resume it with RunStore.open_writer")
        try:
            config_json = json.dumps(dict(config), indent=2, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"the run config is not JSON-serialisable: {exc}") from exc
        (run_dir / CHECKPOINTS_DIR).mkdir(parents=True, exist_ok=True)
        tmp = run_dir / f".{CONFIG_NAME}.tmp"
        tmp.write_text(config_json + "\n", encoding="utf-8")
        tmp.replace(run_dir / CONFIG_NAME)
        # The schema is built under a temporary name and renamed into place, so a viewer polling
        # for run.db never opens a half-made database.
        building = run_dir / f".{DB_NAME}.building"
        for leftover in (building, Path(f"{building}-journal")):
            leftover.unlink(missing_ok=True)
        now = time.time()
        try:
            with contextlib.closing(sqlite3.connect(building, isolation_level=None)) as fresh:
                fresh.execute("BEGIN")
                for statement in _SCHEMA_V1:
                    fresh.execute(statement)
                fresh.execute("INSERT INTO meta VALUES ('schema_version', '1')")
                fresh.execute(
                    "INSERT INTO run (id, name, created_at, config, model, state, pid, host, heartbeat_at, "
                    "heartbeat_interval_s) VALUES (1, ?, ?, ?, ?, 'created', ?, ?, ?, ?)",
                    (
                        str(name),
                        now,
                        config_json,
                        str(model),
                        os.getpid(),
                        socket.gethostname(),
                        now,
                        float(heartbeat_interval_s),
                    ),
                )
                fresh.execute("COMMIT")
                # New databases take the migrations too, before the rename: a viewer or a command
                # that finds run.db always finds the current schema.
                _migrate(fresh, building, 1)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot create {run_dir / DB_NAME}: {exc}") from exc
        building.replace(run_dir / DB_NAME)
        conn = _connect_writer(run_dir / DB_NAME)
        return cls(run_dir, conn)

    @classmethod
    def open_writer(cls, run_dir: Path | str, *, force: bool = False, claim: bool = True) -> RunStore:
        """Reopen a run to resume it: migrates an old schema, refuses a run another trainer holds.

        A trainer *claims* the run: its pid and heartbeat become the run's, and commands left
        "running" or "pending" by a dead trainer are marked failed (their caller is told, not hung;
        a stale "stop" or "pause" must not hit the new trainer; the workbench queues commands only
        while a trainer is live). ``claim=False`` opens without any of that, for a policy process
        that answers chat beside a stopped or crashed run and must not make it look alive.
        ``force`` skips the live-trainer check (for a trainer that knows the old one is gone).
        """
        run_dir = Path(run_dir)
        db = _db_path(run_dir)
        conn = _connect_writer(db)
        store = cls(run_dir, conn)
        try:
            _migrate(conn, db, _schema_version(conn, db))
            info = store.run_info()
        except BaseException:
            conn.close()
            raise
        if not claim:
            store.claims_run = False
            return store
        mine = info.pid == os.getpid() and info.host == socket.gethostname()
        if not force and not mine and info.effective_state in LIVE_STATES:
            conn.close()
            raise StoreError(
                f"run {run_dir.name} is still being trained by pid {info.pid} on {info.host}; stop it first"
            )
        now = time.time()
        with store._write() as write:
            write.execute(
                "UPDATE run SET pid = ?, host = ?, heartbeat_at = ? WHERE id = 1",
                (os.getpid(), socket.gethostname(), now),
            )
            write.execute(
                "UPDATE commands SET status = 'failed', done_at = ?, result = ? WHERE status = 'running'",
                (now, _dumps({"error": "interrupted: the trainer stopped before finishing it"})),
            )
            write.execute(
                "UPDATE commands SET status = 'failed', done_at = ?, result = ? WHERE status = 'pending'",
                (now, _dumps({"error": "not taken: the trainer it was sent to stopped first"})),
            )
        return store

    def close(self) -> None:
        """Stop the heartbeat thread and close the database (idempotent)."""
        self.stop_heartbeat()
        with self._lock:
            self._conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def log_path(self) -> Path:
        return self.run_dir / LOG_NAME

    @property
    def checkpoints_dir(self) -> Path:
        return self.run_dir / CHECKPOINTS_DIR

    def _touch(self, db: sqlite3.Connection, now: float) -> None:
        if self.claims_run:
            db.execute("UPDATE run SET heartbeat_at = ? WHERE id = 1", (now,))

    # -- run state and liveness

    def set_state(self, state: str, error: str | None = None) -> None:
        """Record the trainer's state; running records this process as the trainer, terminal ends it."""
        if state not in RUN_STATES:
            raise StoreError(f"unknown run state {state!r}; choose one of {', '.join(RUN_STATES)}")
        now = time.time()
        with self._write() as db:
            db.execute("UPDATE run SET state = ?, heartbeat_at = ? WHERE id = 1", (state, now))
            if state == "running":
                db.execute(
                    "UPDATE run SET pid = ?, host = ?, started_at = coalesce(started_at, ?), "
                    "ended_at = NULL, error = NULL WHERE id = 1",
                    (os.getpid(), socket.gethostname(), now),
                )
            elif state in ("stopped", "crashed", "finished"):
                db.execute("UPDATE run SET ended_at = ?, error = ? WHERE id = 1", (now, error))

    def heartbeat(self) -> None:
        """Tell viewers the trainer is alive (every write does this too)."""
        with self._write() as db:
            self._touch(db, time.time())

    def start_heartbeat(self, interval_s: float = DEFAULT_HEARTBEAT_S) -> None:
        """Beat from a background thread (its own connection) so long steps do not look like a crash."""
        self.stop_heartbeat()
        with self._write() as db:
            db.execute("UPDATE run SET heartbeat_interval_s = ? WHERE id = 1", (float(interval_s),))
        self._heartbeat = _HeartbeatThread(self._db, interval_s)
        self._heartbeat.start()

    def stop_heartbeat(self) -> None:
        """Stop the heartbeat thread, if any."""
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None

    # -- results

    def add_episodes(
        self, batch: Iterable[Any], iteration: int, phase: str = "train", split: str | None = None
    ) -> list[int]:
        """Store a batch of episodes (records, record dicts or EpisodeEntry) in one transaction.

        Returns the new ids in batch order. Either the whole batch is visible to readers or none of it.
        """
        now = time.time()
        prepared = _prepare_episodes(batch, iteration, phase, split, now)
        with self._write() as db:
            ids = _insert_episodes(db, prepared)
            self._touch(db, now)
        return ids

    def add_turn_tokens(self, episode_id: int, tokens: Iterable[TurnTokens]) -> None:
        """Store (or replace) the tokens of an episode's turns, e.g. once advantages are known."""
        with self._write() as db:
            self._insert_tokens(db, int(episode_id), tokens)

    @staticmethod
    def _insert_tokens(db: sqlite3.Connection, episode_id: int, tokens: Iterable[TurnTokens]) -> None:
        db.executemany(
            "INSERT OR REPLACE INTO turn_tokens (episode_id, turn_index, token_ids, logprobs, "
            'ref_logprobs, "values", advantages, returns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
            [_token_row(episode_id, turn) for turn in tokens],
        )

    def add_iteration(self, iteration: int, metrics: Mapping[str, Any]) -> None:
        """Record one iteration's metrics (replacing a row of the same iteration, as after a resume).

        Known names fill their columns; ``status_shares`` ({status: share}) fills the share_*
        columns; anything else lands in ``extra``.
        """
        metrics = dict(metrics)
        for status, share in dict(metrics.pop("status_shares", None) or {}).items():
            metrics[f"share_{status}"] = share
        columns = {name: _number(metrics.pop(name)) for name in ITERATION_METRICS if name in metrics}
        now = time.time()
        names = ["iteration", "time", *columns, "extra"]
        values = [int(iteration), now, *columns.values(), _dumps(metrics)]
        with self._write() as db:
            db.execute(
                f"INSERT OR REPLACE INTO iterations ({', '.join(names)}) "
                f"VALUES ({', '.join('?' * len(names))})",
                values,
            )
            self._touch(db, now)

    def add_tool_stats(self, iteration: int, stats: Mapping[str, ToolStat]) -> None:
        """Add per-tool counts for an iteration (summed with counts already stored for it)."""
        with self._write() as db:
            db.executemany(
                "INSERT INTO tool_stats VALUES (?, ?, ?, ?, ?) ON CONFLICT (iteration, tool) DO UPDATE "
                "SET calls = calls + excluded.calls, errors = errors + excluded.errors, "
                "latency_s = latency_s + excluded.latency_s",
                [
                    (int(iteration), str(tool), int(s.calls), int(s.errors), float(s.latency_s))
                    for tool, s in stats.items()
                ],
            )

    def add_checkpoint(
        self, iteration: int, path: Path | str, heldout_success: float | None = None, is_best: bool = False
    ) -> int:
        """Record a saved checkpoint; marking it best unmarks the previous best. A path inside the run
        folder is stored relative to it, so a run folder that is moved or copied keeps its checkpoints."""
        path = Path(path)
        with suppress(ValueError):
            path = path.resolve().relative_to(self.run_dir.resolve())
        with self._write() as db:
            if is_best:
                db.execute("UPDATE checkpoints SET is_best = 0 WHERE is_best = 1")
            cursor = db.execute(
                "INSERT INTO checkpoints (iteration, path, created_at, heldout_success, is_best) "
                "VALUES (?, ?, ?, ?, ?)",
                (int(iteration), str(path), time.time(), _number(heldout_success), int(is_best)),
            )
            return int(cursor.lastrowid or 0)

    def update_checkpoint(
        self,
        checkpoint_id: int,
        *,
        heldout_success: float | None = None,
        is_best: bool | None = None,
        kept: bool | None = None,
    ) -> None:
        """Fill in a checkpoint's held-out score, best mark, or that rotation deleted it."""
        with self._write() as db:
            if heldout_success is not None:
                db.execute(
                    "UPDATE checkpoints SET heldout_success = ? WHERE id = ?",
                    (_number(heldout_success), int(checkpoint_id)),
                )
            if is_best:
                db.execute("UPDATE checkpoints SET is_best = 0 WHERE is_best = 1")
            if is_best is not None:
                db.execute(
                    "UPDATE checkpoints SET is_best = ? WHERE id = ?", (int(is_best), int(checkpoint_id))
                )
            if kept is not None:
                db.execute("UPDATE checkpoints SET kept = ? WHERE id = ?", (int(kept), int(checkpoint_id)))

    def add_eval(
        self,
        iteration: int,
        suite: str,
        split: str,
        n: int,
        success_rate: float | None,
        mean_return: float | None = None,
        status_shares: Mapping[str, float] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> int:
        """Record one evaluation of the policy on a suite split."""
        shares = dict(status_shares or {})
        unknown = set(shares) - set(STATUSES)
        if unknown:
            raise StoreError(f"unknown status(es) in status_shares: {', '.join(sorted(unknown))}")
        with self._write() as db:
            cursor = db.execute(
                f"INSERT INTO evals (iteration, suite, split, n, success_rate, mean_return, "
                f"{', '.join(SHARE_COLUMNS)}, created_at, extra) VALUES ({', '.join('?' * 13)})",
                (
                    int(iteration),
                    str(suite),
                    str(split),
                    int(n),
                    _number(success_rate),
                    _number(mean_return),
                    *(_number(shares.get(status)) for status in STATUSES),
                    time.time(),
                    _dumps(dict(extra or {})),
                ),
            )
            return int(cursor.lastrowid or 0)

    def discard_after(self, iteration: int) -> None:
        """Forget results of iterations after ``iteration``: resuming from an older checkpoint
        replays them, and the run should not show them twice. Checkpoints are kept, and so are
        comparison episodes (phase ``compare``): a resume does not replay them."""
        with self._write() as db:
            db.execute("DELETE FROM episodes WHERE iteration > ? AND phase != 'compare'", (int(iteration),))
            for table in ("iterations", "tool_stats", "evals"):
                db.execute(f"DELETE FROM {table} WHERE iteration > ?", (int(iteration),))

    # -- commands

    def take_pending_commands(self, kinds: Sequence[str] | None = None) -> list[Command]:
        """Claim every pending command (of ``kinds``, default all), marking it running, oldest first;
        call between steps."""
        now = time.time()
        only = "" if kinds is None else f" AND kind IN ({', '.join('?' * len(kinds))})"
        params = [] if kinds is None else list(kinds)
        with self._write() as db:
            rows = db.execute(f"SELECT * FROM commands WHERE status = 'pending'{only} ORDER BY id", params).fetchall()
            if rows:
                marks = ", ".join("?" * len(rows))
                db.execute(f"UPDATE commands SET status = 'running', started_at = ? WHERE id IN ({marks})",
                           [now, *(row["id"] for row in rows)])
            self._touch(db, now)
        return [replace(_command(row), status="running", started_at=now) for row in rows]

    def command_progress(self, command_id: int, progress: Any) -> None:
        """Publish a running command's progress as ``{"partial": progress}`` in its result (the
        workbench streams a chat reply from it); a no-op once the command has finished."""
        with self._write() as db:
            db.execute("UPDATE commands SET result = ? WHERE id = ? AND status = 'running'",
                       (_dumps({"partial": progress}), int(command_id)))

    def finish_command(self, command_id: int, status: str = "done", result: Any = None) -> None:
        """Record a command's outcome ("done" or "failed") and its JSON-able result."""
        if status not in ("done", "failed"):
            raise StoreError(f"a command finishes as done or failed, not {status!r}")
        with self._write() as db:
            cursor = db.execute(
                "UPDATE commands SET status = ?, result = ?, done_at = ? WHERE id = ?",
                (status, _dumps(result), time.time(), int(command_id)),
            )
            if cursor.rowcount == 0:
                raise StoreError(f"no command with id {command_id}")


class _HeartbeatThread(threading.Thread):
    """Refreshes ``run.heartbeat_at`` every interval on its own connection until stopped."""

    def __init__(self, db: Path, interval_s: float) -> None:
        super().__init__(name="run-heartbeat", daemon=True)
        self._db = db
        self._interval = max(0.05, float(interval_s))
        self._stopped = threading.Event()

    def run(self) -> None:
        conn = sqlite3.connect(self._db, timeout=WRITER_BUSY_S, isolation_level=None)
        try:
            while not self._stopped.wait(self._interval):
                with suppress(sqlite3.Error):  # a missed beat is harmless; the next one retries
                    conn.execute("UPDATE run SET heartbeat_at = ? WHERE id = 1", (time.time(),))
        finally:
            conn.close()

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=WRITER_BUSY_S + 1)


# --------------------------------------------------------------------------------------------
# Viewers' writes: flags and forensics results


MAX_NOTE_CHARS = 2000


class RunAnnotator(_Writes):
    """A viewer's writer, for what people and forensics commands add to a run beside its trainer.

    It never claims the run: pid, host and heartbeat stay the trainer's, and it may be opened while
    a trainer writes. Each write is one short ``BEGIN IMMEDIATE`` transaction; SQLite's busy timeout
    (:data:`WRITER_BUSY_S`) makes it wait for the trainer's transaction rather than fail. Opening an
    older database upgrades it (one transaction), since annotations need the version 2 tables.
    """

    def __init__(self, run_dir: Path | str) -> None:
        self.run_dir = Path(run_dir)
        self._db = _db_path(self.run_dir)
        self._lock = threading.RLock()
        self._conn = _connect_writer(self._db)
        try:
            _migrate(self._conn, self._db, _schema_version(self._conn, self._db))
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> RunAnnotator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_flag(self, episode_id: int, kind: str, note: str | None = None) -> Flag:
        """Flag an episode; flagging it again with the same kind replaces the note."""
        kind = _flag_kind(kind)
        if note is not None:
            note = str(note).strip()[:MAX_NOTE_CHARS] or None
        now = time.time()
        with self._write() as db:
            if db.execute("SELECT 1 FROM episodes WHERE id = ?", (int(episode_id),)).fetchone() is None:
                raise StoreError(f"no episode with id {episode_id} in {self.run_dir.name}")
            db.execute(
                "INSERT INTO flags (episode_id, kind, note, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (episode_id, kind) DO UPDATE SET note = excluded.note, "
                "created_at = excluded.created_at",
                (int(episode_id), kind, note, now),
            )
        return Flag(int(episode_id), kind, note, now)

    def remove_flag(self, episode_id: int, kind: str | None = None) -> int:
        """Remove an episode's flag of ``kind`` (every flag when None); how many were removed."""
        sql, params = "DELETE FROM flags WHERE episode_id = ?", [int(episode_id)]
        if kind is not None:
            sql += " AND kind = ?"
            params.append(_flag_kind(kind))
        with self._write() as db:
            return int(db.execute(sql, params).rowcount)

    def add_episodes(
        self, batch: Iterable[Any], iteration: int, phase: str = "compare", split: str | None = None
    ) -> list[int]:
        """Store episodes a forensics command played (one transaction; ids in batch order)."""
        prepared = _prepare_episodes(batch, iteration, phase, split, time.time())
        with self._write() as db:
            return _insert_episodes(db, prepared)

    def add_comparison(
        self,
        labels: Sequence[str],
        suite: str,
        split: str,
        n: int,
        seed: int | None,
        result: Mapping[str, Any],
    ) -> int:
        """Record a checkpoint comparison and its result JSON; returns its id."""
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO comparisons (created_at, labels, suite, split, n, seed, result) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    time.time(),
                    _dumps(list(labels)),
                    str(suite),
                    str(split),
                    int(n),
                    None if seed is None else int(seed),
                    _dumps(dict(result)),
                ),
            )
            return int(cursor.lastrowid or 0)


def add_flag(run_dir: Path | str, episode_id: int, kind: str, note: str | None = None) -> Flag:
    """Flag an episode of a run as a good example, a bad example or a bug (safe beside a trainer)."""
    with RunAnnotator(run_dir) as annotator:
        return annotator.add_flag(episode_id, kind, note)


def remove_flag(run_dir: Path | str, episode_id: int, kind: str | None = None) -> int:
    """Remove an episode's flag of ``kind`` (all its flags when None); returns how many went."""
    with RunAnnotator(run_dir) as annotator:
        return annotator.remove_flag(episode_id, kind)


# --------------------------------------------------------------------------------------------
# Any process: commands and the runs list


def send_command(run_dir: Path | str, kind: str, payload: Mapping[str, Any] | None = None) -> int:
    """Queue a command for the run's trainer (one short INSERT) and return its id."""
    if kind not in COMMAND_KINDS:
        raise StoreError(f"unknown command {kind!r}; choose one of {', '.join(COMMAND_KINDS)}")
    db = _db_path(run_dir)
    conn = _connect_writer(db)
    try:
        _check_version(_schema_version(conn, db), db, can_migrate=False)  # an old trainer's db
        try:
            cursor = conn.execute(
                "INSERT INTO commands (kind, payload, created_at) VALUES (?, ?, ?)",
                (kind, _dumps(dict(payload or {})), time.time()),
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot queue command in {db}: {exc}") from exc
        return int(cursor.lastrowid or 0)
    finally:
        conn.close()


def wait_command(
    run_dir: Path | str, command_id: int, timeout: float = 10.0, poll_s: float = 0.05
) -> Command:
    """Poll until the trainer finishes the command; CommandTimeout after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    with RunReader(run_dir) as reader:
        while True:
            command = reader.command(command_id)
            if command.finished:
                return command
            if time.monotonic() >= deadline:
                raise CommandTimeout(
                    f"command {command_id} ({command.kind}) is still {command.status} after {timeout:g} s; "
                    "is the trainer running?"
                )
            time.sleep(poll_s)


def migrate(run_dir: Path | str) -> int:
    """Upgrade a run database to the current schema (needs no live trainer); returns the version."""
    with RunStore.open_writer(run_dir):
        return SCHEMA_VERSION


def summarize_run(run_dir: Path | str) -> RunSummary:
    """One runs-list line for a folder, or a summary whose ``error`` says why it cannot be read."""
    run_dir = Path(run_dir)
    try:
        with RunReader(run_dir) as reader:
            info = reader.run_info()
            row = reader._one("SELECT count(*), max(iteration) FROM iterations")
            best = reader._one(
                "SELECT max(s) FROM (SELECT max(heldout_success) AS s FROM checkpoints "
                "UNION ALL SELECT max(success_rate) FROM evals WHERE split = 'heldout')"
            )
            return RunSummary(
                name=info.name,
                path=run_dir,
                model=info.model,
                state=info.effective_state,
                iterations=int(row[0]) if row else 0,
                last_iteration=row[1] if row else None,
                episodes=reader.count_episodes(),
                best_heldout_success=best[0] if best else None,
                created_at=info.created_at,
            )
    except StoreError as exc:
        return RunSummary(name=run_dir.name, path=run_dir, error=str(exc))


def list_runs(runs_root: Path | str) -> list[RunSummary]:
    """A summary per run folder under ``runs_root``, newest first; broken folders come last with
    their ``error`` (hidden folders and plain files are skipped). A missing root is an empty list."""
    root = Path(runs_root)
    if not root.is_dir():
        return []
    summaries = [
        summarize_run(path)
        for path in sorted(root.iterdir())
        if path.is_dir() and not path.name.startswith(".")
    ]
    return sorted(summaries, key=lambda s: (not s.ok, -(s.created_at or 0.0), s.name))
