"""Chat with a policy against the MCP servers: the model's turns, its calls, and what came back.

Used by the trainer's ``chat`` command (the live weights of a running or paused run) and by a
stand-alone policy process for a checkpoint. Statuses follow the environment's rules, except that
a turn with no tool call is a final answer (status ``answer``, reward 0): in a chat nothing is due.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mcp_servers.config import server_specs
from mcp_servers.hub import ToolHub, UnknownToolError
from mcp_servers.tasks.model import ToolCall
from trainer.conversation import template_renderer, turn_suffix
from trainer.generation import generate_batch
from trainer.loop import shared_loop
from trainer.parsing import parse_turn
from trainer.records import CallRecord, EpisodeRecord, TurnRecord
from trainer.rewards import RewardConfig, Status

ANSWER = "answer"
MAX_MESSAGES = 200
MAX_MESSAGE_CHARS = 20_000
STREAM_EVERY_S = 0.2  # how often a generating turn's text is reported (one store write each)


class ChatError(ValueError):
    """A chat request that cannot be served, with the reason on one line."""


def _checked_messages(payload: dict[str, Any]) -> list[dict[str, str]]:
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages or len(messages) > MAX_MESSAGES:
        raise ChatError(f"'messages' must be a list of 1 to {MAX_MESSAGES} chat messages")
    checked = []
    for message in messages:
        if (not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant", "tool")
                or not isinstance(message.get("content"), str) or len(message["content"]) > MAX_MESSAGE_CHARS):
            raise ChatError("each message needs a role (system/user/assistant/tool) and string content")
        checked.append({"role": message["role"], "content": message["content"]})
    if checked[-1]["role"] not in ("user", "tool"):
        raise ChatError("the last message must be from the user (or a tool)")
    return checked


def chat_turns(policy: Any, payload: dict[str, Any], config: Any = None,
               progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Answer the conversation in ``payload``: generate, run any calls, repeat until an answer.

    payload: ``messages`` (required), ``servers`` (default: every bundled and configured server),
    ``max_calls`` (default 4), ``max_new_tokens`` (default 128), ``temperature`` (0 = greedy),
    ``thinking`` (default: the policy's setting).
    Returns the new turns, the extended messages, and an episode record for the store.
    ``progress``, when given, receives ``{"turn": index, "text": what the model wrote so far}`` a few
    times a second while it generates, and after each finished turn (the workbench streams it).
    """
    messages = _checked_messages(payload)
    servers = payload.get("servers")
    if servers is not None and (not isinstance(servers, list) or not all(isinstance(s, str) for s in servers)):
        raise ChatError("'servers' must be a list of server names")
    max_calls = int(payload.get("max_calls", 4))
    max_new_tokens = int(payload.get("max_new_tokens", 128))
    temperature = float(payload.get("temperature", 0.0))
    thinking = payload.get("thinking", payload.get("enable_thinking"))
    thinking = policy.thinking if thinking is None else bool(thinking)
    servers_config = getattr(getattr(config, "task", None), "servers_config", None)
    rewards = config.rewards.as_reward_config() if config is not None else RewardConfig()
    specs = server_specs(servers, config_path=servers_config)
    loop = shared_loop()
    hub = ToolHub(specs)
    loop.run(hub.start())
    try:
        return _converse(policy, hub, loop, messages, max_calls, max_new_tokens, temperature, rewards, thinking,
                         progress)
    finally:
        loop.run(hub.close())


