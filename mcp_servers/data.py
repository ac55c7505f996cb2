"""The ``data`` MCP server: load small shipped data sets as tables, then filter, sort, aggregate, join.

State lives in a workspace of named tables that belongs to one server instance: a fresh instance
(``build_server()``, or a fresh ``python -m mcp_servers.data`` process) starts empty, so episodes
never see each other's tables. The shipped data sets are read once, read-only, and never written.

Safety, by construction rather than by filtering:
- a data set name is only ever a key of ``DATASETS``; a table name is only ever a key of the
  workspace dict, checked against a short identifier pattern. No caller string reaches the file
  system, so path traversal has nothing to traverse;
- the workspace is bounded (``MAX_TABLES`` tables of at most ``MAX_TABLE_ROWS`` rows and
  ``MAX_COLUMNS`` columns), a join is sized before it is built, and results show at most a small
  preview, so every operation is linear in a few thousand rows and ends far inside
  ``Limits.time_limit_s``;
- every refusal is a one-line ``ToolError`` that names what is valid (data sets, tables, columns,
  operators, units), so a model can correct its next call.

Results are compact JSON text (what the model reads back) with the same data as structured content.
"""

from __future__ import annotations

import functools
import json
import math
import re
import threading
from dataclasses import dataclass
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent
from pydantic import Field

from mcp_servers.assets import asset_path
from mcp_servers.limits import DEFAULT_LIMITS, Limits, ToolError, check_payload

DATASETS = ("cities", "shipments", "stations")
MAX_TABLES = 32
MAX_TABLE_ROWS = 5_000
MAX_COLUMNS = 24
MAX_NAME_CHARS = 32
PREVIEW_ROWS = 2
MAX_SORT_PREVIEW = 10
MAX_ABS_VALUE = 1e15
NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

FILTER_OPS = ("==", "!=", ">", ">=", "<", "<=", "contains")
TEXT_OPS = ("==", "!=", "contains")
AGG_FUNCS = ("sum", "mean", "min", "max", "count")

# unit -> (dimension, factor to the dimension's base unit); temperatures are handled apart
UNITS: dict[str, tuple[str, float]] = {
    "m": ("length", 1.0),
    "km": ("length", 1000.0),
    "cm": ("length", 0.01),
    "mm": ("length", 0.001),
    "mi": ("length", 1609.344),
    "ft": ("length", 0.3048),
    "in": ("length", 0.0254),
    "yd": ("length", 0.9144),
    "kg": ("mass", 1.0),
    "g": ("mass", 0.001),
    "mg": ("mass", 1e-6),
    "t": ("mass", 1000.0),
    "lb": ("mass", 0.45359237),
    "oz": ("mass", 0.028349523125),
    "l": ("volume", 1.0),
    "ml": ("volume", 0.001),
    "m3": ("volume", 1000.0),
    "gal": ("volume", 3.785411784),
    "m/s": ("speed", 1.0),
    "km/h": ("speed", 1 / 3.6),
    "mph": ("speed", 0.44704),
    "kn": ("speed", 1852 / 3600),
    "C": ("temperature", 1.0),
    "F": ("temperature", 1.0),
    "K": ("temperature", 1.0),
}
_UNIT_BY_FOLDED = {unit.lower(): unit for unit in UNITS}


