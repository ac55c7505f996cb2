"""The task model shared by generated suites and user task files.

A task is plain data: it serialises to one JSON object (one line of a task file) and back. Its
verifier is declarative, so a user can write one by hand and a generator writes the same kind.

Verifier kinds (``Verifier.kind``):

- ``value``: the result, or the part of it at ``path``, equals ``equals`` (numbers within
  ``tolerance``, relative or absolute, strings compared case- and space-insensitively, lists and
  objects element by element).
- ``contains``: the result's text contains ``contains`` (case-insensitive).
- ``call``: the call itself has name ``name`` and its arguments include ``arguments``.
- any kind may also name ``tool``: only a call to that tool can satisfy it.
- ``probe``: after the call, run ``probe`` (a tool call) and check its result with the nested
  ``expect`` verifier; this is how a task checks server state rather than one call's output.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

VERIFIER_KINDS = ("value", "contains", "call", "probe")


class TaskFormatError(ValueError):
    """A task or verifier that does not follow the documented format."""


@dataclass(frozen=True)
class ToolCall:
    """One tool call: a tool name and its JSON arguments."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments}

    @classmethod
    def from_dict(cls, data: Any) -> ToolCall:
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise TaskFormatError(f"a call needs a string 'name': {str(data)[:80]}")
        arguments = data.get("arguments", {})
        if not isinstance(arguments, dict):
            raise TaskFormatError(f"the arguments of call {data['name']!r} must be an object")
        return cls(data["name"], arguments)


@dataclass(frozen=True)
class ToolResult:
    """What a server answered to one call."""

    text: str
    structured: Any = None
    is_error: bool = False
    latency_s: float = 0.0

    def value(self) -> Any:
        """The result as data: the structured content, else the text parsed as JSON, else the text.

        A tool returning a scalar gets it wrapped by MCP as ``{"result": x}``; that wrapper is
        removed so that verifiers compare against the value itself.
        """
        if self.structured is not None:
            if isinstance(self.structured, dict) and set(self.structured) == {"result"}:
                return self.structured["result"]
            return self.structured
        try:
            return json.loads(self.text)
        except (ValueError, RecursionError):
            return self.text


CallTool = Callable[[ToolCall], Awaitable[ToolResult]]


