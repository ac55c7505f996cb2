"""MCP server "math": two-number arithmetic, percentages and a safe expression evaluator.

Expressions are parsed with ``ast`` and walked against a whitelist (numbers, ``+ - * / // % **``,
unary signs, parentheses, a few functions and the constants ``pi`` and ``e``); nothing is ever
passed to ``eval``. Every bound is checked before the work it protects: the expression's length
before parsing, the tree's size and depth before evaluating, and a power's result size (from
logarithms) before computing it, so ``9**9**9`` is refused in microseconds. Errors are one line
that says how to fix the call, because the caller is a small language model learning the tools.

Run it as its own process with ``python -m mcp_servers.math``.
"""

from __future__ import annotations

import ast
import math
import re
import time
from collections.abc import Callable
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from mcp_servers.limits import DEFAULT_LIMITS, Limits, ToolError

Number = int | float

MAX_EXPRESSION_CHARS = 500
MAX_NODES = 200  # expression nodes (numbers, names, operations, calls)
MAX_DEPTH = 100  # nesting of those nodes; keeps the recursive evaluator far from Python's stack limit
MAX_DIGITS = 300  # no number, given or computed, may exceed 10**300 in size
MAX_INT = 10**MAX_DIGITS
MAX_FLOAT = float(f"1e{MAX_DIGITS}")
MAX_ROUND_DIGITS = 15
SIGNIFICANT_DIGITS = 12  # results are shown to 12 significant digits, hiding float noise such as 0.1 + 0.2
MAX_ARGS = 20  # arguments of min and max

OPS = ("add", "subtract", "multiply", "divide", "power", "modulo")
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}
# function name -> (fewest, most) arguments
FUNCTIONS: dict[str, tuple[int, int]] = {
    "sqrt": (1, 1),
    "abs": (1, 1),
    "round": (1, 2),
    "floor": (1, 1),
    "ceil": (1, 1),
    "min": (2, MAX_ARGS),
    "max": (2, MAX_ARGS),
}
ALLOWED = "numbers, + - * / // % **, parentheses, sqrt abs round floor ceil min max, pi and e"

_BINOPS: dict[type[ast.operator], str] = {
    ast.Add: "add",
    ast.Sub: "subtract",
    ast.Mult: "multiply",
    ast.Div: "divide",
    ast.Pow: "power",
    ast.Mod: "modulo",
    ast.FloorDiv: "floor_divide",
}
# syntax people write that the evaluator does not accept, with how to write it instead
_UNSUPPORTED: dict[type[ast.AST], str] = {
    ast.BitXor: "'^' is not supported: write powers with ** (e.g. 3 ** 4)",
    ast.BitAnd: "'&' is not supported",
    ast.BitOr: "'|' is not supported",
    ast.LShift: "'<<' is not supported",
    ast.RShift: "'>>' is not supported",
    ast.MatMult: "'@' is not supported; write multiplication with *",
    ast.Invert: "'~' is not supported",
    ast.Not: "'not' is not supported",
    ast.Tuple: "remove the commas: write 1250, not 1,250 (an expression gives one number)",
    ast.Compare: "comparisons are not supported; give an arithmetic expression",
    ast.BoolOp: "'and'/'or' are not supported; give an arithmetic expression",
    ast.Attribute: "attribute access ('.name') is not supported",
    ast.Subscript: "indexing ('[...]') is not supported",
    ast.Lambda: "lambda is not supported",
    ast.IfExp: "'if ... else' is not supported",
    ast.NamedExpr: "':=' is not supported",
    ast.Starred: "'*' unpacking is not supported",
}


def evaluate(expression: str, limits: Limits = DEFAULT_LIMITS) -> Number:
    """The value of an arithmetic ``expression``; raises ``ToolError`` with a fix for anything else."""
    max_chars = min(MAX_EXPRESSION_CHARS, limits.max_string_chars)
    if len(expression) > max_chars:
        raise ToolError(f"the expression has {len(expression)} characters; the limit is {max_chars}")
    text = expression.strip()
    if not text:
        raise ToolError("the expression is empty; give one such as (14 + 9) * 3")
    tree = _parse(text)
    _check_tree(tree)
    deadline = time.monotonic() + limits.time_limit_s
    return tidy(_eval(tree.body, deadline))


