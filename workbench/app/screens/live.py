"""The Live screen: episodes as they arrive, curves beside them, and the keys that steer the trainer."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Static

from trainer.store import STATUSES
from workbench.app.screens.base import WorkbenchScreen
from workbench.app.widgets.charts import LineChart, SharesChart
from workbench.app.widgets.status_bar import StatusBar
from workbench.app.widgets.tool_health import ToolHealthTable
from workbench.app.widgets.turn_table import TurnTable
from workbench.charts import Series
from workbench.live_feed import FeedUpdate

FOLLOW_TEXT = {True: "following newest (f)", False: "follow off (f / end: newest)"}


class LiveScreen(WorkbenchScreen):
    """Turn table on the left; return/success, status shares, KL/entropy and tool health on the right."""

    _shown_message: str | None = ""

    BINDINGS = [
        Binding("s", "app.new_run", "Start"),
        Binding("p", "app.pause_resume", "Pause/Resume"),
        Binding("k", "app.checkpoint", "Checkpoint"),
        Binding("e", "app.evaluate", "Evaluate"),
        Binding("x", "app.stop", "Stop"),
        Binding("R", "app.resume_run", "Resume from checkpoint"),
        Binding("F", "flag", "Flag"),
    ]

    def compose(self) -> ComposeResult:
        yield StatusBar(id="live-status")
        with Horizontal(id="live-body"):
            with Vertical(id="live-turns"):
                yield TurnTable(id="turns")
                # Follow mode is shown beside the table, not in its border: a border change repaints
                # every visible row, a one-line label repaints one line.
                yield Static(FOLLOW_TEXT[True], id="follow-state")
            with VerticalScroll(id="live-side"):
                yield LineChart("mean return", id="chart-return")
                yield LineChart("success rate", y_range=(0.0, 1.0), id="chart-success")
                yield SharesChart("turn statuses", STATUSES, id="chart-shares")
                yield LineChart("KL · entropy", id="chart-kl")
                tools = ToolHealthTable(id="tool-health")
                tools.border_title = "tool health"
                yield tools
        yield Static("", id="live-message")
        yield Footer()

    def on_mount(self) -> None:
        self.sync()

    def on_screen_resume(self) -> None:
        self.sync()

    def sync(self) -> None:
        """Show the app's current run from the feed's buffered state (after attaching or returning)."""
        self._generation = self.wb.run_generation
        feed = self.wb.feed
        table = self.query_one(TurnTable)
        table.reset(feed.episodes if feed is not None else [])
        self._charts()
        self._side(feed.tool_health if feed is not None else [])
        self.refresh_status()

    def feed_updated(self, update: FeedUpdate) -> None:
        """Apply one poll's changes in one go."""
        if self.stale or update.reset:
            self.sync()
            self._record_lag(update)
            return
        if update.episodes:
            self.query_one(TurnTable).add_episodes(update.episodes, shown=lambda: self._note_lag(update))
        if update.iterations or update.evals is not None:
            self._charts()  # evals come only when they changed
        if update.tool_health is not None:
            self._side(update.tool_health)
        self.refresh_status()

    def _record_lag(self, update: FeedUpdate) -> None:
        """After the repaint, note how long each new episode took from its commit to the screen."""
        if update.episodes:
            self.call_after_refresh(self._note_lag, update)

    def _note_lag(self, update: FeedUpdate) -> None:
        self.wb.note_episode_lag([view.row.created_at for view in update.episodes])

    def refresh_status(self) -> None:
        self.query_one("#live-status", StatusBar).show(self.wb.status_text())
        feed = self.wb.feed
        if feed is None:
            self._message("No run open. s: start a new run · 4: pick a run · ctrl+p: every command")
        elif feed.info is None:
            self._message(self.wb.waiting_text())
        else:
            self._message(None)

    def _message(self, text: str | None) -> None:
        """The line under the table; touched only when it changes (an update lays the screen out)."""
        if text == self._shown_message:
            return
        self._shown_message = text
        message = self.query_one("#live-message", Static)
        message.update(text or "")
        message.display = text is not None

    def _charts(self) -> None:
        feed = self.wb.feed
        rows = feed.series.items() if feed is not None else []
        self.query_one("#chart-return", LineChart).set_series(
            [Series([r.get("mean_return") for r in rows], "bold cyan", "train")]
        )
        success = self.query_one("#chart-success", LineChart)
        success.set_series([Series([r.get("success_rate") for r in rows], "bold green", "train")])
        evals = feed.evals if feed is not None else []
        last_eval = evals[-1] if evals else None
        success.border_subtitle = (
            f"held-out {last_eval.success_rate * 100:.0f}% @ it {last_eval.iteration}"
            if last_eval is not None and last_eval.success_rate is not None
            else ""
        )
        shares = [{s: r.get(f"share_{s}") for s in STATUSES} for r in rows]
        self.query_one("#chart-shares", SharesChart).set_rows(shares)
        self.query_one("#chart-kl", LineChart).set_series(
            [
                Series([r.get("kl") for r in rows], "bold magenta", "kl"),
                Series([r.get("entropy") for r in rows], "bold yellow", "entropy"),
            ]
        )

    def _side(self, health) -> None:
        self.query_one(ToolHealthTable).show(health)

    def on_data_table_row_selected(self, event) -> None:
        if event.data_table.id == "turns":
            self.action_open_episode()

    def action_open_episode(self) -> None:
        episode = self.query_one(TurnTable).episode_id_at_cursor()
        if episode is not None:
            self.wb.open_episode(episode)

    def action_flag(self) -> None:
        episode = self.query_one(TurnTable).episode_id_at_cursor()
        if episode is None:
            self.notify("No episode under the cursor to flag", severity="warning")
            return
        self.wb.flag_episode(episode)

    def on_turn_table_follow_changed(self, event: TurnTable.FollowChanged) -> None:
        self.query_one("#follow-state", Static).update(FOLLOW_TEXT[event.follow])
