"""Forensics in the app: flag keys in Live, Replay and Episode; re-runs and comparisons shown side by side.

Re-runs and comparisons run the real trainer commands as children (torch, the tiny model, the MCP
servers) on a copy of the recorded run, so these tests see exactly what a user sees.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, OptionList, Select, SelectionList
from wb_support import SIZE, settle, small_run_fixture, texts, wait_until  # noqa: F401 - fixture

from trainer.curation import checkpoint_for_iteration, trainer_argv
from trainer.episode_diff import diff_episodes
from trainer.store import RunReader
from workbench.app import WorkbenchApp
from workbench.app.screens.dialogs import CheckpointScreen, CompareSetupScreen, FlagScreen
from workbench.app.screens.episode import EpisodeScreen
from workbench.app.screens.forensics import CompareScreen, DiffScreen
from workbench.app.screens.replay import ReplayScreen
from workbench.app.widgets.turn_table import TurnTable
from workbench.curation_actions import FlagRequest, apply_flag, compare_preselection, rerun_choices
from workbench.forensics_client import ForensicsFailed, disagreement_pair, run_json, side_cells


def flags_of(run: Path) -> list[tuple[int, str, str | None]]:
    with RunReader(run) as reader:
        return [(flag.episode_id, flag.kind, flag.note) for flag in reader.flags()]


def eval_episode(run: Path) -> int:
    """An evaluation episode whose weights are still on disk (the recorded run keeps iter-000003)."""
    with RunReader(run) as reader:
        return next(row.id for row in reader.episodes(limit=500, phase="eval")
                    if checkpoint_for_iteration(run, row.iteration) is not None)


async def open_replay(app: WorkbenchApp, pilot) -> ReplayScreen:
    await pilot.press("3")
    screen = app.screen
    assert isinstance(screen, ReplayScreen)
    await wait_until(pilot, lambda: screen.page is not None and screen.page.rows, 5, "the first page")
    return screen


async def flag_through_dialog(app: WorkbenchApp, pilot, kind: str, note: str) -> None:
    await wait_until(pilot, lambda: isinstance(app.screen, FlagScreen), 5, "the flag dialog")
    app.screen.query_one("#flag-kind", Select).value = kind
    app.screen.query_one("#flag-note", Input).value = note
    await pilot.press("enter")


# -- flags


async def test_flag_in_replay_is_stored_marked_and_filterable(small_run: Path):
    app = WorkbenchApp(run_dir=small_run)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_replay(app, pilot)
        table = screen.query_one("#episodes", DataTable)
        await pilot.press("down")
        first_id = screen.page.rows[1].id
        await pilot.press("f")
        await flag_through_dialog(app, pilot, "bug", "the call is right but the reward is not")
        await wait_until(pilot, lambda: flags_of(small_run) != [], 5, "the flag in the store")
        assert flags_of(small_run) == [(first_id, "bug", "the call is right but the reward is not")]
        await wait_until(pilot, lambda: screen.page.flags == {first_id: ("bug",)}, 5, "the page to show it")
        assert str(table.get_row_at(1)[0]).startswith("  !"), "the bug mark opens the row"
        screen.query_one("#f-flag", Select).value = "any"
        await wait_until(pilot, lambda: screen.page.total == 1, 5, "the flag filter")
        assert screen.page.rows[0].id == first_id and "flagged any" in texts(app, "#pager")


async def test_flag_keys_in_live_and_episode_and_removing_flags(small_run: Path):
    app = WorkbenchApp(run_dir=small_run)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(TurnTable)
        await wait_until(pilot, lambda: table.row_count > 0, 5, "turn rows")
        newest = table.episode_id_at_cursor()
        await pilot.press("F")
        await flag_through_dialog(app, pilot, "good", "")
        await wait_until(pilot, lambda: flags_of(small_run) == [(newest, "good", None)], 5, "the Live flag")

        app.open_episode(newest)
        await wait_until(pilot, lambda: isinstance(app.screen, EpisodeScreen) and app.screen.record, 5, "episode")
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, FlagScreen), 5, "the flag dialog")
        assert "flagged now: good" in texts(app, ".dim")
        await flag_through_dialog(app, pilot, "", "")  # "remove its flags"
        await wait_until(pilot, lambda: flags_of(small_run) == [], 5, "the flags removed")
        assert isinstance(app.screen, EpisodeScreen)


async def test_escape_leaves_the_flag_dialog_without_writing(small_run: Path):
    app = WorkbenchApp(run_dir=small_run)
    async with app.run_test(size=SIZE) as pilot:
        await open_replay(app, pilot)
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, FlagScreen), 5, "the flag dialog")
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, ReplayScreen) and flags_of(small_run) == []


def test_apply_flag_reports_in_one_line_and_refuses_unknown_episodes(small_run: Path):
    episode = eval_episode(small_run)
    assert apply_flag(small_run, FlagRequest(episode, "bad", "wrong tool")) == (
        f"episode #{episode} flagged bad (wrong tool)")
    assert apply_flag(small_run, FlagRequest(episode, "")) == f"episode #{episode}: 1 flag(s) removed"
    with pytest.raises(Exception, match="no episode"):
        apply_flag(small_run, FlagRequest(10**9, "bad"))


# -- re-runs


def test_rerun_choices_offer_the_played_weights_base_and_every_checkpoint(small_run: Path):
    choices = rerun_choices(small_run, live=False)
    assert choices[0][1] == "" and ("base model", "base") in choices
    assert ("newest checkpoint (iter-000003)", "latest") in choices and ("iter-000003", "iter-000003") in choices
    assert rerun_choices(small_run, live=True)[2][0].startswith("live policy")
    assert compare_preselection(["base", "iter-000001", "iter-000003"]) == ["base", "iter-000003"]


async def test_rerun_of_an_eval_episode_with_its_own_weights_is_identical(small_run: Path):
    episode = eval_episode(small_run)
    app = WorkbenchApp(run_dir=small_run)
    async with app.run_test(size=SIZE) as pilot:
        app.open_episode(episode)
        await wait_until(pilot, lambda: isinstance(app.screen, EpisodeScreen) and app.screen.record, 5, "episode")
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, CheckpointScreen), 5, "the checkpoint picker")
        assert app.screen.query_one(OptionList).highlighted == 0
        await pilot.press("enter")  # the weights that played it
        await wait_until(pilot, lambda: isinstance(app.screen, DiffScreen), 5, "the diff screen")
        screen = app.screen
        await wait_until(pilot, lambda: screen.diff is not None or screen.error, 180, "the re-run child")
        assert screen.error is None, screen.error
        assert screen.diff.identical, "\n".join(screen.diff.lines())
        assert "identical" in texts(app, "#diff-header")
        assert screen.query_one("#diff-turns", DataTable).row_count == len(screen.diff.turns) > 0
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, EpisodeScreen)


async def test_a_failing_forensics_child_reports_its_one_line_error(small_run: Path):
    with pytest.raises(ForensicsFailed, match="no episode"):
        await run_json(trainer_argv("rerun", str(small_run), "999999", "--json"), 120)


def test_diff_cells_mark_what_differs():
    stored = {"task": {"id": "t1", "instruction": "add"}, "outcome": "success", "total_reward": 10.0,
              "turns": [{"status": "success", "reward": 10.0, "text": "a",
                         "calls": [{"name": "add", "arguments": {"a": 1}}]}]}
    other = {**stored, "outcome": "failed", "total_reward": -0.5,
             "turns": [{"status": "tool_error", "reward": -0.5, "text": "a",
                        "calls": [{"name": "add", "arguments": {"a": 2}}]}]}
    turn = diff_episodes(stored, other, "stored", "iter-1").turns[0]
    left, right = side_cells(turn.left, turn.differs), side_cells(turn.right, turn.differs)
    assert left[0].endswith(" *") and right[1] == "tool_error *" and right[2] == "-0.5 *"
    assert side_cells(None, ()) == ("(episode over)", "", "")


# -- comparisons


def test_disagreement_pairs_need_two_stored_episodes():
    item = {"outcomes": {"base": {"episode_id": 4}, "iter-1": {"episode_id": None}, "iter-2": {"episode_id": 9}}}
    assert disagreement_pair(item, ["base", "iter-1", "iter-2"]) == (("base", 4), ("iter-2", 9))
    assert disagreement_pair({"outcomes": {"base": {"episode_id": 4}}}, ["base", "iter-1"]) is None


async def test_compare_from_the_palette_lists_policies_and_opens_a_disagreement(small_run: Path):
    app = WorkbenchApp(run_dir=small_run)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await app.run_action("app.compare")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareSetupScreen), 5, "the compare dialog")
        assert sorted(app.screen.query_one(SelectionList).selected) == ["base", "iter-000003"]
        app.screen.query_one("#compare-n", Input).value = "0"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "at least 1" in texts(app, "#compare-error")
        app.screen.query_one("#compare-n", Input).value = "4"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen), 5, "the compare screen")
        screen = app.screen
        await wait_until(pilot, lambda: screen.result is not None, 240, "the compare child")
        result = screen.result
        assert result["labels"] == ["base", "iter-000003"] and result["n"] == 4
        summary = screen.query_one("#compare-summary", DataTable)
        assert [str(c) for c in summary.get_row_at(0)][1:] == [
            f"{result['policies'][label]['success_rate']:.1%}" for label in result["labels"]]
        with RunReader(small_run) as reader:
            assert [c.id for c in reader.comparisons()] == [result["id"]]
        tasks = screen.query_one("#compare-tasks", DataTable)
        assert tasks.row_count == len(result["disagreements"])
        if tasks.row_count:
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, DiffScreen) and app.screen.diff, 10, "the diff")
            assert not app.screen.diff.identical
