"""MCPGymEnv: one task per episode, played against real MCP servers, rewarded by execution.

    import trainer.env, gymnasium
    env = gymnasium.make("qwen_workbench/MCPGym-v0", suite="math", split="train")
    obs, info = env.reset(seed=0)          # obs = {"messages": [...], "tools": [...]}
    obs, reward, terminated, truncated, info = env.step('<tool_call>{"name": ...}</tool_call>')

A turn's status follows the rules in ``trainer.parsing`` and then execution:
a hallucinated tool (one not offered for the task) is ``structural_fail``; a tool that reports an
error, times out, or whose server died is ``tool_error``; a clean call after which the task's
verifier holds is ``success``, otherwise ``tool_execution``. With several calls in one turn, the turn
succeeds if any call reaches the objective, else it takes the worst status of its calls.

After any failing turn the episode goes on: the parse error, the list of real tools or the tool's
own error message comes back as the tool response, so the policy can correct itself. Episodes end
on success, after ``max_structural_failures`` consecutive structural failures (terminated), or at the
turn limit (truncated). Each episode starts every server it uses from a fresh state.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import gymnasium

from mcp_servers.config import server_specs
from mcp_servers.hub import ServerSpec, ToolHub, UnknownToolError
from mcp_servers.limits import Limits, ToolError, check_payload
from mcp_servers.tasks.model import Task, ToolCall, ToolResult
from mcp_servers.tasks.suites import sample_tasks
from mcp_servers.tasks.taskfile import load_task_file
from trainer.loop import LoopThread, shared_loop
from trainer.parsing import DEFAULT_MAX_CALLS, ParsedTurn, parse_turn
from trainer.records import CallRecord, EpisodeRecord, TurnRecord
from trainer.rewards import RewardConfig, Status, worst
from trainer.spaces import ChatObservation, FreeText

ENV_ID = "qwen_workbench/MCPGym-v0"
SYSTEM_PROMPT = "You solve tasks by calling tools. Reply with one tool call."

# Arguments the environment refuses to forward at all (the servers apply their own tighter bounds).
_TRANSPORT_LIMITS = Limits(
    max_string_chars=100_000, max_payload_chars=200_000, max_depth=32, max_items=10_000
)


def draw_task(suite: str, split: str, seed: int, pool: Sequence[Task] | None = None) -> Task:
    """The task ``reset(seed=seed)`` plays: a seeded choice from ``pool`` when there is one (a task
    file), else the one task ``sample_tasks`` draws from the suite's split with that seed."""
    if pool is not None:
        if not pool:
            raise ValueError("the task pool is empty")
        return random.Random(seed).choice(pool)
    return sample_tasks(suite, split, 1, seed=seed)[0]


