"""The "math" suite: arithmetic, expressions, word problems, two-step problems and notation recovery.

Every instance states the numbers its calls need, mostly of one to three digits, so that a tiny model
can copy them; the answers are computed here in plain Python (not by the server), so playing the
reference calls also checks the server. Kinds of task:

- single step (tag ``single_step``): one ``arithmetic``, ``percent`` or ``calculate`` call;
- two steps (tag ``multi_step``): the second call needs the first call's result;
- recovery (tag ``recovery``): the instruction writes an expression in everyday notation that the
  evaluator rejects (``3^4``, ``12 x 7``, ``3(4 + 5)``, ``1,250``); the obvious call fails with an error
  that says how to write it, and the reference call is the corrected one.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from fractions import Fraction

from mcp_servers.tasks.model import Task, ToolCall, Verifier
from mcp_servers.tasks.suites import make_task

SUITE = "math"
SERVERS = ("math",)
EVALUATE = ("Evaluate", "Calculate", "Compute")  # every expression instruction starts with one of these


def generate(rng: random.Random) -> Task:
    """One random math task."""
    kinds, weights = zip(*_KINDS, strict=True)
    while True:
        try:
            return rng.choices(kinds, weights=weights)[0](rng)
        except _Redraw:
            continue


class _Redraw(Exception):
    """This draw does not make a fair task (its first result is already written in it): draw again."""


# --- building blocks -----------------------------------------------------------------------------


def _arith(op: str, a: int | float, b: int | float) -> ToolCall:
    return ToolCall("arithmetic", {"op": op, "a": a, "b": b})


def _number(value: Fraction | int | float) -> int | float:
    """An exact answer as the server shows it: an int when whole."""
    value = Fraction(value)
    return int(value) if value.denominator == 1 else float(value)


def _task(
    instruction: str,
    calls: list[ToolCall],
    answer: int | float,
    tools: tuple[str, ...],
    tags: tuple[str, ...],
    first: int | float | None = None,
) -> Task:
    """A math task whose verifier wants ``answer`` from a call to the last reference call's tool.

    The answer must not be among the numbers the instruction states (a call could just echo it).
    ``first`` is a two-step task's intermediate result: the second step is only needed when it is
    not stated either, and differs from the answer.
    """
    stated = {Fraction(n) for n in re.findall(r"\d+(?:\.\d+)?", instruction.replace(",", ""))}
    if Fraction(answer) in stated:
        raise _Redraw
    if first is not None and (Fraction(first) in stated or first == answer):
        raise _Redraw
    return make_task(
        SUITE,
        instruction,
        SERVERS,
        calls,
        Verifier(kind="value", equals=answer, tool=calls[-1].name),
        tools=tools,
        tags=tags,
        answer=answer,
    )


def _apply(op: str, a: int | float, b: int | float) -> int | float:
    """The exact result of an arithmetic op, as the generator's own check of the server."""
    x, y = Fraction(a), Fraction(b)
    results = {
        "add": lambda: x + y,
        "subtract": lambda: x - y,
        "multiply": lambda: x * y,
        "divide": lambda: x / y,
        "power": lambda: x ** int(y),
        "modulo": lambda: x % y,
    }
    return _number(results[op]())


# --- single step ---------------------------------------------------------------------------------

_DIRECT: dict[str, tuple[str, ...]] = {
    "add": ("Add {a} and {b}.", "What is {a} plus {b}?", "Find the sum of {a} and {b}."),
    "subtract": ("Subtract {b} from {a}.", "What is {a} minus {b}?", "Find {a} take away {b}."),
    "multiply": ("Multiply {a} by {b}.", "What is {a} times {b}?", "Find the product of {a} and {b}."),
    "divide": ("Divide {a} by {b}.", "What is {a} divided by {b}?", "Find the quotient of {a} and {b}."),
    "power": ("What is {a} to the power of {b}?", "Raise {a} to the power {b}."),
    "modulo": ("What is the remainder when {a} is divided by {b}?", "Compute {a} modulo {b}."),
}