def _parse(text: str) -> ast.Expression:
    """Parse in eval mode, turning Python's syntax errors into hints about arithmetic notation."""
    try:
        return ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ToolError(_syntax_hint(text, exc)) from None
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, pathological input
        raise ToolError(f"could not parse the expression ({type(exc).__name__}); use {ALLOWED}") from None


def _syntax_hint(text: str, exc: SyntaxError) -> str:
    """The most likely fix for an expression that is not valid syntax."""
    if re.search(r"[\d).]\s*[xX×]\s*[\d(.]", text):
        return "write multiplication with *, not x (e.g. 12 * 7)"
    if "÷" in text:
        return "write division with /, not ÷ (e.g. 84 / 7)"
    if "=" in text:
        return "give only the expression, without '=' (e.g. 2 + 3)"
    if re.search(r"%\s*($|[^\d\s(.]|\s+[a-zA-Z])", text):
        return "'%' means remainder here; write a percentage as a fraction (e.g. 15 / 100 * 80)"
    if "too many nested parentheses" in str(exc.msg):
        return "the parentheses are nested too deeply"
    column = f" near column {exc.offset}" if exc.offset else ""
    return f"could not parse the expression{column}; use {ALLOWED}"


def _check_tree(tree: ast.Expression) -> None:
    """Refuse, before evaluating anything, a tree that is too big, too deep or outside the whitelist."""
    nodes = 0
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, ast.expr):
            nodes += 1
            if nodes > MAX_NODES:
                raise ToolError(
                    f"the expression has more than {MAX_NODES} parts; split it into smaller steps"
                )
            if depth > MAX_DEPTH:
                raise ToolError(f"the expression is nested more than {MAX_DEPTH} levels deep; simplify it")
        _check_node(node)
        stack.extend((child, depth + 1) for child in _children(node))


def _children(node: ast.AST) -> list[ast.AST]:
    """The nodes under ``node`` still to check (a call's name and keywords are checked with the call)."""
    if isinstance(node, ast.Call):
        return list(node.args)
    return list(ast.iter_child_nodes(node))


def _check_node(node: ast.AST) -> None:
    """Allow one node of the whitelist, or say why it is refused and what to write instead."""
    if type(node) in _UNSUPPORTED:
        raise ToolError(_UNSUPPORTED[type(node)])
    if isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Load, ast.UAdd, ast.USub)) or type(node) in _BINOPS:
        return
    if isinstance(node, ast.Constant):
        _check_constant(node.value)
    elif isinstance(node, ast.Name):
        _check_name(node.id)
    elif isinstance(node, ast.Call):
        _check_call(node)
    else:
        raise ToolError(f"{type(node).__name__} syntax is not supported; use {ALLOWED}")


def _check_constant(value: object) -> None:
    if isinstance(value, bool) or value is None or value is Ellipsis:
        raise ToolError(f"{value} is not a number; use {ALLOWED}")
    if isinstance(value, (str, bytes)):
        raise ToolError("text is not allowed in an expression; use digits and operators only")
    if isinstance(value, complex):
        raise ToolError("complex numbers are not supported")
    _check_magnitude(value)


def _check_name(name: str) -> None:
    if name in FUNCTIONS:
        raise ToolError(f"{name} is a function: call it with parentheses, e.g. {name}(16)")
    if name not in CONSTANTS:
        raise ToolError(f"unknown name {name[:40]!r}; write numbers with digits (only pi and e are named)")