@dataclass(frozen=True)
class Table:
    """An immutable table: operations build new tables, so a shared data set is never changed."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def index(self, column: Any, name: str) -> int:
        """Position of ``column``, or a ToolError listing the columns the table has."""
        if isinstance(column, str) and column in self.columns:
            return self.columns.index(column)
        raise ToolError(f"table {name} has no column {_show(column)}; columns: {', '.join(self.columns)}")

    def is_numeric(self, position: int) -> bool:
        """Whether every value of a column is a number (the data sets have no missing values)."""
        return all(_is_number(row[position]) for row in self.rows)

    def preview(self, count: int = PREVIEW_ROWS) -> list[dict[str, Any]]:
        """The first rows as objects, the form a model reads most easily."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows[:count]]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _show(value: Any) -> str:
    """A caller's value quoted and cut short, so an error message stays one short line."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = " ".join(text.split())
    return repr(text if len(text) <= 40 else text[:37] + "...")


@functools.lru_cache(maxsize=len(DATASETS))
def read_dataset(name: str) -> Table:
    """Read one shipped data set, once per process; ``name`` must already be a key of DATASETS."""
    if name not in DATASETS:
        raise ToolError(f"unknown data set {_show(name)}; data sets: {', '.join(DATASETS)}")
    data = json.loads(asset_path("data", f"{name}.json").read_text(encoding="utf-8"))
    columns = tuple(data["columns"])
    rows = tuple(tuple(row) for row in data["rows"])
    if any(len(row) != len(columns) for row in rows):
        raise ToolError(f"data set {name} is damaged: a row does not match its columns")
    return Table(columns, rows)


class Workspace:
    """The named tables of one server instance, guarded by a lock (sync tools run in threads)."""

    def __init__(self) -> None:
        self.tables: dict[str, Table] = {}
        self.lock = threading.Lock()
        self._counter = 0

    def get(self, name: Any) -> Table:
        """A table by name, or a ToolError that says how to get one."""
        if isinstance(name, str) and name in self.tables:
            return self.tables[name]
        if name in DATASETS:
            raise ToolError(f"table {name} is not loaded; call load with dataset={name!r} first")
        loaded = ", ".join(self.tables) or "none"
        raise ToolError(f"no table {_show(name)}; tables: {loaded}; data sets to load: {', '.join(DATASETS)}")

    def put(self, table: Table, save_as: str | None) -> str:
        """Store a result under ``save_as`` (replacing a table of that name) or a fresh name t1, t2..."""
        if len(table.rows) > MAX_TABLE_ROWS:
            raise ToolError(f"the result has {len(table.rows)} rows; the limit is {MAX_TABLE_ROWS}")
        name = check_name(save_as, "save_as") if save_as is not None else self._fresh_name()
        if name not in self.tables and len(self.tables) >= MAX_TABLES:
            raise ToolError(
                f"the workspace is full ({MAX_TABLES} tables); overwrite one by reusing its name in save_as"
            )
        self.tables[name] = table
        return name

    def _fresh_name(self) -> str:
        while True:
            self._counter += 1
            name = f"t{self._counter}"
            if name not in self.tables:
                return name


def check_name(name: Any, what: str) -> str:
    """A table name: a short identifier, so it can never be read as a path or pattern."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or len(name) > MAX_NAME_CHARS:
        raise ToolError(
            f"{what} {_show(name)} is not a valid table name; use letters, digits and _ "
            f"(up to {MAX_NAME_CHARS} characters, not starting with a digit)"
        )
    return name


def reply(data: dict[str, Any], limits: Limits) -> CallToolResult:
    """Compact JSON text plus the same structured content; a preview shrinks to fit the size limit."""
    text = json.dumps(data)
    while len(text) > limits.max_result_chars and isinstance(data.get("preview"), list) and data["preview"]:
        data = {**data, "preview": data["preview"][:-1]}
        text = json.dumps(data)
    if len(text) > limits.max_result_chars:
        raise ToolError(
            f"the result is {len(text)} characters; the limit is {limits.max_result_chars}; filter first"
        )
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)


def summary(name: str, table: Table, preview_rows: int = PREVIEW_ROWS) -> dict[str, Any]:
    """What a table-producing tool answers: the name to use next, its size, and a few rows."""
    return {
        "table": name,
        "rows": len(table.rows),
        "columns": list(table.columns),
        "preview": table.preview(preview_rows),
    }


def finite(value: Any, what: str) -> float:
    """A number a tool may compute with: finite and of a sane size."""
    if not _is_number(value) or not math.isfinite(value) or abs(value) > MAX_ABS_VALUE:
        raise ToolError(
            f"{what} must be a finite number no larger than {MAX_ABS_VALUE:g}; got {_show(value)}"
        )
    return float(value)


