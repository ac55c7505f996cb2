"""Bounds every bundled server enforces, so that nothing a caller sends can exhaust it.

Arguments are checked before any work starts: a hostile payload is refused in microseconds with a
message a model can act on, never processed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver.exceptions import ToolError


@dataclass(frozen=True)
class Limits:
    """Per-server safety bounds; override the time limit with ``QWB_TOOL_TIME_LIMIT`` (seconds)."""

    max_string_chars: int = 4_000  # one string argument
    max_payload_chars: int = 20_000  # all arguments of one call, as JSON
    max_depth: int = 8  # nesting of lists and objects in arguments
    max_items: int = 1_000  # length of any list argument
    max_result_rows: int = 200  # rows a query or data operation may return
    max_result_chars: int = 8_000  # text of one result
    time_limit_s: float = float(os.environ.get("QWB_TOOL_TIME_LIMIT", "2.0"))


DEFAULT_LIMITS = Limits()


def check_payload(value: Any, limits: Limits = DEFAULT_LIMITS) -> None:
    """Raise ``ToolError`` when ``value`` is too deep, too long or too large to process."""
    _check(value, limits, depth=0)
    size = len(json.dumps(value, default=str))
    if size > limits.max_payload_chars:
        raise ToolError(f"arguments are {size} characters; the limit is {limits.max_payload_chars}")


def _check(value: Any, limits: Limits, depth: int) -> None:
    if depth > limits.max_depth:
        raise ToolError(f"arguments are nested deeper than {limits.max_depth} levels")
    if isinstance(value, str):
        if len(value) > limits.max_string_chars:
            raise ToolError(
                f"a string argument has {len(value)} characters; the limit is {limits.max_string_chars}"
            )
    elif isinstance(value, dict):
        if len(value) > limits.max_items:
            raise ToolError(f"an object argument has {len(value)} keys; the limit is {limits.max_items}")
        for key, item in value.items():
            _check(key, limits, depth + 1)
            _check(item, limits, depth + 1)
    elif isinstance(value, (list, tuple)):
        if len(value) > limits.max_items:
            raise ToolError(f"a list argument has {len(value)} items; the limit is {limits.max_items}")
        for item in value:
            _check(item, limits, depth + 1)


__all__ = ["DEFAULT_LIMITS", "Limits", "ToolError", "check_payload"]
