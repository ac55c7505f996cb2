"""The data server over both transports: every tool, every error path, workspace state and hostile input.

Tests that take ``client`` run once in process and once against ``python -m mcp_servers.data`` over
stdio (one process for the module, started from a foreign working directory). Those two servers are
shared by the module, so such tests save into names of their own. Tests about state itself (fresh
names, isolation, a full workspace) open fresh in-process servers inside the test. Every expected
number is computed here from the shipped files, not by the server's code.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import mcp
import pytest
import pytest_asyncio

from mcp_servers.assets import asset_path
from mcp_servers.data import (
    AGG_FUNCS,
    DATASETS,
    FILTER_OPS,
    MAX_COLUMNS,
    MAX_TABLE_ROWS,
    MAX_TABLES,
    Table,
    Workspace,
    build_server,
    convert_units,
    filter_rows,
    read_dataset,
)
from mcp_servers.limits import Limits, ToolError
from mcp_servers.tasks.model import ToolResult

REPO = Path(__file__).resolve().parent.parent
FAST_S = 0.5  # a refusal must come back within this many seconds, transport included
TOOLS = {"load", "filter", "sort", "aggregate", "join", "convert", "tables"}

pytestmark = pytest.mark.asyncio(loop_scope="module")


def data_files() -> dict[str, str]:
    return {
        name: hashlib.sha256(asset_path("data", f"{name}.json").read_bytes()).hexdigest() for name in DATASETS
    }


def rows_of(name: str) -> list[dict[str, Any]]:
    """A shipped data set read straight from its file."""
    data = json.loads(asset_path("data", f"{name}.json").read_text())
    return [dict(zip(data["columns"], row, strict=True)) for row in data["rows"]]


@pytest.fixture(scope="module", autouse=True)
def data_sets_unchanged() -> Any:
    """Whatever the tests send, the shipped data files stay byte-identical."""
    before = data_files()
    yield
    assert data_files() == before


@asynccontextmanager
async def owned(open_client: Callable[[], mcp.Client]) -> AsyncIterator[mcp.Client]:
    """Hold a client open in a task of its own, so the module's tests can share it.

    anyio requires a client's context to be exited by the task that entered it, and pytest-asyncio
    finalises module fixtures in another task; the owning task enters and exits it here.
    """
    ready, done = asyncio.Event(), asyncio.Event()
    holder: dict[str, mcp.Client] = {}

    async def own() -> None:
        try:
            async with open_client() as client:
                holder["client"] = client
                ready.set()
                await done.wait()
        finally:
            ready.set()

    task = asyncio.create_task(own())
    await ready.wait()
    if "client" not in holder:
        await task  # raises why the client could not start
    try:
        yield holder["client"]
    finally:
        done.set()
        await task


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stdio_client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[mcp.Client]:
    """One data server process for the module, run from an empty folder (assets must not need the cwd)."""
    params = mcp.StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcp_servers.data"],
        cwd=str(tmp_path_factory.mktemp("elsewhere")),
        env={"PYTHONPATH": str(REPO)},
    )
    async with owned(lambda: mcp.Client(params)) as client:
        yield client


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def memory_client() -> AsyncIterator[mcp.Client]:
    """An in-process data server shared by the module (tests save into names of their own)."""
    async with owned(lambda: mcp.Client(build_server())) as client:
        yield client


@pytest.fixture(params=["memory", "stdio"])
def client(request: pytest.FixtureRequest) -> mcp.Client:
    return request.getfixturevalue(f"{request.param}_client")


def fresh(limits: Limits | None = None) -> mcp.Client:
    """A client on a brand-new server (an empty workspace), opened inside the test that uses it."""
    return mcp.Client(build_server(limits) if limits is not None else build_server())


async def call(client: mcp.Client, name: str, arguments: dict[str, Any] | None = None) -> ToolResult:
    """A call as the trainer sees it."""
    result = await client.call_tool(name, arguments or {})
    text = "".join(getattr(block, "text", "") for block in result.content)
    return ToolResult(text=text, structured=result.structured_content, is_error=bool(result.is_error))


async def ok(client: mcp.Client, name: str, arguments: dict[str, Any] | None = None) -> Any:
    """Call, assert success, and return the value; the text must be the same data as compact JSON."""
    result = await call(client, name, arguments)
    assert not result.is_error, f"{name}({arguments}) failed: {result.text}"
    assert json.loads(result.text) == result.value() or json.loads(result.text) == result.structured
    assert "\n" not in result.text
    return result.value()


async def refused(client: mcp.Client, name: str, arguments: dict[str, Any], fragment: str) -> str:
    """Assert the call fails fast with a one-line error containing ``fragment``; return the message."""
    start = time.perf_counter()
    result = await call(client, name, arguments)
    elapsed = time.perf_counter() - start
    assert result.is_error, f"{name}({str(arguments)[:80]}) was not refused: {result.text[:200]}"
    assert elapsed < FAST_S, f"{name}({str(arguments)[:80]}) took {elapsed:.3f}s to refuse"
    assert "\n" not in result.text and len(result.text) < 400, result.text[:500]
    assert fragment.lower() in result.text.lower(), result.text
    return result.text


async def rejected(client: mcp.Client, name: str, arguments: dict[str, Any]) -> None:
    """Assert a call of the wrong JSON types is an error result (pydantic's text), fast."""
    start = time.perf_counter()
    result = await call(client, name, arguments)
    assert result.is_error and time.perf_counter() - start < FAST_S
    assert len(result.text) < 2_000


async def loaded(client: mcp.Client, *names: str) -> None:
    for name in names:
        await ok(client, "load", {"dataset": name})


# --- schemas -------------------------------------------------------------------------------------


async def test_tool_schemas(client):
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description and len(tool.description) < 120 and "\n" not in tool.description.strip()
        assert tool.input_schema["type"] == "object"
    props = {name: tool.input_schema["properties"] for name, tool in tools.items()}
    assert props["load"]["dataset"]["enum"] == list(DATASETS)
    assert props["filter"]["op"]["enum"] == list(FILTER_OPS)
    assert props["aggregate"]["func"]["enum"] == list(AGG_FUNCS)
    assert props["convert"]["value"]["type"] == "number"
    assert props["tables"] == {}
    assert tools["filter"].input_schema["required"] == ["table", "column", "op", "value"]
    assert tools["sort"].input_schema["required"] == ["table", "column"]
    assert tools["aggregate"].input_schema["required"] == ["table", "func", "column"]
    assert tools["join"].input_schema["required"] == ["left", "right", "on"]
    assert tools["convert"].input_schema["required"] == ["value", "from_unit", "to_unit"]
    for name in ("filter", "sort", "join"):
        assert "save_as" in props[name]


# --- load and tables -----------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", DATASETS)
async def test_load_reports_rows_columns_and_a_small_preview(client, dataset):
    rows = rows_of(dataset)
    value = await ok(client, "load", {"dataset": dataset})
    assert value["table"] == dataset and value["rows"] == len(rows)
    assert value["columns"] == list(rows[0])
    assert value["preview"] == rows[: len(value["preview"])] and 1 <= len(value["preview"]) <= 3
    assert (await ok(client, "tables"))[dataset] == len(rows)


@pytest.mark.parametrize(
    "name",
    [
        "../assets/data/cities",
        "/etc/passwd",
        "cities.json",
        "data/cities",
        "..",
        "",
        "cities\x00",
        "~/cities",
        "CITIES",
        "shop",
        "file:///etc/passwd",
        "x" * 3_000,
    ],
)
async def test_only_shipped_data_sets_load(client, name):
    message = await refused(client, "load", {"dataset": name}, "data set")
    assert "cities, shipments, stations" in message


async def test_tables_lists_only_this_workspace():
    async with fresh() as client:
        assert await ok(client, "tables") == {}
        await loaded(client, "cities")
        assert await ok(client, "tables") == {"cities": 60}


# --- filter --------------------------------------------------------------------------------------


async def test_filter_numbers_and_text(client):
    await loaded(client, "shipments")
    rows = rows_of("shipments")
    heavy = await ok(
        client,
        "filter",
        {"table": "shipments", "column": "weight_kg", "op": ">", "value": 500, "save_as": "f_heavy"},
    )
    assert heavy["table"] == "f_heavy" and heavy["rows"] == sum(r["weight_kg"] > 500 for r in rows)
    assert all(r["weight_kg"] > 500 for r in heavy["preview"])
    as_text = await ok(
        client,
        "filter",
        {"table": "shipments", "column": "weight_kg", "op": "<=", "value": "500", "save_as": "f_light"},
    )
    assert as_text["rows"] == len(rows) - heavy["rows"]
    air = await ok(
        client,
        "filter",
        {"table": "shipments", "column": "mode", "op": "==", "value": "AIR", "save_as": "f_air"},
    )
    assert air["rows"] == sum(r["mode"] == "air" for r in rows) > 0
    not_air = await ok(
        client,
        "filter",
        {"table": "shipments", "column": "mode", "op": "!=", "value": "air", "save_as": "f_air"},
    )
    assert not_air["rows"] == len(rows) - air["rows"]
    some = await ok(
        client,
        "filter",
        {"table": "shipments", "column": "origin", "op": "contains", "value": "DR", "save_as": "f_air"},
    )
    assert some["rows"] == sum("dr" in r["origin"].lower() for r in rows) > 0
    none = await ok(
        client, "filter", {"table": "shipments", "column": "id", "op": "==", "value": 1, "save_as": "f_air"}
    )
    assert none["rows"] == 0 and none["preview"] == []
    # a filtered table is a table: filter it again
    both = await ok(
        client,
        "filter",
        {"table": "f_heavy", "column": "mode", "op": "==", "value": "sea", "save_as": "f_air"},
    )
    assert both["rows"] == sum(r["weight_kg"] > 500 and r["mode"] == "sea" for r in rows)


async def test_results_get_fresh_names_in_a_fresh_workspace():
    async with fresh() as client:
        await loaded(client, "stations")
        first = await ok(client, "filter", {"table": "stations", "column": "month", "op": "==", "value": 7})
        assert first["table"] == "t1" and first["rows"] == 20
        await ok(
            client, "filter", {"table": "t1", "column": "temp_c", "op": ">", "value": 0, "save_as": "t2"}
        )
        third = await ok(client, "sort", {"table": "t1", "column": "temp_c"})
        assert third["table"] == "t3"  # t2 was taken by a save_as
        assert set(await ok(client, "tables")) == {"stations", "t1", "t2", "t3"}
        assert (await ok(client, "aggregate", {"table": "t1", "func": "count", "column": "month"}))[
            "value"
        ] == 20


async def test_filter_errors(client):
    await loaded(client, "shipments")
    base = {"table": "shipments", "column": "weight_kg", "op": ">", "value": 1}
    message = await refused(client, "filter", {**base, "column": "weight"}, "no column 'weight'")
    assert "weight_kg" in message and "distance_km" in message
    message = await refused(client, "filter", {**base, "op": "=>"}, "unknown op")
    assert all(op in message for op in FILTER_OPS)
    await refused(client, "filter", {**base, "op": "contains"}, "contains works on text")
    await refused(client, "filter", {**base, "column": "mode", "op": ">"}, "holds text")
    await refused(client, "filter", {**base, "value": "500 kg"}, "give value as a number")
    for bad in ("nan", "inf", "-Infinity", "1e999"):
        await refused(client, "filter", {**base, "value": bad}, "finite number")
    await refused(client, "filter", {**base, "value": 1e300}, "finite number")
    message = await refused(client, "filter", {**base, "table": "nowhere"}, "no table 'nowhere'")
    assert "shipments" in message


async def test_a_data_set_used_before_loading_says_to_load_it():
    async with fresh() as client:
        for name, arguments in [
            ("filter", {"table": "cities", "column": "population", "op": ">", "value": 1}),
            ("sort", {"table": "cities", "column": "population"}),
            ("aggregate", {"table": "stations", "func": "sum", "column": "rain_mm"}),
            ("join", {"left": "stations", "right": "cities", "on": "city"}),
        ]:
            await refused(client, name, arguments, "is not loaded; call load with dataset=")
        message = await refused(
            client, "aggregate", {"table": "t1", "func": "sum", "column": "x"}, "no table 't1'"
        )
        assert "tables: none" in message


@pytest.mark.parametrize(
    "name", ["../x", "/tmp/evil", "a/b", "a b", "1abc", "", "x" * 33, "t1;drop", "..\\x", "é", "a.b", "C:\\x"]
)
async def test_save_as_must_be_a_plain_name(client, name):
    await loaded(client, "cities")
    await refused(
        client,
        "filter",
        {"table": "cities", "column": "population", "op": ">", "value": 1, "save_as": name},
        "not a valid table name",
    )
    assert name not in await ok(client, "tables")


@pytest.mark.parametrize(
    "name", ["../../assets/data/cities", "/etc/passwd", "cities.json", "__class__", "x" * 3000]
)
async def test_table_names_are_keys_never_paths(client, name):
    message = await refused(
        client, "aggregate", {"table": name, "func": "count", "column": "city"}, "no table"
    )
    assert len(message) < 300


# --- sort ----------------------------------------------------------------------------------------


async def test_sort(client):
    await loaded(client, "cities")
    rows = rows_of("cities")
    top = await ok(
        client,
        "sort",
        {"table": "cities", "column": "population", "descending": True, "limit": 1, "save_as": "s_top"},
    )
    assert top["rows"] == 1 and top["preview"][0]["city"] == max(rows, key=lambda r: r["population"])["city"]
    five = await ok(client, "sort", {"table": "cities", "column": "area_km2", "limit": 5, "save_as": "s_top"})
    assert [r["area_km2"] for r in five["preview"]] == sorted(r["area_km2"] for r in rows)[:5]
    names = await ok(client, "sort", {"table": "cities", "column": "city", "save_as": "s_top"})
    assert names["rows"] == 60 and len(names["preview"]) <= 3
    assert names["preview"][0]["city"] == min(r["city"] for r in rows)
    wide = await ok(client, "sort", {"table": "cities", "column": "city", "limit": 50, "save_as": "s_top"})
    assert wide["rows"] == 50 and len(wide["preview"]) == 10  # the text stays short whatever the limit


async def test_sort_errors(client):
    await loaded(client, "cities")
    for limit in (0, -1, MAX_TABLE_ROWS + 1, 10**12):
        await refused(client, "sort", {"table": "cities", "column": "city", "limit": limit}, "limit must be")
    await refused(client, "sort", {"table": "cities", "column": "size"}, "columns: city, country")
    await rejected(client, "sort", {"table": "cities", "column": "city", "limit": "many"})


# --- aggregate -----------------------------------------------------------------------------------


async def test_aggregate_over_all_rows_and_per_group(client):
    await loaded(client, "stations", "shipments")
    temps = [r["temp_c"] for r in rows_of("stations")]
    expected = {
        "sum": sum(temps),
        "mean": sum(temps) / len(temps),
        "min": min(temps),
        "max": max(temps),
        "count": len(temps),
    }
    for func, want in expected.items():
        got = (await ok(client, "aggregate", {"table": "stations", "func": func, "column": "temp_c"}))[
            "value"
        ]
        assert math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-4), func
    total = (await ok(client, "aggregate", {"table": "shipments", "func": "sum", "column": "distance_km"}))[
        "value"
    ]
    assert total == sum(r["distance_km"] for r in rows_of("shipments")) and isinstance(total, int)
    groups = (
        await ok(
            client,
            "aggregate",
            {"table": "stations", "func": "max", "column": "rain_mm", "group_by": "month"},
        )
    )["groups"]
    assert list(groups) == [str(m) for m in range(1, 13)]
    assert groups["7"] == max(r["rain_mm"] for r in rows_of("stations") if r["month"] == 7)
    counts = (
        await ok(
            client, "aggregate", {"table": "shipments", "func": "count", "column": "mode", "group_by": "mode"}
        )
    )["groups"]
    assert set(counts) == {"air", "rail", "road", "sea"}
    assert counts == {m: sum(r["mode"] == m for r in rows_of("shipments")) for m in sorted(counts)}
    before = await ok(client, "tables")
    await ok(
        client, "aggregate", {"table": "stations", "func": "count", "column": "city", "group_by": "city"}
    )
    assert await ok(client, "tables") == before


