"""One turn as four titled panels side by side (Chat and the episode view)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from workbench.formatting import COLUMN_TITLES, turn_cells


class TurnView(Horizontal):
    """Model output | parsed call | MCP response | status and reward."""

    DEFAULT_CSS = """
    TurnView { height: auto; }
    TurnView > Static { width: 1fr; height: auto; border: round $panel-lighten-2; padding: 0 1; }
    TurnView > .turn-status { width: 16; }
    """

    def __init__(self, turn: Mapping[str, Any] | None = None, max_lines: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self._turn = turn
        self.max_lines = max_lines

    def compose(self) -> ComposeResult:
        classes = ("turn-output", "turn-call", "turn-response", "turn-status")
        for title, css in zip(COLUMN_TITLES, classes, strict=True):
            panel = Static("", classes=css)
            panel.border_title = title
            yield panel

    def on_mount(self) -> None:
        if self._turn is not None:
            self.show(self._turn)

    def show(self, turn: Mapping[str, Any]) -> None:
        """Paint a turn (cells wrap to the panels' widths; long ones are clipped to max_lines)."""
        self._turn = turn
        cells = turn_cells(turn, None, self.max_lines)
        for panel, cell in zip(self.query(Static), cells.as_tuple(), strict=True):
            panel.update(cell)
