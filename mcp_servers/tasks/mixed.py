"""Cross-domain tasks (suite "multi"): a value found with one server feeds a call to another.

Every task needs at least two calls on two servers, and the second call's arguments contain a
value that only the first call's result reveals, so success proves the chain was followed.
"""

from __future__ import annotations

import random
import sqlite3
from functools import lru_cache

from mcp_servers.assets import asset_path
from mcp_servers.tasks.model import Task, ToolCall, Verifier
from mcp_servers.tasks.search import Page, catalog, fetch_call, name_of
from mcp_servers.tasks.suites import make_task

SUITE = "multi"
MATH_TOOLS = ("arithmetic", "calculate")

# (page type, fact key, what the fact is called in an instruction)
NUMERIC_FACTS = (
    ("city", "population", "population"),
    ("city", "elevation_m", "elevation in metres"),
    ("mountain", "height_m", "height in metres"),
    ("river", "length_km", "length in km"),
    ("company", "employees", "number of employees"),
    ("university", "students", "number of students"),
    ("lake", "area_km2", "area in km2"),
)
OPS = (("add", "add {n} to it", lambda v, n: v + n), ("subtract", "subtract {n} from it", lambda v, n: v - n),
       ("multiply", "multiply it by {n}", lambda v, n: v * n))


def _pages_with(kind: str, key: str) -> list[Page]:
    return [p for p in catalog().pages if p.facts["type"] == kind and isinstance(p.facts.get(key), int)]


def search_then_math(rng: random.Random) -> Task:
    """Fetch a page by id, read a number from it, do arithmetic with it."""
    kind, key, label = rng.choice(NUMERIC_FACTS)
    page = rng.choice(_pages_with(kind, key))
    value = page.facts[key]
    op, phrase, apply = rng.choice(OPS)
    n = rng.randint(2, 9) if op == "multiply" else rng.randint(10, 999)
    answer = apply(value, n)
    instruction = f"Fetch page '{page.id}', take its {label}, then {phrase.format(n=n)}."
    calls = [fetch_call(page), ToolCall("arithmetic", {"op": op, "a": value, "b": n})]
    return _task(instruction, ("search", "math"), ("fetch", *MATH_TOOLS), calls, answer)


def lifespan(rng: random.Random) -> Task:
    """How long a person lived: both years come from their page."""
    people = [p for p in catalog().pages if p.facts["type"] == "person" and "died" in p.facts]
    page = rng.choice(people)
    born, died = page.facts["born"], page.facts["died"]
    instruction = f"Using page '{page.id}', compute how many years {name_of(page)} lived."
    calls = [fetch_call(page), ToolCall("arithmetic", {"op": "subtract", "a": died, "b": born})]
    return _task(instruction, ("search", "math"), ("fetch", *MATH_TOOLS), calls, died - born)


def search_fetch_math(rng: random.Random) -> Task:
    """Three calls: find the page, read a number, then compute with it."""
    kind, key, label = rng.choice(NUMERIC_FACTS)
    page = rng.choice(_pages_with(kind, key))
    n = rng.randint(2, 9)
    value = page.facts[key]
    instruction = f"Find the {label} of {name_of(page)} and multiply it by {n}."
    calls = [ToolCall("search", {"query": page.title}), fetch_call(page),
             ToolCall("arithmetic", {"op": "multiply", "a": value, "b": n})]
    return _task(instruction, ("search", "math"), ("search", "fetch", *MATH_TOOLS), calls, value * n)


@lru_cache(maxsize=1)
def _products() -> tuple[tuple[str, float], ...]:
    uri = f"file:{asset_path('shop.db')}?mode=ro"
    with sqlite3.connect(uri, uri=True) as connection:
        return tuple(connection.execute("SELECT name, price FROM products ORDER BY id").fetchall())


def database_then_math(rng: random.Random) -> Task:
    """Look a price up in the database, then compute a discount or a multiple with the math server."""
    name, price = rng.choice(_products())
    sql = f"SELECT price FROM products WHERE name = '{name}'"
    if rng.random() < 0.5:
        percent = rng.choice((5, 10, 15, 20, 25, 30, 40, 50))
        instruction = f"Look up the price of {name} in the database, then compute {percent}% of it."
        second = ToolCall("percent", {"value": price, "percent": percent})
        answer = price * percent / 100
        tools = ("query", "percent", *MATH_TOOLS)
    else:
        n = rng.randint(2, 12)
        instruction = f"Look up the price of {name} in the database, then multiply it by {n}."
        second = ToolCall("arithmetic", {"op": "multiply", "a": price, "b": n})
        answer = price * n
        tools = ("query", *MATH_TOOLS)
    calls = [ToolCall("query", {"sql": sql}), second]
    return _task(instruction, ("database", "math"), tools, calls, round(answer, 6), tolerance=1e-4)


def _task(
    instruction: str,
    servers: tuple[str, ...],
    tools: tuple[str, ...],
    calls: list[ToolCall],
    answer: float,
    tolerance: float = 1e-6,
) -> Task:
    verifier = Verifier(kind="value", equals=answer, tolerance=tolerance, tool=calls[-1].name
                        if calls[-1].name != "arithmetic" else None)
    return make_task(SUITE, instruction, servers, calls, verifier, tools=tools,
                     tags=("multi_step", "cross_domain"), answer=answer)


KINDS = ((search_then_math, 3), (lifespan, 2), (search_fetch_math, 2), (database_then_math, 3))


def generate(rng: random.Random) -> Task:
    """One random cross-domain task."""
    kinds, weights = zip(*KINDS, strict=True)
    return rng.choices(kinds, weights=weights)[0](rng)
