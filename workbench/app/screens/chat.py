"""The Chat screen: talk to the run's policy against the same MCP tools it trains on.

A running trainer is paused for the answer and resumes by itself; a paused one answers and stays
paused; with no trainer, a policy process serves the chosen checkpoint (workbench.chat_client).
Each assistant turn shows its four parts. Replies arrive whole (the trainer does not stream tokens).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Input, Label, Select, SelectionList, Static, Switch

from workbench.app.screens.base import WorkbenchScreen
from workbench.app.widgets.status_bar import StatusBar
from workbench.app.widgets.turn_view import TurnView
from workbench.chat_client import ChatError, ChatSession, ChatSettings
from workbench.formatting import clean
from workbench.live_feed import FeedUpdate

MAX_ITEMS = 200  # conversation widgets kept on screen
STREAM_CHARS = 600  # the tail of a reply being written that the progress line shows
BUNDLED = ("math", "search", "database", "data")


class ChatScreen(WorkbenchScreen):
    """Conversation on the left, servers / thinking / checkpoint on the right, the prompt below."""

    BINDINGS = [
        Binding("ctrl+n", "new_conversation", "New chat"),
        Binding("ctrl+t", "toggle_thinking", "Thinking"),
        Binding("escape", "leave_prompt", "Leave prompt"),
        Binding("i", "focus_prompt", "Type", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.session: ChatSession | None = None
        self.busy = False
        self._shown_checkpoints: tuple = ()

    def compose(self) -> ComposeResult:
        yield StatusBar(id="chat-status")
        with Horizontal(id="chat-body"):
            yield VerticalScroll(id="conversation")
            with Vertical(id="chat-side"):
                yield Label("servers")
                yield SelectionList[str](*[(name, name, True) for name in BUNDLED], id="chat-servers")
                with Horizontal(id="thinking-row"):
                    yield Label("thinking ")
                    yield Switch(value=False, id="chat-thinking")
                yield Label("checkpoint (no trainer)")
                yield Select([], prompt="best", allow_blank=True, id="chat-checkpoint")
                yield Static("", id="chat-backend")
        yield Input(placeholder="Message the policy (enter sends · esc leaves the prompt)", id="chat-input")
        yield Footer()

    def on_mount(self) -> None:
        self.sync()
        self.query_one("#chat-input", Input).focus()

    def on_screen_resume(self) -> None:
        if self.stale:
            self.sync()

    def sync(self) -> None:
        """Point the chat at the app's current run (a new conversation)."""
        self._generation = self.wb.run_generation
        run_dir = self.wb.run_dir
        if self.session is not None and (run_dir is None or self.session.run_dir != run_dir):
            self.run_worker(self.session.close(), group="chat-close")
            self.session = None
        if run_dir is not None and self.session is None:
            self.session = ChatSession(run_dir, self.wb.processes)
        self.query_one("#conversation", VerticalScroll).remove_children()
        self._checkpoints()
        self.refresh_status()
        if run_dir is None:
            self._note("No run open: pick one on the Runs screen (4) or start one (s on Live).")

    @staticmethod
    def _checkpoint_key(checkpoints) -> tuple:
        return tuple((c.id, c.kept, c.is_best) for c in checkpoints)

    def _checkpoints(self) -> None:
        feed = self.wb.feed
        checkpoints = feed.checkpoints if feed is not None else []
        self._shown_checkpoints = self._checkpoint_key(checkpoints)
        options = []
        for checkpoint in checkpoints:
            if checkpoint.kept:
                label = f"iter {checkpoint.iteration}" + (" (best)" if checkpoint.is_best else "")
                options.append((label, Path(checkpoint.path).name))
        select = self.query_one("#chat-checkpoint", Select)
        select.set_options(options)

    def feed_updated(self, update: FeedUpdate) -> None:
        if self.stale:
            self.sync()
            return
        if update.checkpoints is not None and self._checkpoint_key(update.checkpoints) != self._shown_checkpoints:
            self._checkpoints()
        self.refresh_status()

    def refresh_status(self) -> None:
        self.query_one("#chat-status", StatusBar).show(self.wb.status_text())
        state = self.wb.state
        backend = self.query_one("#chat-backend", Static)
        if self.wb.run_dir is None:
            backend.update("")
        elif self.wb.processes.get(self.wb.run_dir, "serve") is not None:
            backend.update(Text("answering: a policy process serving the checkpoint", style="cyan"))
        elif state == "running":
            backend.update(Text("answering: the live policy (the trainer pauses, answers, resumes)", style="green"))
        elif state == "paused":
            backend.update(Text("answering: the live policy of the paused trainer", style="yellow"))
        else:
            backend.update(Text("answering: a checkpoint, loaded on the first message", style="cyan"))

    # -- sending

    def settings(self) -> ChatSettings:
        servers = list(self.query_one("#chat-servers", SelectionList).selected)
        return replace(
            self.wb.chat_defaults, servers=servers or None, thinking=self.query_one("#chat-thinking", Switch).value
        )

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "chat-input":
            return
        text = event.value.strip()
        if not text:
            return
        if self.session is None:
            self._note("No run open: pick one on the Runs screen (4) first.")
            return
        if self.busy:
            self.notify("Still waiting for the last answer", severity="warning")
            return
        event.input.value = ""
        await self._append(Static(Text(f"you: {text}", style="bold"), classes="chat-user"))
        self.send(text)

    @work(exclusive=True, group="chat-send")
    async def send(self, text: str) -> None:
        assert self.session is not None
        self.busy = True
        status = Static(Text("…", style="dim italic"), classes="chat-progress")
        await self._append(status)

        def progress(message: str) -> None:
            status.update(Text(message, style="dim italic"))

        def stream(turn: int, written: str) -> None:
            line = Text(f"turn {turn + 1}, writing: ", style="dim italic")
            line.append(clean(written)[-STREAM_CHARS:] or "…", style="italic")
            status.update(line)

        select = self.query_one("#chat-checkpoint", Select)
        checkpoint = None if select.value is Select.NULL else self._checkpoint_path(str(select.value))
        try:
            await self.session.switch_checkpoint(checkpoint)
            reply = await self.session.send(text, self.settings(), progress, stream)
        except (TimeoutError, ChatError) as exc:
            status.update(Text(f"no answer: {exc}", style="red"))
            return
        finally:
            self.busy = False
            if self.is_attached:
                self.refresh_status()
        who = "live policy" if reply.backend == "trainer" else "checkpoint"
        status.update(Text(f"{who} answered in {reply.elapsed_s:.1f} s · {len(reply.turns)} turn(s)", style="dim"))
        for turn in reply.turns:
            await self._append(TurnView(turn, max_lines=12, classes="chat-turn"))

    def _checkpoint_path(self, name: str) -> str | None:
        run_dir = self.wb.run_dir
        return str(run_dir / "checkpoints" / name) if run_dir is not None else None

    async def _append(self, widget) -> None:
        conversation = self.query_one("#conversation", VerticalScroll)
        await conversation.mount(widget)
        extra = len(conversation.children) - MAX_ITEMS
        if extra > 0:
            await conversation.remove_children(list(conversation.children)[:extra])
        conversation.scroll_end(animate=False)

    def _note(self, message: str) -> None:
        self.query_one("#conversation", VerticalScroll).mount(Static(Text(message, style="dim")))

    # -- actions

    def action_new_conversation(self) -> None:
        if self.session is not None:
            self.session.reset()
        self.query_one("#conversation", VerticalScroll).remove_children()
        self.notify("New conversation")

    def action_toggle_thinking(self) -> None:
        switch = self.query_one("#chat-thinking", Switch)
        switch.value = not switch.value

    def action_leave_prompt(self) -> None:
        self.query_one("#conversation", VerticalScroll).focus()

    def action_focus_prompt(self) -> None:
        self.query_one("#chat-input", Input).focus()