async def test_aggregate_errors(client):
    await loaded(client, "cities")
    message = await refused(
        client, "aggregate", {"table": "cities", "func": "avg", "column": "population"}, "unknown func"
    )
    assert "sum, mean, min, max, count" in message
    await refused(
        client, "aggregate", {"table": "cities", "func": "sum", "column": "country"}, "needs a number"
    )
    await refused(
        client, "aggregate", {"table": "cities", "func": "sum", "column": "people"}, "columns: city"
    )
    await refused(
        client,
        "aggregate",
        {"table": "cities", "func": "sum", "column": "population", "group_by": "region"},
        "no column 'region'",
    )


async def test_aggregate_of_an_empty_table():
    async with fresh() as client:
        await loaded(client, "cities")
        await ok(
            client,
            "filter",
            {"table": "cities", "column": "population", "op": "<", "value": 0, "save_as": "empty"},
        )
        assert (await ok(client, "aggregate", {"table": "empty", "func": "count", "column": "city"}))[
            "value"
        ] == 0
        assert (await ok(client, "aggregate", {"table": "empty", "func": "sum", "column": "population"}))[
            "value"
        ] == 0
        await refused(
            client, "aggregate", {"table": "empty", "func": "mean", "column": "population"}, "no rows"
        )
        groups = await ok(
            client,
            "aggregate",
            {"table": "empty", "func": "sum", "column": "population", "group_by": "country"},
        )
        assert groups == {"groups": {}}