@dataclass(frozen=True)
class Verifier:
    """A declarative check of a task's expected end state (see the module docstring)."""

    kind: str
    equals: Any = None
    contains: str | None = None
    path: str | None = None
    tolerance: float = 1e-6
    tool: str | None = None
    name: str | None = None
    arguments: dict[str, Any] | None = None
    probe: ToolCall | None = None
    expect: Verifier | None = None

    def __post_init__(self) -> None:
        if self.kind not in VERIFIER_KINDS:
            raise TaskFormatError(
                f"unknown verifier kind {self.kind!r}; use one of {', '.join(VERIFIER_KINDS)}"
            )
        if self.kind == "value" and self.equals is None:
            raise TaskFormatError("a 'value' verifier needs 'equals'")
        if self.kind == "contains" and not self.contains:
            raise TaskFormatError("a 'contains' verifier needs a non-empty 'contains'")
        if self.kind == "call" and not self.name:
            raise TaskFormatError("a 'call' verifier needs 'name'")
        if self.kind == "probe" and (self.probe is None or self.expect is None):
            raise TaskFormatError("a 'probe' verifier needs 'probe' (a call) and 'expect' (a verifier)")
        if self.path is not None:
            parse_path(self.path)

    def check(self, call: ToolCall, result: ToolResult) -> bool:
        """Whether a clean call and its result satisfy this verifier (``probe`` needs ``holds``)."""
        if result.is_error or (self.tool is not None and call.name != self.tool):
            return False
        if self.kind == "value":
            try:
                actual = select(result.value(), self.path)
            except LookupError:
                return False
            return values_match(actual, self.equals, self.tolerance)
        if self.kind == "contains":
            return str(self.contains).lower() in result.text.lower()
        if self.kind == "call":
            return call.name == self.name and _includes(call.arguments, self.arguments or {}, self.tolerance)
        raise TaskFormatError("a 'probe' verifier is checked with 'holds', which can call tools")

    async def holds(self, call: ToolCall, result: ToolResult, call_tool: CallTool) -> bool:
        """Like ``check``, and runs the probe call for ``probe`` verifiers."""
        if self.kind != "probe":
            return self.check(call, result)
        if result.is_error or (self.tool is not None and call.name != self.tool):
            return False
        assert self.probe is not None and self.expect is not None
        probe_result = await call_tool(self.probe)
        return self.expect.check(self.probe, probe_result)

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if v is not None and k not in ("probe", "expect")}
        if data.get("tolerance") == 1e-6:
            del data["tolerance"]
        if self.probe is not None:
            data["probe"] = self.probe.to_dict()
        if self.expect is not None:
            data["expect"] = self.expect.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Verifier:
        if not isinstance(data, dict):
            raise TaskFormatError("a verifier must be a JSON object")
        known = {
            "kind",
            "equals",
            "contains",
            "path",
            "tolerance",
            "tool",
            "name",
            "arguments",
            "probe",
            "expect",
        }
        unknown = set(data) - known
        if unknown:
            raise TaskFormatError(f"unknown verifier field(s): {', '.join(sorted(unknown))}")
        fields = dict(data)
        if "kind" not in fields:
            raise TaskFormatError("a verifier needs 'kind'")
        if "probe" in fields:
            fields["probe"] = ToolCall.from_dict(fields["probe"])
        if "expect" in fields:
            fields["expect"] = Verifier.from_dict(fields["expect"])
        if "tolerance" in fields and not isinstance(fields["tolerance"], (int, float)):
            raise TaskFormatError("'tolerance' must be a number")
        if fields.get("arguments") is not None and not isinstance(fields["arguments"], dict):
            raise TaskFormatError("'arguments' must be an object")
        return cls(**fields)


@dataclass(frozen=True)
class Task:
    """One task: what to ask, which tools may be used, how an oracle solves it, how to verify it."""

    id: str
    suite: str
    instruction: str
    servers: tuple[str, ...]
    reference_calls: tuple[ToolCall, ...]
    verifier: Verifier
    tools: tuple[str, ...] = ()  # the tools offered to the model; empty means every tool of `servers`
    max_turns: int = 4
    tags: tuple[str, ...] = ()  # e.g. "multi_step", "cross_domain", "recovery"
    answer: Any = None  # the expected final value, for people reading the task

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "suite": self.suite,
            "instruction": self.instruction,
            "servers": list(self.servers),
            "tools": list(self.tools),
            "reference_calls": [c.to_dict() for c in self.reference_calls],
            "verifier": self.verifier.to_dict(),
            "max_turns": self.max_turns,
            "tags": list(self.tags),
        }
        if self.answer is not None:
            data["answer"] = self.answer
        return data

    @classmethod
    def from_dict(cls, data: Any, *, default_suite: str = "user") -> Task:
        if not isinstance(data, dict):
            raise TaskFormatError("a task must be a JSON object")
        known = {
            "id",
            "suite",
            "instruction",
            "servers",
            "tools",
            "reference_calls",
            "verifier",
            "max_turns",
            "tags",
            "answer",
        }
        unknown = set(data) - known
        if unknown:
            raise TaskFormatError(f"unknown task field(s): {', '.join(sorted(unknown))}")
        for key in ("id", "instruction", "servers", "verifier"):
            if key not in data:
                raise TaskFormatError(f"a task needs {key!r}")
        if not isinstance(data["id"], str) or not data["id"]:
            raise TaskFormatError("'id' must be a non-empty string")
        if not isinstance(data["instruction"], str) or not data["instruction"].strip():
            raise TaskFormatError("'instruction' must be a non-empty string")
        servers = data["servers"]
        if not isinstance(servers, list) or not servers or not all(isinstance(s, str) for s in servers):
            raise TaskFormatError("'servers' must be a non-empty list of server names")
        tools = data.get("tools", [])
        if not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):
            raise TaskFormatError("'tools' must be a list of tool names")
        calls = data.get("reference_calls", [])
        if not isinstance(calls, list):
            raise TaskFormatError("'reference_calls' must be a list of calls")
        max_turns = data.get("max_turns", 4)
        if not isinstance(max_turns, int) or isinstance(max_turns, bool) or not 1 <= max_turns <= 64:
            raise TaskFormatError("'max_turns' must be an integer from 1 to 64")
        tags = data.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise TaskFormatError("'tags' must be a list of strings")
        return cls(
            id=data["id"],
            suite=str(data.get("suite", default_suite)),
            instruction=data["instruction"],
            servers=tuple(servers),
            tools=tuple(tools),
            reference_calls=tuple(ToolCall.from_dict(c) for c in calls),
            verifier=Verifier.from_dict(data["verifier"]),
            max_turns=max_turns,
            tags=tuple(tags),
            answer=data.get("answer"),
        )


