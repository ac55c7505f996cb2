"""PPO learns on the shipped tiny model: sixteen samples of one task an iteration, and its success rises.

The held-out learning target is a benchmark (bench/learning.py); this is the check that the gradient
points the right way at all, end to end: real rollouts through the MCP servers, execution rewards,
the leave-one-out baseline over the group, the clipped update of the LoRA adapter.
"""

from __future__ import annotations

import pytest

from mcp_servers.tasks.taskfile import write_task_file
from trainer.config import load_config
from trainer.env import MCPGymEnv
from trainer.train import Trainer

TASK_SEED = 707  # a train-split task the shipped model solves in about 1 sample of 16


@pytest.mark.slow
def test_ppo_lifts_the_success_of_a_task_it_mostly_fails(tmp_path):
    env = MCPGymEnv(suite="all", split="train")
    try:
        _, info = env.reset(seed=TASK_SEED)
    finally:
        env.close()
    write_task_file([info["task"]], tmp_path / "one.jsonl")
    config = load_config(overrides=[f"task.task_file={tmp_path / 'one.jsonl'}", "rollout.group_size=16",
                                    "optim.lr=5e-4", "eval.every=0", "checkpoint.every=0", "run.iterations=5"])
    trainer = Trainer(config, tmp_path / "run", echo=lambda line: None)
    try:
        success = []
        for _ in range(5):
            success.append(trainer.train_iteration()["success_rate"])
            trainer.iteration += 1
    finally:
        trainer.close()
    assert success[0] <= 0.25, success  # sampled from the shipped model: mostly failing
    assert max(success[-2:]) >= 0.75, success  # a few updates later: mostly solved
