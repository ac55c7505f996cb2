"""The Live screen's turn table on its own: appends keep what was drawn, trimming happens in steps,
and what is painted is always the episodes it holds (no stale rows from its render caches)."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.geometry import Region
from wb_support import copy_run

from workbench.app.widgets.turn_table import TurnTable
from workbench.live_feed import LiveFeed


class TableApp(App):
    def compose(self) -> ComposeResult:
        yield TurnTable(max_episodes=5, id="turns")


def painted(table: TurnTable) -> str:
    lines = table.render_lines(Region(0, 0, table.size.width, table.size.height))
    return "\n".join("".join(segment.text for segment in line) for line in lines)


def label(view) -> str:
    return f"#{view.row.id} "


async def test_appends_paint_the_new_episodes_and_trimming_keeps_the_newest(tmp_path):
    feed = LiveFeed(copy_run(tmp_path), backlog=50)
    views = feed.poll().episodes
    feed.close()
    assert len(views) >= 8
    app = TableApp()
    async with app.run_test(size=(160, 200)) as pilot:
        table = app.query_one(TurnTable)
        counts = []
        for view in views[:8]:
            table.add_episodes([view])
            await pilot.pause()
            counts.append(table.episode_count)
            screen = painted(table)
            assert label(view) in screen, "the newest episode is painted"
            assert table.follow and table.cursor_row == table.row_count - 1
        # 5 kept, trimmed only once 6 (a fifth more) is exceeded, then back to 5
        assert counts == [1, 2, 3, 4, 5, 6, 5, 6]
        screen = painted(table)
        kept = views[8 - 6 : 8]
        gone = views[: 8 - 6]
        assert all(label(v) in screen for v in kept)
        assert not any(label(v) in screen for v in gone), "a trimmed episode is still painted"
        assert table.episode_id_at_cursor() == views[7].row.id


async def test_following_jumps_to_new_episodes_once_drawn_and_a_key_meanwhile_wins(tmp_path):
    feed = LiveFeed(copy_run(tmp_path), backlog=50)
    views = feed.poll().episodes
    feed.close()
    app = TableApp()
    async with app.run_test(size=(160, 30)) as pilot:
        table = app.query_one(TurnTable)
        table.add_episodes(views[:2])
        await pilot.pause()
        shown: list[int] = []
        table.add_episodes(views[2:5], shown=lambda: shown.append(table.cursor_row))
        assert table.follow and not shown  # nothing jumps before the new rows are drawn
        await pilot.pause()
        assert shown == [table.row_count - 1] and label(views[4]) in painted(table)

        table.add_episodes(views[5:7])
        await pilot.press("up")  # the user leaves the newest, maybe while the new rows are being drawn
        await pilot.pause()
        assert not table.follow and table.cursor_row < table.row_count - 1  # a pending jump did not undo it