def _converse(policy, hub, loop, messages, max_calls, max_new_tokens, temperature, rewards,
              thinking: bool, progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    tools = hub.schemas(compact=True)
    offered = list(hub.tools)
    tokenizer = policy.tokenizer

    render = template_renderer(tokenizer, thinking=thinking)

    stream = tokenizer.encode(render(messages, tools, add_generation_prompt=True), add_special_tokens=False)
    record = EpisodeRecord(task={"id": "chat", "suite": "chat", "instruction": messages[-1]["content"]},
                           seed=None, started_at=time.time())
    new_messages: list[dict[str, str]] = []
    calls_made = 0
    while True:
        streamer = None if progress is None else TurnStreamer(tokenizer, len(record.turns), progress)
        sample = generate_batch(policy.model, tokenizer, [stream], max_new_tokens=max_new_tokens,
                                temperature=max(temperature, 1e-6), greedy=temperature <= 0, seed=len(record.turns),
                                on_step=streamer)[0]
        if progress is not None:
            progress({"turn": len(record.turns), "text": sample.text})
        parsed = parse_turn(sample.text)
        started = time.perf_counter()
        calls: list[CallRecord] = []
        if parsed.status is Status.STRUCTURAL_FAIL and parsed.error == "no tool call found":
            status, feedback = ANSWER, []
        elif parsed.status is not None:
            status, feedback = parsed.status.value, [f"Error: {parsed.error}. Call one of: {', '.join(offered)}"]
        else:
            calls = [loop.run(_execute(hub, call, offered)) for call in parsed.calls]
            statuses = [Status(c.status) for c in calls]
            status = max(statuses, key=list(Status).index).value
            feedback = [c.response for c in calls]
            calls_made += len(calls)
        reward = 0.0 if status == ANSWER else rewards.reward(Status(status))
        record.turns.append(TurnRecord(index=len(record.turns), raw_text=sample.text, thinking=parsed.thinking,
                                       calls=calls, parse_error=parsed.error if status != ANSWER else None,
                                       feedback="\n".join(feedback), status=status, reward=reward,
                                       latency_s=time.perf_counter() - started))
        record.total_reward += reward
        new_messages.append({"role": "assistant", "content": parsed.visible_text})
        new_messages.extend({"role": "tool", "content": text} for text in feedback)
        if status == ANSWER or calls_made >= max_calls or len(record.turns) > max_calls + 2:
            break
        stream = stream + sample.token_ids + tokenizer.encode(
            turn_suffix(render, feedback, enable_thinking=thinking), add_special_tokens=False)
    record.outcome = "answered" if record.turns[-1].status == ANSWER else "call_limit"
    record.duration_s = time.time() - record.started_at
    return {"turns": [t.__dict__ | {"calls": [c.__dict__ for c in t.calls]} for t in record.turns],
            "messages": messages + new_messages, "record": record.to_dict()}


class TurnStreamer:
    """An ``on_step`` for generate_batch that reports the text so far at most every ``every_s`` seconds."""

    def __init__(self, tokenizer: Any, turn: int, progress: Callable[[dict[str, Any]], None],
                 every_s: float = STREAM_EVERY_S) -> None:
        self.tokenizer, self.turn, self.progress, self.every_s = tokenizer, turn, progress, every_s
        self.last = time.monotonic()

    def __call__(self, tokens: list[list[int]]) -> None:
        now = time.monotonic()
        if now - self.last < self.every_s:
            return
        self.last = now
        text = self.tokenizer.decode(tokens[0], skip_special_tokens=False, clean_up_tokenization_spaces=False)
        self.progress({"turn": self.turn, "text": text})


async def _execute(hub: ToolHub, call: ToolCall, offered: list[str]) -> CallRecord:
    if call.name not in offered:
        return CallRecord(call.name[:200], {}, f"Error: unknown tool {call.name[:80]!r}. Available tools: "
                          f"{', '.join(offered)}", True, 0.0, Status.STRUCTURAL_FAIL.value)
    try:
        result = await hub.call(call)
    except UnknownToolError:
        return CallRecord(call.name, call.arguments, "Error: unknown tool", True, 0.0, Status.STRUCTURAL_FAIL.value)
    status = Status.TOOL_ERROR if result.is_error else Status.TOOL_EXECUTION
    return CallRecord(call.name, call.arguments, result.text, result.is_error, result.latency_s, status.value)
