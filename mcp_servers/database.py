"""The ``database`` MCP server: read-only SQL over the small invented shop in ``assets/shop.db``.

Tools: ``list_tables()``, ``describe(table)`` and ``query(sql)``.

Read-only by construction, in layers, so that no single mistake opens a write path:

1. the shipped file is opened with ``mode=ro`` and copied, with SQLite's backup API, into a private
   in-memory database owned by one server instance; the file is never written, and every episode
   (every ``build_server()``) starts from the same fresh copy;
2. ``PRAGMA query_only`` is set and temporary storage is kept in memory (no temp files on disk);
3. an authorizer denies every action except reading tables, selecting, calling functions (bar
   ``load_extension``) and recursive CTEs: no ATTACH, PRAGMA, DDL, DML, transactions or VACUUM;
4. the statement must start with SELECT, WITH or VALUES, and exactly one statement is allowed;
5. a progress handler interrupts any query that runs past ``Limits.time_limit_s``; rows are capped
   at ``Limits.max_result_rows`` and the result text at ``Limits.max_result_chars``, with a
   ``truncated`` flag.

Every failure is a ``ToolError`` with a one-line message (SQLite's own text for SQL errors, e.g.
``no such table: sales``, plus a hint) that a model can act on.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent
from pydantic import Field

from mcp_servers.assets import asset_path
from mcp_servers.limits import DEFAULT_LIMITS, Limits, ToolError, check_payload

DB_ASSET = "shop.db"
MAX_CELL_CHARS = 200  # one text cell in a result; longer values are cut (and flagged truncated)
MAX_COLUMNS = 64  # columns a result may have (SQLite's own limit is 2000)
MAX_VALUE_BYTES = 1_000_000  # largest string or blob a query may build (randomblob, printf, ...)
PROGRESS_STEPS = 1_000  # VM instructions between two deadline checks

# sqlite3 authorizer action codes (sqlite.org/c3ref/c_alter_table.html), for readable refusals.
_ACTIONS = {
    1: "CREATE INDEX", 2: "CREATE TABLE", 3: "CREATE TEMP INDEX", 4: "CREATE TEMP TABLE",
    5: "CREATE TEMP TRIGGER", 6: "CREATE TEMP VIEW", 7: "CREATE TRIGGER", 8: "CREATE VIEW", 9: "DELETE",
    10: "DROP INDEX", 11: "DROP TABLE", 12: "DROP TEMP INDEX", 13: "DROP TEMP TABLE", 14: "DROP TEMP TRIGGER",
    15: "DROP TEMP VIEW", 16: "DROP TRIGGER", 17: "DROP VIEW", 18: "INSERT", 19: "PRAGMA", 20: "READ",
    21: "SELECT", 22: "TRANSACTION", 23: "UPDATE", 24: "ATTACH", 25: "DETACH", 26: "ALTER TABLE",
    27: "REINDEX", 28: "ANALYZE", 29: "CREATE VIRTUAL TABLE", 30: "DROP VIRTUAL TABLE", 31: "FUNCTION",
    32: "SAVEPOINT", 33: "RECURSIVE",
}
_ALLOWED_ACTIONS = {20, 21, 31, 33}  # READ, SELECT, FUNCTION, RECURSIVE
_DENIED_FUNCTIONS = {"load_extension"}
_LEADING_NOISE = re.compile(r"(?:[\s;]+|--[^\n]*(?:\n|$)|/\*.*?(?:\*/|$))*", re.DOTALL)
_FIRST_WORD = re.compile(r"[A-Za-z_]+")
# Every SQLite statement that is not a query starts with one of these words; refusing them by name
# gives a clear message (a typo such as "selec" still reaches SQLite for its own syntax error).
_WRITE_KEYWORDS = {
    "insert", "update", "delete", "replace", "upsert", "drop", "create", "alter", "attach", "detach",
    "pragma", "vacuum", "reindex", "analyze", "begin", "commit", "end", "rollback", "savepoint", "release",
    "explain",
}


class ShopDatabase:
    """One private in-memory copy of the shop, locked down so that only single SELECTs run.

    Sync tools run in worker threads, so the connection is shared with ``check_same_thread=False``
    and every use holds ``self._lock``.
    """

    def __init__(self, source: Path, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._deadline = math.inf
        self._denied: list[str] = []
        self._conn = _private_copy(source)
        self.schema = _read_schema(self._conn)
        self._lock_down()

    def _lock_down(self) -> None:
        """Apply the read-only layers; done after the schema is read, since PRAGMAs are denied later."""
        conn = self._conn
        conn.execute("PRAGMA query_only = ON")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
        conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, 4 * max(self.limits.max_string_chars, 1000))
        conn.setlimit(sqlite3.SQLITE_LIMIT_COLUMN, MAX_COLUMNS)
        conn.set_authorizer(self._authorize)
        conn.set_progress_handler(self._past_deadline, PROGRESS_STEPS)

    def _authorize(self, action: int, arg1: str | None, arg2: str | None, _db: str | None, _src: str | None) -> int:
        """SQLite authorizer: allow reads only, and remember what was refused for the message."""
        if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _DENIED_FUNCTIONS:
            self._denied.append(f"function {arg2}()")
            return sqlite3.SQLITE_DENY
        if action in _ALLOWED_ACTIONS:
            return sqlite3.SQLITE_OK
        self._denied.append(_ACTIONS.get(action, f"action {action}"))
        return sqlite3.SQLITE_DENY

    def _past_deadline(self) -> int:
        """Progress handler: a non-zero return makes SQLite abort the running statement."""
        return 1 if time.monotonic() > self._deadline else 0

    def tables(self) -> list[str]:
        return sorted(self.schema)

    def describe(self, table: str) -> dict[str, Any]:
        """Columns, types and row count of one table, from the schema read at start-up."""
        key = table.strip().strip('"`[]').lower()
        info = self.schema.get(key)
        if info is None:
            shown = _clip(" ".join(table.split()), 60)  # one line, whatever was sent
            raise ToolError(f"no such table: {shown}; tables: {', '.join(self.tables())}")
        return {"table": key, **info}

    def query(self, sql: str) -> dict[str, Any]:
        """Run one read-only statement under the deadline and return capped, JSON-safe rows."""
        _check_statement_shape(sql)
        if not self._lock.acquire(timeout=self.limits.time_limit_s + 1.0):
            raise ToolError("the database is busy with another query; try again")
        try:
            self._denied.clear()
            self._deadline = time.monotonic() + self.limits.time_limit_s
            cursor = self._conn.cursor()
            try:
                cursor.execute(sql)
                if cursor.description is None:
                    raise ToolError("the statement returned no rows; write one SELECT query")
                columns = [_clip(str(d[0]), 64) for d in cursor.description]
                result = _collect(cursor, columns, self.limits)
            except sqlite3.Error as exc:
                raise ToolError(self._explain(exc, sql)) from None
            except MemoryError:
                raise ToolError("the query needs too much memory; aggregate or add a LIMIT") from None
            finally:
                cursor.close()
                self._deadline = math.inf
        finally:
            self._lock.release()
        return result

    def _explain(self, exc: sqlite3.Error, sql: str) -> str:
        """Turn a sqlite3 error into one actionable line, keeping SQLite's own words."""
        message = str(exc)
        if self._denied and "pragma" in sql.lower():
            return "PRAGMA is not allowed: the database is read-only; describe(table) lists the columns"
        if self._denied:
            return f"{self._denied[0]} is not allowed: the database is read-only; use one SELECT query"
        if isinstance(exc, sqlite3.ProgrammingError) and "one statement" in message:
            return "only one SQL statement per query: remove everything after the first ';'"
        if message == "interrupted":
            return (f"query stopped: it ran past the {self.limits.time_limit_s:g} s time limit; "
                    "add a LIMIT or simplify it")
        if message.startswith("no such table"):
            return f"{message}; tables: {', '.join(self.tables())}"
        if message.startswith("no such column"):
            return f"{message}; describe(table) lists the columns"
        return message

    def close(self) -> None:
        self._conn.close()


