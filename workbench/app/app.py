"""The workbench App: modes (Live, Chat, Replay, Runs), global keys, the command palette, the trainer.

The app talks to a trainer only through its run store: it reads with a :class:`LiveFeed` polled from
a worker thread a few times a second, and steers with commands queued in the store. Trainers and
policy processes are children started with asyncio (workbench.runs); a trainer keeps going when the
app closes, and the app keeps working when a trainer dies (the run then reads "crashed").
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import deque
from collections.abc import Iterable
from contextlib import suppress
from functools import partial
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import App
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.css.query import NoMatches

from trainer.store import DB_NAME, LIVE_STATES, StoreError, send_command
from workbench.app.screens.chat import ChatScreen
from workbench.app.screens.dialogs import (
    CheckpointScreen,
    CompareSetupScreen,
    ConfirmScreen,
    FlagScreen,
    NewRunScreen,
)
from workbench.app.screens.empty import EmptyScreen
from workbench.app.screens.live import LiveScreen
from workbench.app.screens.replay import ReplayScreen
from workbench.app.screens.runs import RunsScreen
from workbench.app.widgets.status_bar import status_line
from workbench.chat_client import ChatSettings
from workbench.curation_actions import (
    FlagRequest,
    apply_flag,
    compare_preselection,
    current_flags,
    rerun_choices,
)
from workbench.live_feed import FeedUpdate, LiveFeed
from workbench.runs import DEFAULT_RUNS_DIR, Children, NewRun, RunsError

POLL_S = 0.25
FULL_GC_EVERY = 100  # middle-generation collections between two full ones (Python's default: 10)
COMMAND_TIMEOUT_S = 3600.0

# (title, help, action): everything the palette offers; the same actions are bound to keys.
PALETTE: tuple[tuple[str, str, str], ...] = (
    ("Live", "Episodes as they arrive, curves, tool health", "app.show('live')"),
    ("Chat", "Talk to the run's policy against the MCP tools", "app.show('chat')"),
    ("Replay", "Every episode of the run, filtered and paged", "app.show('replay')"),
    ("Runs", "Every run in the runs folder", "app.show('runs')"),
    ("Start training the tiny model on the CPU", "A new run with the defaults, right away", "app.start_default"),
    ("New run…", "Choose model, preset, suites and device, then start", "app.new_run"),
    ("Pause or resume training", "The trainer pauses between steps", "app.pause_resume"),
    ("Checkpoint now", "Save the policy, value head and optimizer", "app.checkpoint"),
    ("Evaluate now", "Run the held-out evaluation", "app.evaluate"),
    ("Compare checkpoints…", "Play checkpoints on the same held-out tasks; list where they disagree", "app.compare"),
    ("Stop training", "Checkpoint and stop the trainer (asks first)", "app.stop"),
    ("Resume from the last checkpoint", "Start a trainer for a crashed or stopped run", "app.resume_run"),
    ("New conversation", "Chat: forget the conversation so far", "app.chat_new"),
    ("Toggle thinking", "Chat: let the model think before it answers", "app.chat_thinking"),
    ("Save screenshot", "Write an SVG of the screen into the current folder", "app.screenshot"),
    ("Quit", "Leave the workbench (a trainer keeps running)", "app.quit"),
)


class WorkbenchCommands(Provider):
    """Every workbench action in the command palette (ctrl+p), greyed out where it cannot run now."""

    def _commands(self) -> Iterable[tuple[str, str, str]]:
        app = self.app
        for title, help_text, action in PALETTE:
            name = action.removeprefix("app.").split("(", 1)[0]
            if app.check_action(name, ()) is False:
                continue
            yield title, help_text, action

    async def discover(self) -> Hits:
        for title, help_text, action in self._commands():
            yield DiscoveryHit(title, partial(self.app.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, action in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(self.app.run_action, action), help=help_text)


class WorkbenchApp(App):
    """qwen-workbench: watch, steer, chat with and replay PPO runs of Qwen3 tool callers."""

    CSS_PATH = Path(__file__).with_name("workbench.tcss")  # absolute: subclasses elsewhere still find it
    TITLE = "qwen-workbench"
    MODES = {
        "welcome": EmptyScreen,
        "live": LiveScreen,
        "chat": ChatScreen,
        "replay": ReplayScreen,
        "runs": RunsScreen,
    }
    BINDINGS = [
        Binding("1", "show('live')", "Live"),
        Binding("2", "show('chat')", "Chat"),
        Binding("3", "show('replay')", "Replay"),
        Binding("4", "show('runs')", "Runs"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]
    COMMANDS = App.COMMANDS | {WorkbenchCommands}

    def __init__(
        self,
        runs_dir: Path | str = DEFAULT_RUNS_DIR,
        run_dir: Path | str | None = None,
        *,
        poll_s: float = POLL_S,
        new_run_defaults: NewRun | None = None,
        chat_defaults: ChatSettings | None = None,
    ) -> None:
        super().__init__()
        self.runs_dir = Path(runs_dir)
        self._initial_run = Path(run_dir) if run_dir is not None else None
        self.poll_s = poll_s
        self.new_run_defaults = new_run_defaults or NewRun()
        self.chat_defaults = chat_defaults or ChatSettings()
        self.processes = Children()  # trainer and policy processes started here
        self.run_dir: Path | None = None
        self.feed: LiveFeed | None = None
        self.run_generation = 0
        self.state: str | None = None
        self.note: str | None = None
        self.last_update: FeedUpdate | None = None
        self.episode_lag: deque[float] = deque(maxlen=2000)
        self._polling = False
        self._pending: set[str] = set()

    # -- start-up and the run being shown

    def on_mount(self) -> None:
        if self._initial_run is not None:
            self.open_run(self._initial_run)
            self.switch_mode("live")
        elif self._has_runs():
            self.switch_mode("runs")
        else:
            self.switch_mode("welcome")
        self.set_interval(self.poll_s, self.poll)
        self.call_after_refresh(self._freeze_startup_objects)

    @staticmethod
    def _freeze_startup_objects() -> None:
        """Keep what start-up made (modules, classes, the first screen; alive as long as the app) out of
        the garbage collector's full passes: each one walked all of it and stalled the interface for
        80-110 ms. Objects frozen here are still freed when their last reference goes; only a reference
        cycle among them would never be collected (a one-time, bounded cost). Full passes also run a
        tenth as often (every 100 middle-generation passes, not 10; about every two minutes beside a
        trainer): fewer stalls under the user's keys, and cyclic garbage is still collected."""
        gc.freeze()
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, FULL_GC_EVERY)

    def _has_runs(self) -> bool:
        try:
            return any((p / DB_NAME).is_file() for p in self.runs_dir.iterdir() if p.is_dir())
        except OSError:
            return False

    def open_run(self, run_dir: Path | str) -> None:
        """Show this run from now on (every screen follows on its next update)."""
        run_dir = Path(run_dir)
        if self.feed is not None:
            self.feed.close()
        self.run_dir = run_dir
        self.feed = LiveFeed(run_dir)
        self.run_generation += 1
        self.state = None
        self.note = None
        self.last_update = None
        # after the next repaint: the screen shows up first, the run's rows a moment later
        self.call_after_refresh(self.poll)

    async def poll(self) -> None:
        """Read what is new from the store (in a worker thread) and hand it to the screen in view."""
        feed = self.feed
        if feed is None or self._polling:
            return
        self._polling = True
        try:
            update = await asyncio.to_thread(feed.poll)
        finally:
            self._polling = False
        if feed is not self.feed:  # another run was opened meanwhile
            return
        self.last_update = update
        state = update.info.effective_state if update.info is not None else None
        if state != self.state:
            self.state = state
            self.refresh_bindings()
            self.screen.refresh_bindings()
        screen = self.screen
        handler = getattr(screen, "feed_updated", None)
        if handler is not None and getattr(screen, "ready", False) and screen.is_attached:
            # NoMatches: the screen is being torn down (the app is closing)
            with self.batch_update(), suppress(NoMatches):
                handler(update)

    def note_episode_lag(self, created: Iterable[float]) -> None:
        """Record, after a repaint, how long new episodes took from their commit to the screen."""
        now = time.time()
        self.episode_lag.extend(now - c for c in created)

    def status_text(self) -> Text:
        feed = self.feed
        update = self.last_update
        return status_line(
            feed.info if feed is not None else None,
            feed.series.last if feed is not None else None,
            rss_mb=update.trainer_rss_mb if update is not None else None,
            note=self.note,
            waiting=self.waiting_text() if feed is not None and feed.info is None else None,
        )

    def waiting_text(self) -> str:
        """Why a run shows nothing yet: its trainer is starting, or failed to start, or it is unreadable."""
        if self.run_dir is None:
            return "no run open"
        child = self.processes.last(self.run_dir, "train")
        if child is not None and child.running:
            return f"starting the trainer for {self.run_dir.name} (loading PyTorch and the model)…"
        if child is not None and child.failure():
            return f"the trainer failed to start: {child.failure()} (log: {child.log_path})"
        update = self.last_update
        return update.waiting if update is not None and update.waiting else "waiting for the run store…"

    # -- navigation

    async def action_show(self, mode: str) -> None:
        await self.switch_mode(mode)

    def open_episode(self, episode_id: int) -> None:
        """Open one episode of the current run in Replay."""
        self.run_worker(self._open_episode(episode_id), group="open-episode")

    async def _open_episode(self, episode_id: int) -> None:
        from workbench.app.screens.episode import EpisodeScreen

        if self.run_dir is None:
            return
        await self.switch_mode("replay")
        await self.push_screen(EpisodeScreen(self.run_dir, episode_id))

    # -- forensics: flags, re-runs, comparisons

    def flag_episode(self, episode_id: int) -> None:
        """Ask how to flag an episode of the current run, then store the flag in the run."""
        self.run_worker(self._flag_episode(episode_id), group="flag")

    async def _flag_episode(self, episode_id: int) -> None:
        run_dir = self.run_dir
        if run_dir is None:
            return
        try:
            now = await asyncio.to_thread(current_flags, run_dir, episode_id)
        except StoreError as exc:
            self.notify(str(exc), title="Cannot flag", severity="error")
            return
        request = await self.push_screen_wait(FlagScreen(episode_id, now))
        if request is not None:
            await self.save_flag(run_dir, request)

    async def save_flag(self, run_dir: Path, request: FlagRequest) -> None:
        try:
            message = await asyncio.to_thread(apply_flag, run_dir, request)
        except (StoreError, ValueError) as exc:
            self.notify(str(exc), title="Cannot flag", severity="error")
            return
        self.notify(message, title="Flag saved")
        refresh = getattr(self.screen, "flags_changed", None)
        if refresh is not None:
            refresh()

    def rerun_episode(self, episode_id: int) -> None:
        """Pick a checkpoint, then show the stored episode and its re-run side by side."""
        self.run_worker(self._rerun_episode(episode_id), group="rerun")

    async def _rerun_episode(self, episode_id: int) -> None:
        from workbench.app.screens.forensics import DiffScreen
        from workbench.forensics_client import rerun_episode

        run_dir = self.run_dir
        if run_dir is None:
            return
        choices = await asyncio.to_thread(rerun_choices, run_dir, self.state in LIVE_STATES)
        spec = await self.push_screen_wait(CheckpointScreen(f"Re-run episode #{episode_id} with…", choices))
        if spec is None:
            return
        label = spec or "the weights that played it"
        await self.push_screen(DiffScreen(f"episode #{episode_id} re-run with {label}",
                                          partial(rerun_episode, run_dir, episode_id, spec or None)))

    async def action_compare(self) -> None:
        from trainer.curation import checkpoint_choices
        from workbench.app.screens.forensics import CompareScreen

        run_dir = self.run_dir
        if run_dir is None:
            self.notify("Open a run first (4: Runs)", severity="warning")
            return
        choices = await asyncio.to_thread(checkpoint_choices, run_dir)
        if len(choices) < 2:
            self.notify(f"{run_dir.name} has no checkpoint yet to compare with the base model", severity="warning")
            return

        async def chosen(answer: tuple[list[str], int | None] | None) -> None:
            if answer is not None:
                await self.push_screen(CompareScreen(run_dir, *answer))

        await self.push_screen(CompareSetupScreen(choices, compare_preselection(choices)), chosen)

    # -- starting runs

    def action_new_run(self) -> None:
        self.push_screen(NewRunScreen(self.new_run_defaults), self._new_run_chosen)

    async def _new_run_chosen(self, form: NewRun | None) -> None:
        if form is not None:
            await self.start_run(form)

    async def action_start_default(self) -> None:
        await self.start_run(self.new_run_defaults)

    async def start_run(self, form: NewRun) -> None:
        """Start a trainer for a new run folder and show it on Live."""
        try:
            child = await self.processes.start_new_run(self.runs_dir, form)
        except RunsError as exc:
            self.notify(str(exc), title="Cannot start", severity="error")
            return
        self.open_run(child.run_dir)
        await self.switch_mode("live")
        self.notify(f"Training {child.run_dir.name}: log in {child.log_path}", title="Trainer started")

    async def action_resume_run(self) -> None:
        if self.run_dir is None:
            return
        try:
            child = await self.processes.start_train(self.run_dir, resume=True)
        except RunsError as exc:
            self.notify(str(exc), title="Cannot resume", severity="error")
            return
        self.note = "resuming from the last checkpoint…"
        self.notify(f"Resuming {self.run_dir.name} from its last checkpoint (pid {child.pid})")
        self.call_later(self.poll)

    # -- steering the trainer

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        live = self.state in LIVE_STATES
        if action in ("pause_resume", "checkpoint", "evaluate", "stop"):
            return True if live else None
        if action == "resume_run":
            if self.run_dir is None or self.state not in ("crashed", "stopped"):
                return False
            return self.processes.get(self.run_dir, "train") is None
        return True

    def action_pause_resume(self) -> None:
        if self.state == "running":
            self.command("pause", "pausing after the current step…", "Paused")
        elif self.state == "paused":
            self.command("resume", "resuming…", "Resumed")

    def action_checkpoint(self) -> None:
        self.command("checkpoint", "checkpoint requested…", "Checkpoint saved")

    def action_evaluate(self) -> None:
        self.command("eval", "evaluation requested…", "Evaluation done")

    def action_stop(self) -> None:
        if self.state not in LIVE_STATES or self.run_dir is None:
            return
        name = self.run_dir.name

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.command("stop", "stopping (checkpoint first)…", "Stop accepted")

        self.push_screen(
            ConfirmScreen(f"Stop training {name}? The trainer saves a checkpoint, then exits.", "Stop"), confirmed
        )

    def command(self, kind: str, note: str, done: str) -> None:
        """Queue a command for the trainer and report its result when it is done."""
        if self.run_dir is None or self.state not in LIVE_STATES:
            self.notify("No trainer is running for this run", severity="warning")
            return
        if kind in self._pending:
            self.notify(f"Still waiting for the last {kind}", severity="warning")
            return
        self._pending.add(kind)
        self.note = note
        self._run_command(self.run_dir, kind, done)

    @work(group="commands")
    async def _run_command(self, run_dir: Path, kind: str, done: str) -> None:
        from trainer.store import RunReader

        try:
            command_id = await asyncio.to_thread(send_command, run_dir, kind, {})
            deadline = time.monotonic() + COMMAND_TIMEOUT_S
            reader = await asyncio.to_thread(RunReader, run_dir)
            try:
                while True:
                    command = await asyncio.to_thread(reader.command, command_id)
                    if command.finished or time.monotonic() > deadline:
                        break
                    if self.state not in LIVE_STATES and self.run_dir == run_dir and self.state is not None:
                        break
                    await asyncio.sleep(0.1)
            finally:
                reader.close()
        except StoreError as exc:
            self.notify(str(exc), title=f"{kind} failed", severity="error")
            return
        finally:
            self._pending.discard(kind)
            self.note = None
        if command.status == "done":
            self.notify(_describe_result(kind, command.result), title=done)
        elif command.status == "failed":
            error = command.result.get("error") if isinstance(command.result, dict) else command.result
            self.notify(str(error), title=f"{kind} failed", severity="error")
        else:
            self.notify(f"the trainer did not take the {kind} command (it is {self.state})", severity="warning")
        await self.poll()

    # -- chat shortcuts from the palette

    async def action_chat_new(self) -> None:
        await self.switch_mode("chat")
        await self.screen.run_action("new_conversation")

    async def action_chat_thinking(self) -> None:
        await self.switch_mode("chat")
        await self.screen.run_action("toggle_thinking")

    def action_screenshot(self) -> None:
        path = self.save_screenshot()
        self.notify(f"Saved {path}")

    # -- leaving

    async def action_quit(self) -> None:
        await self.processes.stop_serving()
        self.exit()

    def on_unmount(self) -> None:
        for child in self.processes.all():
            if child.kind == "serve":
                child.kill()
        if self.feed is not None:
            self.feed.close()


def _describe_result(kind: str, result: object) -> str:
    if not isinstance(result, dict):
        return str(result or kind)
    if kind == "checkpoint":
        return str(result.get("path", "saved"))
    if kind == "eval":
        rate = result.get("success_rate")
        return f"held-out success {rate * 100:.1f}%" if isinstance(rate, (int, float)) else "done"
    if "state" in result:
        return f"the trainer is {result['state']}"
    return "done"
