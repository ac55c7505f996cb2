"""The Live screen's table: one row per turn, grouped by episode, the four parts side by side.

Rows are pre-wrapped to their column widths (workbench.formatting), so each row's height is known
and DataTable only paints the rows in view. Only about the newest ``max_episodes`` episodes are kept.

Follow mode keeps the newest turn in view. Moving the cursor up or scrolling up with the mouse
turns it off; going back to the last row (``end``) or pressing ``f`` turns it on again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from contextlib import contextmanager

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable

from workbench.formatting import COLUMN_TITLES, episode_label, turn_cells
from workbench.live_feed import EpisodeView

EPISODE_WIDTH = 16
STATUS_WIDTH = 15
MAX_LINES = 6
MIN_TEXT_WIDTH = 12
CACHED_CELLS = 2000  # rendered cells kept: about 400 rows of five cells
CACHED_LINES = 300  # rendered lines and row renders kept: several screens


class TurnTable(DataTable):
    """Turns of the newest episodes; ``follow`` keeps the newest in view."""

    BINDINGS = [
        Binding("end", "follow_on", "Newest", show=False),
        Binding("f", "toggle_follow", "Follow"),
    ]

    follow: reactive[bool] = reactive(True, repaint=False)  # shown beside the table, not in it

    class FollowChanged(Message):
        def __init__(self, follow: bool) -> None:
            super().__init__()
            self.follow = follow

    def __init__(self, max_episodes: int = 150, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.max_episodes = max_episodes
        self._episodes: deque[tuple[int, list[str]]] = deque()
        self._views: deque[EpisodeView] = deque(maxlen=max_episodes)
        self._widths: tuple[int, int, int] | None = None
        self._moving = False
        self._size_render_caches()

    def _size_render_caches(self) -> None:
        """DataTable keeps up to 10,000 rendered cells and 1,000 rendered lines, sized for big tables.
        Every cached line is a dozen objects the garbage collector walks in each full pass (60-90 ms
        pauses with a trainer running); a few screens of this table's rows are all it reuses."""
        for name, size in (("_cell_render_cache", CACHED_CELLS), ("_row_render_cache", CACHED_LINES),
                           ("_line_cache", CACHED_LINES)):
            cache = getattr(self, name, None)
            if cache is not None and hasattr(cache, "maxsize"):
                cache.maxsize = size

    # -- layout

    def text_widths(self, total: int) -> tuple[int, int, int]:
        """Widths of the three text columns for a table ``total`` cells wide (cell padding included)."""
        usable = max(3 * MIN_TEXT_WIDTH, total - EPISODE_WIDTH - STATUS_WIDTH - 2 * 5 - 2)
        output = max(MIN_TEXT_WIDTH, usable * 36 // 100)
        call = max(MIN_TEXT_WIDTH, usable * 30 // 100)
        return output, call, max(MIN_TEXT_WIDTH, usable - output - call)

    def _ensure_columns(self) -> bool:
        """(Re)create the columns for the current width; True when they changed."""
        widths = self.text_widths(self.size.width or 120)
        if widths == self._widths and self.columns:
            return False
        self._widths = widths
        self.clear(columns=True)
        self._episodes.clear()
        self.add_column("episode", width=EPISODE_WIDTH, key="episode")
        for title, width in zip(COLUMN_TITLES[:3], widths, strict=True):
            self.add_column(title, width=width, key=title)
        self.add_column(COLUMN_TITLES[3], width=STATUS_WIDTH, key="status")
        return True

    def on_resize(self) -> None:
        if self._ensure_columns():
            self._add(list(self._views), remember=False, warm=False)

    # -- content

    def reset(self, views: Iterable[EpisodeView]) -> None:
        """Show exactly these episodes (after attaching, or when the run was rewound)."""
        self._views.clear()
        self._widths = None
        self._ensure_columns()
        self._add(list(views), remember=True, warm=False)

    def add_episodes(self, views: Iterable[EpisodeView], shown: Callable[[], None] | None = None) -> None:
        """Append new episodes (oldest first) and drop the oldest beyond ``max_episodes``.

        ``shown`` is called once the new episodes are on screen (or, when not following, in the table).
        """
        views = list(views)
        if not views:
            return
        self._ensure_columns()
        self._add(views, remember=True, shown=shown)

    def _add(self, views: list[EpisodeView], remember: bool, shown: Callable[[], None] | None = None,
             warm: bool = True) -> None:
        assert self._widths is not None
        with self._keeping_render_caches():
            added = self._append(views, remember)
        # Trim in steps, not one episode per update: a removal shifts every row, which re-renders
        # every visible cell, so it should happen every few dozen episodes, not on every poll.
        if len(self._episodes) > self.max_episodes + self.max_episodes // 5:
            while len(self._episodes) > self.max_episodes:
                _, keys = self._episodes.popleft()
                for key in keys:
                    self.remove_row(key)

        def after_refresh() -> None:
            if shown is not None:
                self.call_after_refresh(shown)

        if not self.follow:
            after_refresh()
            self._warm(added)
        elif warm:
            # Draw the rows that will fill the view one at a time between other messages, then jump:
            # the jump paints from the cache, and a key pressed meanwhile waits for one row, not a screen.
            self._moving = True  # the cursor is not on the newest row until the jump: still following
            self._warm(added, last_view_only=True, then=lambda: (self._to_newest(), after_refresh()))
        else:
            self._to_newest()
            after_refresh()

    def _warm(self, keys: list[str], *, last_view_only: bool = False, then: Callable[[], None] | None = None) -> None:
        """Render the cells of rows appended out of view a row at a time between other messages, then
        call ``then`` (not if follow mode changed meanwhile, which has already moved the view).

        While the user looks elsewhere this makes ``f`` (back to the newest) paint from the cache; while
        following, only the rows of the last view are drawn ahead of the jump to them. Best effort: it
        leans on DataTable's line renderer and only calls ``then`` where that is not there."""
        render = getattr(self, "_render_line", None)
        lines = self._first_lines(keys, last_view_only) if render is not None else []
        following = self.follow

        def warm_one(remaining: list[int]) -> None:
            if self.follow != following:
                self._moving = False
                return
            if not remaining:
                if then is not None:
                    then()
                return
            scroll_x = self.scroll_offset.x
            render(remaining[0], scroll_x, scroll_x + self.size.width, self.rich_style)
            self.call_later(warm_one, remaining[1:])

        self.call_later(warm_one, lines)

    def _first_lines(self, keys: list[str], last_view_only: bool) -> list[int]:
        """For each row in ``keys``, its first line (in DataTable's line numbering), or with
        ``last_view_only`` its first line in the view scrolled to the end (rows above it are skipped).
        Drawing any line of a row draws and caches all of its cells."""
        wanted = set(keys)
        offsets = self._y_offsets
        start = max(0, len(offsets) - self.scrollable_content_region.height) if last_view_only else 0
        header = self.header_height if self.show_header else 0
        lines: dict[str, int] = {}
        for line in range(start, len(offsets)):
            row_key = offsets[line][0].value
            if row_key in wanted and row_key not in lines:
                lines[row_key] = line + header
        return list(lines.values())

    @contextmanager
    def _keeping_render_caches(self):
        """Append rows without throwing away the rendered cells of the rows already there.

        DataTable keys its render caches on a counter that every ``add_row`` bumps, so each batch of
        new episodes re-rendered every visible cell (tens of milliseconds for a screen of turns, the
        tail of key-press latency beside a trainer). Rows appended below the others change no cell or
        line above them, so the counter is put back; only the row-offset table, which does change, is
        rebuilt. Removals and column changes still bump it as DataTable intends.
        """
        count = getattr(self, "_update_count", None)
        offsets = getattr(self, "_offset_cache", None)
        yield
        if isinstance(count, int) and offsets is not None and hasattr(offsets, "clear"):
            self._update_count = count
            offsets.clear()

    def _append(self, views: list[EpisodeView], remember: bool) -> list[str]:
        """Add the turns of ``views`` as rows; returns the keys of the rows added."""
        added: list[str] = []
        for view in views:
            if remember:
                self._views.append(view)
            keys: list[str] = []
            turns = view.turns or [{"status": view.row.final_status, "raw_text": "", "reward": None}]
            for index, turn in enumerate(turns):
                cells = turn_cells(turn, self._widths, MAX_LINES)
                label = episode_label(view.row, index, len(turns))
                height = max(cells.height, len(label.plain.splitlines()))
                key = f"{view.row.id}:{index}"
                if key in self.rows:
                    continue
                self.add_row(label, *cells.as_tuple(), height=height, key=key)
                keys.append(key)
            self._episodes.append((view.row.id, keys))
            added.extend(keys)
        return added

    def _to_newest(self) -> None:
        if not self.row_count:
            self._moving = False
            return
        self._moving = True
        self.move_cursor(row=self.row_count - 1, animate=False, scroll=True)
        self.scroll_end(animate=False, immediate=False)
        self.call_after_refresh(self._moved)

    def _moved(self) -> None:
        self._moving = False

    @property
    def episode_count(self) -> int:
        return len(self._episodes)

    def episode_id_at_cursor(self) -> int | None:
        """The episode of the highlighted turn (to open it in Replay)."""
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key((self.cursor_row, 0)).row_key.value or ""
        head = key.split(":", 1)[0]
        return int(head) if head.isdigit() else None

    # -- follow mode

    def watch_follow(self, follow: bool) -> None:
        self.post_message(self.FollowChanged(follow))
        if follow:
            self._to_newest()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if not self._moving and self.row_count:
            self.follow = event.cursor_row >= self.row_count - 1

    def on_mouse_scroll_up(self) -> None:
        self.follow = False

    # Moving up is the user leaving the newest: say so before the move, so that a jump to the newest
    # still pending for episodes that just arrived does not undo it.
    def action_cursor_up(self) -> None:
        self.follow = False
        super().action_cursor_up()

    def action_page_up(self) -> None:
        self.follow = False
        super().action_page_up()

    def action_follow_on(self) -> None:
        self.follow = True

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow


def placeholder(text: str) -> Text:
    return Text(text, style="dim")