def parse_path(path: str) -> list[str | int]:
    """Parse the JSON-path subset ``$``, ``.key``, ``["key"]`` and ``[index]`` into steps."""
    if not path.startswith("$"):
        raise TaskFormatError(f"a path starts with '$': {path!r}")
    steps: list[str | int] = []
    i = 1
    while i < len(path):
        if path[i] == ".":
            j = i + 1
            while j < len(path) and path[j] not in ".[":
                j += 1
            if j == i + 1:
                raise TaskFormatError(f"empty key in path {path!r}")
            steps.append(path[i + 1 : j])
            i = j
        elif path[i] == "[":
            j = path.find("]", i)
            if j < 0:
                raise TaskFormatError(f"unclosed '[' in path {path!r}")
            inner = path[i + 1 : j]
            if len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
                steps.append(inner[1:-1])
            else:
                try:
                    steps.append(int(inner))
                except ValueError as exc:
                    raise TaskFormatError(f"bad index {inner!r} in path {path!r}") from exc
            i = j + 1
        else:
            raise TaskFormatError(f"unexpected {path[i]!r} in path {path!r}")
    return steps


def select(value: Any, path: str | None) -> Any:
    """The part of ``value`` at ``path``; raises ``LookupError`` when it is not there."""
    if path is None:
        return value
    for step in parse_path(path):
        if (
            isinstance(step, int)
            and isinstance(value, list)
            or isinstance(step, str)
            and isinstance(value, dict)
        ):
            value = value[step]
        else:
            raise LookupError(step)
    return value


def values_match(actual: Any, expected: Any, tolerance: float = 1e-6) -> bool:
    """Equality for verifier purposes: numbers within tolerance, strings loosely, containers deeply."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and actual == expected
    if isinstance(expected, (int, float)):
        number = _as_number(actual)
        if number is None or not math.isfinite(number):
            return False
        return math.isclose(number, float(expected), rel_tol=tolerance, abs_tol=tolerance)
    if isinstance(expected, str):
        return (
            isinstance(actual, (str, int, float))
            and " ".join(str(actual).split()).lower() == " ".join(expected.split()).lower()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(values_match(a, e, tolerance) for a, e in zip(actual, expected, strict=True))
        )
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and _includes(actual, expected, tolerance)
            and len(actual) == len(expected)
        )
    return actual == expected


def _includes(actual: dict[str, Any], expected: dict[str, Any], tolerance: float) -> bool:
    return all(
        key in actual and values_match(actual[key], value, tolerance) for key, value in expected.items()
    )


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    if isinstance(value, list) and len(value) == 1:
        return _as_number(value[0])
    if isinstance(value, dict) and len(value) == 1:
        return _as_number(next(iter(value.values())))
    return None
