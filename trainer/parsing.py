"""Parse one assistant turn in Qwen3's tool-call format.

The rules, decided once and applied everywhere (env, chat, replay):

1. ``<think>...</think>`` blocks are removed first. An unclosed ``<think>`` hides the rest of the
   turn, so such a turn has no call.
2. A call is ``<tool_call>JSON</tool_call>`` where JSON is exactly one object with a string
   ``name`` and an object ``arguments`` and no other keys. Parsing is strict: no trailing
   garbage, no single quotes, no repair.
3. Text before, between and after calls is allowed and ignored (Qwen3 often says a sentence first).
4. Several calls in one turn are allowed up to ``max_calls`` and run in order (Qwen3's parallel
   calls). More than that breaks the protocol.
5. A ``<tool_call>`` without its ``</tool_call>``, or a stray ``</tool_call>``, is a malformed
   attempt: ``invalid_json``. So is JSON that does not parse, is not an object, lacks ``name`` or
   ``arguments``, or contains text that cannot be encoded as UTF-8 (lone surrogates).
6. No call at all, a bare JSON object without tags, or a turn longer than ``max_chars``, breaks the
   protocol: ``structural_fail`` (every turn of an unfinished task is due a call).
7. Whether the named tool exists is not decided here (see the environment): a hallucinated name is a
   ``structural_fail`` there.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from mcp_servers.tasks.model import ToolCall
from trainer.rewards import Status

CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)
_CALL_BLOCK = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)

DEFAULT_MAX_CALLS = 4
DEFAULT_MAX_CHARS = 32_000


@dataclass(frozen=True)
class ParsedTurn:
    """The calls found in a turn, or why none could be taken.

    ``status`` is None when the turn is well formed (the calls decide the status once executed);
    otherwise it is ``invalid_json`` or ``structural_fail`` and ``error`` says why, in words that
    are sent back to the model.
    """

    calls: tuple[ToolCall, ...] = ()
    status: Status | None = None
    error: str | None = None
    thinking: str = ""
    visible_text: str = ""
    raw_calls: tuple[str, ...] = field(default=(), repr=False)


def split_thinking(text: str) -> tuple[str, str]:
    """(thinking, the rest). An unclosed ``<think>`` makes the rest of the turn thinking."""
    thoughts = [m.group(0)[len(THINK_OPEN) : -len(THINK_CLOSE)] for m in _THINK_BLOCK.finditer(text)]
    visible = _THINK_BLOCK.sub("", text)
    # A template may open the turn with <think> already rendered, so a lone </think> closes it.
    if THINK_CLOSE in visible and THINK_OPEN not in visible.split(THINK_CLOSE, 1)[0]:
        before, visible = visible.split(THINK_CLOSE, 1)
        thoughts.insert(0, before)
    if THINK_OPEN in visible:
        visible, hidden = visible.split(THINK_OPEN, 1)
        thoughts.append(hidden)
    return "\n".join(t.strip() for t in thoughts), visible


def parse_turn(
    text: str, *, max_calls: int = DEFAULT_MAX_CALLS, max_chars: int = DEFAULT_MAX_CHARS
) -> ParsedTurn:
    """Apply the module's rules to one assistant turn."""
    if not isinstance(text, str):
        return ParsedTurn(status=Status.STRUCTURAL_FAIL, error="the turn is not text")
    if len(text) > max_chars:
        return ParsedTurn(
            status=Status.STRUCTURAL_FAIL,
            error=f"the turn is {len(text)} characters; the limit is {max_chars}",
        )
    text = text.replace("<|im_end|>", "")
    thinking, visible = split_thinking(text)
    blocks = _CALL_BLOCK.findall(visible)
    leftover = _CALL_BLOCK.sub("", visible)
    base = {"thinking": thinking, "visible_text": visible.strip(), "raw_calls": tuple(blocks)}
    if CALL_OPEN in leftover:
        return ParsedTurn(
            status=Status.INVALID_JSON, error=f"{CALL_OPEN} is never closed by {CALL_CLOSE}", **base
        )
    if CALL_CLOSE in leftover:
        return ParsedTurn(
            status=Status.INVALID_JSON, error=f"{CALL_CLOSE} without an opening {CALL_OPEN}", **base
        )
    if not blocks:
        reason = "no tool call found"
        if leftover.strip().startswith("{"):
            reason = "a tool call must be wrapped in <tool_call></tool_call>"
        return ParsedTurn(status=Status.STRUCTURAL_FAIL, error=reason, **base)
    if len(blocks) > max_calls:
        return ParsedTurn(
            status=Status.STRUCTURAL_FAIL,
            error=f"{len(blocks)} calls in one turn; at most {max_calls}",
            **base,
        )
    calls = []
    for block in blocks:
        call, error = parse_call_json(block)
        if error is not None:
            return ParsedTurn(status=Status.INVALID_JSON, error=error, **base)
        calls.append(call)
    return ParsedTurn(calls=tuple(calls), **base)


def parse_call_json(block: str) -> tuple[ToolCall | None, str | None]:
    """Strictly parse the JSON inside one ``<tool_call>`` block: (call, None) or (None, error)."""
    try:
        data: Any = json.loads(block.strip())
    except RecursionError:
        return None, "invalid JSON: nested too deeply"
    except ValueError as exc:
        return None, f"invalid JSON: {exc}"
    if not isinstance(data, dict):
        return None, "the tool call must be a JSON object with 'name' and 'arguments'"
    extra = set(data) - {"name", "arguments"}
    if "name" not in data or "arguments" not in data:
        return None, "the tool call needs both 'name' and 'arguments'"
    if extra:
        return None, f"unexpected key(s) in the tool call: {', '.join(sorted(map(str, extra)))[:200]}"
    if not isinstance(data["name"], str) or not data["name"]:
        return None, "'name' must be a non-empty string"
    if not isinstance(data["arguments"], dict):
        return None, "'arguments' must be a JSON object"
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError, ValueError):
        return None, "the tool call contains text that is not valid UTF-8"
    return ToolCall(data["name"], data["arguments"]), None
