"""MCPGymEnv: every status with its exact reward, feedback, episode ends, hostile output, isolation."""

from __future__ import annotations

import json
import threading

import gymnasium
import pytest

import trainer.env  # noqa: F401 - registers the environment id
from mcp_servers.tasks.model import Task
from trainer.env import ENV_ID, MCPGymEnv
from trainer.records import EpisodeRecord
from trainer.rewards import RewardConfig

ECHO_TASK = Task.from_dict(
    {
        "id": "echo-hello",
        "instruction": "Echo the word hello.",
        "servers": ["flaky"],
        "tools": ["echo", "nap", "die"],
        "reference_calls": [{"name": "echo", "arguments": {"text": "hello"}}],
        "verifier": {"kind": "value", "equals": "hello", "tool": "echo"},
        "max_turns": 4,
    }
)


def call(name: str, **arguments) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The flaky server in-process (fast); the stdio path has its own test below."""
    path = tmp_path_factory.mktemp("cfg") / "servers.json"
    path.write_text(json.dumps({"mcpServers": {"flaky": {"module": "tests.servers.flaky_server"}}}))
    environment = MCPGymEnv(tasks=[ECHO_TASK], servers_config=str(path), call_timeout_s=0.5, max_turns=4)
    yield environment
    environment.close()


@pytest.mark.parametrize(
    "action, status, reward",
    [
        (call("echo", text="hello"), "success", 10.0),
        (call("echo", text="other"), "tool_execution", 0.0),
        (call("echo", wrong=1), "tool_error", -0.5),
        ('<tool_call>{"name": "echo", "arguments": {"text": "hello"</tool_call>', "invalid_json", -0.8),
        (call("teleport", to="mars"), "structural_fail", -1.0),
        ("I think the answer is hello.", "structural_fail", -1.0),
    ],
)
def test_each_status_and_its_reward(env, action, status, reward):
    observation, _ = env.reset(seed=0)
    assert observation["messages"][-1] == {"role": "user", "content": ECHO_TASK.instruction}
    assert [t["function"]["name"] for t in observation["tools"]] == ["echo", "nap", "die"]
    observation, got, terminated, truncated, info = env.step(action)
    assert (info["status"], got) == (status, reward)
    assert terminated == (status == "success") and not truncated
    assert observation["messages"][-1]["role"] == "tool"


def test_feedback_lets_the_policy_correct_itself(env):
    env.reset(seed=0)
    *_, info = env.step(call("teleport"))
    assert "Available tools: echo, nap, die" in info["feedback"]
    *_, info = env.step(call("echo", wrong=1))
    assert "text" in info["feedback"]
    observation, reward, terminated, _, info = env.step(call("echo", text="hello"))
    assert terminated and reward == 10.0
    record = EpisodeRecord.from_dict(json.loads(json.dumps(info["episode"])))
    assert record.outcome == "success"
    assert [t.status for t in record.turns] == ["structural_fail", "tool_error", "success"]
    assert record.total_reward == pytest.approx(-1.0 - 0.5 + 10.0)


def test_turn_limit_truncates_and_structural_streak_terminates(env):
    env.reset(seed=0)
    for _ in range(3):
        _, _, terminated, truncated, _ = env.step(call("echo", text="no"))
        assert not terminated and not truncated
    _, _, terminated, truncated, info = env.step(call("echo", text="no"))
    assert truncated and not terminated and info["episode"]["outcome"] == "truncated"
    with pytest.raises(RuntimeError, match="reset"):
        env.step(call("echo", text="hello"))
    env.reset(seed=0)
    results = [env.step("no call")[2] for _ in range(3)]
    assert results == [False, False, True]


def test_parallel_calls_success_wins_else_worst(env):
    env.reset(seed=0)
    *_, info = env.step(call("echo", text="x") + call("echo", text="hello"))
    assert info["status"] == "success"
    env.reset(seed=0)
    *_, info = env.step(call("echo", text="x") + call("ghost"))
    assert info["status"] == "structural_fail" and len(info["calls"]) == 2


def test_a_hanging_tool_is_a_tool_error(env):
    env.reset(seed=0)
    *_, info = env.step(call("nap", seconds=2))
    assert info["status"] == "tool_error" and "timed out" in info["feedback"]
    _, reward, terminated, _, info = env.step(call("echo", text="hello"))
    assert terminated and reward == 10.0


def test_over_stdio_a_killed_server_is_restarted_and_the_episode_goes_on(flaky_config):
    stdio = MCPGymEnv(tasks=[ECHO_TASK], servers_config=str(flaky_config), call_timeout_s=1.0)
    try:
        stdio.reset(seed=0)
        *_, info = stdio.step(call("nap", seconds=20))
        assert info["status"] == "tool_error" and "timed out" in info["feedback"]
        *_, info = stdio.step(call("die"))
        assert info["status"] == "tool_error" and "restarted" in info["feedback"]
        _, reward, terminated, _, info = stdio.step(call("echo", text="hello"))
        assert terminated and reward == 10.0 and len(info["episode"]["turns"]) == 3
    finally:
        stdio.close()


def test_each_episode_starts_from_fresh_server_state(env):
    task = Task.from_dict({**ECHO_TASK.to_dict(), "tools": ["remember", "recall", "echo"]})
    env.reset(options={"task": task}, seed=0)
    *_, info = env.step(call("remember", text="secret"))
    assert info["calls"][0]["response"] == "1"
    env.reset(options={"task": task}, seed=0)
    *_, info = env.step(call("recall"))
    assert "secret" not in info["calls"][0]["response"]


HOSTILE = [
    "x" * 2_000_000,
    "<tool_call>" + "{" * 50_000 + "</tool_call>",
    '<tool_call>{"name": "echo", "arguments": {"text": "\\udcff\\ud800"}}</tool_call>',
    '<tool_call>{"name": "echo", "arguments": {"text": "hello"}} garbage</tool_call>',
    call("../../etc/passwd"),
    call("echo/../../die"),
    call("echo", text="hello") * 3_000,
    call("echo", text="y" * 500_000),
    call("echo", text=[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["deep"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]),
    "\x00\x01<tool_call>\x00</tool_call>",
    "<think>" * 1000,
]


@pytest.mark.parametrize("action", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_output_gives_a_status_never_an_exception(env, action):
    env.reset(seed=0)
    _, reward, *_, info = env.step(action)
    assert info["status"] in {"tool_error", "invalid_json", "structural_fail"}
    assert reward == RewardConfig().reward(trainer.env.Status(info["status"]))


def test_custom_rewards(env):
    custom = MCPGymEnv(
        tasks=[ECHO_TASK],
        servers_config=env.servers_config,
        rewards=RewardConfig(success=1.0, structural_fail=-2.0),
    )
    try:
        custom.reset(seed=0)
        assert custom.step("nothing")[1] == -2.0
        assert custom.step(call("echo", text="hello"))[1] == 1.0
    finally:
        custom.close()


def test_registered_with_gymnasium_and_env_checker(env):
    """gymnasium's checks that apply: spaces, reset determinism and options, step return types.

    Its step-determinism check does not apply as is: ``info`` carries measured latencies. The same
    seed and action must still give the same observation, reward and flags, checked here.
    """
    from gymnasium.utils import env_checker, passive_env_checker

    made = gymnasium.make(ENV_ID, tasks=[ECHO_TASK], servers_config=env.servers_config)
    try:
        inner = made.unwrapped
        passive_env_checker.check_observation_space(inner.observation_space)
        passive_env_checker.check_action_space(inner.action_space)
        env_checker.check_reset_seed_determinism(inner)
        env_checker.check_reset_options(inner)
        env_checker.check_reset_return_type(inner)
        passive_env_checker.env_reset_passive_checker(inner, seed=0)
        passive_env_checker.env_step_passive_checker(inner, inner.action_space.sample())
        outcomes = []
        for _ in range(2):
            inner.reset(seed=5)
            observation, reward, terminated, truncated, _ = inner.step(call("echo", text="x"))
            outcomes.append((observation, reward, terminated, truncated))
        assert outcomes[0] == outcomes[1]
        observation, info = made.reset(seed=3)
        assert info["task"].id == "echo-hello"
        assert made.step(call("echo", text="hello"))[2]
    finally:
        made.close()


def test_concurrent_envs_are_isolated(env):
    """Envs stepping from several threads at once each see only their own server state."""
    others = [MCPGymEnv(tasks=[ECHO_TASK], servers_config=env.servers_config) for _ in range(4)]
    task = Task.from_dict({**ECHO_TASK.to_dict(), "tools": ["remember", "recall"], "max_turns": 30})
    recalled: dict[int, list[str]] = {}

    def play(index: int, environment: MCPGymEnv) -> None:
        environment.reset(options={"task": task}, seed=index)
        for step in range(10):
            environment.step(call("remember", text=f"{index}-{step}"))
        *_, info = environment.step(call("recall"))
        recalled[index] = info["calls"][0]["response"].splitlines()

    try:
        threads = [threading.Thread(target=play, args=(i, e)) for i, e in enumerate(others)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert recalled == {i: [f"{i}-{s}" for s in range(10)] for i in range(4)}
    finally:
        for other in others:
            other.close()
