"""Forensics screens: two episodes of one task side by side, and checkpoints compared on held-out tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from trainer.episode_diff import EpisodeDiff, TurnDiff, TurnSide
from trainer.store import StoreError
from workbench.forensics_client import (
    ForensicsFailed,
    Rerun,
    compare_checkpoints,
    disagreement_pair,
    side_cells,
    stored_diff,
)
from workbench.formatting import clean, signed, status_style

DIFF_STYLE = "bold red"
CALL_WIDTH = 36  # two calls, two statuses and two rewards fit in 140 columns


class DiffScreen(Screen):
    """Turn by turn: each side's call, status and reward, differing cells in red; enter shows the words."""

    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back")]

    def __init__(self, title: str, load: Callable[[], Awaitable[Rerun | EpisodeDiff]]) -> None:
        super().__init__()
        self.title_text = title
        self._load_diff = load
        self.diff: EpisodeDiff | None = None
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text(f"{self.title_text}: working… (a child process loads the model and the tools)",
                          style="dim"), id="diff-header")
        yield DataTable(id="diff-turns", cursor_type="row", zebra_stripes=True)
        yield Static("", id="diff-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(exclusive=True, group="diff")
    async def load(self) -> None:
        try:
            result = await self._load_diff()
        except (ForensicsFailed, StoreError, ValueError) as exc:
            self.error = str(exc)
            self.query_one("#diff-header", Static).update(Text(f"{self.title_text} failed: {exc}", style="red"))
            return
        note = None
        if isinstance(result, Rerun):
            if result.sampled:
                note = ("the stored episode was sampled in training; the re-run is greedy, so it can differ "
                        "even with the same weights")
            result = result.diff
        self.show(result, note)

    def show(self, diff: EpisodeDiff, note: str | None = None) -> None:
        self.diff = diff
        header = Text()
        header.append(f"{self.title_text} · task {diff.task_id}\n", style="bold")
        header.append(clean(diff.instruction) + "\n", style="italic")
        for label, outcome, reward in ((diff.left_label, diff.left_outcome, diff.left_reward),
                                       (diff.right_label, diff.right_outcome, diff.right_reward)):
            header.append(f"{label}: ", style="bold")
            header.append(f"{outcome} {signed(reward)}   ", style=status_style("success" if outcome == "success"
                                                                                else None))
        if diff.identical:
            header.append("\nthe two episodes are identical", style="bold green")
        elif diff.first_difference is not None:
            header.append(f"\nthey part ways at turn {diff.first_difference + 1}", style=DIFF_STYLE)
        else:
            header.append("\nsame turns, different outcome", style=DIFF_STYLE)
        if note:
            header.append(f"\n{note}", style="dim")
        self.query_one("#diff-header", Static).update(header)
        table = self.query_one("#diff-turns", DataTable)
        table.clear(columns=True)
        table.add_column("turn", key="turn")
        for side, label in (("l", diff.left_label), ("r", diff.right_label)):
            table.add_column(f"{label}: call", key=f"{side}-call", width=CALL_WIDTH)
            table.add_column("status", key=f"{side}-status")
            table.add_column("reward", key=f"{side}-reward")
        for turn in diff.turns:
            table.add_row(*diff_row(turn), key=str(turn.index))
        table.focus()
        self.show_detail(0)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "diff-turns" and event.row_key.value is not None:
            self.show_detail(int(event.row_key.value))

    def show_detail(self, index: int) -> None:
        if self.diff is None or not self.diff.turns:
            return
        turn = next((t for t in self.diff.turns if t.index == index), self.diff.turns[0])
        detail = Text()
        differs = ", ".join(turn.differs) if turn.differs else "nothing"
        detail.append(f"turn {turn.index + 1}: differs in {differs}\n", style="bold")
        for label, side in ((self.diff.left_label, turn.left), (self.diff.right_label, turn.right)):
            detail.append(f"{label} wrote: ", style="bold")
            detail.append(_side_words(side) + "\n", style=DIFF_STYLE if "text" in turn.differs else "")
        self.query_one("#diff-detail", Static).update(detail)


def diff_row(turn: TurnDiff) -> list[Text]:
    """One table row: the turn number, then (call, status, reward) of each side, differences in red."""
    cells = [Text(str(turn.index + 1), style="bold" if turn.differs else "dim")]
    for side in (turn.left, turn.right):
        for aspect, value in zip(("call", "status", "reward"), side_cells(side, turn.differs), strict=True):
            style = DIFF_STYLE if aspect in turn.differs else (status_style(value) if aspect == "status" else "")
            cells.append(Text(value, style=style, no_wrap=True, overflow="ellipsis"))
    return cells


def _side_words(side: TurnSide | None) -> str:
    if side is None:
        return "(the episode had ended)"
    text = clean(side.text)
    return text if len(text) <= 400 else text[:399] + "…"


class CompareScreen(Screen):
    """Success and status shares per policy, then the tasks where they disagree; enter diffs one."""

    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back")]

    def __init__(self, run_dir: Path, checkpoints: list[str], n: int | None) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.checkpoints = checkpoints
        self.n = n
        self.result: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text(f"comparing {', '.join(self.checkpoints)} on held-out tasks… (a child process plays "
                          "every policy greedily on the same tasks and seeds)", style="dim"), id="compare-header")
        yield DataTable(id="compare-summary", cursor_type="none", show_cursor=False)
        yield Static("", id="compare-title")
        yield DataTable(id="compare-tasks", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(exclusive=True, group="compare")
    async def load(self) -> None:
        try:
            result = await compare_checkpoints(self.run_dir, self.checkpoints, self.n)
        except ForensicsFailed as exc:
            self.query_one("#compare-header", Static).update(Text(f"comparison failed: {exc}", style="red"))
            return
        self.show(result)

    def show(self, result: dict[str, Any]) -> None:
        self.result = result
        labels = list(result.get("labels") or [])
        policies = result.get("policies") or {}
        seed, n = int(result.get("seed") or 0), int(result.get("n") or 0)
        self.query_one("#compare-header", Static).update(Text.assemble(
            (f"comparison {result.get('id')}", "bold"),
            f" · {n} tasks of {result.get('suite')}/{result.get('split')} · seeds {seed}..{seed + n - 1} · greedy",
        ))
        summary = self.query_one("#compare-summary", DataTable)
        summary.clear(columns=True)
        summary.add_column("", key="metric")
        for label in labels:
            summary.add_column(label, key=label)
        summary.add_row("success", *[f"{policies[label]['success_rate']:.1%}" for label in labels])
        summary.add_row("mean return", *[f"{policies[label]['mean_return']:+.2f}" for label in labels])
        for status in (policies[labels[0]]["status_shares"] if labels else {}):
            summary.add_row(Text(f"  {status}", style=status_style(status)),
                            *[f"{policies[label]['status_shares'][status]:.0%}" for label in labels])
        disagreements = result.get("disagreements") or []
        self.query_one("#compare-title", Static).update(Text.assemble(
            (f"{len(disagreements)} task(s) where they disagree", "bold"),
            ("   enter: the two episodes side by side", "dim")))
        tasks = self.query_one("#compare-tasks", DataTable)
        tasks.clear(columns=True)
        tasks.add_column("task", key="task")
        for label in labels:
            tasks.add_column(label, key=label)
        tasks.add_column("instruction", key="instruction")
        for index, item in enumerate(disagreements):
            outcomes = item.get("outcomes") or {}
            cells = [Text(str(item.get("task_id")))]
            for label in labels:
                outcome = outcomes.get(label) or {}
                status = outcome.get("final_status")
                cells.append(Text(f"{outcome.get('outcome')} {signed(outcome.get('total_reward') or 0.0)}",
                                  style="bold green" if outcome.get("success") else status_style(status)))
            cells.append(Text(clean(str(item.get("instruction") or ""))[:80]))
            tasks.add_row(*cells, key=str(index))
        tasks.focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id != "compare-tasks" or self.result is None or event.row_key.value is None:
            return
        item = (self.result.get("disagreements") or [])[int(event.row_key.value)]
        pair = disagreement_pair(item, list(self.result.get("labels") or []))
        if pair is None:
            self.notify("this comparison was not stored, so its episodes cannot be opened", severity="warning")
            return
        (left_label, left_id), (right_label, right_id) = pair
        run_dir = self.run_dir

        async def load() -> EpisodeDiff:
            return await asyncio.to_thread(stored_diff, run_dir, left_id, right_id, left_label, right_label)

        self.app.push_screen(DiffScreen(f"task {item.get('task_id')}: {left_label} vs {right_label}", load))