class MCPGymEnv(gymnasium.Env[dict, str]):
    """See the module docstring. Observations are chat messages plus tool schemas; actions are text."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        suite: str = "all",
        split: str = "train",
        *,
        tasks: Sequence[Task] | None = None,
        task_file: str | None = None,
        servers_config: str | None = None,
        transport: str = "inprocess",
        rewards: RewardConfig | None = None,
        max_turns: int | None = None,
        max_structural_failures: int = 3,
        max_calls_per_turn: int = DEFAULT_MAX_CALLS,
        call_timeout_s: float = 5.0,
        system_prompt: str = SYSTEM_PROMPT,
        render_mode: str | None = None,
        loop: LoopThread | None = None,
    ) -> None:
        self.suite, self.split = suite, split
        self.pool: list[Task] | None = list(tasks) if tasks is not None else None
        if task_file is not None:
            self.pool = [*(self.pool or []), *load_task_file(task_file)]
        self.servers_config = servers_config
        self.transport = transport
        self.rewards = rewards or RewardConfig()
        self.max_turns = max_turns
        self.max_structural_failures = max_structural_failures
        self.max_calls_per_turn = max_calls_per_turn
        self.system_prompt = system_prompt
        self.render_mode = render_mode
        self.action_space = FreeText()
        self.observation_space = ChatObservation()
        self._loop = loop or shared_loop()
        self._hub = ToolHub([], call_timeout_s=call_timeout_s)
        self._specs: dict[str, ServerSpec] = {}
        self.task: Task | None = None
        self.record: EpisodeRecord | None = None
        self._messages: list[dict[str, str]] = []
        self._tools: list[dict[str, Any]] = []
        self._offered: list[str] = []
        self._structural_streak = 0
        self._done = True

    # -- gymnasium API ---------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        """Draw a task (or play ``options["task"]``), give its servers fresh state, and return the prompt."""
        super().reset(seed=seed)
        task = (options or {}).get("task") or self._draw_task(seed)
        self._loop.run(self._prepare(task))
        self.task = task
        self._offered = list(task.tools) if task.tools else self._hub.tools_of(task.servers)
        self._tools = self._hub.schemas(self._offered, compact=True)
        self._messages = [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": task.instruction},
        ]
        self.record = EpisodeRecord(task=task.to_dict(), seed=seed, started_at=time.time())
        self._structural_streak = 0
        self._done = False
        return self._observation(), {"task": task, "tools": list(self._offered)}

    def step(self, action: str) -> tuple[dict, float, bool, bool, dict]:
        """Play one assistant turn: parse, execute, verify, reward, and feed the result back."""
        if self._done or self.task is None or self.record is None:
            raise RuntimeError("the episode is over; call reset() first")
        started = time.perf_counter()
        parsed = parse_turn(action, max_calls=self.max_calls_per_turn)
        if parsed.status is not None:
            calls, status, feedback = [], parsed.status, [self._parse_feedback(parsed)]
        else:
            calls = self._loop.run(self._execute(parsed.calls))
            status = self._turn_status(calls)
            feedback = [call.response for call in calls]
        reward = self.rewards.reward(status)
        turn = TurnRecord(
            index=len(self.record.turns),
            raw_text=action if isinstance(action, str) else repr(action),
            thinking=parsed.thinking,
            calls=calls,
            parse_error=parsed.error,
            feedback="\n".join(feedback),
            status=status.value,
            reward=reward,
            latency_s=time.perf_counter() - started,
        )
        self.record.turns.append(turn)
        self.record.total_reward += reward
        self._messages.append(
            {"role": "assistant", "content": parsed.visible_text if parsed.visible_text else ""}
        )
        self._messages.extend({"role": "tool", "content": text} for text in feedback)
        terminated, truncated = self._episode_end(status)
        if terminated or truncated:
            self._done = True
            self.record.outcome = (
                "success" if status is Status.SUCCESS else ("terminated" if terminated else "truncated")
            )
            self.record.duration_s = time.time() - self.record.started_at
        info = {
            "status": status.value,
            "reward": reward,
            "calls": [asdict(call) for call in calls],
            "parse_error": parsed.error,
            "feedback": turn.feedback,
            "turn": asdict(turn),
        }
        if self._done:
            info["episode"] = self.record.to_dict()
        return self._observation(), reward, terminated, truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self.record is None:
            return None
        lines = [f"task {self.record.task['id']}: {self.record.task['instruction']}"]
        for turn in self.record.turns:
            lines.append(f"turn {turn.index}: {turn.status} ({turn.reward:+g}) {turn.raw_text[:120]!r}")
        return "\n".join(lines)

    def close(self) -> None:
        # closing must never raise out of gymnasium's close()
        with contextlib.suppress(Exception):
            self._loop.run(self._hub.close(), timeout=30)
        super().close()

    # -- helpers -----------------------------------------------------------------------------------

    @property
    def messages(self) -> list[dict[str, str]]:
        return list(self._messages)

    def _observation(self) -> dict:
        return {"messages": [dict(m) for m in self._messages], "tools": self._tools}

    def _draw_task(self, seed: int | None) -> Task:
        draw = seed if seed is not None else int(self.np_random.integers(0, 2**31 - 1))
        return draw_task(self.suite, self.split, draw, self.pool)

    async def _prepare(self, task: Task) -> None:
        """Connect the task's servers if needed, else reset them: each episode starts fresh."""
        for name in task.servers:
            if self._hub.is_connected(name):
                await self._hub.reset([name])
            else:
                if name not in self._specs:
                    self._specs[name] = server_specs(
                        [name], config_path=self.servers_config, transport=self.transport
                    )[0]
                await self._hub.add(self._specs[name])

    async def _execute(self, calls: Sequence[ToolCall]) -> list[CallRecord]:
        return [await self._execute_one(call) for call in calls]

    async def _execute_one(self, call: ToolCall) -> CallRecord:
        assert self.task is not None
        if call.name not in self._offered:
            return self._refused(
                call,
                Status.STRUCTURAL_FAIL,
                f"Error: unknown tool {call.name[:80]!r}. Available tools: {', '.join(self._offered)}",
            )
        try:
            check_payload(call.arguments, _TRANSPORT_LIMITS)
        except ToolError as exc:
            return self._refused(call, Status.TOOL_ERROR, f"Error: {exc}")
        try:
            result = await self._hub.call(call)
        except UnknownToolError:  # offered by the task but not by any server: a broken task file
            return self._refused(call, Status.TOOL_ERROR, f"Error: no server offers tool {call.name!r}")
        if result.is_error:
            status = Status.TOOL_ERROR
        elif await self.task.verifier.holds(call, result, self._probe):
            status = Status.SUCCESS
        else:
            status = Status.TOOL_EXECUTION
        return CallRecord(
            call.name, call.arguments, result.text, result.is_error, result.latency_s, status.value
        )

    async def _probe(self, call: ToolCall) -> ToolResult:
        try:
            return await self._hub.call(call)
        except UnknownToolError:
            return ToolResult(f"unknown tool {call.name!r}", is_error=True)

    @staticmethod
    def _refused(call: ToolCall, status: Status, message: str) -> CallRecord:
        arguments = (
            call.arguments if len(json.dumps(call.arguments, default=str)) <= 2_000 else {"_truncated": True}
        )
        return CallRecord(call.name[:200], arguments, message, True, 0.0, status.value)

    def _turn_status(self, calls: list[CallRecord]) -> Status:
        statuses = [Status(call.status) for call in calls]
        return Status.SUCCESS if Status.SUCCESS in statuses else worst(statuses)

    def _parse_feedback(self, parsed: ParsedTurn) -> str:
        tools = ", ".join(self._offered)
        if parsed.status is Status.INVALID_JSON:
            return (
                f'Error: {parsed.error}. Write <tool_call>{{"name": "<tool>", "arguments": {{...}}}}'
                f"</tool_call> with one of: {tools}"
            )
        return f"Error: {parsed.error}. Call one of: {tools}"

    def _episode_end(self, status: Status) -> tuple[bool, bool]:
        assert self.task is not None and self.record is not None
        self._structural_streak = self._structural_streak + 1 if status is Status.STRUCTURAL_FAIL else 0
        terminated = status is Status.SUCCESS or self._structural_streak >= self.max_structural_failures
        limit = self.max_turns or self.task.max_turns
        truncated = not terminated and len(self.record.turns) >= limit
        return terminated, truncated


if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="trainer.env:MCPGymEnv")
