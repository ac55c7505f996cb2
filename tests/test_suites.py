"""Every suite, through the real hub and the real environment: the oracle reaches success."""

from __future__ import annotations

import json

import pytest

from mcp_servers.config import server_specs
from mcp_servers.hub import ToolHub
from mcp_servers.tasks.oracle import play_reference
from mcp_servers.tasks.suites import DOMAIN_SUITES, UnknownSuiteError, sample_tasks, split_of
from trainer.env import MCPGymEnv

SUITES = [*DOMAIN_SUITES, "all"]


@pytest.mark.parametrize("split", ["train", "heldout"])
@pytest.mark.parametrize("suite", SUITES)
async def test_reference_calls_pass_their_verifier_through_the_hub(suite, split):
    tasks = sample_tasks(suite, split, 12, seed=7)
    assert len({t.id for t in tasks}) == len(tasks)
    assert all(split_of(t.instruction) == split for t in tasks)
    async with ToolHub(server_specs()) as hub:
        for task in tasks:
            report = await play_reference(task, hub)
            assert report.passed, (task.id, task.instruction, [r.text[:120] for r in report.results])


@pytest.mark.parametrize("suite", SUITES)
def test_reference_calls_reach_success_in_the_env(suite):
    env = MCPGymEnv(suite=suite, split="heldout")
    try:
        for seed in range(6):
            _, info = env.reset(seed=seed)
            task = info["task"]
            statuses = []
            for call in task.reference_calls:
                _, _, terminated, truncated, step = env.step(f"<tool_call>{json.dumps(call.to_dict())}</tool_call>")
                statuses.append(step["status"])
            assert statuses[-1] == "success" and terminated, (task.id, statuses)
            assert all(s in ("tool_execution",) for s in statuses[:-1]), (task.id, statuses)
    finally:
        env.close()


def test_splits_share_no_instance_and_sampling_is_deterministic():
    train = {t.id for t in sample_tasks("all", "train", 100, seed=1)}
    heldout = {t.id for t in sample_tasks("all", "heldout", 100, seed=1)}
    assert not train & heldout
    assert [t.id for t in sample_tasks("all", "train", 20, seed=3)] == [t.id for t in sample_tasks("all", "train", 20, seed=3)]


def test_the_mixture_covers_every_domain_and_tag():
    tasks = sample_tasks("all", "train", 100, seed=0)
    assert {t.suite for t in tasks} == set(DOMAIN_SUITES)
    tags = {tag for t in tasks for tag in t.tags}
    assert {"multi_step", "recovery", "cross_domain"} <= tags


def test_unknown_suite_is_a_clear_error():
    with pytest.raises(UnknownSuiteError, match="unknown suite 'maths'"):
        sample_tasks("maths", "train", 1)


def test_one_task_per_seed_covers_every_domain_of_a_mixture():
    """Environments draw one task per seed: the mixture must not always start with the same domain."""
    suites = {sample_tasks("all", "train", 1, seed=seed)[0].suite for seed in range(40)}
    assert suites == set(DOMAIN_SUITES)
