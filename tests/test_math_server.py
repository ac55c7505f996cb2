"""The math server over both transports: values, every error path, hostile input and the tool schemas.

Every test that takes ``client`` runs once in process and once against ``python -m mcp_servers.math``
over stdio (one process for the whole module, since each start costs about a second).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import mcp
import pytest
import pytest_asyncio

from mcp_servers.limits import Limits, ToolError
from mcp_servers.math import MAX_EXPRESSION_CHARS, OPS, build_server, evaluate
from mcp_servers.tasks.model import ToolResult

REPO = Path(__file__).resolve().parent.parent
FAST_S = 0.5  # a hostile input must be refused within this many seconds, transport included

pytestmark = pytest.mark.asyncio(loop_scope="module")


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
async def stdio_client() -> AsyncIterator[mcp.Client]:
    """One math server process for the module."""
    params = mcp.StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_servers.math"], cwd=str(REPO), env={"PYTHONPATH": str(REPO)}
    )
    async with owned(lambda: mcp.Client(params)) as client:
        yield client


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def memory_client() -> AsyncIterator[mcp.Client]:
    """An in-process math server for the module (it keeps no state between calls)."""
    async with owned(lambda: mcp.Client(build_server())) as client:
        yield client


@pytest.fixture(params=["memory", "stdio"])
def client(request: pytest.FixtureRequest) -> mcp.Client:
    return request.getfixturevalue(f"{request.param}_client")


async def call(client: mcp.Client, name: str, arguments: dict[str, Any]) -> ToolResult:
    """A call as the trainer sees it."""
    result = await client.call_tool(name, arguments)
    text = "".join(getattr(block, "text", "") for block in result.content)
    return ToolResult(text=text, structured=result.structured_content, is_error=bool(result.is_error))


async def refused(
    client: mcp.Client, name: str, arguments: dict[str, Any], fragment: str, seconds: float = FAST_S
) -> str:
    """Assert the call fails within ``seconds`` with a one-line error containing ``fragment``."""
    start = time.perf_counter()
    result = await call(client, name, arguments)
    elapsed = time.perf_counter() - start
    assert result.is_error, f"{name}({str(arguments)[:80]}) was not refused: {result.text[:200]}"
    assert elapsed < seconds, f"{name}({str(arguments)[:80]}) took {elapsed:.3f}s to refuse"
    assert "\n" not in result.text and len(result.text) < 300, result.text[:400]
    assert fragment.lower() in result.text.lower(), result.text
    return result.text


# --- schemas -------------------------------------------------------------------------------------


async def test_tool_schemas(client):
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == {"calculate", "arithmetic", "percent"}
    for tool in tools.values():
        assert tool.description and len(tool.description) < 160 and "\n" not in tool.description.strip()
        assert tool.input_schema["type"] == "object"
    calc = tools["calculate"].input_schema
    assert calc["required"] == ["expression"] and calc["properties"]["expression"]["type"] == "string"
    arith = tools["arithmetic"].input_schema
    assert sorted(arith["required"]) == ["a", "b", "op"]
    assert arith["properties"]["op"]["enum"] == list(OPS)
    number = [{"type": "integer"}, {"type": "number"}]
    assert arith["properties"]["a"]["anyOf"] == number and arith["properties"]["b"]["anyOf"] == number
    assert sorted(tools["percent"].input_schema["required"]) == ["percent", "value"]
    for name in ("arithmetic", "percent"):
        for prop in tools[name].input_schema["properties"].values():
            assert prop.get("description"), f"{name} has an undocumented argument"


# --- values --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("(14 + 9) * 3", 69),
        ("2 ** 10", 1024),
        ("-2 ** 2", -4),
        ("7 / 2", 3.5),
        ("10 / 5", 2),
        ("17 // 5 + 17 % 5", 5),
        ("0.1 + 0.2", 0.3),
        ("sqrt(144) + abs(-3)", 15),
        ("round(2.567, 2)", 2.57),
        ("floor(7.8) + ceil(1.2)", 9),
        ("min(3, 7) * max(2, 9, 4)", 27),
        ("round(pi, 4) + round(e, 1)", 3.1416 + 2.7),
        ("  1_000 + 1  ", 1001),
        ("(-1) ** (10 ** 300)", 1),
        ("10 ** 300 // 10 ** 299", 10),
        ("2 ** -3", 0.125),
    ],
)
async def test_calculate_values(client, expression, expected):
    result = await call(client, "calculate", {"expression": expression})
    assert not result.is_error, result.text
    assert result.value() == pytest.approx(expected)
    assert type(result.value()) is type(expected), "whole results are ints, others floats"
    assert result.text == str(result.value())


@pytest.mark.parametrize(
    ("op", "a", "b", "expected"),
    [
        ("add", 37, 12, 49),
        ("subtract", 12, 37, -25),
        ("multiply", 37, 12, 444),
        ("divide", 96, 8, 12),
        ("divide", 7, 2, 3.5),
        ("power", 3, 4, 81),
        ("power", 4, 0.5, 2),
        ("modulo", 47, 5, 2),
        ("add", 0.1, 0.2, 0.3),
    ],
)
async def test_arithmetic_values(client, op, a, b, expected):
    result = await call(client, "arithmetic", {"op": op, "a": a, "b": b})
    assert not result.is_error, result.text
    assert result.value() == pytest.approx(expected) and type(result.value()) is type(expected)


async def test_percent_values(client):
    assert (await call(client, "percent", {"value": 80, "percent": 15})).value() == 12
    assert (await call(client, "percent", {"value": 90, "percent": 15})).value() == 13.5
    assert (await call(client, "percent", {"value": 0.5, "percent": 200})).value() == 1


# --- error paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("1 / 0", "by zero"),
        ("5 % 0", "by zero"),
        ("5 // (3 - 3)", "by zero"),
        ("0 ** -1", "negative power"),
        ("(-8) ** 0.5", "not a real number"),
        ("sqrt(-4)", "not a real number"),
        ("1e308 * 10", "too large"),
        ("1e999", "too large"),
        ("10 ** 301", "too large"),
        ("9" * 301, "too large"),
        ("0.5 ** -5000", "too large"),
        ("round(1e300 * 10)", "too large"),
        ("3^4", "**"),
        ("12 x 7 + 5", "write multiplication with *"),
        ("3(4 + 5)", "3 * (4 + 5)"),
        ("1,250 + 375", "commas"),
        ("84 ÷ 7", "/"),
        ("15% of 80", "fraction"),
        ("2 + 3 = 5", "without '='"),
        ("1 +", "could not parse"),
        ("", "empty"),
        ("   ", "empty"),
        ("max()", "2 to 20"),
        ("sqrt(1, 2)", "takes 1"),
        ("round(2.5, ndigits=1)", "without names"),
        ("round(2.5, 99)", "whole number"),
        ("pi()", "constant"),
        ("sqrt", "call it with parentheses"),
        ("1 < 2", "comparisons"),
        ("True + 1", "not a number"),
        ("1j", "complex"),
        ("x + 1", "unknown name"),
        ("1 if 1 else 2", "not supported"),
    ],
)
async def test_calculate_errors(client, expression, fragment):
    message = await refused(client, "calculate", {"expression": expression}, fragment)
    assert message.startswith("Error executing tool calculate: ")


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({"op": "divide", "a": 10, "b": 0}, "by zero"),
        ({"op": "modulo", "a": 10, "b": 0}, "by zero"),
        ({"op": "power", "a": 0, "b": -2}, "negative power"),
        ({"op": "power", "a": -8, "b": 0.5}, "not a real number"),
        ({"op": "power", "a": 9, "b": 387420489}, "too large"),
        ({"op": "multiply", "a": 1e300, "b": 1e300}, "too large"),
        ({"op": "add", "a": 10**301, "b": 1}, "a must be a finite number"),
        ({"op": "add", "a": 1, "b": -(10**301)}, "b must be a finite number"),
        ({"op": "times", "a": 2, "b": 3}, "use one of add, subtract, multiply, divide, power, modulo"),
    ],
)
async def test_arithmetic_errors(client, arguments, fragment):
    message = await refused(client, "arithmetic", arguments, fragment)
    assert message.startswith("Error executing tool arithmetic: ")


@pytest.mark.parametrize(
    "arguments",
    [
        {"op": "add", "a": 1},
        {"op": "add", "a": "abc", "b": 1},
        {"a": 1, "b": 2},
        {"op": "add", "a": [1], "b": 2},
    ],
)
async def test_arithmetic_bad_arguments_are_errors(client, arguments):
    result = await call(client, "arithmetic", arguments)
    assert result.is_error and "arithmetic" in result.text


async def test_percent_errors(client):
    await refused(client, "percent", {"value": 1e300, "percent": 1e10}, "too large")
    await refused(client, "percent", {"value": 10**301, "percent": 5}, "value must be a finite number")
    result = await call(client, "percent", {"value": 80})
    assert result.is_error and "percent" in result.text


async def test_unknown_tool_is_an_error(client):
    result = await call(client, "eval", {"expression": "1"})
    assert result.is_error and "eval" in result.text


# --- hostile input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "9**9**9",
        "9 ** 9 ** 9 ** 9",
        "(-9)**9**9",
        "9.0**9**9",
        "2**10**10",
        "10**10**10**10",
        "1.0000001**1e10",
    ],
)
async def test_huge_powers_are_refused_fast(client, expression):
    await refused(client, "calculate", {"expression": expression}, "too large")


async def test_a_ten_megabyte_expression_is_refused_fast(client, request):
    # over stdio most of the time is moving 10 MB through a pipe and JSON, which is not the server's work
    seconds = FAST_S if request.node.callspec.params["client"] == "memory" else 4 * FAST_S
    message = await refused(client, "calculate", {"expression": "1+" * 5_000_000}, "limit is", seconds)
    assert str(MAX_EXPRESSION_CHARS) in message


async def test_deep_nesting_is_refused(client):
    await refused(client, "calculate", {"expression": "(" * 10_000 + "1" + ")" * 10_000}, "limit is")
    await refused(client, "calculate", {"expression": "(" * 240 + "1" + ")" * 240}, "nested too deeply")
    await refused(client, "calculate", {"expression": "-" * 150 + "1"}, "levels deep")
    await refused(client, "calculate", {"expression": "1+" * 240 + "1"}, "levels deep")
    await refused(client, "calculate", {"expression": "max(" + "1," * 30 + "1)"}, "2 to 20")
    wide = "+".join(["max(" + ",".join(["1"] * 20) + ")"] * 11)
    assert len(wide) <= MAX_EXPRESSION_CHARS
    await refused(client, "calculate", {"expression": wide}, "more than 200 parts")


async def test_a_huge_op_name_is_refused_fast(client):
    message = await refused(client, "arithmetic", {"op": "x" * 1_000_000, "a": 1, "b": 2}, "unknown op")
    assert "use one of add" in message


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("__import__('os').system('true')", "not supported"),
        ("__import__('os')", "unknown function '__import__'"),
        ("open('/etc/passwd')", "unknown function 'open'"),
        ("().__class__.__bases__", "attribute"),
        ("(1).real", "attribute"),
        ("lambda: 1", "lambda"),
        ("[x for x in range(9)]", "not supported"),
        ("{x: 1 for x in range(9)}", "not supported"),
        ("(x for x in range(9))", "not supported"),
        ("'a' * 10 ** 9", "text is not allowed"),
        ("b'x'", "text is not allowed"),
        ("f'{1}'", "not supported"),
        ("[1, 2][0]", "not supported"),
        ("(y := 2)", "not supported"),
        ("min(*[1, 2])", "not supported"),
        ("sqrt(x=4)", "without names"),
        ("pow(9, 9, 9)", "unknown function"),
        ("1\x00", "could not parse"),
        ("1\n+1", "could not parse"),
        ("None", "not a number"),
        ("...", "not a number"),
        ("~1", "not supported"),
        ("1 << 100000", "not supported"),
    ],
)
async def test_code_is_refused(client, expression, fragment):
    await refused(client, "calculate", {"expression": expression}, fragment)


async def test_the_server_still_answers_after_hostile_input(client):
    await call(client, "calculate", {"expression": "9**9**9"})
    await call(client, "calculate", {"expression": "x" * 1_000_000})
    assert (await call(client, "calculate", {"expression": "6 * 7"})).value() == 42


# --- the evaluator's bounds, directly ------------------------------------------------------------


async def test_limits_bound_length_and_time():
    with pytest.raises(ToolError, match="limit is 10"):
        evaluate("1 + 2 + 3 + 4", Limits(max_string_chars=10))
    assert evaluate("1 + 2 + 3", Limits(max_string_chars=10)) == 6
    with pytest.raises(ToolError, match="too long"):
        evaluate("1 + 2", Limits(time_limit_s=-1.0))


async def test_a_nested_expression_within_bounds_evaluates():
    assert evaluate("(" * 50 + "2" + ")" * 50 + " * 3") == 6
    assert evaluate("+".join(["1"] * 90)) == 90
    assert evaluate("-" * 90 + "1") == 1
