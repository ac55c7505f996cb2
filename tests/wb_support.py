"""Helpers of the workbench tests: the recorded run, a model for real trainers, waiting on the app."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SMALL_RUN = REPO / "tests" / "data" / "recorded" / "small"
SIZE = (140, 40)

# A trainer that answers commands within seconds: one short episode per iteration, nothing periodic.
FAST_TRAIN = (
    "run.iterations=500",
    "rollout.batch_size=1",
    "rollout.max_new_tokens=8",
    "task.max_turns=1",
    "task.suite=math",
    "eval.every=0",
    "eval.num_tasks=1",
    "checkpoint.every=0",
    "ppo.epochs=1",
    "ppo.minibatch_size=1",
    "ppo.micro_batch_size=1",
    "lora.r=2",
)

_CORPUS = [
    "<|im_start|>user\nWhat is 12 + 30?<|im_end|>\n<|im_start|>assistant\n",
    '<tool_call>\n{"name": "calculate", "arguments": {"expression": "12 + 30"}}\n</tool_call><|im_end|>\n',
    "<tool_response>\n42\n</tool_response>",
] * 10


def texts(app, selector: str) -> str:
    """What the widget matching ``selector`` on the app's current screen renders, as plain text."""
    return str(app.screen.query_one(selector).render())


def copy_run(root: Path, source: Path = SMALL_RUN, name: str = "small") -> Path:
    """A private copy of a recorded run under ``root/runs/`` (tests never touch the repo's files)."""
    target = root / "runs" / name
    shutil.copytree(source, target)
    return target


@pytest.fixture(name="small_run")
def small_run_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The recorded small run, copied to ``tmp_path/runs/small``; the cwd is ``tmp_path`` (so the app's
    default ``runs/`` is that folder and paths on screen do not depend on where tmp_path is)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    return copy_run(tmp_path)


@pytest.fixture(scope="session", name="model_name")
def model_name_fixture(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The embedded tiny model when it is built, else a throwaway tiny Qwen3 bundle (seconds)."""
    from mcp_servers.assets import asset_path

    if (asset_path("tiny-qwen3") / "config.json").is_file():
        return "tiny"
    from trainer.tiny_model import build_bundle

    folder = tmp_path_factory.mktemp("tiny-model")
    build_bundle(folder, _CORPUS, vocab_size=320, seed=0, hidden=64, layers=2, heads=4, kv_heads=2, intermediate=128)
    return str(folder)


async def wait_until(pilot, predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.1) -> None:
    """Let the app run until ``predicate()`` holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await pilot.pause(step)
    await pilot.pause()


async def settle(pilot, seconds: float = 0.3) -> None:
    """Give workers and the store poll time to finish, then wait for the screen to be idle."""
    await asyncio.sleep(seconds)
    await pilot.pause()