def choice(value: Any, valid: tuple[str, ...], what: str) -> str:
    """One of a fixed set of strings, with the valid ones listed on refusal."""
    if value not in valid:
        raise ToolError(f"unknown {what} {_show(value)}; use one of: {', '.join(valid)}")
    return value


# ---------------------------------------------------------------- operations (pure functions)


def filter_rows(table: Table, name: str, column: str, op: str, value: Any) -> Table:
    """Rows where ``column op value`` holds; numbers compare as numbers, text case-insensitively."""
    position = table.index(column, name)
    op = choice(op, FILTER_OPS, "op")
    if table.is_numeric(position):
        if op == "contains":
            raise ToolError(
                f"contains works on text; column {column} holds numbers, so use ==, !=, >, >=, < or <="
            )
        target = _as_number(value, column)
        test = _number_test(op, target)
    else:
        if op not in TEXT_OPS:
            raise ToolError(f"column {column} holds text; use ==, != or contains")
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ToolError(f"value for column {column} must be text; got {_show(value)}")
        test = _text_test(op, _number_text(value) if _is_number(value) else value)
    return Table(table.columns, tuple(row for row in table.rows if test(row[position])))


def _as_number(value: Any, column: str) -> float:
    """The filter value as a number; numeric text such as "500" is accepted, "500 kg" is not."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ToolError(
                f"column {column} holds numbers; give value as a number, not {_show(value)}"
            ) from None
    return finite(value, "value")


def _number_test(op: str, target: float) -> Any:
    tests = {
        "==": lambda x: x == target,
        "!=": lambda x: x != target,
        ">": lambda x: x > target,
        ">=": lambda x: x >= target,
        "<": lambda x: x < target,
        "<=": lambda x: x <= target,
    }
    return tests[op]


def _text_test(op: str, target: str) -> Any:
    folded = target.strip().casefold()
    if op == "contains":
        return lambda x: folded in str(x).casefold()
    if op == "==":
        return lambda x: str(x).casefold() == folded
    return lambda x: str(x).casefold() != folded


def _number_text(value: float) -> str:
    """A number as text the way data sets write it: 7.0 -> "7"."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def sort_rows(table: Table, name: str, column: str, descending: bool, limit: int | None) -> Table:
    """Rows ordered by one column (text case-insensitively), optionally cut to the first ``limit``."""
    position = table.index(column, name)
    if limit is not None and not 1 <= limit <= MAX_TABLE_ROWS:
        raise ToolError(f"limit must be from 1 to {MAX_TABLE_ROWS}; got {limit}")
    if table.is_numeric(position):
        key = lambda row: row[position]  # noqa: E731 - two tiny key functions read best inline
    else:
        key = lambda row: str(row[position]).casefold()  # noqa: E731
    rows = sorted(table.rows, key=key, reverse=descending)
    return Table(table.columns, tuple(rows[:limit] if limit is not None else rows))


def aggregate_rows(
    table: Table, name: str, func: str, column: str, group_by: str | None, limits: Limits
) -> dict[str, Any]:
    """One value over all rows, or one per distinct value of ``group_by``."""
    func = choice(func, AGG_FUNCS, "func")
    position = table.index(column, name)
    if func != "count" and not table.is_numeric(position):
        raise ToolError(f"{func} needs a number column; {column} holds text (count works on any column)")
    if group_by is None:
        return {"value": _reduce(func, [row[position] for row in table.rows], name)}
    key_position = table.index(group_by, name)
    groups: dict[Any, list[Any]] = {}
    for row in table.rows:
        groups.setdefault(row[key_position], []).append(row[position])
    if len(groups) > limits.max_result_rows:
        raise ToolError(
            f"{group_by} has {len(groups)} distinct values; at most {limits.max_result_rows} groups, so filter first"
        )
    ordered = sorted(groups, key=lambda k: (0, k, "") if _is_number(k) else (1, 0, str(k).casefold()))
    return {"groups": {_group_key(k): _reduce(func, groups[k], name) for k in ordered}}


def _group_key(value: Any) -> str:
    return _number_text(value) if _is_number(value) else str(value)