def _private_copy(source: Path) -> sqlite3.Connection:
    """Copy the shipped file into a new in-memory database; the file is opened read-only."""
    if not source.is_file():
        raise FileNotFoundError(f"shop database not found at {source}; run python assets/make_shop_db.py")
    disk = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    try:
        memory = sqlite3.connect(":memory:", check_same_thread=False)
        disk.backup(memory)
    finally:
        disk.close()
    return memory


def _read_schema(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """Table -> {"columns": {name: type}, "rows": count}; read once, before PRAGMAs are denied."""
    schema: dict[str, dict[str, Any]] = {}
    names = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    for (name,) in names.fetchall():
        columns = {row[1]: row[2] or "ANY" for row in conn.execute(f'PRAGMA table_info("{name}")')}
        count = conn.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0]
        schema[name.lower()] = {"columns": columns, "rows": count}
    return schema


def _check_statement_shape(sql: str) -> None:
    """Refuse empty input and statements that are not queries by their first word, before SQLite runs.

    The authorizer would refuse them too; this layer exists for the clearer message and so that a
    statement SQLite does not authorize at all (such as COMMIT) never reaches it.
    """
    body = sql[_LEADING_NOISE.match(sql).end():]  # type: ignore[union-attr]  # the pattern always matches
    if not body:
        raise ToolError("the query is empty; write one SELECT statement")
    word = _FIRST_WORD.match(body)
    if word is not None and word.group(0).lower() in _WRITE_KEYWORDS:
        raise ToolError(f"{word.group(0).upper()} is not allowed: the database is read-only; use one SELECT query")


