"""The ``database`` suite: questions about the invented shop that only a SQL query can answer.

Every answer is computed by running the task's own reference SQL on a private read-only copy of
``assets/shop.db``, so the expected value and the oracle can never disagree. Verifiers read the
single cell ``$.rows[0][0]`` of a ``query`` result: column names and aliases do not matter, only
that the answer is the first cell.

Kinds of template (tags in brackets):

- single-step lookups and counts, and aggregates ("aggregate"): revenue, averages, arg-max;
- multi-step ("multi_step"): the second call needs a value the first returns (an id, a column name
  from ``describe``);
- recovery ("recovery"): the instruction calls a table by a natural but wrong name ("the sales
  table"), so the obvious query fails with ``no such table``; the oracle queries the right table.

Templates that could be ambiguous (ties for "the most", an intermediate value equal to the answer)
check the data and return ``None``; ``generate`` then draws another template.
"""

from __future__ import annotations

import functools
import random
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from mcp_servers.assets import asset_path
from mcp_servers.tasks.model import Task, ToolCall, ToolResult, Verifier
from mcp_servers.tasks.suites import make_task

SUITE = "database"
SERVERS = ("database",)
ANSWER_PATH = "$.rows[0][0]"
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
CATEGORIES = ("kitchen", "garden", "toys", "books", "office")
# natural but wrong table names -> the real table
WRONG_TABLES = {
    "orders": ("sales", "purchases", "transactions"),
    "customers": ("clients", "users", "buyers"),
    "products": ("items", "goods", "catalog"),
}

Template = Callable[[random.Random], Task | None]
_lock = threading.Lock()


@functools.cache
def _connection() -> sqlite3.Connection:
    """A private in-memory copy of the shipped shop, shared by all generators (guarded by ``_lock``)."""
    path = asset_path("shop.db")
    disk = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        memory = sqlite3.connect(":memory:", check_same_thread=False)
        disk.backup(memory)
    finally:
        disk.close()
    return memory


def _rows(sql: str) -> list[tuple[Any, ...]]:
    """Rows of one trusted SQL statement on the shop copy."""
    with _lock:
        return _connection().execute(sql).fetchall()


def _cell(sql: str) -> Any:
    """The first cell of a query's result, or None when there is no row."""
    rows = _rows(sql)
    return rows[0][0] if rows else None


@functools.cache
def _column(sql: str) -> tuple[Any, ...]:
    return tuple(row[0] for row in _rows(sql))


def _customers() -> tuple[str, ...]:
    return _column("SELECT name FROM customers ORDER BY id")


def _products() -> tuple[str, ...]:
    return _column("SELECT name FROM products ORDER BY id")


def _cities() -> tuple[str, ...]:
    return _column("SELECT DISTINCT city FROM customers ORDER BY city")


def _order_ids() -> tuple[int, ...]:
    return _column("SELECT id FROM orders ORDER BY id")