async def test_too_many_groups_are_refused():
    async with fresh(Limits(max_result_rows=50)) as client:
        await loaded(client, "shipments")
        await refused(
            client,
            "aggregate",
            {"table": "shipments", "func": "sum", "column": "weight_kg", "group_by": "id"},
            "200 distinct values; at most 50 groups",
        )


# --- join ----------------------------------------------------------------------------------------


async def test_join(client):
    await loaded(client, "stations", "cities")
    joined = await ok(
        client, "join", {"left": "stations", "right": "cities", "on": "city", "save_as": "j_sc"}
    )
    assert joined["rows"] == 240
    assert joined["columns"] == [
        "station",
        "city",
        "month",
        "temp_c",
        "rain_mm",
        "country",
        "population",
        "area_km2",
    ]
    population = {r["city"]: r["population"] for r in rows_of("cities")}
    want = sum(population[r["city"]] for r in rows_of("stations"))
    assert (await ok(client, "aggregate", {"table": "j_sc", "func": "sum", "column": "population"}))[
        "value"
    ] == want
    same = await ok(
        client, "join", {"left": "cities", "right": "cities", "on": "country", "save_as": "j_self"}
    )
    counts: dict[str, int] = {}
    for row in rows_of("cities"):
        counts[row["country"]] = counts.get(row["country"], 0) + 1
    assert same["rows"] == sum(n * n for n in counts.values())
    assert same["columns"] == [
        "city",
        "country",
        "population",
        "area_km2",
        "city_2",
        "population_2",
        "area_km2_2",
    ]


