"""Per-tool health: calls, error rate and mean latency over the run (store.tool_health)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

from trainer.store import ToolHealth


def error_style(rate: float) -> str:
    return "bold red" if rate >= 0.5 else "yellow" if rate >= 0.1 else "green"


class ToolHealthTable(DataTable):
    """One row per tool; rebuilt when the store's numbers change (a handful of rows)."""

    DEFAULT_CSS = "ToolHealthTable { height: auto; max-height: 12; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="none", show_cursor=False, zebra_stripes=True, **kwargs)
        self._shown: tuple[ToolHealth, ...] | None = None

    def on_mount(self) -> None:
        self.add_column("tool", key="tool")
        self.add_column("calls", key="calls")
        self.add_column("errors", key="errors")
        self.add_column("latency", key="latency")
        if self._shown is None:
            self.show(())

    def show(self, health: Sequence[ToolHealth]) -> None:
        health = tuple(health)
        if health == self._shown:
            return
        self._shown = health
        self.clear()
        if not health:
            self.add_row(Text("no tool calls yet", style="dim"), "", "", "")
            return
        for tool in health:
            self.add_row(
                tool.tool,
                Text(f"{tool.calls:,}", justify="right"),
                Text(f"{tool.error_rate * 100:.0f}%", style=error_style(tool.error_rate), justify="right"),
                Text(f"{tool.mean_latency_s * 1000:.1f} ms", justify="right"),
                key=tool.tool,
            )