def q(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _month(rng: random.Random) -> tuple[str, str]:
    """A month name and its LIKE pattern over ISO dates, e.g. ("March", "2024-03%")."""
    index = rng.randrange(12)
    return MONTHS[index], f"2024-{index + 1:02d}%"


def _query(sql: str) -> ToolCall:
    return ToolCall("query", {"sql": sql})


def _task(
    instruction: str,
    calls: list[ToolCall],
    answer: Any,
    tags: tuple[str, ...],
    tolerance: float = 1e-6,
    max_turns: int | None = None,
) -> Task | None:
    """A task whose verifier wants ``answer`` in the first cell of a ``query`` result.

    Returns None where the data make the task unusable: no answer, or an earlier reference call
    whose first cell already equals the answer (success must mean the last step was reached).
    """
    if answer is None:
        return None
    if isinstance(answer, float):
        answer = float(f"{answer:.12g}")
    verifier = Verifier(kind="value", equals=answer, path=ANSWER_PATH, tool="query", tolerance=tolerance)
    for call in calls[:-1]:
        if call.name == "query":
            first = _cell(call.arguments["sql"])
            if first is not None and verifier.check(call, _fake_result(first)):
                return None
    return make_task(SUITE, instruction, SERVERS, calls, verifier, tags=tags, answer=answer, max_turns=max_turns)


def _fake_result(first_cell: Any) -> ToolResult:
    """A result shaped like the server's, holding one cell, for the earlier-call check."""
    return ToolResult(text="", structured={"columns": ["c"], "rows": [[first_cell]], "truncated": False})


def _single(instruction: str, sql: str, tags: tuple[str, ...] = ("single_step",), tolerance: float = 1e-6):
    """A one-query task whose answer is the query's first cell."""
    return _task(instruction, [_query(sql)], _cell(sql), tags, tolerance)


# ---- single-step lookups and counts -------------------------------------------------------------


def orders_of_customer(rng: random.Random) -> Task | None:
    name = rng.choice(_customers())
    text = rng.choice((f"How many orders did customer {name} place?", f"Count the orders placed by {name}."))
    sql = ("SELECT COUNT(*) FROM orders o JOIN customers c ON c.id = o.customer_id "
           f"WHERE c.name = {q(name)}")
    return _single(text, sql)


def units_of_product(rng: random.Random) -> Task | None:
    product = rng.choice(_products())
    text = rng.choice((f"How many units of {product} were ordered in total?",
                       f"What total quantity of {product} has been ordered?"))
    sql = ("SELECT SUM(o.quantity) FROM orders o JOIN products p ON p.id = o.product_id "
           f"WHERE p.name = {q(product)}")
    return _single(text, sql)


def price_of_product(rng: random.Random) -> Task | None:
    product = rng.choice(_products())
    text = rng.choice((f"What is the price of {product}?", f"How much does {product} cost?"))
    return _single(text, f"SELECT price FROM products WHERE name = {q(product)}")


def category_of_product(rng: random.Random) -> Task | None:
    product = rng.choice(_products())
    return _single(f"Which category is the product {product} in?",
                   f"SELECT category FROM products WHERE name = {q(product)}")


def city_of_customer(rng: random.Random) -> Task | None:
    name = rng.choice(_customers())
    text = rng.choice((f"Which city does customer {name} live in?", f"What city is {name} from?"))
    return _single(text, f"SELECT city FROM customers WHERE name = {q(name)}")


def joined_of_customer(rng: random.Random) -> Task | None:
    name = rng.choice(_customers())
    return _single(f"On what date did customer {name} join?",
                   f"SELECT joined FROM customers WHERE name = {q(name)}")


def customers_in_city(rng: random.Random) -> Task | None:
    city = rng.choice(_cities())
    return _single(f"How many customers live in {city}?",
                   f"SELECT COUNT(*) FROM customers WHERE city = {q(city)}")


def orders_in_month(rng: random.Random) -> Task | None:
    month, pattern = _month(rng)
    text = rng.choice((f"How many orders were placed in {month} 2024?", f"Count the orders from {month} 2024."))
    return _single(text, f"SELECT COUNT(*) FROM orders WHERE order_date LIKE {q(pattern)}")


def buyers_of_product(rng: random.Random) -> Task | None:
    product = rng.choice(_products())
    sql = ("SELECT COUNT(DISTINCT o.customer_id) FROM orders o JOIN products p ON p.id = o.product_id "
           f"WHERE p.name = {q(product)}")
    return _single(f"How many different customers bought {product}?", sql)


# ---- aggregates ---------------------------------------------------------------------------------


def revenue_of_category(rng: random.Random) -> Task | None:
    category = rng.choice(CATEGORIES)
    sql = ("SELECT SUM(p.price * o.quantity) FROM orders o JOIN products p ON p.id = o.product_id "
           f"WHERE p.category = {q(category)}")
    return _single(f"What is the total revenue (price times quantity) of {category} products?", sql,
                   ("aggregate",), tolerance=1e-4)


def spend_of_customer(rng: random.Random) -> Task | None:
    name = rng.choice(_customers())
    sql = ("SELECT SUM(p.price * o.quantity) FROM orders o JOIN products p ON p.id = o.product_id "
           f"JOIN customers c ON c.id = o.customer_id WHERE c.name = {q(name)}")
    return _single(f"How much did {name} spend in total (price times quantity)?", sql, ("aggregate",),
                   tolerance=1e-4)


def extreme_price_in_category(rng: random.Random) -> Task | None:
    category = rng.choice(CATEGORIES)
    word, order = rng.choice((("most expensive", "DESC"), ("cheapest", "ASC")))
    sql = f"SELECT name FROM products WHERE category = {q(category)} ORDER BY price {order} LIMIT 1"
    return _single(f"Which is the {word} product in the {category} category?", sql, ("aggregate",))


def average_price_of_category(rng: random.Random) -> Task | None:
    category = rng.choice(CATEGORIES)
    return _single(f"What is the average price of {category} products?",
                   f"SELECT AVG(price) FROM products WHERE category = {q(category)}", ("aggregate",),
                   tolerance=1e-3)


def orders_from_city(rng: random.Random) -> Task | None:
    city = rng.choice(_cities())
    sql = f"SELECT COUNT(*) FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.city = {q(city)}"
    return _single(f"How many orders came from customers living in {city}?", sql, ("aggregate",))


def category_units_in_month(rng: random.Random) -> Task | None:
    category = rng.choice(CATEGORIES)
    month, pattern = _month(rng)
    sql = ("SELECT SUM(o.quantity) FROM orders o JOIN products p ON p.id = o.product_id "
           f"WHERE p.category = {q(category)} AND o.order_date LIKE {q(pattern)}")
    return _single(f"How many units of {category} products were ordered in {month} 2024?", sql, ("aggregate",))


def top_product_in_month(rng: random.Random) -> Task | None:
    month, pattern = _month(rng)
    group = (f"FROM orders o JOIN products p ON p.id = o.product_id WHERE o.order_date LIKE {q(pattern)} "
             "GROUP BY p.id ORDER BY SUM(o.quantity) DESC")
    if not _unique_top(f"SELECT SUM(o.quantity) {group} LIMIT 2"):
        return None
    return _single(f"Which product sold the most units in {month} 2024?", f"SELECT p.name {group} LIMIT 1",
                   ("aggregate",))


def _unique_top(sql: str) -> bool:
    """Whether the best score of a ranking (first column, best first, LIMIT 2) has no tie."""
    rows = _rows(sql)
    return len(rows) == 1 or (len(rows) == 2 and rows[0][0] != rows[1][0])


# ---- multi-step ---------------------------------------------------------------------------------


def customer_id_then_orders(rng: random.Random) -> Task | None:
    name = rng.choice(_customers())
    first = f"SELECT id FROM customers WHERE name = {q(name)}"
    second = f"SELECT COUNT(*) FROM orders WHERE customer_id = {_cell(first)}"
    text = f"Find the id of customer {name}, then count the orders with that customer id."
    return _task(text, [_query(first), _query(second)], _cell(second), ("multi_step",))


def product_id_then_units(rng: random.Random) -> Task | None:
    product = rng.choice(_products())
    first = f"SELECT id FROM products WHERE name = {q(product)}"
    second = f"SELECT SUM(quantity) FROM orders WHERE product_id = {_cell(first)}"
    text = f"Look up the id of {product}, then sum the quantity of its orders."
    return _task(text, [_query(first), _query(second)], _cell(second), ("multi_step",))


def priciest_then_units(rng: random.Random) -> Task | None:
    category = rng.choice(CATEGORIES)
    word, order = rng.choice((("most expensive", "DESC"), ("cheapest", "ASC")))
    first = f"SELECT id, name FROM products WHERE category = {q(category)} ORDER BY price {order} LIMIT 1"
    second = f"SELECT SUM(quantity) FROM orders WHERE product_id = {_cell(first)}"
    text = f"How many units of the {word} {category} product were ordered?"
    return _task(text, [_query(first), _query(second)], _cell(second), ("multi_step",))


def customer_of_order(rng: random.Random) -> Task | None:
    order_id = rng.choice(_order_ids())
    first = f"SELECT customer_id FROM orders WHERE id = {order_id}"
    second = f"SELECT name FROM customers WHERE id = {_cell(first)}"
    text = rng.choice((f"Who placed order {order_id}? Give the customer's name.",
                       f"What is the name of the customer of order {order_id}?"))
    return _task(text, [_query(first), _query(second)], _cell(second), ("multi_step",))


def product_of_order(rng: random.Random) -> Task | None:
    order_id = rng.choice(_order_ids())
    field, word = rng.choice((("name", "name"), ("category", "category"), ("price", "price")))
    first = f"SELECT product_id FROM orders WHERE id = {order_id}"
    second = f"SELECT {field} FROM products WHERE id = {_cell(first)}"
    text = f"What is the {word} of the product bought in order {order_id}?"
    return _task(text, [_query(first), _query(second)], _cell(second), ("multi_step",))


def top_customer_city(rng: random.Random) -> Task | None:
    month, pattern = _month(rng)
    ranking = (f"FROM orders WHERE order_date LIKE {q(pattern)} GROUP BY customer_id "
               "ORDER BY COUNT(*) DESC")
    if not _unique_top(f"SELECT COUNT(*) {ranking} LIMIT 2"):
        return None
    first = f"SELECT customer_id, COUNT(*) {ranking} LIMIT 1"
    second = f"SELECT city FROM customers WHERE id = {_cell(first)}"
    text = f"Which city is the customer with the most orders in {month} 2024 from?"
    return _task(text, [_query(first), _query(second)], _cell(second), ("multi_step",))


def describe_then_query(rng: random.Random) -> Task | None:
    """The second call needs a column name ('joined', 'order_date') that only describe reveals."""
    if rng.random() < 0.5:
        name = rng.choice(_customers())
        text = f"Check the columns of customers, then find when {name} signed up."
        call = ToolCall("describe", {"table": "customers"})
        sql = f"SELECT joined FROM customers WHERE name = {q(name)}"
    else:
        order_id = rng.choice(_order_ids())
        text = f"Describe the orders table, then give the date of order {order_id}."
        call = ToolCall("describe", {"table": "orders"})
        sql = f"SELECT order_date FROM orders WHERE id = {order_id}"
    return _task(text, [call, _query(sql)], _cell(sql), ("multi_step", "schema"))


# ---- recovery: a natural but wrong table name ---------------------------------------------------


def _wrong(rng: random.Random, table: str) -> str:
    return rng.choice(WRONG_TABLES[table])


def wrong_orders_table(rng: random.Random) -> Task | None:
    wrong = _wrong(rng, "orders")
    if rng.random() < 0.5:
        month, pattern = _month(rng)
        text = f"Using the {wrong} table, how many orders were placed in {month} 2024?"
        sql = f"SELECT COUNT(*) FROM orders WHERE order_date LIKE {q(pattern)}"
    else:
        product = rng.choice(_products())
        text = f"From the {wrong} table, how many units of {product} were sold?"
        sql = ("SELECT SUM(o.quantity) FROM orders o JOIN products p ON p.id = o.product_id "
               f"WHERE p.name = {q(product)}")
    return _task(text, [_query(sql)], _cell(sql), ("recovery",), max_turns=4)


def wrong_customers_table(rng: random.Random) -> Task | None:
    wrong = _wrong(rng, "customers")
    name = rng.choice(_customers())
    field, text = rng.choice((
        ("city", f"In the {wrong} table, which city is {name} from?"),
        ("joined", f"Look up {name} in the {wrong} table: when did they join?"),
    ))
    sql = f"SELECT {field} FROM customers WHERE name = {q(name)}"
    return _task(text, [_query(sql)], _cell(sql), ("recovery",), max_turns=4)


def wrong_products_table(rng: random.Random) -> Task | None:
    wrong = _wrong(rng, "products")
    product = rng.choice(_products())
    field = rng.choice(("price", "category"))
    sql = f"SELECT {field} FROM products WHERE name = {q(product)}"
    text = f"In the {wrong} table, what is the {field} of {product}?"
    return _task(text, [_query(sql)], _cell(sql), ("recovery",), max_turns=4)


# template -> weight: about half single-step, a third multi-step, a sixth recovery
TEMPLATES: dict[Template, int] = {
    orders_of_customer: 3, units_of_product: 3, price_of_product: 2, category_of_product: 1,
    city_of_customer: 2, joined_of_customer: 1, customers_in_city: 1, orders_in_month: 2, buyers_of_product: 2,
    revenue_of_category: 1, spend_of_customer: 2, extreme_price_in_category: 1, average_price_of_category: 1,
    orders_from_city: 1, category_units_in_month: 2, top_product_in_month: 1,
    customer_id_then_orders: 3, product_id_then_units: 2, priciest_then_units: 2, customer_of_order: 3,
    product_of_order: 3, top_customer_city: 1, describe_then_query: 3,
    wrong_orders_table: 3, wrong_customers_table: 3, wrong_products_table: 2,
}


def generate(rng: random.Random) -> Task:
    """One random database task; templates the data cannot support this time are redrawn."""
    templates, weights = list(TEMPLATES), list(TEMPLATES.values())
    for _ in range(100):
        template = rng.choices(templates, weights)[0]
        task = template(rng)
        if task is not None:
            return task
    raise RuntimeError("no database template produced a task in 100 draws")