async def test_join_errors(client):
    await loaded(client, "stations", "cities", "shipments")
    message = await refused(
        client,
        "join",
        {"left": "shipments", "right": "cities", "on": "city"},
        "table shipments has no column 'city'",
    )
    assert "origin" in message
    await refused(
        client,
        "join",
        {"left": "shipments", "right": "shipments", "on": "mode"},
        f"rows; the limit is {MAX_TABLE_ROWS}",
    )
    await refused(client, "join", {"left": "cities", "right": "nope", "on": "city"}, "no table 'nope'")
    await refused(
        client,
        "join",
        {"left": "cities", "right": "cities", "on": "city", "save_as": "../j"},
        "not a valid table name",
    )


async def test_joins_cannot_grow_without_bound():
    async with fresh() as client:
        await loaded(client, "cities")
        table = "cities"
        for _ in range(6):
            result = await call(
                client, "join", {"left": table, "right": table, "on": "city", "save_as": "wide"}
            )
            if result.is_error:
                assert f"the limit is {MAX_COLUMNS}" in result.text
                break
            table = "wide"
        else:
            pytest.fail("self-joins never hit the column limit")


async def test_the_largest_allowed_join_is_fast():
    async with fresh() as client:
        await loaded(client, "stations")
        start = time.perf_counter()
        joined = await ok(
            client, "join", {"left": "stations", "right": "stations", "on": "month", "save_as": "big"}
        )
        await ok(
            client, "sort", {"table": "big", "column": "temp_c_2", "descending": True, "save_as": "big2"}
        )
        await ok(
            client, "aggregate", {"table": "big", "func": "mean", "column": "temp_c", "group_by": "station_2"}
        )
        await ok(client, "filter", {"table": "big", "column": "city_2", "op": "contains", "value": "a"})
        elapsed = time.perf_counter() - start
        assert joined["rows"] == 12 * 20 * 20 <= MAX_TABLE_ROWS
        assert elapsed < Limits().time_limit_s, elapsed


