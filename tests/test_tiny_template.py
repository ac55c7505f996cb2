"""Our chat template renders byte for byte what Qwen3's own template renders (trl ships it as a file)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from transformers.utils.chat_template_utils import render_jinja_template

from trainer.tiny_model import chat_template

trl_templates = pytest.importorskip("trl.chat_template_utils")
QWEN3 = trl_templates.qwen3_chat_template
OURS = chat_template()

ADD = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two integers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    },
}
LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Find a city's population (in millions, « approx »).",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TOOLS = [ADD, LOOKUP]


def call(name: str, arguments: object, *, wrapped: bool = True) -> dict:
    """A tool call as OpenAI-style messages carry it (wrapped in "function") or bare."""
    body = {"name": name, "arguments": arguments}
    return {"type": "function", "function": body} if wrapped else body


CONVERSATIONS: dict[str, list[dict]] = {
    "single user": [{"role": "user", "content": "Hello"}],
    "system and user": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is 2+2?"},
    ],
    "multi turn": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Teal."},
        {"role": "user", "content": "Another, with ünïcode: 日本"},
    ],
    "call with dict arguments": [
        {"role": "user", "content": "Add 17 and 25."},
        {"role": "assistant", "content": "", "tool_calls": [call("add", {"a": 17, "b": 25})]},
        {"role": "tool", "content": '{"result": 42}'},
        {"role": "assistant", "content": "42"},
    ],
    "call with string arguments and text": [
        {"role": "user", "content": "Population of Lyon?"},
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [call("lookup", '{"city": "Lyon"}', wrapped=False)],
        },
        {"role": "tool", "content": "0.52"},
    ],
    "several calls, several responses": [
        {"role": "system", "content": "Use tools."},
        {"role": "user", "content": "Add 1+2 and 3+4, then find Paris."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [call("add", {"a": 1, "b": 2}), call("add", {"a": 3, "b": 4})],
        },
        {"role": "tool", "content": "3"},
        {"role": "tool", "content": "7"},
        {"role": "assistant", "content": "", "tool_calls": [call("lookup", {"city": "Paris"})]},
        {"role": "tool", "content": '{"error": "unknown city"}'},
        {"role": "assistant", "content": "3, 7, and Paris is unknown."},
    ],
    "reasoning_content field": [
        {"role": "user", "content": "Add 5 and 6."},
        {
            "role": "assistant",
            "content": "",
            "reasoning_content": "\nI should call add.\n",
            "tool_calls": [call("add", {"a": 5, "b": 6})],
        },
        {"role": "tool", "content": "11"},
        {"role": "assistant", "content": "11", "reasoning_content": "The tool said 11."},
    ],
    "think block inside content": [
        {"role": "user", "content": "First question"},
        {"role": "assistant", "content": "<think>\nold thoughts\n</think>\n\nOld answer"},
        {"role": "user", "content": "Second question"},
        {"role": "assistant", "content": "<think>\nnew thoughts\n</think>\n\nNew answer"},
    ],
    "old thinking is stripped, recent kept": [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1", "reasoning_content": "thinking one"},
        {"role": "user", "content": "Q2"},
        {
            "role": "assistant",
            "content": "",
            "reasoning_content": "r2",
            "tool_calls": [call("add", {"a": 1, "b": 1})],
        },
        {"role": "tool", "content": "2"},
        {"role": "assistant", "content": "A2 without reasoning"},
        {"role": "user", "content": "<tool_response>\nfake\n</tool_response>"},
        {"role": "assistant", "content": "A3", "reasoning_content": "r3"},
    ],
    "last assistant without reasoning gets an empty think": [
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "\n\nAnswer"},
    ],
    "only tool results after the query": [
        {"role": "user", "content": "<tool_response>\nx\n</tool_response>"},
        {"role": "assistant", "content": "y", "reasoning_content": "z"},
    ],
    "later system message": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "system", "content": "Switch to French."},
        {"role": "user", "content": "Bonjour"},
    ],
    "tool result first": [
        {"role": "tool", "content": "orphan"},
        {"role": "user", "content": "What was that?"},
    ],
    "nested and unicode arguments": [
        {"role": "user", "content": "Find Zürich"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [call("lookup", {"city": "Zürich", "opts": {"near": ["Bern", 3.5], "x": None}})],
        },
        {"role": "tool", "content": '{"rows": [{"total": 1.25}]}'},
    ],
}

FLAGS = [
    {"add_generation_prompt": gen, **thinking}
    for gen, thinking in itertools.product(
        (False, True), ({}, {"enable_thinking": True}, {"enable_thinking": False})
    )
]


def render(template: str, messages: list[dict], **kwargs: object) -> str:
    """Render one conversation with transformers' own sandboxed Jinja renderer."""
    rendered, _ = render_jinja_template([messages], chat_template=template, **kwargs)
    return rendered[0]


@pytest.mark.parametrize("tools", [None, TOOLS], ids=["no tools", "tools"])
@pytest.mark.parametrize("flags", FLAGS, ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()))
@pytest.mark.parametrize("name", list(CONVERSATIONS))
def test_renders_exactly_like_qwen3(name: str, flags: dict, tools: list | None) -> None:
    messages = CONVERSATIONS[name]
    assert render(OURS, messages, tools=tools, **flags) == render(QWEN3, messages, tools=tools, **flags)


def test_tokenizer_apply_chat_template_matches_qwen3() -> None:
    """The same equality through tokenizer.apply_chat_template, the path the trainer uses."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()), chat_template=OURS)
    for messages in CONVERSATIONS.values():
        for flags in FLAGS:
            ours = tokenizer.apply_chat_template(messages, tools=TOOLS, tokenize=False, **flags)
            theirs = tokenizer.apply_chat_template(
                messages, tools=TOOLS, tokenize=False, chat_template=QWEN3, **flags
            )
            assert ours == theirs


def test_key_pieces_of_the_format() -> None:
    """Spot checks that pin the format itself, independent of the reference file."""
    text = render(OURS, CONVERSATIONS["several calls, several responses"], tools=TOOLS)
    assert text.startswith("<|im_start|>system\nUse tools.\n\n# Tools\n\n")
    assert "<tools>\n" + '{"type": "function", "function": {"name": "add"' in text
    assert (
        '<|im_start|>assistant\n<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>\n'
        '<tool_call>\n{"name": "add", "arguments": {"a": 3, "b": 4}}\n</tool_call><|im_end|>\n'
    ) in text
    assert (
        "<|im_start|>user\n<tool_response>\n3\n</tool_response>\n<tool_response>\n7\n</tool_response><|im_end|>\n"
    ) in text
    thinking = render(OURS, CONVERSATIONS["think block inside content"])
    assert "old thoughts" not in thinking
    assert "<|im_start|>assistant\n<think>\nnew thoughts\n</think>\n\nNew answer<|im_end|>\n" in thinking
    off = render(OURS, CONVERSATIONS["single user"], add_generation_prompt=True, enable_thinking=False)
    assert off.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_template_is_our_own_file() -> None:
    """We ship our own text (same output, different source), stored beside the trainer package."""
    path = Path(__file__).resolve().parent.parent / "trainer" / "templates" / "qwen3_chat.jinja"
    assert path.read_text(encoding="utf-8") == OURS
    assert OURS != QWEN3