def _reduce(func: str, values: list[Any], name: str) -> Any:
    """Apply an aggregate; sums of whole numbers stay whole, other results keep 4 decimals."""
    if func == "count":
        return len(values)
    if func == "sum":
        total = sum(values)
        return total if isinstance(total, int) else round(total, 4)
    if not values:
        raise ToolError(f"table {name} has no rows, so it has no {func}")
    if func == "mean":
        return round(sum(values) / len(values), 4)
    return min(values) if func == "min" else max(values)


def join_tables(left: Table, left_name: str, right: Table, right_name: str, on: str) -> Table:
    """Inner join on a column both tables have; the size is computed before any row is built."""
    left_key = left.index(on, left_name)
    right_key = right.index(on, right_name)
    matches: dict[Any, list[tuple[Any, ...]]] = {}
    for row in right.rows:
        matches.setdefault(_join_key(row[right_key]), []).append(row)
    size = sum(len(matches.get(_join_key(row[left_key]), ())) for row in left.rows)
    if size > MAX_TABLE_ROWS:
        raise ToolError(
            f"the join would make {size} rows; the limit is {MAX_TABLE_ROWS}; filter the tables first"
        )
    kept = [i for i in range(len(right.columns)) if i != right_key]
    columns = list(left.columns)
    for i in kept:
        columns.append(_free_name(right.columns[i], columns))
    if len(columns) > MAX_COLUMNS:
        raise ToolError(f"the join would have {len(columns)} columns; the limit is {MAX_COLUMNS}")
    rows = tuple(
        row + tuple(other[i] for i in kept)
        for row in left.rows
        for other in matches.get(_join_key(row[left_key]), ())
    )
    return Table(tuple(columns), rows)


def _join_key(value: Any) -> Any:
    """Text keys match case-insensitively, like filter's ==; numbers match by value."""
    return str(value).casefold() if isinstance(value, str) else value


def _free_name(column: str, taken: list[str]) -> str:
    """``column``, or ``column_2``, ``column_3``... when the left table already has that name."""
    if column not in taken:
        return column
    number = 2
    while f"{column}_{number}" in taken:
        number += 1
    return f"{column}_{number}"


def convert_units(value: float, from_unit: str, to_unit: str) -> float:
    """Convert between units of one dimension; 10 significant digits keep the text short."""
    value = finite(value, "value")
    source, target = _unit(from_unit), _unit(to_unit)
    source_dim, target_dim = UNITS[source][0], UNITS[target][0]
    if source_dim != target_dim:
        raise ToolError(f"cannot convert {source} ({source_dim}) to {target} ({target_dim})")
    if source_dim == "temperature":
        kelvin = {"C": value + 273.15, "F": (value - 32) * 5 / 9 + 273.15, "K": value}[source]
        if kelvin < -1e-9:
            raise ToolError(f"{value:g} {source} is below absolute zero")
        result = {"C": kelvin - 273.15, "F": (kelvin - 273.15) * 9 / 5 + 32, "K": kelvin}[target]
    else:
        result = value * UNITS[source][1] / UNITS[target][1]
    return float(f"{result:.10g}")


def _unit(unit: Any) -> str:
    """The canonical spelling of a unit (case is ignored), or a ToolError listing every valid unit."""
    if isinstance(unit, str) and unit.strip().lower() in _UNIT_BY_FOLDED:
        return _UNIT_BY_FOLDED[unit.strip().lower()]
    by_dimension: dict[str, list[str]] = {}
    for name, (dimension, _) in UNITS.items():
        by_dimension.setdefault(dimension, []).append(name)
    valid = "; ".join(f"{dim}: {', '.join(names)}" for dim, names in by_dimension.items())
    raise ToolError(f"unknown unit {_show(unit)}; valid units are {valid}")


# ---------------------------------------------------------------- the server


TableArg = Annotated[str, Field(description="Table name, e.g. shipments or t1.")]
ColumnArg = Annotated[str, Field(description="Column name.")]
SaveArg = Annotated[str | None, Field(description="Name for the result table; default t1, t2...")]