# --- convert -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "source", "target", "want"),
    [
        (12, "mi", "km", 19.312128),
        (100, "C", "F", 212.0),
        (0, "K", "C", -273.15),
        (1, "gal", "l", 3.785411784),
        (36, "km/h", "m/s", 10.0),
        (1, "lb", "oz", 16.0),
        (2.5, "t", "kg", 2500.0),
        (32, "f", "c", 0.0),
        (10, "KM", "M", 10_000.0),
        (1, "kn", "km/h", 1.852),
        (-40, "C", "F", -40.0),
    ],
)
async def test_convert(client, value, source, target, want):
    got = await ok(client, "convert", {"value": value, "from_unit": source, "to_unit": target})
    assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)


async def test_convert_errors(client):
    message = await refused(
        client, "convert", {"value": 12, "from_unit": "miles", "to_unit": "km"}, "unknown unit 'miles'"
    )
    for unit in ("km", "mi", "kg", "lb", "gal", "km/h", "C", "F", "K"):
        assert unit in message
    await refused(client, "convert", {"value": 1, "from_unit": "km", "to_unit": "kilometres"}, "valid units")
    await refused(
        client, "convert", {"value": 1, "from_unit": "kg", "to_unit": "km"}, "cannot convert kg (mass)"
    )
    await refused(client, "convert", {"value": -500, "from_unit": "C", "to_unit": "K"}, "below absolute zero")
    await refused(client, "convert", {"value": 1e300, "from_unit": "m", "to_unit": "km"}, "finite number")
    await refused(client, "convert", {"value": 1, "from_unit": "m" * 5_000, "to_unit": "km"}, "limit is")
    await rejected(client, "convert", {"value": "twelve", "from_unit": "mi", "to_unit": "km"})
    await rejected(client, "convert", {"value": [1, 2], "from_unit": "mi", "to_unit": "km"})


