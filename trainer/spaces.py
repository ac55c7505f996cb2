"""Gymnasium spaces for a chat environment: free text actions and chat-message observations."""

from __future__ import annotations

from typing import Any

from gymnasium import spaces

_ROLES = {"system", "user", "assistant", "tool"}


class FreeText(spaces.Space[str]):
    """Any string up to ``max_length`` characters (an assistant turn)."""

    def __init__(self, max_length: int = 32_000, seed: int | None = None) -> None:
        super().__init__(shape=None, dtype=None, seed=seed)
        self.max_length = max_length

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        alphabet = list('abcdefghijklmnopqrstuvwxyz {}":,<>/_0123456789')
        length = int(self.np_random.integers(0, 64))
        return "".join(self.np_random.choice(alphabet, size=length).tolist())

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and len(x) <= self.max_length

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"FreeText(max_length={self.max_length})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FreeText) and other.max_length == self.max_length


class ChatObservation(spaces.Space[dict]):
    """``{"messages": [{"role", "content"}...], "tools": [function schemas]}``."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(shape=None, dtype=None, seed=seed)

    def sample(self, mask: Any = None, probability: Any = None) -> dict:
        return {"messages": [{"role": "user", "content": str(self.np_random.integers(0, 1000))}], "tools": []}

    def contains(self, x: Any) -> bool:
        if not isinstance(x, dict) or set(x) != {"messages", "tools"}:
            return False
        messages, tools = x["messages"], x["tools"]
        return (
            isinstance(messages, list)
            and all(
                isinstance(m, dict) and m.get("role") in _ROLES and isinstance(m.get("content"), str)
                for m in messages
            )
            and isinstance(tools, list)
            and all(isinstance(t, dict) for t in tools)
        )

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChatObservation)


__all__ = ["ChatObservation", "FreeText"]