def build_server(limits: Limits = DEFAULT_LIMITS) -> MCPServer:
    """A fresh ``data`` server with its own empty workspace."""
    server = MCPServer("data", log_level="WARNING")
    workspace = Workspace()

    @server.tool()
    def load(
        dataset: Annotated[
            str, Field(description="Data set name.", json_schema_extra={"enum": list(DATASETS)})
        ],
    ) -> CallToolResult:
        """Load a data set (cities, shipments, stations) as a table of the same name."""
        check_payload({"dataset": dataset}, limits)
        table = read_dataset(choice(dataset, DATASETS, "data set"))
        with workspace.lock:
            name = workspace.put(table, dataset)
        return reply(summary(name, table), limits)

    @server.tool(name="filter")
    def filter_table(
        table: TableArg,
        column: ColumnArg,
        op: Annotated[str, Field(description="Comparison.", json_schema_extra={"enum": list(FILTER_OPS)})],
        value: Annotated[str | float, Field(description="Number or text to compare with.")],
        save_as: SaveArg = None,
    ) -> CallToolResult:
        """Keep the rows where column op value holds, as a new table."""
        check_payload(
            {"table": table, "column": column, "op": op, "value": value, "save_as": save_as}, limits
        )
        with workspace.lock:
            result = filter_rows(workspace.get(table), table, column, op, value)
            name = workspace.put(result, save_as)
        return reply(summary(name, result), limits)

    @server.tool(name="sort")
    def sort_table(
        table: TableArg,
        column: ColumnArg,
        descending: Annotated[bool, Field(description="Largest first.")] = False,
        limit: Annotated[int | None, Field(description="Keep only the first rows.")] = None,
        save_as: SaveArg = None,
    ) -> CallToolResult:
        """Sort a table by one column, as a new table; preview shows the first rows."""
        check_payload({"table": table, "column": column, "save_as": save_as}, limits)
        with workspace.lock:
            result = sort_rows(workspace.get(table), table, column, descending, limit)
            name = workspace.put(result, save_as)
        shown = min(limit, MAX_SORT_PREVIEW) if limit is not None else PREVIEW_ROWS
        return reply(summary(name, result, shown), limits)

    @server.tool()
    def aggregate(
        table: TableArg,
        func: Annotated[str, Field(description="Aggregate.", json_schema_extra={"enum": list(AGG_FUNCS)})],
        column: ColumnArg,
        group_by: Annotated[str | None, Field(description="Column to group by.")] = None,
    ) -> CallToolResult:
        """Sum, mean, min, max or count of a column, optionally per group."""
        check_payload({"table": table, "func": func, "column": column, "group_by": group_by}, limits)
        with workspace.lock:
            source = workspace.get(table)
        return reply(aggregate_rows(source, table, func, column, group_by, limits), limits)

    @server.tool()
    def join(
        left: TableArg,
        right: TableArg,
        on: Annotated[str, Field(description="Column both tables have.")],
        save_as: SaveArg = None,
    ) -> CallToolResult:
        """Join two tables on a shared column, as a new table."""
        check_payload({"left": left, "right": right, "on": on, "save_as": save_as}, limits)
        with workspace.lock:
            result = join_tables(workspace.get(left), left, workspace.get(right), right, on)
            name = workspace.put(result, save_as)
        return reply(summary(name, result), limits)

    @server.tool()
    def convert(
        value: Annotated[float, Field(description="The amount to convert.")],
        from_unit: Annotated[str, Field(description="Unit symbol, e.g. km, lb, C.")],
        to_unit: Annotated[str, Field(description="Unit symbol, e.g. mi, kg, F.")],
    ) -> float:
        """Convert a value from one unit to another (symbols such as km, mi, kg, lb, C, F)."""
        check_payload({"from_unit": from_unit, "to_unit": to_unit}, limits)
        return convert_units(value, from_unit, to_unit)

    @server.tool()
    def tables() -> CallToolResult:
        """List the loaded tables with their row counts."""
        with workspace.lock:
            data = {name: len(table.rows) for name, table in workspace.tables.items()}
        return reply(data, limits)

    return server


def main() -> None:
    build_server().run()


if __name__ == "__main__":
    main()
