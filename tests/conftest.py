"""Shared fixtures: external server configs and small helpers used across the suite."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def flaky_config(tmp_path: Path) -> Path:
    """An mcpServers config that adds the test's flaky server over stdio."""
    config = {
        "mcpServers": {
            "flaky": {
                "command": sys.executable,
                "args": ["-m", "tests.servers.flaky_server"],
                "env": {"PYTHONPATH": str(REPO)},
            }
        }
    }
    path = tmp_path / "servers.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def flaky_inprocess_config(tmp_path: Path) -> Path:
    """The same flaky server loaded in-process through the config's ``module`` form (fast)."""
    path = tmp_path / "servers-inprocess.json"
    path.write_text(json.dumps({"mcpServers": {"flaky": {"module": "tests.servers.flaky_server"}}}))
    return path


@pytest.fixture(scope="session")
def throwaway_model(tmp_path_factory) -> Path:
    """A small, untrained Qwen3 bundle built with the project's own recipe pieces (fast to run).

    Trainer tests use it instead of the shipped model so that they exercise the same code paths in
    seconds; the shipped model is exercised by the eval and learning benchmarks.
    """
    from mcp_servers.tasks.suites import sample_tasks
    from trainer.chat_format import render_chat
    from trainer.tiny_model import build_bundle

    texts = [render_chat([{"role": "user", "content": t.instruction}]) + json.dumps(
        [c.to_dict() for c in t.reference_calls]) for t in sample_tasks("all", "train", 200, seed=0)]
    folder = tmp_path_factory.mktemp("model") / "tiny"
    return build_bundle(folder, texts, vocab_size=600, seed=0, hidden=64, layers=2, heads=4, kv_heads=2)


def small_run_settings(model: Path) -> list[str]:
    """Overrides for a PPO run that takes a second or two per iteration on a throwaway model."""
    return [f"model.name={model}", "rollout.batch_size=4", "rollout.max_new_tokens=16", "ppo.epochs=1",
            "ppo.minibatch_size=2", "ppo.micro_batch_size=2", "eval.every=0", "checkpoint.every=1",
            "task.max_turns=2", "run.iterations=2"]
