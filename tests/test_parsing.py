"""The turn-parsing rules of trainer.parsing, including hostile model output."""

from __future__ import annotations

import json

import pytest

from trainer.parsing import parse_turn, split_thinking
from trainer.rewards import Status


def call(name: str = "add", **arguments) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


def test_one_call_with_text_around_it():
    parsed = parse_turn(f"Let me add.\n{call(a=1, b=2)}\nDone.")
    assert parsed.status is None
    assert [(c.name, c.arguments) for c in parsed.calls] == [("add", {"a": 1, "b": 2})]


def test_thinking_is_stripped_and_kept():
    parsed = parse_turn(f"<think>I should add {call('nope')}</think>{call(a=1)}")
    assert [c.name for c in parsed.calls] == ["add"]
    assert "I should add" in parsed.thinking


def test_unclosed_think_hides_the_rest():
    parsed = parse_turn(f"<think>still thinking {call()}")
    assert parsed.status is Status.STRUCTURAL_FAIL


def test_lone_think_close_treats_prefix_as_thinking():
    thinking, visible = split_thinking(f"reasoning</think>{call()}")
    assert thinking == "reasoning" and visible == call()


def test_several_calls_in_order_up_to_the_cap():
    parsed = parse_turn(call("a") + call("b"), max_calls=2)
    assert [c.name for c in parsed.calls] == ["a", "b"]
    assert parse_turn(call("a") * 3, max_calls=2).status is Status.STRUCTURAL_FAIL


@pytest.mark.parametrize(
    "text",
    [
        "<tool_call>{'name': 'add', 'arguments': {}}</tool_call>",  # single quotes
        '<tool_call>{"name": "add", "arguments": {}} trailing</tool_call>',  # trailing garbage
        '<tool_call>{"name": "add"}</tool_call>',  # no arguments
        '<tool_call>{"arguments": {}}</tool_call>',  # no name
        '<tool_call>{"name": "add", "arguments": "a=1"}</tool_call>',  # arguments not an object
        '<tool_call>{"name": 3, "arguments": {}}</tool_call>',  # name not a string
        '<tool_call>{"name": "add", "arguments": {}, "x": 1}</tool_call>',  # extra key
        "<tool_call>[1, 2]</tool_call>",  # not an object
        '<tool_call>{"name": "add", "arguments": {}}',  # missing closing tag
        '{"name": "add", "arguments": {}}</tool_call>',  # stray closing tag
        '<tool_call>{"name": "add", "arguments": {"s": "\\ud800"}}</tool_call>',  # lone surrogate
        "<tool_call>" + "[" * 100_000 + "]" * 100_000 + "</tool_call>",  # deep nesting
    ],
)
def test_malformed_attempts_are_invalid_json(text):
    parsed = parse_turn(text, max_chars=1_000_000)
    assert parsed.status is Status.INVALID_JSON, parsed
    assert parsed.error


@pytest.mark.parametrize(
    "text",
    [
        "",
        "The answer is 4.",
        '{"name": "add", "arguments": {}}',
        "x" * 40_000,
        "<tool_call>" * 2 + "</tool_call>" * 0,
    ],
)
def test_protocol_breaks_are_structural(text):
    parsed = parse_turn(text)
    expected = Status.INVALID_JSON if "<tool_call>" in text else Status.STRUCTURAL_FAIL
    assert parsed.status is expected


def test_thousands_of_calls_are_refused_fast():
    parsed = parse_turn(call() * 5_000, max_chars=10_000_000)
    assert parsed.status is Status.STRUCTURAL_FAIL
    assert "5000 calls" in parsed.error


def test_non_text_action_is_structural():
    assert parse_turn(b"bytes").status is Status.STRUCTURAL_FAIL  # type: ignore[arg-type]