def _check_call(node: ast.Call) -> None:
    if isinstance(node.func, (ast.Constant, ast.BinOp, ast.UnaryOp, ast.Call)):  # 3(4 + 5), (1 + 2)(3)
        raise ToolError("put * before '(' to multiply: write 3 * (4 + 5), not 3(4 + 5)")
    if not isinstance(node.func, ast.Name):
        _check_node(node.func)  # refuses it with the reason for its kind
        raise ToolError(f"calling {type(node.func).__name__} is not supported; use {ALLOWED}")
    name = node.func.id
    if name in CONSTANTS:
        raise ToolError(f"{name} is a constant, not a function; use it without parentheses")
    if name not in FUNCTIONS:
        raise ToolError(f"unknown function {name[:40]!r}; use sqrt, abs, round, floor, ceil, min or max")
    if node.keywords:
        raise ToolError(f"{name} takes plain arguments, without names")
    if any(isinstance(arg, ast.Starred) for arg in node.args):
        raise ToolError(_UNSUPPORTED[ast.Starred])
    fewest, most = FUNCTIONS[name]
    if not fewest <= len(node.args) <= most:
        wanted = str(fewest) if fewest == most else f"{fewest} to {most}"
        raise ToolError(f"{name} takes {wanted} argument(s), not {len(node.args)}")