async def test_non_finite_numbers_never_compute():
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ToolError, match="finite number"):
            convert_units(bad, "m", "km")
        with pytest.raises(ToolError, match="finite number"):
            filter_rows(read_dataset("cities"), "cities", "population", ">", bad)


# --- state: isolation and bounds -----------------------------------------------------------------


async def test_two_servers_never_share_a_workspace():
    async with fresh() as first, fresh() as second:
        await loaded(first, "shipments")
        await ok(
            first,
            "filter",
            {"table": "shipments", "column": "mode", "op": "==", "value": "air", "save_as": "mine"},
        )
        assert set(await ok(first, "tables")) == {"shipments", "mine"}
        assert await ok(second, "tables") == {}
        await refused(
            second, "aggregate", {"table": "mine", "func": "count", "column": "id"}, "no table 'mine'"
        )
        await loaded(second, "cities")
        assert set(await ok(first, "tables")) == {"shipments", "mine"}
    async with fresh() as third:
        assert await ok(third, "tables") == {}


async def test_a_reload_is_a_fresh_copy_of_the_shipped_data():
    async with fresh() as client:
        await loaded(client, "cities")
        await ok(
            client,
            "filter",
            {"table": "cities", "column": "population", "op": ">", "value": 10**6, "save_as": "cities"},
        )
        assert (await ok(client, "tables"))["cities"] < 60
        await loaded(client, "cities")
        assert (await ok(client, "tables"))["cities"] == 60
    rows = rows_of("cities")
    assert read_dataset("cities") == Table(tuple(rows[0]), tuple(tuple(r.values()) for r in rows))


