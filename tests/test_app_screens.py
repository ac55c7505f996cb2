"""Pilot tests of every screen and key of the workbench, on a copy of a recorded tiny-model run."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Input, Select, Switch
from wb_support import SIZE, copy_run, settle, small_run_fixture, texts, wait_until  # noqa: F401 - fixture

from trainer.store import RunReader
from workbench.app import WorkbenchApp
from workbench.app.screens.chat import BUNDLED
from workbench.app.screens.dialogs import ConfirmScreen, NewRunScreen
from workbench.app.screens.empty import EmptyScreen
from workbench.app.screens.episode import EpisodeScreen
from workbench.app.screens.live import LiveScreen
from workbench.app.screens.replay import ReplayScreen
from workbench.app.screens.runs import RunsScreen
from workbench.app.widgets.turn_table import TurnTable


async def test_empty_runs_folder_lands_on_one_obvious_action(tmp_path):
    app = WorkbenchApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, EmptyScreen)
        assert app.focused is not None and app.focused.id == "welcome-start"
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, NewRunScreen)
        app.screen.query_one("#nr-extra", Input).value = "ppo.clip=1"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "did you mean" in texts(app, "#new-run-error")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, EmptyScreen) and not (tmp_path / "runs").exists()


async def test_runs_screen_lists_runs_and_opens_one(small_run: Path):
    app = WorkbenchApp(runs_dir=Path("runs"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen)
        table = app.screen.query_one("#runs", DataTable)
        await wait_until(pilot, lambda: table.row_count == 1 and table.get_row_at(0)[1] != "", 5, "the runs list")
        row = table.get_row_at(0)
        assert "small" in str(row[0]) and "finished" in str(row[2]) and str(row[3]) == "3"
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, LiveScreen) and app.run_dir == Path("runs/small")


async def test_live_screen_shows_turns_charts_and_status(small_run: Path):
    app = WorkbenchApp(run_dir=small_run)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(TurnTable)
        await wait_until(pilot, lambda: table.row_count > 0, 5, "turn rows")
        with RunReader(small_run) as reader:
            newest = reader.episodes(limit=1)[0]
            expected_turns = sum(row.n_turns for row in reader.episodes(limit=table.episode_count))
        assert table.row_count == expected_turns
        assert table.follow and table.cursor_row == table.row_count - 1
        assert table.episode_id_at_cursor() == newest.id
        status = texts(app, "#live-status")
        assert "finished" in status and "small" in status and "iter 3/3" in status and "cpu" in status
        assert app.state == "finished"
        # steering keys are disabled without a live trainer; resume-from-checkpoint is hidden
        assert app.check_action("pause_resume", ()) is None and app.check_action("stop", ()) is None
        assert app.check_action("resume_run", ()) is False
        await pilot.press("p", "k", "e", "x")
        await pilot.pause()
        assert isinstance(app.screen, LiveScreen), "no confirmation for a run that is not training"
        # follow mode: moving up turns it off, f turns it back on
        await pilot.press("up")
        await pilot.pause()
        assert not table.follow
        await pilot.press("f")
        await pilot.pause()
        assert table.follow and table.cursor_row == table.row_count - 1
        # enter opens the highlighted episode in Replay
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, EpisodeScreen), 5, "the episode screen")
        assert app.screen.episode_id == newest.id


async def test_replay_filters_pages_and_orders(small_run: Path):
    app = WorkbenchApp(run_dir=small_run)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ReplayScreen)
        table = screen.query_one("#episodes", DataTable)
        with RunReader(small_run) as reader:
            total = reader.count_episodes()
            evals = reader.count_episodes(phase="eval")
        await wait_until(pilot, lambda: table.row_count == total, 5, "the first page")
        assert f"{total} episodes" in texts(app, "#pager")
        screen.query_one("#f-phase", Select).value = "eval"
        await wait_until(pilot, lambda: table.row_count == evals, 5, "the eval filter")
        await pilot.press("slash")
        assert app.focused is screen.query_one("#f-search", Input)
        await pilot.press(*"zzz-no-such-text")
        await wait_until(pilot, lambda: table.row_count == 0, 5, "an empty search")
        screen.query_one("#f-search", Input).value = ""
        screen.query_one("#f-iteration", Input).value = "abc"
        await wait_until(pilot, lambda: "iteration takes" in texts(app, "#pager"), 5, "the error line")
        screen.query_one("#f-iteration", Input).value = ""
        screen.query_one("#f-phase", Select).clear()
        await pilot.press("escape")
        await wait_until(pilot, lambda: table.row_count == total, 5, "all episodes again")
        first = table.get_row_at(0)[0].plain
        await pilot.press("o")  # oldest first
        await wait_until(pilot, lambda: table.get_row_at(0)[0].plain != first, 5, "the order to change")
        assert table.get_row_at(0)[0].plain.split()[:2] == ["1", "0"], "episode 1 of iteration 0"
        await pilot.press("right_square_bracket")  # one page only: stays
        await pilot.pause()
        assert screen.page_no == 0


async def test_replay_pages_through_many_episodes(tmp_path):
    from test_app_logic import record

    from trainer.config import PRESETS
    from trainer.store import RunStore

    with RunStore.create(tmp_path / "big", "big", PRESETS["tiny-cpu"], "tiny") as store:
        for it in range(5):
            store.add_episodes([record(it * 60 + i, "success" if i % 3 == 0 else "tool_error") for i in range(60)], it)
    app = WorkbenchApp(run_dir=tmp_path / "big")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        screen = app.screen
        await wait_until(pilot, lambda: screen.page is not None, 5, "the first page")
        assert screen.page.pages == 3 and "page 1/3 · 300 episodes" in texts(app, "#pager")
        await pilot.press("right_square_bracket", "right_square_bracket", "right_square_bracket")
        await wait_until(pilot, lambda: screen.page.page == 2, 5, "the last page")
        assert screen.query_one("#episodes", DataTable).row_count == 100
        await pilot.press("left_square_bracket")
        await wait_until(pilot, lambda: screen.page.page == 1, 5, "the middle page")


async def test_episode_screen_steps_turns_and_tokens(small_run: Path):
    with RunReader(small_run) as reader:
        episode = next(row for row in reader.episodes(limit=50, phase="train") if row.n_turns > 1)
        tokens = reader.turn_tokens(episode.id)
    app = WorkbenchApp(run_dir=small_run)
    async with app.run_test(size=SIZE) as pilot:
        app.open_episode(episode.id)
        await wait_until(pilot, lambda: isinstance(app.screen, EpisodeScreen) and app.screen.record, 5, "the episode")
        screen = app.screen
        assert f"episode #{episode.id}" in texts(app, "#episode-header")
        assert texts(app, "#turn-nav").startswith(f"turn 1/{episode.n_turns}")
        assert "token 1:" in texts(app, "#token-detail") and "advantage" in texts(app, "#token-detail")
        await pilot.press("right", "right")
        assert screen.token_index == 2 and f"id {tokens[0].token_ids[2]}" in texts(app, "#token-detail")
        await pilot.press("end")
        assert screen.token_index == len(tokens[0].token_ids) - 1
        await pilot.press("m")
        assert screen.metric == "logprob" and "colour: logprob" in texts(app, "#token-title")
        await pilot.press("m", "m")
        assert screen.metric == "kl"
        await pilot.press("n")
        assert screen.turn_index == 1 and texts(app, "#turn-nav").startswith("turn 2/")
        await pilot.press("p", "p")
        assert screen.turn_index == 0
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ReplayScreen)


async def test_chat_screen_controls(small_run: Path):
    app = WorkbenchApp(run_dir=small_run)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await settle(pilot)
        screen = app.screen
        assert app.focused is screen.query_one("#chat-input", Input)
        assert "a checkpoint" in texts(app, "#chat-backend")
        select = screen.query_one("#chat-checkpoint", Select)
        await wait_until(pilot, lambda: len(select._options) > 1, 5, "the checkpoint list")
        await pilot.press("ctrl+t")
        assert screen.query_one("#chat-thinking", Switch).value is True
        assert screen.settings().thinking is True and sorted(screen.settings().servers) == sorted(BUNDLED)
        await pilot.press("enter")  # empty message: nothing is sent
        assert screen.session is not None and screen.session.messages == []
        assert app.processes.get(small_run, "serve") is None
        await pilot.press("escape", "1")
        await pilot.pause()
        assert isinstance(app.screen, LiveScreen)


def test_chat_offers_every_bundled_server():
    from mcp_servers.registry import BUNDLED_SERVERS

    assert sorted(BUNDLED) == sorted(BUNDLED_SERVERS)


async def test_command_palette_offers_every_action(small_run: Path):
    from workbench.app.app import PALETTE

    app = WorkbenchApp(run_dir=small_run)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        actions = {action.removeprefix("app.").split("(")[0] for _, _, action in PALETTE}
        for action in actions:
            assert hasattr(app, f"action_{action}"), action
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Replay")
        await settle(pilot, 0.5)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ReplayScreen), 5, "the palette to switch to Replay")


async def test_stop_asks_first(small_run: Path):
    app = WorkbenchApp(run_dir=small_run)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.state = "running"  # as if a trainer were live: only the dialog is exercised here
        app.action_stop()
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, LiveScreen)
        with RunReader(small_run) as reader:
            assert reader.commands() == [], "cancelled: no command was queued"


async def test_a_second_run_in_the_runs_folder(small_run: Path, tmp_path: Path):
    copy_run(tmp_path, name="other")
    app = WorkbenchApp(runs_dir=Path("runs"))
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#runs", DataTable)
        await wait_until(pilot, lambda: table.row_count == 2 and table.get_row_at(0)[1] != "", 5, "two runs")
        await pilot.press("down", "enter")
        await settle(pilot)
        assert app.run_dir is not None and app.run_dir.name in ("small", "other")
        await pilot.press("4", "r")
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