def _operands(rng: random.Random, op: str) -> tuple[int, int]:
    """Two operands of modest size for which ``op`` has a short, non-obvious answer."""
    if op == "add":
        return rng.randint(10, 999), rng.randint(10, 999)
    if op == "subtract":
        b = rng.randint(5, 500)
        return b + rng.randint(5, 500), b
    if op == "multiply":
        return rng.randint(11, 99), rng.randint(3, 99)
    if op == "divide":
        b = rng.randint(3, 25)
        return b * rng.randint(3, 40), b
    if op == "power":
        base = rng.randint(2, 15)
        return base, rng.randint(2, 6 if base < 5 else 3)
    b = rng.randint(3, 30)
    return b * rng.randint(2, 30) + rng.randint(1, b - 1), b


def _direct(rng: random.Random) -> Task:
    """'Multiply 37 by 12.': one arithmetic call."""
    op = rng.choice(list(_DIRECT))
    a, b = _operands(rng, op)
    instruction = rng.choice(_DIRECT[op]).format(a=a, b=b)
    return _task(instruction, [_arith(op, a, b)], _apply(op, a, b), ("arithmetic",), ("single_step",))


def _expression(rng: random.Random) -> tuple[str, int]:
    """A short expression in the evaluator's syntax, with its value."""
    a, b, c = rng.randint(2, 60), rng.randint(2, 60), rng.randint(2, 30)
    lo, hi = sorted((a, b))
    hi += 1 if lo == hi else 0
    k = rng.randint(2, 15)
    shapes: list[tuple[str, int]] = [
        (f"({a} + {b}) * {c}", (a + b) * c),
        (f"{a} * {b} - {c}", a * b - c),
        (f"{c} * ({hi} - {lo})", c * (hi - lo)),
        (f"{a} + {b} * {c}", a + b * c),
        (f"{k * c} / {c} + {a}", k + a),
        (f"{k} ** 2 + {b}", k**2 + b),
        (f"sqrt({k * k}) * {c}", k * c),
        (f"max({a}, {b}) - {c}", max(a, b) - c),
        (f"min({a}, {b}) * {c}", min(a, b) * c),
        (f"abs({lo} - {hi}) + {c}", hi - lo + c),
        (f"{a * b + c} % {b} + {a}", (a * b + c) % b + a),
        (f"({hi} - {lo}) * ({c} + {k})", (hi - lo) * (c + k)),
    ]
    return rng.choice(shapes)


def _evaluate(rng: random.Random) -> Task:
    """'Evaluate (14 + 9) * 3.': one calculate call."""
    expression, value = _expression(rng)
    instruction = f"{rng.choice(EVALUATE)} {expression}."
    call = ToolCall("calculate", {"expression": expression})
    return _task(instruction, [call], value, ("calculate",), ("single_step", "expression"))


# word problem: (template, op); {a} and {b} are the operands in call order, {x} an item noun
_WORD: tuple[tuple[str, str], ...] = (
    ("A box holds {a} {x}. How many {x} are in {b} boxes?", "multiply"),
    ("Each ticket costs {a} dollars. What do {b} tickets cost?", "multiply"),
    ("A bus carries {a} people per trip. How many people ride in {b} trips?", "multiply"),
    ("Share {a} {x} equally among {b} kids. How many does each kid get?", "divide"),
    ("{a} students sit in rows of {b}. How many rows are there?", "divide"),
    ("Sam had {a} {x} and gave away {b}. How many are left?", "subtract"),
    ("A tank holds {a} liters and {b} liters leak out. How many liters remain?", "subtract"),
    ("A shop sold {a} {x} on Monday and {b} on Tuesday. How many in total?", "add"),
    ("A farm has {a} cows and {b} sheep. How many animals in total?", "add"),
)
_ITEMS = ("pens", "apples", "marbles", "books", "cards", "stickers", "coins", "eggs", "shells", "nuts")


def _word(rng: random.Random) -> Task:
    """'A box holds 24 pens. How many pens are in 15 boxes?': one arithmetic call."""
    template, op = rng.choice(_WORD)
    a, b = _operands(rng, op)
    instruction = template.format(a=a, b=b, x=rng.choice(_ITEMS))
    return _task(
        instruction, [_arith(op, a, b)], _apply(op, a, b), ("arithmetic",), ("single_step", "word_problem")
    )


