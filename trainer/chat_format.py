"""Render chats in Qwen3's format without importing transformers (the UI process uses this).

The template is the project's own ``templates/qwen3_chat.jinja``, rendered with the same Jinja
settings transformers uses for ``apply_chat_template``; tests check both renderers agree.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

TEMPLATE_PATH = Path(__file__).with_name("templates") / "qwen3_chat.jinja"


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, separators=None,
            sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _raise(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


@cache
def _template(source: str) -> jinja2.Template:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(source)


@cache
def chat_template_source() -> str:
    return TEMPLATE_PATH.read_text(encoding="utf-8")


def render_chat(
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    *,
    add_generation_prompt: bool = False,
    enable_thinking: bool = False,
    template: str | None = None,
) -> str:
    """The chat as the model sees it, in Qwen3's format."""
    return _template(template or chat_template_source()).render(
        messages=messages,
        tools=tools or None,
        add_generation_prompt=add_generation_prompt,
        enable_thinking=enable_thinking,
        bos_token="",
        eos_token="<|im_end|>",
    )