async def test_thousands_of_saved_tables_fill_the_workspace_and_no_more():
    async with fresh() as client:
        await loaded(client, "cities")
        base = {"table": "cities", "column": "population", "op": ">", "value": 1}
        refusals = 0
        for number in range(MAX_TABLES + 40):
            result = await call(client, "filter", {**base, "save_as": f"s{number}"})
            if result.is_error:
                assert "the workspace is full" in result.text
                refusals += 1
        assert refusals == 41  # the loaded data set takes one place
        assert len(await ok(client, "tables")) == MAX_TABLES
        await refused(client, "sort", {"table": "cities", "column": "city"}, "the workspace is full")
        # a full workspace still answers, and a name can be reused
        assert (await ok(client, "filter", {**base, "value": 10**6, "save_as": "s0"}))["rows"] < 60
        assert (await ok(client, "aggregate", {"table": "s0", "func": "count", "column": "city"}))[
            "value"
        ] < 60
    workspace = Workspace()
    table = read_dataset("cities")
    for number in range(5_000):
        with contextlib.suppress(ToolError):
            workspace.put(table, f"n{number}")
    assert len(workspace.tables) == MAX_TABLES


# --- hostile input -------------------------------------------------------------------------------


async def test_huge_and_nested_arguments_are_refused_fast(client):
    await loaded(client, "cities")
    base = {"table": "cities", "column": "city", "op": "contains", "value": "a", "save_as": "h_out"}
    await refused(client, "filter", {**base, "value": "a" * 1_000_000}, "limit is")
    await refused(client, "filter", {**base, "column": "c" * 100_000}, "limit is")
    await refused(client, "load", {"dataset": "d" * 1_000_000}, "limit is")
    await rejected(client, "filter", {**base, "value": list(range(100_000))})
    await rejected(client, "filter", {**base, "value": nested(150)})
    await rejected(client, "aggregate", {"table": {"a": {"b": {"c": 1}}}, "func": "sum", "column": "city"})
    await rejected(client, "sort", {"table": "cities", "column": "city", "descending": "maybe"})
    result = await call(client, "nope", {})
    assert result.is_error
    # and after all that, ordinary work goes on
    assert (await ok(client, "filter", base))["rows"] == sum(
        "a" in r["city"].lower() for r in rows_of("cities")
    )


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


async def test_nesting_past_the_json_parser_limit_leaves_the_server_working(memory_client, stdio_client):
    """In process the call is refused; over stdio the SDK's message parser drops a request nested
    about 200 deep without any answer (the hub's call timeout covers that), and the process lives on."""
    await rejected(memory_client, "convert", {"value": nested(250), "from_unit": "m", "to_unit": "km"})
    try:
        result = await asyncio.wait_for(
            stdio_client.call_tool("convert", {"value": nested(250), "from_unit": "m", "to_unit": "km"}), 2.0
        )
        assert result.is_error
    except TimeoutError:
        pass
    assert await ok(stdio_client, "convert", {"value": 2, "from_unit": "km", "to_unit": "m"}) == 2000


async def test_text_values_are_never_patterns(client):
    await loaded(client, "cities")
    for value in (".*", "%", "[a-z]", "\\", "' OR 1=1 --", "\x00"):
        found = await ok(
            client,
            "filter",
            {"table": "cities", "column": "city", "op": "contains", "value": value, "save_as": "p_out"},
        )
        assert found["rows"] == 0, value


async def test_the_stdio_server_survives_a_bad_session(stdio_client):
    """The stdio process keeps answering after the module's hostile calls (it shares the process)."""
    await loaded(stdio_client, "cities")
    assert (await ok(stdio_client, "tables"))["cities"] == 60
    assert await ok(stdio_client, "convert", {"value": 1, "from_unit": "km", "to_unit": "m"}) == 1000
