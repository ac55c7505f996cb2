"""The workbench steering a REAL trainer process: start, pause, chat, checkpoint, resume, crash, stop.

One test walks the whole life of a run from the keyboard, because each trainer start costs seconds
(PyTorch and the model load in the child): a newcomer's start key, pause, a chat answered by the
paused trainer's live weights, a checkpoint, resume; then the trainer is killed (-9), the run reads
"crashed", the resume key restarts it from that checkpoint, and stop (confirmed) ends it cleanly;
a last chat is then answered by a policy process serving the checkpoint.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from wb_support import FAST_TRAIN, SIZE, model_name_fixture, wait_until  # noqa: F401 - fixture

from trainer.store import LOG_NAME, RunReader
from workbench.app import WorkbenchApp
from workbench.app.screens.chat import ChatScreen
from workbench.app.screens.dialogs import ConfirmScreen
from workbench.app.screens.empty import EmptyScreen
from workbench.app.screens.live import LiveScreen
from workbench.app.widgets.turn_view import TurnView
from workbench.chat_client import ChatSettings
from workbench.runs import NewRun

pytestmark = pytest.mark.slow

START_S = 120.0  # a trainer start imports torch and loads the model: slow on a busy 2-core machine
STEP_S = 90.0


async def test_the_life_of_a_run_from_the_keyboard(tmp_path: Path, model_name: str):
    app = WorkbenchApp(
        runs_dir=tmp_path / "runs",
        new_run_defaults=NewRun(model=model_name, extra=" ".join(FAST_TRAIN)),
        chat_defaults=ChatSettings(max_new_tokens=12, max_calls=1),
    )
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert isinstance(app.screen, EmptyScreen)
            await pilot.press("s")  # the newcomer's one action
            await wait_until(pilot, lambda: app.run_dir is not None, 10, "a run folder")
            run = app.run_dir
            assert isinstance(app.screen, LiveScreen) and run.parent == tmp_path / "runs"
            await wait_until(pilot, lambda: app.state == "running", START_S, "the trainer to run")
            trainer = app.processes.get(run, "train")
            assert trainer is not None and (run / LOG_NAME).is_file()

            await pilot.press("p")
            await wait_until(pilot, lambda: app.state == "paused", STEP_S, "the pause")

            # chat with the paused trainer's live policy
            await pilot.press("2")
            await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen), 5, "the chat screen")
            chat = app.screen
            await pilot.press(*"What is 2 + 3?", "enter")
            await wait_until(pilot, lambda: chat.query(TurnView) or "no answer" in _progress(chat), STEP_S, "a reply")
            assert chat.query(TurnView), _progress(chat)
            assert "live policy answered" in _progress(chat)
            assert chat.session.messages[0] == {"role": "user", "content": "What is 2 + 3?"}
            assert app.processes.get(run, "serve") is None, "the live trainer answered, no policy process"
            with RunReader(run) as reader:
                assert reader.effective_state() == "paused", "a paused trainer stays paused after a chat"
                assert reader.count_episodes(phase="chat") == 1

            # checkpoint now, then resume
            await pilot.press("escape", "1", "k")
            await wait_until(pilot, lambda: _checkpoints(run) == 1, STEP_S, "the checkpoint")
            await pilot.press("p")
            await wait_until(pilot, lambda: app.state == "running", STEP_S, "the resume")

            # the trainer dies: the run reads crashed and the resume key appears
            os.kill(trainer.pid, signal.SIGKILL)
            await wait_until(pilot, lambda: app.state == "crashed", 15, "the crash to show")
            assert "crashed" in str(app.screen.query_one("#live-status").render())
            assert app.check_action("resume_run", ()) is True
            await pilot.press("R")
            await wait_until(pilot, lambda: app.state == "running", START_S, "the resumed trainer")
            resumed = app.processes.get(run, "train")
            assert resumed is not None and resumed.pid != trainer.pid
            assert "--resume" in resumed.argv

            # stop asks first, then ends the run cleanly
            await pilot.press("x")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "the confirmation")
            await pilot.press("y")
            await wait_until(pilot, lambda: app.state == "stopped", STEP_S, "the stop")
            assert await resumed.wait(30) == 0
            log = (run / LOG_NAME).read_text()
            assert "resumed from iter-" in log
            assert _checkpoints(run) >= 2

            # with no trainer left, chat starts a policy process on the best checkpoint
            await pilot.press("2")
            await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen), 5, "the chat screen")
            await pilot.press("ctrl+n", "i", *"Add 2 and 3", "enter")
            await wait_until(pilot, lambda: "checkpoint answered" in _progress(chat) or "no answer" in _progress(chat),
                             START_S, "the checkpoint's reply")
            assert "checkpoint answered" in _progress(chat), _progress(chat)
            server = app.processes.get(run, "serve")
            assert server is not None and server.running
            with RunReader(run) as reader:
                assert reader.run_info().state == "stopped", "serving a checkpoint leaves the run's state alone"
    finally:
        await app.processes.terminate_all()


def _progress(chat: ChatScreen) -> str:
    return " ".join(str(w.render()) for w in chat.query(".chat-progress"))


def _checkpoints(run: Path) -> int:
    with RunReader(run) as reader:
        return len(reader.checkpoints())
