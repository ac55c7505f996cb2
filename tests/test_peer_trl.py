"""bench/peer_trl.py: the bridge to trl's environment API, and a smoke run of both sides through the CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

import peer_trl_bridge as bridge_mod  # noqa: E402

from mcp_servers.tasks.model import Task  # noqa: E402
from trainer.conversation import tool_call_text  # noqa: E402

FIXED_CALL = {"name": "calculate", "arguments": {"expression": "6 * 7"}}


def calculate_task(a: int, b: int) -> Task:
    """A one-tool task whose verifier holds only for the product a * b."""
    return Task.from_dict({
        "id": f"mul-{a}-{b}", "instruction": f"Compute {a} * {b} with calculate.", "servers": ["math"],
        "tools": ["calculate"], "reference_calls": [{"name": "calculate", "arguments": {"expression": f"{a} * {b}"}}],
        "verifier": {"kind": "value", "equals": a * b, "tool": "calculate"}, "max_turns": 2,
    })


TASKS = [calculate_task(6, 7), calculate_task(8, 9), calculate_task(12, 5), calculate_task(3, 14)]


@pytest.fixture(scope="module")
def bridge():
    built = bridge_mod.build_bridge(TASKS, bridge_mod.EnvSettings())
    yield built
    built.close()


def play(bridge, task: Task):
    """One environment of ``task``'s class, reset the way trl resets it (with the dataset row)."""
    env = bridge.factories[bridge.environment(task)]()
    row = bridge_mod.dataset_rows(bridge, [task], [0])[0]
    env.reset(**{k: v for k, v in row.items() if k != "environment"})
    return env


def test_tool_methods_carry_the_mcp_schema_trl_renders():
    from transformers.utils import get_json_schema

    schema = {"type": "function", "function": {
        "name": "search", "description": "Find pages.", "parameters": {"type": "object", "properties": {
            "query": {"description": "Words.", "type": "string"},
            "k": {"default": 3, "description": "How many.", "maximum": 10, "minimum": 1, "type": "integer"},
            "op": {"description": "Mode.", "enum": ["a", "b"], "type": "string"},
            "x": {"anyOf": [{"type": "integer"}, {"type": "number"}], "description": "A number."}},
            "required": ["query", "op"]}}}
    rendered = get_json_schema(bridge_mod.tool_method(schema))["function"]
    assert rendered["name"] == "search" and rendered["description"] == "Find pages."
    assert rendered["parameters"]["required"] == ["query", "op"]
    properties = rendered["parameters"]["properties"]
    assert properties["k"] == {"type": "integer", "description": "How many."}  # bounds: not expressible
    assert properties["op"]["enum"] == ["a", "b"]
    assert properties["x"]["type"] == ["integer", "number"]


def test_each_tool_set_gets_its_own_environment_class(bridge):
    assert list(bridge.classes) == ["calculate"]
    methods = [name for name in vars(bridge.classes["calculate"]) if not name.startswith("_")]
    assert methods == ["calculate", "tool_names"]


def test_a_tool_method_plays_a_real_turn_on_our_server(bridge):
    env = play(bridge, TASKS[1])  # 8 * 9
    assert env.calculate(expression="2 + 3") == "5"
    assert env.get_reward() == 0.0  # tool_execution
    assert env.calculate(expression="8 * 9") == "72"
    assert env.get_reward() == 10.0  # success ends the episode
    assert env.calculate(expression="1 + 1") == bridge_mod.EPISODE_OVER
    statuses = [turn.status for turn in env._env.record.turns]
    assert statuses == ["tool_execution", "success"]


def test_a_server_error_is_a_tool_error_turn(bridge):
    env = play(bridge, TASKS[0])
    answer = env.calculate(expresion="6 * 7")  # misspelt argument: the server refuses it
    assert "expression" in answer and env.get_reward() == -0.5


def test_protocol_turns_scores_what_trl_keeps_from_the_environment(bridge):
    env = play(bridge, TASKS[0])
    messages = [
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "hallucinated", "arguments": {}}}]},
        {"role": "tool", "name": "hallucinated", "content": "{'error': 'Tool hallucinated not found.'}"},
        {"role": "assistant", "content": '<tool_call>{"name": "calculate", "arguments": {</tool_call>'},
    ]
    rewards = bridge_mod.protocol_turns([messages], environments=[env])
    assert rewards == [pytest.approx(-1.0 - 0.8)]
    record = bridge.log.take()[-1]
    assert [turn.status for turn in record.turns] == ["structural_fail", "invalid_json"]
    assert record.outcome == "truncated"


def test_a_call_text_round_trips_through_our_parser():
    from trainer.parsing import parse_turn

    parsed = parse_turn(tool_call_text(FIXED_CALL["name"], FIXED_CALL["arguments"]))
    assert parsed.status is None and parsed.calls[0].arguments == FIXED_CALL["arguments"]