_PERCENT = (
    "What is {p} percent of {v}?",
    "Find {p}% of {v}.",
    "A coat costs {v} dollars and is {p}% off. How many dollars is the discount?",
    "A class has {v} pupils and {p}% walk to school. How many walk?",
)
_RATES = (5, 10, 12, 15, 20, 25, 30, 35, 40, 45, 60, 75, 80, 90)


def _percent(rng: random.Random) -> Task:
    """'What is 15 percent of 240?': one percent call."""
    p, v = rng.choice(_RATES), rng.randint(2, 50) * 20
    instruction = rng.choice(_PERCENT).format(p=p, v=v)
    call = ToolCall("percent", {"value": v, "percent": p})
    return _task(instruction, [call], _number(Fraction(v * p, 100)), ("percent",), ("single_step", "percent"))


# --- two steps -----------------------------------------------------------------------------------

# second step: (phrase, op); the first result is the op's `a`, the stated number its `b`
_THEN: tuple[tuple[str, str], ...] = (
    ("multiply the result by {c}", "multiply"),
    ("add {c} to the result", "add"),
    ("subtract {c} from the result", "subtract"),
    ("divide the result by {c}", "divide"),
    ("square the result", "power"),
)
_FIRST: tuple[tuple[str, str], ...] = (
    ("Add {a} and {b}", "add"),
    ("Multiply {a} by {b}", "multiply"),
    ("Subtract {b} from {a}", "subtract"),
)


def _second_operand(rng: random.Random, op: str, first: int | float) -> int | None:
    """A stated number for the second step, or None when ``op`` does not suit ``first``."""
    if op == "divide":
        divisors = [d for d in range(2, 13) if isinstance(first, int) and first % d == 0]
        return rng.choice(divisors) if divisors else None
    if op == "power":
        return 2 if abs(first) <= 99 else None
    return rng.randint(2, 9) if op == "multiply" else rng.randint(3, 99)


def _two_arithmetic(rng: random.Random) -> Task:
    """'Add 12 and 30, then multiply the result by 4.': two arithmetic calls."""
    while True:
        first_phrase, first_op = rng.choice(_FIRST)
        a, b = _operands(rng, first_op)
        first = _apply(first_op, a, b)
        phrase, op = rng.choice(_THEN)
        c = _second_operand(rng, op, first)
        if c is not None:
            break
    instruction = f"{first_phrase.format(a=a, b=b)}, then {phrase.format(c=c)}."
    calls = [_arith(first_op, a, b), _arith(op, first, c)]
    return _task(instruction, calls, _apply(op, first, c), ("arithmetic",), ("multi_step",), first=first)


def _sum_then_percent(rng: random.Random) -> Task:
    """'Add 120 and 80, then find 15 percent of the result.': arithmetic, then percent."""
    a, b, p = rng.randint(2, 40) * 10, rng.randint(2, 40) * 10, rng.choice(_RATES)
    instruction = f"Add {a} and {b}, then find {p} percent of the result."
    calls = [_arith("add", a, b), ToolCall("percent", {"value": a + b, "percent": p})]
    answer = _number(Fraction((a + b) * p, 100))
    tags = ("multi_step", "percent")
    return _task(instruction, calls, answer, ("arithmetic", "percent"), tags, first=a + b)


def _percent_then_add(rng: random.Random) -> Task:
    """'Find 20% of 150, then add 45 to it.': percent, then arithmetic."""
    p, v, c = rng.choice(_RATES), rng.randint(2, 50) * 20, rng.randint(3, 99)
    part = _number(Fraction(v * p, 100))
    op, phrase = rng.choice((("add", "add {c} to it"), ("multiply", "multiply it by {c}")))
    c = c if op == "add" else rng.randint(2, 9)
    instruction = f"Find {p}% of {v}, then {phrase.format(c=c)}."
    calls = [ToolCall("percent", {"value": v, "percent": p}), _arith(op, part, c)]
    tags = ("multi_step", "percent")
    return _task(instruction, calls, _apply(op, part, c), ("percent", "arithmetic"), tags, first=part)


