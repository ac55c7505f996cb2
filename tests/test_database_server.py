"""The database server over real MCP transports: tools, error paths, and hostile SQL.

Hostile statements run in-process against a server with a short time limit; one stdio session (a
real subprocess) replays the essentials. After every hostile statement the shipped file on disk
must be byte-identical and the server must still answer normal queries.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import mcp
import pytest

from mcp_servers.assets import asset_path
from mcp_servers.database import build_server
from mcp_servers.limits import Limits

REPO = Path(__file__).resolve().parent.parent
DB_FILE = asset_path("shop.db")
FAST = Limits(time_limit_s=0.5)
SLACK_S = 1.5  # a loaded 2-core machine may be slow to notice the deadline and to answer

READ_ONLY_REFUSALS = [
    ("INSERT INTO orders VALUES (999, 1, 1, 1, '2024-01-01')", "INSERT is not allowed"),
    ("UPDATE orders SET quantity = 0", "UPDATE is not allowed"),
    ("DELETE FROM orders", "DELETE is not allowed"),
    ("DROP TABLE orders", "DROP is not allowed"),
    ("CREATE TABLE evil (a)", "CREATE is not allowed"),
    ("REPLACE INTO products VALUES (1, 'x', 'y', 0)", "REPLACE is not allowed"),
    ("ALTER TABLE orders ADD COLUMN x", "ALTER is not allowed"),
    ("PRAGMA writable_schema = ON", "PRAGMA is not allowed"),
    ("PRAGMA query_only = OFF", "PRAGMA is not allowed"),
    ("BEGIN", "BEGIN is not allowed"),
    ("  /* sneaky */ drop table orders", "DROP is not allowed"),
    ("-- comment first\ndelete from customers", "DELETE is not allowed"),
    # past the first-word check, the authorizer refuses
    ("WITH x AS (SELECT 1) DELETE FROM orders", "DELETE is not allowed"),
    ("WITH x AS (SELECT 1) UPDATE products SET price = 0", "UPDATE is not allowed"),
    ("WITH x AS (SELECT 1) INSERT INTO orders SELECT * FROM orders", "INSERT is not allowed"),
    ("SELECT load_extension('/tmp/evil.so')", "load_extension() is not allowed"),
    ("SELECT * FROM pragma_table_info('orders')", "PRAGMA is not allowed"),
    ("SELECT 1; DROP TABLE orders", "only one SQL statement"),
    ("SELECT 1; SELECT 2", "only one SQL statement"),
    ("", "the query is empty"),
    (" ;  -- nothing", "the query is empty"),
]


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def text_of(result: Any) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


def fresh(limits: Limits = FAST) -> mcp.Client:
    """An in-process client on a fresh server (0.5 s time limit by default).

    Opened inside each test, not in an async fixture: the client's task group must be entered and
    left by the same task.
    """
    return mcp.Client(build_server(limits))


@pytest.fixture
def db_unchanged() -> Any:
    """Asserts after the test that the shipped database file has not changed by one byte."""
    before = file_hash(DB_FILE)
    yield
    assert file_hash(DB_FILE) == before


async def query(c: mcp.Client, sql: str) -> Any:
    return await c.call_tool("query", {"sql": sql})


async def assert_still_works(c: mcp.Client) -> None:
    result = await query(c, "SELECT COUNT(*) FROM orders")
    assert not result.is_error, text_of(result)
    assert result.structured_content["rows"] == [[300]]
    tables = await c.call_tool("list_tables", {})
    assert tables.structured_content == {"tables": ["customers", "orders", "products"]}


# ---- the shipped file ---------------------------------------------------------------------------


def test_shop_db_is_small_and_rebuilt_identically(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_shop_db", REPO / "assets" / "make_shop_db.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rebuilt = tmp_path / "shop.db"
    module.build(rebuilt)
    assert DB_FILE.stat().st_size < 200_000

    def dump(path: Path) -> list[str]:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            return list(conn.iterdump())
        finally:
            conn.close()

    assert dump(rebuilt) == dump(DB_FILE)
    conn = sqlite3.connect(f"{DB_FILE.as_uri()}?mode=ro", uri=True)
    counts = [conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("customers", "products", "orders")]
    distinct_prices = conn.execute("SELECT COUNT(DISTINCT price) FROM products").fetchone()[0]
    conn.close()
    assert counts == [50, 30, 300]
    assert distinct_prices == 30  # arg-max tasks rely on it


def test_missing_database_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="make_shop_db"):
        build_server(db_path=tmp_path / "absent.db")


# ---- tools and their results --------------------------------------------------------------------


async def test_list_tools_schema() -> None:
    async with fresh() as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == {"list_tables", "describe", "query"}
        assert tools["list_tables"].input_schema.get("properties", {}) == {}
        for name, arg in (("describe", "table"), ("query", "sql")):
            schema = tools[name].input_schema
            assert list(schema["properties"]) == [arg]
            assert schema["properties"][arg]["type"] == "string"
            assert schema["required"] == [arg]
        for tool in tools.values():
            assert tool.description and len(tool.description) < 100


async def test_list_tables_and_describe() -> None:
    async with fresh() as client:
        tables = await client.call_tool("list_tables", {})
        assert not tables.is_error
        assert json.loads(text_of(tables)) == {"tables": ["customers", "orders", "products"]}
        described = await client.call_tool("describe", {"table": " Orders "})
        assert not described.is_error
        assert described.structured_content == {
            "table": "orders",
            "columns": {"id": "INTEGER", "customer_id": "INTEGER", "product_id": "INTEGER",
                        "quantity": "INTEGER", "order_date": "TEXT"},
            "rows": 300,
        }
        assert json.loads(text_of(described)) == described.structured_content
        assert "\n" not in text_of(described)  # compact for the model


async def test_describe_errors() -> None:
    async with fresh() as client:
        unknown = await client.call_tool("describe", {"table": "sales"})
        assert unknown.is_error
        assert "no such table: sales; tables: customers, orders, products" in text_of(unknown)
        huge = await client.call_tool("describe", {"table": "x" * 100_000})
        assert huge.is_error and "limit is" in text_of(huge)
        missing = await client.call_tool("describe", {})
        assert missing.is_error and "table" in text_of(missing)
        wrong_type = await client.call_tool("describe", {"table": ["orders"]})
        assert wrong_type.is_error


async def test_query_returns_columns_rows_and_flag() -> None:
    async with fresh() as client:
        result = await query(client, "SELECT name, price FROM products WHERE category = 'toys' ORDER BY price DESC")
        assert not result.is_error
        data = result.structured_content
        assert data["columns"] == ["name", "price"]
        assert data["rows"][0] == ["Marble Run", 54.25]
        assert len(data["rows"]) == 6 and data["truncated"] is False
        assert json.loads(text_of(result)) == data


async def test_query_cells_are_json_safe_and_tidy() -> None:
    async with fresh() as client:
        result = await query(client, "SELECT 0.1 + 0.2, 1e999, x'00ff', NULL, printf('%.*c', 5000, 'a')")
        assert not result.is_error, text_of(result)
        row = result.structured_content["rows"][0]
        assert row[:4] == [0.3, "inf", "x'00ff'", None]
        assert len(row[4]) < 300 and row[4].endswith("...")
        assert result.structured_content["truncated"] is True  # a shortened cell is flagged
        json.loads(text_of(result))


async def test_sql_errors_carry_sqlites_message() -> None:
    async with fresh() as client:
        cases = {
            "SELECT * FROM sales": "Error executing tool query: no such table: sales; tables: customers, orders, products",
            "SELECT cost FROM products": "no such column: cost; describe(table) lists the columns",
            "SELEC 1": 'near "SELEC": syntax error',
            "SELECT COUNT(* FROM orders": "syntax error",
            "SELECT zeroblob(1000000000)": "string or blob too big",
        }
        for sql, expected in cases.items():
            result = await query(client, sql)
            assert result.is_error, sql
            assert expected in text_of(result), (sql, text_of(result))
            assert "\n" not in text_of(result)
        await assert_still_works(client)


async def test_query_argument_errors() -> None:
    async with fresh() as client:
        assert (await client.call_tool("query", {})).is_error
        assert (await client.call_tool("query", {"sql": 5})).is_error
        unknown = await client.call_tool("drop_everything", {})
        assert unknown.is_error


async def test_row_cap_sets_truncated() -> None:
    async with mcp.Client(build_server(Limits(max_result_rows=5))) as c:
        capped = (await query(c, "SELECT id FROM orders ORDER BY id")).structured_content
        assert capped["rows"] == [[1], [2], [3], [4], [5]] and capped["truncated"] is True
        exact = (await query(c, "SELECT id FROM orders ORDER BY id LIMIT 5")).structured_content
        assert len(exact["rows"]) == 5 and exact["truncated"] is False


# ---- hostile input ------------------------------------------------------------------------------


@pytest.mark.parametrize(("sql", "expected"), READ_ONLY_REFUSALS)
async def test_refused_statements(db_unchanged: None, sql: str, expected: str) -> None:
    async with fresh() as client:
        result = await query(client, sql)
        assert result.is_error, sql
        assert expected in text_of(result), text_of(result)
        assert "\n" not in text_of(result)
        await assert_still_works(client)


async def test_attach_and_vacuum_write_no_file(db_unchanged: None, tmp_path: Path) -> None:
    async with fresh() as client:
        for sql in (f"ATTACH DATABASE '{tmp_path / 'evil.db'}' AS evil", f"VACUUM INTO '{tmp_path / 'copy.db'}'",
                    f"WITH x AS (SELECT 1) SELECT * FROM x; ATTACH '{tmp_path / 'evil2.db'}' AS e"):
            result = await query(client, sql)
            assert result.is_error
        assert list(tmp_path.iterdir()) == []
        await assert_still_works(client)


async def test_endless_recursive_cte_is_cut(db_unchanged: None) -> None:
    async with fresh() as client:
        sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c"
        start = time.monotonic()
        result = await query(client, sql)
        elapsed = time.monotonic() - start
        assert result.is_error
        assert "time limit" in text_of(result)
        assert FAST.time_limit_s * 0.9 <= elapsed < FAST.time_limit_s + SLACK_S
        await assert_still_works(client)


async def test_huge_cross_join(db_unchanged: None) -> None:
    async with fresh() as client:
        rows = await query(client, "SELECT * FROM orders a, orders b")  # 90,000 rows: capped, fast
        assert not rows.is_error
        assert rows.structured_content["truncated"] is True
        assert len(rows.structured_content["rows"]) <= FAST.max_result_rows
        assert len(text_of(rows)) <= FAST.max_result_chars
        start = time.monotonic()
        counted = await query(client, "SELECT COUNT(*) FROM orders a, orders b, orders c, orders d")  # 8.1e9
        assert counted.is_error and "time limit" in text_of(counted)
        sorted_ = await query(client, "SELECT a.id FROM orders a, orders b, orders c ORDER BY random() LIMIT 1")
        assert sorted_.is_error and "time limit" in text_of(sorted_)
        assert time.monotonic() - start < 2 * (FAST.time_limit_s + SLACK_S)
        await assert_still_works(client)


async def test_megabyte_values_are_cut_not_shipped(db_unchanged: None) -> None:
    async with fresh() as client:
        result = await query(client, "SELECT randomblob(999999), printf('%.*c', 999999, 'a') FROM orders")
        assert not result.is_error, text_of(result)
        assert result.structured_content["truncated"] is True
        assert 0 < len(result.structured_content["rows"]) < 50
        assert len(text_of(result)) <= FAST.max_result_chars
        too_big = await query(client, "SELECT replace(printf('%.*c', 900000, 'a'), 'a', 'bb')")
        assert too_big.is_error and "too big" in text_of(too_big)
        await assert_still_works(client)


async def test_one_statement_with_trailing_semicolon_or_comment_is_fine() -> None:
    async with fresh() as client:
        for sql in ("SELECT 7;", "SELECT 7; -- done", "/* lead */ SELECT 7 ;", "VALUES (7)",
                    "WITH t(x) AS (SELECT 7) SELECT x FROM t"):
            result = await query(client, sql)
            assert not result.is_error, (sql, text_of(result))
            assert result.structured_content["rows"] == [[7]]


async def test_ten_megabyte_sql_is_refused_fast(db_unchanged: None) -> None:
    async with fresh() as client:
        start = time.monotonic()
        result = await query(client, "SELECT '" + "x" * 10_000_000 + "'")
        assert result.is_error and "the limit is" in text_of(result)
        assert time.monotonic() - start < 5.0
        await assert_still_works(client)


async def test_slow_query_does_not_block_others_forever() -> None:
    async with fresh() as client:
        endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT MAX(x) FROM c"
        slow, *quick = await asyncio.gather(query(client, endless), *(query(client, "SELECT 42") for _ in range(5)))
        assert slow.is_error and "time limit" in text_of(slow)
        for result in quick:
            assert not result.is_error and result.structured_content["rows"] == [[42]]


async def test_server_reads_the_file_once_and_never_writes_it(tmp_path: Path) -> None:
    copy = tmp_path / "shop.db"
    copy.write_bytes(DB_FILE.read_bytes())
    stamp, digest = copy.stat().st_mtime_ns, file_hash(copy)
    async with mcp.Client(build_server(FAST, db_path=copy)) as c:
        assert (await query(c, "DELETE FROM orders")).is_error
        await assert_still_works(c)
        assert (copy.stat().st_mtime_ns, file_hash(copy)) == (stamp, digest)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["shop.db"]  # no journal, no temp file
        copy.unlink()  # the server serves its private in-memory copy, not the file
        await assert_still_works(c)


# ---- stdio: a real subprocess -------------------------------------------------------------------


async def test_stdio_transport(db_unchanged: None) -> None:
    params = mcp.StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcp_servers.database"],
        env={"QWB_TOOL_TIME_LIMIT": "0.5", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])},
        cwd=str(REPO),
    )
    async with mcp.Client(params) as c:
        names = {t.name for t in (await c.list_tools()).tools}
        assert names == {"list_tables", "describe", "query"}
        await assert_still_works(c)
        described = await c.call_tool("describe", {"table": "customers"})
        assert described.structured_content["columns"] == {"id": "INTEGER", "name": "TEXT", "city": "TEXT",
                                                           "joined": "TEXT"}
        missing = await query(c, "SELECT * FROM sales")
        assert missing.is_error and "no such table: sales" in text_of(missing)
        for sql, expected in (("SELECT 1; DROP TABLE orders", "only one SQL statement"),
                              ("DROP TABLE orders", "DROP is not allowed"),
                              ("WITH x AS (SELECT 1) DELETE FROM orders", "DELETE is not allowed")):
            result = await query(c, sql)
            assert result.is_error and expected in text_of(result), text_of(result)
        start = time.monotonic()
        endless = await query(c, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                                 "SELECT COUNT(*) FROM c")
        assert endless.is_error and "0.5 s time limit" in text_of(endless)  # the env override took effect
        assert time.monotonic() - start < 0.5 + SLACK_S
        huge = await query(c, "SELECT '" + "x" * 10_000_000 + "'")
        assert huge.is_error and "the limit is" in text_of(huge)
        await assert_still_works(c)
