"""Chat with a run's policy through the run store: the live trainer's weights, or a checkpoint.

Where the message goes depends on the run's state when it is sent:

- a **running** trainer: ``pause``, ``chat`` and ``resume`` are queued together. The trainer takes
  pending commands in order between steps, so it pauses, answers with its live weights (no reload)
  and resumes; even if the workbench closes while waiting, the resume is already queued.
- a **paused** trainer (paused by the user): just ``chat``; it stays paused.
- **no trainer** (stopped, finished, crashed): a policy process (``python -m trainer serve``) loads
  the chosen checkpoint (the best one by default) and answers the same ``chat`` commands. It is
  started on the first message and kept for the next ones.

The reply is the trainer's ``chat`` result: the new turns (raw text, parsed calls, what the MCP
servers answered, status, reward) and the whole conversation, which becomes the next request's
history. While the policy writes, the command carries ``{"partial": {"turn", "text"}}`` a few times a
second; ``send(..., stream=...)`` hands each new partial text to the screen, so tokens show up as
they are generated.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.store import (
    Command,
    RunReader,
    StoreError,
    send_command,
)
from workbench.runs import Children, RunsError

DEFAULT_TIMEOUT_S = 300.0
POLL_S = 0.1


class ChatError(Exception):
    """A message that could not be answered, with a one-line reason."""


@dataclass
class ChatSettings:
    """The knobs of a chat request (sent in the ``chat`` command's payload)."""

    servers: list[str] | None = None  # None: every bundled and configured server
    thinking: bool = False
    max_new_tokens: int = 128
    temperature: float = 0.0
    max_calls: int = 4

    def payload(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "messages": messages,
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "max_calls": self.max_calls,
            # Read by trainers whose chat honours it; older ones use the run's model.thinking.
            "thinking": self.thinking,
            "enable_thinking": self.thinking,
        }
        if self.servers is not None:
            payload["servers"] = list(self.servers)
        return payload


def streamed_text(command: Command) -> tuple[int, str] | None:
    """(turn, text so far) of a running chat command, None before the policy has written anything."""
    result = command.result
    partial = result.get("partial") if isinstance(result, dict) and not command.finished else None
    if not isinstance(partial, dict) or not isinstance(partial.get("text"), str):
        return None
    turn = partial.get("turn")
    return (turn if isinstance(turn, int) else 0, partial["text"])


@dataclass
class ChatReply:
    """One answered message: the assistant's turns, who answered, and how long it took."""

    turns: list[dict[str, Any]]
    backend: str  # "trainer" or "checkpoint"
    elapsed_s: float
    paused_trainer: bool = False


@dataclass
class ChatSession:
    """A conversation with one run's policy; ``messages`` is the history sent with each request."""

    run_dir: Path
    children: Children
    checkpoint: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    messages: list[dict[str, str]] = field(default_factory=list)
    backend: str | None = None

    def reset(self) -> None:
        """Start a new conversation (the policy keeps no state between requests)."""
        self.messages = []

    def backend_for(self, state: str) -> str:
        """Who answers in this run state: the live trainer, or a checkpoint in a policy process."""
        return "trainer" if state in ("running", "paused") else "checkpoint"

    async def send(
        self,
        text: str,
        settings: ChatSettings,
        progress: Callable[[str], None] | None = None,
        stream: Callable[[int, str], None] | None = None,
    ) -> ChatReply:
        """Send one user message and wait for the policy's turns; ``stream(turn, text)`` gets the
        text written so far while the policy generates."""
        text = text.strip()
        if not text:
            raise ChatError("type a message first")
        notify = progress or (lambda _message: None)
        started = time.monotonic()
        state = await asyncio.to_thread(self._state)
        # A policy process we started answers for as long as it runs (it leaves the run's state
        # alone, so the state says nothing about it).
        serving = self.children.get(self.run_dir, "serve") is not None
        backend = "checkpoint" if serving else self.backend_for(state)
        messages = [*self.messages, {"role": "user", "content": text}]
        payload = settings.payload(messages)
        paused = False
        if backend == "trainer":
            if state == "running":
                notify("pausing the trainer for the chat (it pauses between steps)…")
                ids = await asyncio.to_thread(self._queue, [("pause", {}), ("chat", payload), ("resume", {})])
                chat_id, paused = ids[1], True
            else:
                notify("asking the paused trainer…")
                chat_id = (await asyncio.to_thread(self._queue, [("chat", payload)]))[0]
        else:
            await self._ensure_server(notify)
            notify("asking the checkpoint…")
            chat_id = (await asyncio.to_thread(self._queue, [("chat", payload)]))[0]
        command = await self._wait(chat_id, backend, stream)
        if command.status != "done":
            error = command.result.get("error") if isinstance(command.result, dict) else command.result
            raise ChatError(f"the policy could not answer: {error}")
        result = command.result if isinstance(command.result, dict) else {}
        self.messages = [m for m in result.get("messages") or messages if isinstance(m, dict)]
        self.backend = backend
        return ChatReply(
            turns=[t for t in result.get("turns") or [] if isinstance(t, dict)],
            backend=backend,
            elapsed_s=time.monotonic() - started,
            paused_trainer=paused,
        )

    def _state(self) -> str:
        try:
            with RunReader(self.run_dir) as reader:
                return reader.effective_state()
        except StoreError as exc:
            raise ChatError(str(exc)) from None

    def _queue(self, commands: list[tuple[str, dict[str, Any]]]) -> list[int]:
        try:
            return [send_command(self.run_dir, kind, payload) for kind, payload in commands]
        except StoreError as exc:
            raise ChatError(str(exc)) from None

    async def _ensure_server(self, notify: Callable[[str], None]) -> None:
        server = self.children.get(self.run_dir, "serve")
        if server is not None:
            return
        notify("starting a policy process for the checkpoint (loading the model)…")
        try:
            await self.children.start_serve(self.run_dir, self.checkpoint)
        except RunsError as exc:
            raise ChatError(str(exc)) from None

    async def _wait(self, command_id: int, backend: str, stream: Callable[[int, str], None] | None = None) -> Command:
        """Poll the command until done; give up when its process died or after the timeout."""
        deadline = time.monotonic() + self.timeout_s
        reader = await asyncio.to_thread(RunReader, self.run_dir)
        shown: tuple[int, str] | None = None
        try:
            while True:
                command = await asyncio.to_thread(reader.command, command_id)
                if command.finished:
                    return command
                partial = streamed_text(command)
                if stream is not None and partial is not None and partial != shown:
                    shown = partial
                    stream(*partial)
                if backend == "checkpoint":
                    last = self.children.last(self.run_dir, "serve")
                    if last is not None and not last.running:
                        raise ChatError(last.failure() or "the policy process stopped before answering")
                elif (await asyncio.to_thread(reader.effective_state)) not in ("running", "paused"):
                    raise ChatError("the trainer stopped before answering")
                if time.monotonic() > deadline:
                    raise ChatError(f"no answer after {self.timeout_s:g} s; is the policy process stuck?")
                await asyncio.sleep(POLL_S)
        finally:
            reader.close()

    async def switch_checkpoint(self, checkpoint: str | None) -> None:
        """Answer from another checkpoint from the next message on (restarts the policy process)."""
        if checkpoint == self.checkpoint:
            return
        self.checkpoint = checkpoint
        await self.close()

    async def close(self) -> None:
        """Stop this run's policy process, if one runs.

        A signal rather than a ``stop`` command: a command left pending (the process died first)
        would stop the next trainer that resumes the run.
        """
        server = self.children.get(self.run_dir, "serve")
        if server is not None:
            await server.terminate()