def _evaluate_then(rng: random.Random) -> Task:
    """'Evaluate (14 + 9) * 3, then add 7 to the result.': calculate, then arithmetic."""
    while True:
        expression, first = _expression(rng)
        phrase, op = rng.choice(_THEN)
        c = _second_operand(rng, op, first)
        if c is not None:
            break
    instruction = f"{rng.choice(EVALUATE)} {expression}, then {phrase.format(c=c)}."
    calls = [ToolCall("calculate", {"expression": expression}), _arith(op, first, c)]
    tags = ("multi_step", "expression")
    return _task(instruction, calls, _apply(op, first, c), ("calculate", "arithmetic"), tags, first=first)


def _word_two_steps(rng: random.Random) -> Task:
    """'A box holds 24 pens. You buy 5 boxes and give away 13 pens. How many are left?'."""
    x = rng.choice(_ITEMS)
    per, boxes = rng.randint(6, 48), rng.randint(3, 12)
    total = per * boxes
    if rng.random() < 0.5:
        away = rng.randint(2, total - 1)
        instruction = (
            f"A box holds {per} {x}. You buy {boxes} boxes and give away {away} {x}. How many are left?"
        )
        second, answer = _arith("subtract", total, away), total - away
    else:
        extra = rng.randint(2, 99)
        instruction = f"A box holds {per} {x}. You buy {boxes} boxes and find {extra} more {x}. How many now?"
        second, answer = _arith("add", total, extra), total + extra
    calls = [_arith("multiply", per, boxes), second]
    tags = ("multi_step", "word_problem")
    return _task(instruction, calls, answer, ("arithmetic",), tags, first=total)


# --- recovery ------------------------------------------------------------------------------------


def _caret(rng: random.Random) -> tuple[str, str, int]:
    """'3^4 + 2': '^' for powers, which the evaluator refuses (it is XOR in Python)."""
    base, exponent, c = rng.randint(2, 12), rng.randint(2, 3), rng.randint(2, 99)
    space = rng.choice(("", " "))
    power = f"{base}{space}^{space}{exponent}"
    sign = rng.choice(("+", "-"))
    value = base**exponent + c if sign == "+" else base**exponent - c
    return f"{power} {sign} {c}", f"{base} ** {exponent} {sign} {c}", value


def _times_x(rng: random.Random) -> tuple[str, str, int]:
    """'12 x 7 + 5': 'x' for multiplication."""
    a, b, c = rng.randint(3, 99), rng.randint(3, 30), rng.randint(2, 99)
    return f"{a} x {b} + {c}", f"{a} * {b} + {c}", a * b + c


def _implicit(rng: random.Random) -> tuple[str, str, int]:
    """'3(4 + 5)': multiplication by juxtaposition."""
    a, b, c = rng.randint(2, 12), rng.randint(2, 60), rng.randint(2, 60)
    return f"{a}({b} + {c})", f"{a} * ({b} + {c})", a * (b + c)


def _thousands(rng: random.Random) -> tuple[str, str, int]:
    """'1,250 + 375': a thousands separator, which makes a tuple."""
    a, b = rng.randint(1001, 9999), rng.randint(10, 999)
    sign = rng.choice(("+", "-"))
    value = a + b if sign == "+" else a - b
    return f"{a:,} {sign} {b}", f"{a} {sign} {b}", value


def _recovery(rng: random.Random) -> Task:
    """'Evaluate 3^4 + 2.': the literal call fails; the reference call uses the evaluator's syntax."""
    written, correct, value = rng.choice((_caret, _times_x, _implicit, _thousands))(rng)
    instruction = f"{rng.choice(EVALUATE)} {written}."
    call = ToolCall("calculate", {"expression": correct})
    return _task(instruction, [call], value, ("calculate",), ("recovery", "expression"))


_KINDS: tuple[tuple[Callable[[random.Random], Task], float], ...] = (
    (_direct, 3.0),
    (_evaluate, 2.0),
    (_word, 2.0),
    (_percent, 1.0),
    (_two_arithmetic, 2.0),
    (_sum_then_percent, 0.5),
    (_percent_then_add, 0.5),
    (_evaluate_then, 1.0),
    (_word_two_steps, 1.0),
    (_recovery, 2.5),
)
