"""The Runs screen: every run in the runs folder; enter opens one, n starts a new one."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Static

from trainer.store import RunSummary
from workbench.app.screens.base import WorkbenchScreen
from workbench.app.widgets.status_bar import state_text
from workbench.formatting import percent, when
from workbench.runs import discover

REFRESH_S = 2.0


class RunsScreen(WorkbenchScreen):
    """A table of runs: name, model, state, iterations, episodes, best held-out success, created."""

    BINDINGS = [
        Binding("n", "app.new_run", "New run"),
        Binding("r", "refresh", "Refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._shown: list[RunSummary] = []

    def compose(self) -> ComposeResult:
        yield Static("", id="runs-title")
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Static("enter: open the run on Live · n: new run · r: refresh", id="runs-hint")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#runs", DataTable)
        for label, key in (("run", "run"), ("model", "model"), ("state", "state"), ("iterations", "iterations"),
                           ("episodes", "episodes"), ("best held-out", "best"), ("created", "created")):
            table.add_column(label, key=key)
        self.query_one("#runs-title", Static).update(
            Text.assemble(("Runs in ", "bold"), (f"{self.wb.runs_dir}/", "bold cyan"))
        )
        table.focus()
        self.action_refresh()
        self.set_interval(REFRESH_S, self.action_refresh)

    def on_screen_resume(self) -> None:
        self.action_refresh()

    @work(thread=True, exclusive=True, group="runs")
    def action_refresh(self) -> None:
        runs = discover(self.wb.runs_dir)
        self.app.call_from_thread(self._show, runs)

    def _show(self, runs: list[RunSummary]) -> None:
        if runs == self._shown:
            return
        self._shown = runs
        table = self.query_one("#runs", DataTable)
        cursor = table.cursor_row
        table.clear()
        if not runs:
            table.add_row(Text("no runs yet: n starts one", style="dim"), "", "", "", "", "", "")
        for run in runs:
            current = self.wb.run_dir is not None and run.path.resolve() == self.wb.run_dir.resolve()
            name = Text(("▶ " if current else "  ") + run.name, style="bold" if current else "")
            if not run.ok:
                table.add_row(name, Text(run.error or "", style="red"), "", "", "", "", "", key=str(run.path))
                continue
            table.add_row(
                name,
                run.model or "—",
                state_text(run.state),
                Text(str(run.iterations or 0), justify="right"),
                Text(f"{run.episodes or 0:,}", justify="right"),
                Text(percent(run.best_heldout_success), justify="right"),
                when(run.created_at),
                key=str(run.path),
            )
        if cursor < table.row_count:
            table.move_cursor(row=cursor)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value
        if key:
            self.wb.open_run(Path(key))
            self.wb.switch_mode("live")