# --------------------------------------------------------------------------------------------------
# The smoke run
# --------------------------------------------------------------------------------------------------


def write_tasks(path: Path) -> Path:
    path.write_text("".join(json.dumps(task.to_dict()) + "\n" for task in TASKS))
    return path


@pytest.fixture(scope="module")
def caller_model(throwaway_model: Path, tmp_path_factory) -> Path:
    """The throwaway model taught (a few seconds of supervised steps) to answer every turn of these
    tasks with one fixed ``calculate`` call, so that rollouts really call our server; the call solves
    the 6 * 7 task only, so rewards differ within a group."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainer.env import MCPGymEnv
    from trainer.generation import left_pad

    folder = tmp_path_factory.mktemp("caller") / "model"
    shutil.copytree(throwaway_model, folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    target = tokenizer.encode(tool_call_text(**FIXED_CALL) + "<|im_end|>", add_special_tokens=False)
    env = MCPGymEnv(tasks=TASKS)
    rows = []
    try:
        for task in TASKS:
            observation, _ = env.reset(options={"task": task})
            prompt = tokenizer.apply_chat_template(observation["messages"], tools=observation["tools"], tokenize=False,
                                                   add_generation_prompt=True, enable_thinking=False)
            rows.append(tokenizer.encode(prompt, add_special_tokens=False) + target)
    finally:
        env.close()
    ids, mask = left_pad(rows, tokenizer.pad_token_id)
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, : ids.shape[1] - len(target)] = -100
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on 2 shared cores one thread is far faster than two fighting for them
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    try:
        for _ in range(50):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    model.save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_both_sides_train_and_trl_calls_our_servers(caller_model: Path, tmp_path: Path):
    out = tmp_path / "out"
    command = [
        sys.executable, str(REPO / "bench" / "peer_trl.py"), "--minutes", "0.02", "--eval-tasks", "2",
        "--checkpoints", "1", "--threads", "1", "--model", str(caller_model), "--out", str(out),
        "--set", f"task.task_file={write_tasks(tmp_path / 'tasks.jsonl')}", "--set", "rollout.batch_size=4",
        "--set", "ppo.minibatch_size=2", "--set", "ppo.micro_batch_size=2", "--set", "ppo.epochs=1",
        "--set", "rollout.max_new_tokens=24", "--set", "task.max_turns=2",
        "--trl-set", "num_generations=2", "--trl-set", "max_completion_length=96",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)

    assert set(result["sides"]) == {"ours", "trl"}
    for side in result["sides"].values():
        for moment in ("before", "after"):
            assert 0.0 <= side[moment]["success_rate"] <= 1.0
            assert set(side[moment]["status_shares"]) == {"success", "tool_execution", "tool_error",
                                                         "invalid_json", "structural_fail"}
        assert side["steps"] >= 1 and side["episodes"] >= 4
        assert side["generated_tokens"]["train"] > 0 and side["generated_tokens"]["eval"] > 0
        assert side["peak_rss_mb"] > 100 and side["trained_s"] > 0
        assert [point["label"] for point in side["curve"]] == ["before", "after"]
    assert set(result["comparison"]["heldout_success_after"]) == {"ours", "trl"}

    trl = result["sides"]["trl"]
    bridge = trl["bridge"]
    assert bridge["tool_calls_executed"] > 0  # trl's tool loop ran calls on our math server
    assert trl["train"]["status_shares"].get("tool_execution", 0) + trl["train"]["status_shares"].get("success", 0) > 0
    assert bridge["template_identical_share"] == 1.0 and bridge["tool_suffix_identical"] is True
    assert result["png"] and Path(result["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("arguments, message", [
    (["--trl-set", "nope"], "must look like field=value"),
    (["--sides", "ours,keras"], "--sides takes"),
    (["--minutes", "0"], "--minutes must be > 0"),
])
def test_bad_arguments_get_one_clear_line(arguments: list[str], message: str):
    done = subprocess.run([sys.executable, str(REPO / "bench" / "peer_trl.py"), *arguments], capture_output=True,
                          text=True, timeout=60, cwd=REPO)
    assert done.returncode == 2 and message in done.stderr.splitlines()[-1]


def test_the_trl_side_trains_on_the_task_stream_our_trainer_draws():
    import peer_trl

    from trainer.config import load_config
    from trainer.train import task_seeds

    config = load_config(overrides=["rollout.batch_size=16"])
    expected = [*task_seeds(config, 0, 16), *task_seeds(config, 1, 16), *task_seeds(config, 2, 16)[:8]]
    assert peer_trl.task_seeds(config, 40) == expected
