"""Snapshots of every screen at a fixed size, on a copy of the recorded run (pytest-textual-snapshot).

After an intended change of the look, refresh them with ``pytest tests/test_app_snapshots.py
--snapshot-update`` and review the SVGs in the diff.
"""

from __future__ import annotations

from pathlib import Path

from wb_support import SIZE, small_run_fixture, wait_until  # noqa: F401 - fixture

from trainer.store import RunReader
from workbench.app import WorkbenchApp
from workbench.app.widgets.turn_table import TurnTable


async def _live_loaded(pilot) -> None:
    app = pilot.app
    table = app.screen.query_one(TurnTable)
    await wait_until(pilot, lambda: table.row_count > 0 and app.feed is not None and app.feed.evals, 10, "the run")
    await pilot.pause(0.3)


def test_welcome_screen(snap_compare, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert snap_compare(WorkbenchApp(runs_dir=Path("runs")), terminal_size=SIZE)


def test_live_screen(snap_compare, small_run: Path):
    assert snap_compare(WorkbenchApp(run_dir=Path("runs/small")), terminal_size=SIZE, run_before=_live_loaded)


def test_runs_screen(snap_compare, small_run: Path):
    async def loaded(pilot) -> None:
        table = pilot.app.screen.query_one("#runs")
        await wait_until(pilot, lambda: table.row_count == 1 and str(table.get_row_at(0)[1]), 10, "the runs")

    assert snap_compare(WorkbenchApp(runs_dir=Path("runs")), terminal_size=SIZE, run_before=loaded)


def test_replay_screen(snap_compare, small_run: Path):
    async def loaded(pilot) -> None:
        await _live_loaded(pilot)
        await pilot.press("3")
        await wait_until(pilot, lambda: getattr(pilot.app.screen, "page", None) is not None, 10, "a page")
        await pilot.pause(0.3)

    assert snap_compare(WorkbenchApp(run_dir=Path("runs/small")), terminal_size=SIZE, run_before=loaded)


def test_episode_screen(snap_compare, small_run: Path):
    with RunReader(small_run) as reader:
        episode = reader.episodes(limit=1, phase="train", order="oldest")[0]

    async def loaded(pilot) -> None:
        await _live_loaded(pilot)
        pilot.app.open_episode(episode.id)
        await wait_until(pilot, lambda: getattr(pilot.app.screen, "record", None), 10, "the episode")
        await pilot.press("right", "right", "right")
        await pilot.pause(0.3)

    assert snap_compare(WorkbenchApp(run_dir=Path("runs/small")), terminal_size=SIZE, run_before=loaded)


def test_chat_screen(snap_compare, small_run: Path):
    async def loaded(pilot) -> None:
        await _live_loaded(pilot)
        await pilot.press("2")
        await pilot.pause(0.3)
        await pilot.press("escape")  # the prompt's blinking cursor would make the snapshot flicker
        await pilot.pause(0.3)

    assert snap_compare(WorkbenchApp(run_dir=Path("runs/small")), terminal_size=SIZE, run_before=loaded)


def test_new_run_dialog(snap_compare, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    async def opened(pilot) -> None:
        await pilot.press("n")
        await pilot.pause(0.3)
        await pilot.press("tab")  # off the first field's blinking cursor
        await pilot.pause(0.3)

    assert snap_compare(WorkbenchApp(runs_dir=Path("runs")), terminal_size=SIZE, run_before=opened)


def test_flag_dialog(snap_compare, small_run: Path):
    async def opened(pilot) -> None:
        await _live_loaded(pilot)
        await pilot.press("F")
        await wait_until(pilot, lambda: pilot.app.screen.__class__.__name__ == "FlagScreen", 10, "the dialog")
        await pilot.press("shift+tab")  # off the note's blinking cursor
        await pilot.pause(0.3)

    assert snap_compare(WorkbenchApp(run_dir=Path("runs/small")), terminal_size=SIZE, run_before=opened)


def test_diff_screen(snap_compare, small_run: Path):
    """Two stored evaluation episodes side by side (what a comparison's disagreement opens)."""
    from workbench.app.screens.forensics import DiffScreen
    from workbench.forensics_client import stored_diff

    with RunReader(small_run) as reader:
        first, second = (row.id for row in reader.episodes(limit=2, phase="eval", order="oldest"))

    async def opened(pilot) -> None:
        await _live_loaded(pilot)

        async def load():
            return stored_diff(small_run, first, second, f"episode {first}", f"episode {second}")

        await pilot.app.push_screen(DiffScreen("two evaluation episodes", load))
        await wait_until(pilot, lambda: pilot.app.screen.diff is not None, 10, "the diff")
        await pilot.pause(0.3)

    assert snap_compare(WorkbenchApp(run_dir=Path("runs/small")), terminal_size=SIZE, run_before=opened)
