"""The Replay screen: every episode of the run, filtered and paged; enter opens one."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Select, Static
from textual.worker import get_current_worker

from trainer.store import FLAG_KINDS, PHASES, STATUSES, RunReader, StoreError
from workbench.app.screens.base import WorkbenchScreen
from workbench.formatting import clean, signed, status_style
from workbench.replay_query import ORDERS, Page, QueryError, ReplayQuery, fetch_page

DEBOUNCE_S = 0.25
INSTRUCTION_WIDTH = 72  # fixed widths: DataTable then never measures every cell of a page
_TEXT_FILTERS = {
    "f-iteration": "iteration",
    "f-suite": "suite",
    "f-min": "min_reward",
    "f-max": "max_reward",
    "f-search": "search",
}


class ReplayScreen(WorkbenchScreen):
    """Filters on top, one page of episodes, the pager below."""

    BINDINGS = [
        Binding("slash", "focus_search", "Search"),
        Binding("right_square_bracket", "page(1)", "Next page"),
        Binding("left_square_bracket", "page(-1)", "Prev page"),
        Binding("o", "cycle_order", "Order"),
        Binding("f", "flag", "Flag"),
        Binding("x", "rerun", "Re-run"),
        Binding("escape", "focus_table", "Table", show=False),
        Binding("r", "reload", "Reload", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.query_state = ReplayQuery()
        self.page_no = 0
        self.page: Page | None = None
        self.shown_query: ReplayQuery | None = None
        self._debounce: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="replay-title")
        with Horizontal(id="replay-filters"):
            yield Input(placeholder="iteration 3-7", id="f-iteration", classes="f-narrow")
            yield Select([(p, p) for p in PHASES], prompt="phase", id="f-phase", classes="f-select")
            yield Select(
                [(s, s) for s in STATUSES] + [(f"any turn {s}", f"any:{s}") for s in STATUSES],
                prompt="last status",
                id="f-status",
                classes="f-select",
            )
            yield Select([(f"flag {k}", k) for k in FLAG_KINDS] + [("any flag", "any")], prompt="flag",
                         id="f-flag", classes="f-select")
            yield Input(placeholder="suite", id="f-suite", classes="f-narrow")
            yield Input(placeholder="reward ≥", id="f-min", classes="f-narrow")
            yield Input(placeholder="reward ≤", id="f-max", classes="f-narrow")
            yield Input(placeholder="/ search text", id="f-search")
        yield DataTable(id="episodes", cursor_type="row", zebra_stripes=True)
        yield Static("", id="pager")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#episodes", DataTable)
        # One pre-formatted cell per row: a page repaints ~45 cells instead of ~400 (DataTable renders
        # each cell through Rich, which is most of the cost of a page change).
        table.add_column(Text(episode_line_header(), style="bold"), key="episode")
        table.focus()
        self.sync()

    def on_screen_resume(self) -> None:
        if self.stale:
            self.sync()

    def sync(self) -> None:
        self._generation = self.wb.run_generation
        self.page_no = 0
        run = self.wb.run_dir
        self.query_one("#replay-title", Static).update(
            Text.assemble(("Replay ", "bold"), (run.name if run else "no run open", "bold cyan"))
        )
        self.load()

    # -- loading

    def load(self) -> None:
        self._load(self.query_state, self.page_no)

    @work(thread=True, exclusive=True, group="replay-load")
    def _load(self, query: ReplayQuery, page_no: int) -> None:
        run = self.wb.run_dir
        if run is None:
            self.app.call_from_thread(self._show_error, "No run open: pick one on the Runs screen (4).")
            return
        try:
            with RunReader(run) as reader:
                page = fetch_page(reader, query, page_no)
        except (QueryError, StoreError) as exc:
            self.app.call_from_thread(self._show_error, str(exc))
            return
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show_page, page, query)

    def _show_error(self, message: str) -> None:
        self.query_one("#pager", Static).update(Text(message, style="red"))

    def _show_page(self, page: Page, query: ReplayQuery | None = None) -> None:
        self.page, self.page_no = page, page.page
        self.shown_query = query  # what the rows on screen answer (benches and tests wait on it)
        table = self.query_one("#episodes", DataTable)
        table.clear()
        for row in page.rows:
            table.add_row(episode_line(row, page.flags.get(row.id, ())), key=str(row.id))
        pager = Text(page.describe(), style="bold")
        pager.append(f" · {self.query_state.describe()} · {self.query_state.order} first", style="dim")
        pager.append("   [ ] pages · o order · / search · enter opens · f flag · x re-run", style="dim")
        self.query_one("#pager", Static).update(pager)

    # -- filters

    def on_input_changed(self, event: Input.Changed) -> None:
        field = _TEXT_FILTERS.get(event.input.id or "")
        if field is None:
            return
        self.query_state = self.query_state.with_(**{field: event.value})
        self._schedule()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id in _TEXT_FILTERS:
            self.query_one("#episodes", DataTable).focus()

    def on_select_changed(self, event: Select.Changed) -> None:
        value = "" if event.value is Select.NULL else str(event.value)
        if event.select.id == "f-phase":
            self.query_state = self.query_state.with_(phase=value)
        elif event.select.id == "f-status":
            self.query_state = self.query_state.with_(status=value)
        elif event.select.id == "f-flag":
            self.query_state = self.query_state.with_(flagged=value)
        else:
            return
        self._schedule()

    def _schedule(self) -> None:
        """Reload shortly after the last keystroke, so typing a word runs one query, not five."""
        if self._debounce is not None:
            self._debounce.stop()
        self.page_no = 0
        self._debounce = self.set_timer(DEBOUNCE_S, self.load)

    # -- actions

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "episodes" and event.row_key.value:
            self.wb.open_episode(int(event.row_key.value))

    def action_page(self, step: int) -> None:
        if self.page is None:
            return
        target = min(max(0, self.page_no + step), self.page.pages - 1)
        if target != self.page_no:
            self.page_no = target
            self.load()

    def action_cycle_order(self) -> None:
        order = ORDERS[(ORDERS.index(self.query_state.order) + 1) % len(ORDERS)]
        self.query_state = self.query_state.with_(order=order)
        self.page_no = 0
        self.load()

    def _episode_at_cursor(self) -> int | None:
        table = self.query_one("#episodes", DataTable)
        if self.page is None or not self.page.rows or table.cursor_row < 0:
            return None
        row_key, _ = table.coordinate_to_cell_key((table.cursor_row, 0))
        return int(row_key.value) if row_key.value else None

    def action_flag(self) -> None:
        episode = self._episode_at_cursor()
        if episode is not None:
            self.wb.flag_episode(episode)

    def action_rerun(self) -> None:
        episode = self._episode_at_cursor()
        if episode is not None:
            self.wb.rerun_episode(episode)

    def flags_changed(self) -> None:
        """A flag was written: show it (the page keeps its place)."""
        self.load()

    def action_focus_search(self) -> None:
        self.query_one("#f-search", Input).focus()

    def action_focus_table(self) -> None:
        self.query_one("#episodes", DataTable).focus()

    def action_reload(self) -> None:
        self.load()


_FIELDS = (("flag", 4, "<"), ("id", 7, ">"), ("iter", 5, ">"), ("phase", 7, "<"), ("suite", 9, "<"), ("outcome", 10, "<"),
           ("last status", 16, "<"), ("reward", 7, ">"), ("turns", 5, ">"))


def episode_line_header() -> str:
    """The column titles, laid out like :func:`episode_line`."""
    return " ".join(f"{name:{align}{width}}" for name, width, align in _FIELDS) + "  instruction"


FLAG_MARKS = {"good": ("+", "bold green"), "bad": ("-", "bold red"), "bug": ("!", "bold yellow")}


def episode_line(row, flags=()) -> Text:
    """One episode as one line of fixed-width fields, coloured by outcome and status; flags first."""
    text = Text(no_wrap=True, overflow="ellipsis")
    for kind in FLAG_KINDS:
        mark, style = FLAG_MARKS[kind]
        text.append(mark if kind in flags else " ", style=style)
    text.append(" ")
    text.append(f"{row.id:>7} {row.iteration:>5} {row.phase:<7} {row.suite[:9]:<9} ")
    text.append(f"{row.outcome[:10]:<10} ", style="bold green" if row.success else "")
    text.append(f"{(row.final_status or '—')[:16]:<16} ", style=status_style(row.final_status))
    text.append(f"{signed(row.total_reward):>7} {row.n_turns:>5}  ")
    text.append(clean(row.instruction)[:INSTRUCTION_WIDTH])
    return text