def _collect(cursor: sqlite3.Cursor, columns: list[str], limits: Limits) -> dict[str, Any]:
    """Fetch row by row, capped by count and by total text size, so the result stays small.

    Streaming (not ``fetchmany``) keeps memory at one row at a time even when every row holds a
    megabyte-sized value; the statement is abandoned as soon as the result is full.
    """
    budget = limits.max_result_chars - len(json.dumps(columns)) - 40
    rows: list[list[Any]] = []
    truncated = False
    while (raw_row := cursor.fetchone()) is not None:
        if len(rows) == limits.max_result_rows:
            truncated = True
            break
        row, cut = _json_row(raw_row)
        budget -= len(json.dumps(row)) + 1
        if budget < 0:
            truncated = True
            break
        truncated = truncated or cut
        rows.append(row)
    return {"columns": columns, "rows": rows, "truncated": truncated}


def _json_row(raw_row: tuple[Any, ...]) -> tuple[list[Any], bool]:
    """A row as JSON-safe cells, and whether any cell had to be shortened."""
    cells = [_json_cell(value) for value in raw_row]
    return [cell for cell, _ in cells], any(cut for _, cut in cells)


def _json_cell(value: Any) -> tuple[Any, bool]:
    """One cell: floats tidied (no 0.1+0.2 noise), non-finite floats and blobs as text, long text cut."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value), False
        return float(f"{value:.12g}"), False
    if isinstance(value, bytes):  # hex of a prefix only: a blob may be a megabyte
        shown = value[: MAX_CELL_CHARS // 2]
        return f"x'{shown.hex()}'" + ("..." if len(shown) < len(value) else ""), len(shown) < len(value)
    if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
        return value[:MAX_CELL_CHARS] + "...", True
    return value, False


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _compact(payload: dict[str, Any]) -> CallToolResult:
    """Compact JSON text (what the model reads) plus the same data as structured content."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=payload)


def build_server(limits: Limits = DEFAULT_LIMITS, db_path: Path | None = None) -> MCPServer:
    """A fresh server with its own private copy of the shop database."""
    db = ShopDatabase(db_path or asset_path(DB_ASSET), limits)
    server = MCPServer("database", log_level="WARNING")

    @server.tool()
    def list_tables() -> CallToolResult:
        """List the tables of the shop database."""
        return _compact({"tables": db.tables()})

    @server.tool()
    def describe(table: Annotated[str, Field(description="Table name, e.g. orders.")]) -> CallToolResult:
        """Show the columns, their types and the row count of one table."""
        check_payload({"table": table}, limits)
        return _compact(db.describe(table))

    @server.tool()
    def query(sql: Annotated[str, Field(description="One SQLite SELECT statement.")]) -> CallToolResult:
        """Run one read-only SQL SELECT on the shop database and return its rows."""
        check_payload({"sql": sql}, limits)
        return _compact(db.query(sql))

    return server


def main() -> None:
    build_server().run()


if __name__ == "__main__":
    main()
