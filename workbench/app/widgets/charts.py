"""Chart widgets: thin wrappers that draw workbench.charts at the widget's current size."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.console import Group, RenderableType
from rich.text import Text
from textual.widget import Widget

from workbench.charts import Series, legend, line_chart, stacked_shares
from workbench.styles import STATUS_STYLE


class LineChart(Widget):
    """A titled braille line chart with a legend (last values) on its first line."""

    DEFAULT_CSS = "LineChart { height: 8; }"

    def __init__(self, title: str, y_range: tuple[float | None, float | None] = (None, None), **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = title
        self.y_range = y_range
        self.series: list[Series] = []

    def set_series(self, series: Sequence[Series]) -> None:
        self.series = list(series)
        self.refresh()

    def render(self) -> RenderableType:
        width, height = self.content_size.width, self.content_size.height
        if not self.series or not any(len(s.values) for s in self.series):
            return Text("no iterations yet", style="dim")
        if height < 2:
            return legend(self.series)
        return Group(legend(self.series), line_chart(self.series, width, height - 1, self.y_range))


class SharesChart(Widget):
    """The share of each turn status per iteration, stacked, with the latest shares as a legend."""

    DEFAULT_CSS = "SharesChart { height: 8; }"

    def __init__(self, title: str, order: Sequence[str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = title
        self.order = list(order)
        self.rows: list[Mapping[str, float | None]] = []

    def set_rows(self, rows: Sequence[Mapping[str, float | None]]) -> None:
        self.rows = list(rows)
        self.refresh()

    def _legend(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        last = self.rows[-1] if self.rows else {}
        for i, status in enumerate(self.order):
            if i:
                text.append(" ")
            text.append("■", style=STATUS_STYLE.get(status, ""))
            share = last.get(status)
            short = {"tool_execution": "exec", "structural_fail": "struct", "invalid_json": "json"}.get(status, status)
            text.append(f"{short} {share * 100:.0f}%" if share is not None else short)
        return text

    def render(self) -> RenderableType:
        width, height = self.content_size.width, self.content_size.height
        if not self.rows:
            return Text("no iterations yet", style="dim")
        chart = stacked_shares(self.rows, self.order, STATUS_STYLE, width, max(1, height - 1))
        return Group(self._legend(), chart)