def _eval(node: ast.expr, deadline: float) -> Number:
    """Evaluate a checked node; every intermediate value is bounded, so this is fast."""
    if time.monotonic() > deadline:
        raise ToolError("the expression took too long to evaluate; simplify it")
    if isinstance(node, ast.Constant):
        return node.value  # type: ignore[return-value]  # checked: int or float
    if isinstance(node, ast.Name):
        return CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, deadline)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, deadline), _eval(node.right, deadline)
        return apply(_BINOPS[type(node.op)], left, right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return _check_magnitude(_call(node.func.id, [_eval(arg, deadline) for arg in node.args]))
    raise ToolError(f"{type(node).__name__} syntax is not supported; use {ALLOWED}")


def apply(op: str, a: Number, b: Number) -> Number:
    """``a op b`` for one of ``OPS`` (or ``floor_divide``), refusing what has no finite result."""
    try:
        if op == "add":
            result = a + b
        elif op == "subtract":
            result = a - b
        elif op == "multiply":
            result = a * b
        elif op == "power":
            result = _power(a, b)
        elif op in ("divide", "modulo", "floor_divide"):
            if b == 0:
                raise ToolError(f"cannot divide {_show(a)} by zero; the divisor must not be 0")
            result = a / b if op == "divide" else (a % b if op == "modulo" else a // b)
        else:
            raise ToolError(f"unknown op {op[:40]!r}; use one of {', '.join(OPS)}")
    except OverflowError:
        raise ToolError(f"the result of {op} is too large (over 1e{MAX_DIGITS})") from None
    return _check_magnitude(result)


def _power(base: Number, exponent: Number) -> Number:
    """``base ** exponent``, refused from its logarithm when the result could not be shown."""
    if base == 0 and exponent < 0:
        raise ToolError("0 cannot be raised to a negative power (that divides by zero)")
    if base < 0 and isinstance(exponent, float) and not exponent.is_integer():
        raise ToolError(
            f"{_power_text(base, exponent)} is not a real number (negative base, fractional power)"
        )
    if base != 0 and abs(base) != 1:
        digits = exponent * math.log10(abs(base))
        if digits > MAX_DIGITS:
            raise ToolError(
                f"{_power_text(base, exponent)} is too large: about {digits:.3g} digits; "
                f"the limit is {MAX_DIGITS}"
            )
    result = base**exponent
    if isinstance(result, complex):
        raise ToolError("the result is not a real number")
    return result


def _power_text(base: Number, exponent: Number) -> str:
    """``base ** exponent`` as a person would write it, with a negative base in parentheses."""
    shown = _show(base)
    return f"({shown}) ** {_show(exponent)}" if base < 0 else f"{shown} ** {_show(exponent)}"


def _call(name: str, args: list[Number]) -> Number:
    """Apply one whitelisted function to evaluated arguments."""
    if name == "sqrt":
        (x,) = args
        if x < 0:
            raise ToolError(f"sqrt of a negative number ({_show(x)}) is not a real number")
        if isinstance(x, int):
            root = math.isqrt(x)
            return root if root * root == x else math.sqrt(x)
        return math.sqrt(x)
    if name == "round":
        return _round(*args)
    simple: dict[str, Callable[..., Number]] = {"abs": abs, "floor": math.floor, "ceil": math.ceil}
    if name in simple:
        return simple[name](*args)
    return min(args) if name == "min" else max(args)


def _round(x: Number, digits: Number | None = None) -> Number:
    if digits is None:
        return round(x)
    if isinstance(digits, float) and digits.is_integer():
        digits = int(digits)
    if not isinstance(digits, int) or abs(digits) > MAX_ROUND_DIGITS:
        raise ToolError(
            f"round's second argument must be a whole number from -{MAX_ROUND_DIGITS} to {MAX_ROUND_DIGITS}"
        )
    return round(x, digits)


def _check_magnitude(value: Number) -> Number:
    """Refuse infinities, NaN and numbers beyond 1e300, which a result could not sensibly show."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ToolError("the result is not a real number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError(f"a number is too large or undefined: the limit is 1e{MAX_DIGITS}")
    if (isinstance(value, int) and abs(value) > MAX_INT) or (
        isinstance(value, float) and abs(value) > MAX_FLOAT
    ):
        raise ToolError(f"a number is too large: the limit is 1e{MAX_DIGITS}")
    return value


def tidy(value: Number) -> Number:
    """A result as it is shown: exact ints stay ints; floats lose binary noise, whole ones become ints."""
    if isinstance(value, int):
        return value
    value = float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    if value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _show(value: Number) -> str:
    """A short rendering of a number for an error message."""
    text = str(tidy(value))
    return text if len(text) <= 24 else f"{value:.6g}"


def _operand(value: Number, name: str) -> Number:
    """Check one numeric argument of a two-number tool, naming it in the error."""
    try:
        return _check_magnitude(value)
    except ToolError:
        raise ToolError(f"{name} must be a finite number no larger than 1e{MAX_DIGITS}") from None


# argument types, at module level so that the server can resolve the tools' string annotations
ExpressionArg = Annotated[str, Field(description="e.g. (14 + 9) * 3 or sqrt(81) + 2 ** 3")]
# op is checked in the tool, not by pydantic, so that a wrong op gets a one-line error listing the ops
OpArg = Annotated[str, Field(description="the operation", json_schema_extra={"enum": list(OPS)})]
FirstArg = Annotated[Number, Field(description="first number")]
SecondArg = Annotated[Number, Field(description="second number")]
ValueArg = Annotated[Number, Field(description="the whole amount")]
PercentArg = Annotated[Number, Field(description="the percentage, e.g. 15 for 15%")]


def build_server(limits: Limits = DEFAULT_LIMITS) -> MCPServer:
    """A math server; ``limits`` bounds the expression length and evaluation time."""
    server = MCPServer("math", log_level="WARNING")

    @server.tool()
    def calculate(expression: ExpressionArg) -> Number:
        """Evaluate an arithmetic expression. Use + - * / // % ** ( ) and sqrt abs round floor ceil min max."""
        return evaluate(expression, limits)

    @server.tool()
    def arithmetic(op: OpArg, a: FirstArg, b: SecondArg) -> Number:
        """Compute a op b: add, subtract (a - b), multiply, divide (a / b), power (a ** b) or modulo (a % b)."""
        if op not in OPS:
            raise ToolError(f"unknown op {op[:40]!r}; use one of {', '.join(OPS)}")
        return tidy(apply(op, _operand(a, "a"), _operand(b, "b")))

    @server.tool()
    def percent(value: ValueArg, percent: PercentArg) -> Number:
        """Return percent % of value, e.g. value=80, percent=15 gives 12."""
        product = apply("multiply", _operand(value, "value"), _operand(percent, "percent"))
        return tidy(apply("divide", product, 100))

    return server


def main() -> None:
    """Serve over stdio."""
    build_server().run()


if __name__ == "__main__":
    main()
