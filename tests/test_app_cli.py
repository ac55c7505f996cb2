"""The README's main command opens the workbench; ``open RUN_DIR`` attaches it to one run."""

from __future__ import annotations

import asyncio
import re
import tomllib
from pathlib import Path

import pytest
from wb_support import REPO, SIZE, small_run_fixture  # noqa: F401 - fixture

from workbench import cli
from workbench.app import WorkbenchApp
from workbench.app.screens.empty import EmptyScreen
from workbench.app.screens.live import LiveScreen


def quick_start_commands() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


@pytest.fixture
def headless(monkeypatch: pytest.MonkeyPatch) -> list[WorkbenchApp]:
    """Run the app the CLI builds headless (App.run_test) instead of in the terminal; record what it showed."""
    seen: list[WorkbenchApp] = []

    def run(app: WorkbenchApp, *args, **kwargs) -> None:
        async def drive() -> None:
            async with app.run_test(size=SIZE) as pilot:
                await pilot.pause(0.3)
                seen.append(app)
                app.shown = type(app.screen)  # type: ignore[attr-defined]
                await pilot.press("ctrl+q")

        asyncio.run(drive())

    monkeypatch.setattr(WorkbenchApp, "run", run)
    return seen


def test_the_readme_main_command_opens_the_workbench(tmp_path, monkeypatch, headless):
    commands = quick_start_commands()
    assert len(commands) == 2, "the quick start has exactly two commands"
    assert commands[0] == 'pip install -e ".[test]" && qwen-workbench'
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["qwen-workbench"] == "workbench.cli:main"
    monkeypatch.chdir(tmp_path)  # a newcomer's folder: no runs yet
    assert cli.main([]) == 0
    (app,) = headless
    assert app.runs_dir == Path("runs") and app.shown is EmptyScreen


def test_open_attaches_to_a_run(small_run, headless):
    assert cli.main(["open", str(small_run)]) == 0
    (app,) = headless
    assert app.run_dir == small_run and app.shown is LiveScreen and app.state == "finished"


def test_open_refuses_a_folder_that_is_not_a_run(tmp_path, capsys, headless):
    assert cli.main(["open", str(tmp_path)]) == 2
    assert "is not a run folder" in capsys.readouterr().err and not headless


def test_runs_dir_option(tmp_path, small_run, headless):
    assert cli.main(["--runs-dir", str(small_run.parent)]) == 0
    (app,) = headless
    assert app.runs_dir == small_run.parent and app.shown.__name__ == "RunsScreen"
