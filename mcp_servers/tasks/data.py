"""The "data" suite: load shipped data sets, filter, sort, group, join and convert units.

Every answer is computed here in plain Python from the shipped files (not by the server), so
playing the reference calls also checks the server. The server starts each episode with an empty
workspace, so a task that reads a table first loads it. Kinds of task:

- single step (tag ``single_step``): convert a value between unit symbols; report a data set's rows;
- multi step (tag ``multi_step``): load then aggregate (over all rows or per group); load then
  filter and count; load, filter, then aggregate the table the filter returned (``t1``); load then
  sort for the largest or smallest; load, aggregate, then convert the value the aggregate returned;
- state (tag ``state``, also ``multi_step``): save a filtered, sorted or joined table under a name;
  a ``probe`` verifier aggregates the saved table, so only the right rows under the right name pass;
- recovery (tag ``recovery``): units spelled as words ("kilometres") that the converter rejects with
  a list of the valid symbols; a column named in everyday words ("temperature") that the
  aggregate rejects with the list of columns; a question about a data set that does not say to
  load it, where the obvious aggregate fails with "not loaded". The reference calls are the
  oracle solution that succeeds.
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mcp_servers.assets import asset_path
from mcp_servers.tasks.model import Task, ToolCall, Verifier
from mcp_servers.tasks.suites import make_task

SUITE = "data"
SERVERS = ("data",)
TOLERANCE = 1e-4  # the server keeps 4 decimals of an aggregate; conversions keep 10 digits
MIN_ANSWER, MAX_ANSWER = 0.01, 1e7  # conversions outside this range read badly or blur under TOLERANCE

DATASETS = ("cities", "shipments", "stations")
NUMERIC = {
    "cities": ("population", "area_km2"),
    "shipments": ("weight_kg", "distance_km"),
    "stations": ("temp_c", "rain_mm"),
}
TEXT = {
    "cities": ("country", "city"),
    "shipments": ("origin", "destination", "mode"),
    "stations": ("city", "station"),
}
EQUALS = {
    "cities": ("country",),
    "shipments": ("origin", "destination", "mode"),
    "stations": ("city", "station", "month"),
}  # columns worth an == condition
GROUPS = {
    "cities": ("country",),
    "shipments": ("origin", "destination", "mode"),
    "stations": ("city", "station", "month"),
}
KEYS = {"cities": ("city", "city"), "shipments": ("shipment id", "id"), "stations": ("station", "station")}
STEP = {"population": 10_000, "area_km2": 10, "weight_kg": 10, "distance_km": 100, "temp_c": 1, "rain_mm": 10}
WORDS = {
    "temp_c": "temperature",
    "rain_mm": "rainfall",
    "weight_kg": "weight",
    "distance_km": "distance",
    "area_km2": "area",
}  # everyday names a model may try as a column

FUNC_WORDS = {
    "sum": ("sum of", "total"),
    "mean": ("mean", "average"),
    "min": ("minimum", "lowest"),
    "max": ("maximum", "highest"),
}
OP_WORDS = {
    ">": ("over", "above", "greater than"),
    "<": ("under", "below", "less than"),
    ">=": ("at least",),
    "<=": ("at most",),
}

# unit -> (dimension, factor to the base unit): written out here again so tasks check the server
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
    "t": ("mass", 1000.0),
    "lb": ("mass", 0.45359237),
    "oz": ("mass", 0.028349523125),
    "l": ("volume", 1.0),
    "ml": ("volume", 0.001),
    "gal": ("volume", 3.785411784),
    "m/s": ("speed", 1.0),
    "km/h": ("speed", 1 / 3.6),
    "mph": ("speed", 0.44704),
    "kn": ("speed", 1852 / 3600),
    "C": ("temperature", 0.0),
    "F": ("temperature", 0.0),
    "K": ("temperature", 0.0),
}
UNIT_NAMES = {
    "m": ("metres", "meters"),
    "km": ("kilometres", "kilometers"),
    "cm": ("centimetres",),
    "mm": ("millimetres",),
    "mi": ("miles",),
    "ft": ("feet",),
    "in": ("inches",),
    "yd": ("yards",),
    "kg": ("kilograms",),
    "g": ("grams",),
    "t": ("tonnes",),
    "lb": ("pounds",),
    "oz": ("ounces",),
    "l": ("litres", "liters"),
    "ml": ("millilitres",),
    "gal": ("gallons",),
    "m/s": ("metres per second",),
    "km/h": ("kilometres per hour",),
    "mph": ("miles per hour",),
    "kn": ("knots",),
    "C": ("Celsius", "degrees Celsius"),
    "F": ("Fahrenheit", "degrees Fahrenheit"),
    "K": ("kelvin",),
}
# data set column -> its unit and the units a question may ask for (never "in": "in in" reads badly)
COLUMN_UNITS = {
    ("shipments", "weight_kg"): ("kg", ("lb", "t", "g", "oz")),
    ("shipments", "distance_km"): ("km", ("mi", "m", "ft")),
    ("stations", "temp_c"): ("C", ("F", "K")),
    ("stations", "rain_mm"): ("mm", ("cm", "m")),
}
SAVE_NAMES = ("keep", "picked", "subset", "part", "sel", "mine", "out")
ABOVE_NAMES = {
    "weight_kg": "heavy",
    "distance_km": "far",
    "temp_c": "hot",
    "rain_mm": "wet",
    "population": "big",
    "area_km2": "large",
}
BELOW_NAMES = {
    "weight_kg": "light",
    "distance_km": "near",
    "temp_c": "cold",
    "rain_mm": "dry",
    "population": "small",
    "area_km2": "tiny",
}

Row = dict[str, Any]


def generate(rng: random.Random) -> Task:
    """One random data task (a template that finds no clean instance draws again)."""
    kinds, weights = zip(*_KINDS, strict=True)
    while True:
        task = rng.choices(kinds, weights=weights)[0](rng)
        if task is not None:
            return task


# --- the shipped data, read independently of the server ------------------------------------------


@functools.lru_cache(maxsize=len(DATASETS))
def rows_of(dataset: str) -> tuple[Row, ...]:
    """The rows of a shipped data set as dicts, read straight from its file."""
    data = json.loads(asset_path("data", f"{dataset}.json").read_text(encoding="utf-8"))
    return tuple(dict(zip(data["columns"], row, strict=True)) for row in data["rows"])


def reduce(func: str, values: list[Any]) -> Any:
    """An aggregate computed the plain way (the server's own code is not reused)."""
    if func == "count":
        return len(values)
    if func == "sum":
        return sum(values)
    if func == "mean":
        return sum(values) / len(values)
    return min(values) if func == "min" else max(values)


def shown(value: Any) -> Any:
    """A value as the server shows it: whole numbers stay whole, others keep 4 decimals."""
    return value if isinstance(value, int) else round(value, 4)


def convert(value: float, source: str, target: str) -> float:
    """Unit conversion from the table above, temperatures by formula."""
    if UNITS[source][0] == "temperature":
        celsius = {"C": value, "F": (value - 32) * 5 / 9, "K": value - 273.15}[source]
        return {"C": celsius, "F": celsius * 9 / 5 + 32, "K": celsius + 273.15}[target]
    return value * UNITS[source][1] / UNITS[target][1]


def tidy(value: Any) -> Any:
    """A float cut to 10 significant digits, like the converter's answers (0.1 + 0.2 -> 0.3)."""
    return float(f"{value:.10g}") if isinstance(value, float) else value


def number_text(value: float) -> str:
    """A number for an instruction: no trailing .0."""
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass(frozen=True)
class Condition:
    """One filter: its arguments, its wording, and the rows it keeps."""

    column: str
    op: str
    value: Any
    phrase: str
    rows: tuple[Row, ...]

    def arguments(self, table: str) -> dict[str, Any]:
        return {"table": table, "column": self.column, "op": self.op, "value": self.value}


def condition(rng: random.Random, dataset: str) -> Condition | None:
    """A random filter that keeps some rows but not all (None when the draw keeps none or all)."""
    rows = rows_of(dataset)
    draw = rng.random()
    if draw < 0.5:
        column = rng.choice(NUMERIC[dataset])
        op = rng.choice(sorted(OP_WORDS))
        step = STEP[column]
        value = int(round(rng.choice(rows)[column] / step) * step)
        phrase = f"{column} {rng.choice(OP_WORDS[op])} {value}"
        tests = {
            ">": lambda x: x > value,
            "<": lambda x: x < value,
            ">=": lambda x: x >= value,
            "<=": lambda x: x <= value,
        }
        test: Callable[[Any], bool] = tests[op]
    elif draw < 0.85:
        column = rng.choice(EQUALS[dataset])
        value = rng.choice(rows)[column]
        op = "!=" if rng.random() < 0.15 else "=="
        phrase = f"{column} {'not ' if op == '!=' else ''}{value}"
        test = (lambda x: x == value) if op == "==" else (lambda x: x != value)
    else:
        column = rng.choice(TEXT[dataset])
        word = rng.choice(rows)[column].lower()
        start = rng.randrange(len(word) - 1)
        value = word[start : start + rng.choice((2, 3))]
        op = "contains"
        phrase = f"{column} containing '{value}'"
        test = lambda x: value in x.lower()  # noqa: E731
    kept = tuple(row for row in rows if test(row[column]))
    if not 0 < len(kept) < len(rows):
        return None
    return Condition(column, op, value, phrase, kept)


# --- task builders -------------------------------------------------------------------------------


def _task(
    instruction: str, calls: list[ToolCall], verifier: Verifier, answer: Any, tags: tuple[str, ...]
) -> Task:
    """A data task offering exactly the tools its reference calls use."""
    tools = tuple(dict.fromkeys(call.name for call in calls))
    return make_task(SUITE, instruction, SERVERS, calls, verifier, tools=tools, tags=tags, answer=answer)


def _load(dataset: str) -> ToolCall:
    return ToolCall("load", {"dataset": dataset})


def _agg(table: str, func: str, column: str, group_by: str | None = None) -> ToolCall:
    arguments = {"table": table, "func": func, "column": column}
    if group_by is not None:
        arguments["group_by"] = group_by
    return ToolCall("aggregate", arguments)


def _value(answer: Any, tool: str, path: str | None = None) -> Verifier:
    return Verifier(kind="value", equals=answer, tool=tool, path=path, tolerance=TOLERANCE)


def _random_value(rng: random.Random) -> int | float:
    """A value to convert: mostly whole numbers, sometimes one decimal."""
    if rng.random() < 0.7:
        return rng.randint(1, 500)
    return round(rng.uniform(0.5, 300.0), 1)


def _unit_pair(rng: random.Random) -> tuple[str, str]:
    dimension = rng.choice(("length", "mass", "volume", "speed", "temperature"))
    return tuple(rng.sample([u for u, (d, _) in UNITS.items() if d == dimension], 2))  # type: ignore[return-value]


def convert_symbols(rng: random.Random) -> Task | None:
    """Single step: convert between unit symbols."""
    value, (source, target) = _random_value(rng), _unit_pair(rng)
    text = rng.choice(("Convert {v} {a} to {b}.", "How many {b} is {v} {a}?", "Express {v} {a} in {b}."))
    answer = tidy(convert(value, source, target))
    if not MIN_ANSWER <= abs(answer) <= MAX_ANSWER:
        return None
    call = ToolCall("convert", {"value": value, "from_unit": source, "to_unit": target})
    return _task(
        text.format(v=value, a=source, b=target), [call], _value(answer, "convert"), answer, ("single_step",)
    )


def convert_words(rng: random.Random) -> Task | None:
    """Recovery: the units are spelled out; the converter rejects the words and lists the symbols."""
    value, (source, target) = _random_value(rng), _unit_pair(rng)
    words = rng.choice(UNIT_NAMES[source]), rng.choice(UNIT_NAMES[target])
    answer = tidy(convert(value, source, target))
    if not MIN_ANSWER <= abs(answer) <= MAX_ANSWER:
        return None
    call = ToolCall("convert", {"value": value, "from_unit": source, "to_unit": target})
    return _task(
        f"Convert {value} {words[0]} to {words[1]}.", [call], _value(answer, "convert"), answer, ("recovery",)
    )


def count_rows(rng: random.Random) -> Task:
    """Single step: load a data set and report its rows."""
    dataset = rng.choice(DATASETS)
    text = rng.choice(
        (
            "How many rows does the {d} data set have?",
            "Load {d} and report its row count.",
            "Count the rows of the {d} data set.",
        )
    )
    answer = len(rows_of(dataset))
    return _task(
        text.format(d=dataset), [_load(dataset)], _value(answer, "load", "$.rows"), answer, ("single_step",)
    )


def _whole(rng: random.Random) -> tuple[str, str, str, Any]:
    """A data set, a number column, an aggregate and its value over every row."""
    dataset = rng.choice(DATASETS)
    column = rng.choice(NUMERIC[dataset])
    func = rng.choice(sorted(FUNC_WORDS))
    return dataset, column, func, tidy(reduce(func, [row[column] for row in rows_of(dataset)]))


def load_aggregate(rng: random.Random) -> Task:
    """Multi step: load, then aggregate a column over all rows."""
    dataset, column, func, answer = _whole(rng)
    text = rng.choice(("Load {d} and give the {f} {c}.", "Load the {d} data set, then compute the {f} {c}."))
    text = text.format(d=dataset, f=rng.choice(FUNC_WORDS[func]), c=column)
    calls = [_load(dataset), _agg(dataset, func, column)]
    return _task(text, calls, _value(answer, "aggregate", "$.value"), answer, ("multi_step",))


def aggregate_unloaded(rng: random.Random) -> Task:
    """Recovery: the question does not say to load; aggregating first fails with "not loaded"."""
    dataset, column, func, answer = _whole(rng)
    text = rng.choice(("What is the {f} {c} in {d}?", "Give the {f} {c} of the {d} table."))
    text = text.format(d=dataset, f=rng.choice(FUNC_WORDS[func]), c=column)
    calls = [_load(dataset), _agg(dataset, func, column)]
    return _task(text, calls, _value(answer, "aggregate", "$.value"), answer, ("multi_step", "recovery"))


def column_words(rng: random.Random) -> Task | None:
    """Recovery: the column is named in everyday words; the aggregate's error lists the real columns."""
    dataset, column, func, answer = _whole(rng)
    if column not in WORDS:
        return None
    text = f"Load {dataset} and give the {rng.choice(FUNC_WORDS[func])} {WORDS[column]}."
    calls = [_load(dataset), _agg(dataset, func, column)]
    return _task(text, calls, _value(answer, "aggregate", "$.value"), answer, ("multi_step", "recovery"))


def group_aggregate(rng: random.Random) -> Task:
    """Multi step: load, then aggregate per group and read one group's value."""
    dataset = rng.choice(DATASETS)
    group = rng.choice(GROUPS[dataset])
    key = rng.choice(rows_of(dataset))[group]
    members = [row for row in rows_of(dataset) if row[group] == key]
    named = f"month {key}" if group == "month" else key
    if rng.random() < 0.25:
        column, func = group, "count"
        text = f"Load {dataset}, count rows per {group}, and give the count for {named}."
    else:
        column, func = rng.choice(NUMERIC[dataset]), rng.choice(sorted(FUNC_WORDS))
        text = f"Load {dataset}, group by {group}, and give the {rng.choice(FUNC_WORDS[func])} {column} of {named}."
    answer = tidy(reduce(func, [row[column] for row in members]))
    calls = [_load(dataset), _agg(dataset, func, column, group)]
    return _task(text, calls, _value(answer, "aggregate", f'$.groups["{key}"]'), answer, ("multi_step",))


def filter_count(rng: random.Random) -> Task | None:
    """Multi step: load, then filter; the filter's row count is the answer."""
    dataset = rng.choice(DATASETS)
    cond = condition(rng, dataset)
    if cond is None:
        return None
    text = rng.choice(("How many rows of {d} have {p}?", "Count the {d} rows with {p}."))
    answer = len(cond.rows)
    calls = [_load(dataset), ToolCall("filter", cond.arguments(dataset))]
    return _task(
        text.format(d=dataset, p=cond.phrase),
        calls,
        _value(answer, "filter", "$.rows"),
        answer,
        ("multi_step",),
    )


def filter_aggregate(rng: random.Random) -> Task | None:
    """Multi step: load, filter, then aggregate the table the filter returned (t1 in a fresh workspace)."""
    dataset = rng.choice(DATASETS)
    cond = condition(rng, dataset)
    if cond is None:
        return None
    column, func = rng.choice(NUMERIC[dataset]), rng.choice(sorted(FUNC_WORDS))
    answer = tidy(reduce(func, [row[column] for row in cond.rows]))
    if abs(answer - reduce(func, [row[column] for row in rows_of(dataset)])) <= TOLERANCE * max(
        1, abs(answer)
    ):
        return None  # the unfiltered table gives the same answer: success would not prove the filter
    text = f"Filter {dataset} to {cond.phrase}, then give the {rng.choice(FUNC_WORDS[func])} {column}."
    calls = [_load(dataset), ToolCall("filter", cond.arguments(dataset)), _agg("t1", func, column)]
    return _task(text, calls, _value(answer, "aggregate", "$.value"), answer, ("multi_step",))


def sort_top(rng: random.Random) -> Task | None:
    """Multi step: load, then sort to find the row with the largest or smallest value."""
    dataset = rng.choice(DATASETS)
    column = rng.choice(NUMERIC[dataset])
    descending = rng.random() < 0.6
    noun, key = KEYS[dataset]
    ordered = sorted(rows_of(dataset), key=lambda row: row[column], reverse=descending)
    if ordered[0][column] == ordered[1][column]:
        return None  # a tie has no single answer
    word = rng.choice(("highest", "largest")) if descending else rng.choice(("lowest", "smallest"))
    text = f"Which {noun} has the {word} {column} in {dataset}?"
    answer = ordered[0][key]
    call = ToolCall("sort", {"table": dataset, "column": column, "descending": descending, "limit": 1})
    return _task(
        text, [_load(dataset), call], _value(answer, "sort", f"$.preview[0].{key}"), answer, ("multi_step",)
    )


def aggregate_convert(rng: random.Random) -> Task:
    """Multi step: aggregate a column, then convert the returned value to another unit."""
    (dataset, column), (unit, targets) = rng.choice(sorted(COLUMN_UNITS.items()))
    funcs = ("mean", "min", "max") if unit == "C" else tuple(sorted(FUNC_WORDS))
    func, target = rng.choice(funcs), rng.choice(targets)
    value = shown(reduce(func, [row[column] for row in rows_of(dataset)]))
    answer = tidy(convert(value, unit, target))
    text = f"Give the {rng.choice(FUNC_WORDS[func])} {column} of {dataset}, converted to {target}."
    calls = [
        _load(dataset),
        _agg(dataset, func, column),
        ToolCall("convert", {"value": value, "from_unit": unit, "to_unit": target}),
    ]
    return _task(text, calls, _value(answer, "convert"), answer, ("multi_step",))


def _sum_probe(name: str, column: str, rows: tuple[Row, ...] | list[Row], func: str = "sum") -> Verifier:
    """A probe that aggregates the saved table: the right name with the right rows passes."""
    expected = tidy(reduce(func, [row[column] for row in rows]))
    return Verifier(
        kind="probe",
        probe=_agg(name, func, column),
        expect=Verifier(kind="value", equals=expected, path="$.value", tolerance=TOLERANCE),
    )


def save_filter(rng: random.Random) -> Task | None:
    """State: save a filtered table under a name; the probe sums a column of the saved table."""
    dataset = rng.choice(DATASETS)
    cond = condition(rng, dataset)
    if cond is None:
        return None
    names = {">": ABOVE_NAMES, ">=": ABOVE_NAMES, "<": BELOW_NAMES, "<=": BELOW_NAMES}.get(cond.op, {})
    name = names.get(cond.column) if rng.random() < 0.6 else None
    if name is None and cond.op == "==" and isinstance(cond.value, str):
        name = cond.value.lower()
    name = name or rng.choice(SAVE_NAMES)
    if name in DATASETS:
        return None
    verifier = _sum_probe(name, NUMERIC[dataset][0], cond.rows)
    text = f"Save the {dataset} rows with {cond.phrase} as {name}."
    calls = [_load(dataset), ToolCall("filter", {**cond.arguments(dataset), "save_as": name})]
    return _task(text, calls, verifier, len(cond.rows), ("multi_step", "state"))


def save_top(rng: random.Random) -> Task | None:
    """State: save the top or bottom k rows by a column; the probe checks the saved table's edge value."""
    dataset = rng.choice(DATASETS)
    column = rng.choice(NUMERIC[dataset])
    descending = rng.random() < 0.6
    k = rng.randint(2, 10)
    ordered = sorted(rows_of(dataset), key=lambda row: row[column], reverse=descending)
    if ordered[k - 1][column] == ordered[k][column]:
        return None  # a tie at the cut: "the k largest" would not be one table
    name = f"{'top' if descending else 'bottom'}{k}" if rng.random() < 0.7 else rng.choice(SAVE_NAMES)
    word = "highest" if descending else "lowest"
    text = f"Save the {k} {dataset} rows with the {word} {column} as {name}."
    verifier = _sum_probe(name, column, ordered[:k], "min" if descending else "max")
    call = ToolCall(
        "sort", {"table": dataset, "column": column, "descending": descending, "limit": k, "save_as": name}
    )
    return _task(
        text, [_load(dataset), call], verifier, [row[column] for row in ordered[:k]], ("multi_step", "state")
    )


def save_join(rng: random.Random) -> Task:
    """State: join stations with cities on city and save it; the probe sums a column only cities has."""
    left, right = ("stations", "cities") if rng.random() < 0.7 else ("cities", "stations")
    name = rng.choice(("joined", "merged", "both", "sc", "combo", "full"))
    populations = {row["city"]: row["population"] for row in rows_of("cities")}
    joined = [
        {"population": populations[row["city"]]} for row in rows_of("stations") if row["city"] in populations
    ]
    text = rng.choice(
        ("Join {l} with {r} on city and save it as {n}.", "Save {l} joined with {r} on city as {n}.")
    )
    calls = [
        _load(left),
        _load(right),
        ToolCall("join", {"left": left, "right": right, "on": "city", "save_as": name}),
    ]
    return _task(
        text.format(l=left, r=right, n=name),
        calls,
        _sum_probe(name, "population", joined),
        len(joined),
        ("multi_step", "state"),
    )


_KINDS: tuple[tuple[Callable[[random.Random], Task | None], float], ...] = (
    (convert_symbols, 2.0),
    (convert_words, 2.0),
    (count_rows, 0.5),
    (load_aggregate, 2.0),
    (aggregate_unloaded, 1.0),
    (column_words, 1.0),
    (group_aggregate, 2.0),
    (filter_count, 2.0),
    (filter_aggregate, 2.0),
    (sort_top, 1.5),
    (aggregate_convert, 1.5),
    (save_filter, 2.0),
    (save_top, 1.0),
    (save_join, 0.5),
)
