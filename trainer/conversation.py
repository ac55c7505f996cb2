"""The token stream of a multi-turn episode, exactly as the policy sees it while acting.

An episode is built append-only: the rendered prompt, then for each turn the assistant's tokens
(actions) followed by the tool responses and the next generation prompt (observations). Nothing is
re-rendered, so the tokens trained on are the tokens that were generated, and supervised
bootstrapping, rollouts and PPO all share one layout.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Render = Callable[..., str]  # render(messages, tools=None, add_generation_prompt=..., enable_thinking=...)
_PROBE_ANSWER = "\u2063ANSWER\u2063"


def template_renderer(tokenizer: Any, *, thinking: bool = False) -> Render:
    """``render(messages, tools, add_generation_prompt=..., enable_thinking=...)`` with the tokenizer's
    own chat template; ``enable_thinking`` defaults to ``thinking``."""

    def render(messages, tools=None, *, add_generation_prompt: bool = False, enable_thinking: bool | None = None):
        return tokenizer.apply_chat_template(
            messages, tools=tools, tokenize=False, add_generation_prompt=add_generation_prompt,
            enable_thinking=thinking if enable_thinking is None else enable_thinking,
        )

    return render


def turn_suffix(render: Render, tool_texts: list[str], *, enable_thinking: bool = False) -> str:
    """The text that follows an assistant turn's ``<|im_end|>``: the tool responses as the template
    renders them (one user turn of ``<tool_response>`` blocks) and the next generation prompt.

    Derived from the chat template itself, so it is right for any Qwen3-format template.
    """
    probe = [
        {"role": "user", "content": "question"},
        {"role": "assistant", "content": _PROBE_ANSWER},
        *({"role": "tool", "content": text} for text in tool_texts),
    ]
    full = render(probe, add_generation_prompt=True, enable_thinking=enable_thinking)
    marker = _PROBE_ANSWER + "<|im_end|>"
    return full[full.index(marker) + len(marker) :]


def tool_call_text(name: str, arguments: dict[str, Any]) -> str:
    """An assistant turn that makes one call, written as Qwen3's template writes ``tool_calls``."""
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False) + "\n</tool_call>"


@dataclass
class TokenStream:
    """Token ids of one episode with a mask marking the assistant's (action) tokens."""

    token_ids: list[int] = field(default_factory=list)
    action_mask: list[int] = field(default_factory=list)
    turn_ends: list[int] = field(default_factory=list)  # index of the last token of each assistant turn

    def observe(self, ids: list[int]) -> None:
        self.token_ids.extend(ids)
        self.action_mask.extend([0] * len(ids))

    def act(self, ids: list[int]) -> None:
        if not ids:
            raise ValueError("an assistant turn needs at least one token")
        self.token_ids.extend(ids)
        self.action_mask.extend([1] * len(ids))
        self.turn_ends.append(len(self.token_ids) - 1)

    def __len__(self) -> int:
        return len(self.token_ids)
