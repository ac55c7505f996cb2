"""Small inline-SVG charts for self-contained HTML reports (no JavaScript, no external files).

Each function returns an HTML ``<figure>`` holding an ``<svg>``: line charts (one ``path.series`` per
series, broken where a value is missing), stacked area charts for shares, and horizontal bars.
Every text is escaped, so task text or tool names cannot inject markup.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777")
STATUS_COLORS = {
    "success": "#16a34a",
    "tool_execution": "#2563eb",
    "tool_error": "#ea580c",
    "invalid_json": "#9333ea",
    "structural_fail": "#dc2626",
}
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 14, 12, 30


@dataclass
class Series:
    """One named line: (x, y) points in x order; a None y breaks the line."""

    name: str
    points: list[tuple[float, float | None]] = field(default_factory=list)
    color: str | None = None


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [low, high] (steps of 1, 2 or 5 times a power of 10)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0]
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(1, count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks, value = [], first
    while value <= high + step * 0.5 and len(ticks) < 50:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _label(value: float, percent: bool, step: float | None = None) -> str:
    """A tick or value label with as many decimals as the tick step needs (6.38, 6.39, not 6.4, 6.4)."""
    scale = 100.0 if percent else 1.0
    suffix = "%" if percent else ""
    if step is None or step <= 0:
        return f"{value * scale:.3g}{suffix}"
    if not percent and (max(abs(value), step) >= 100_000 or step < 1e-4):
        return f"{value:.2e}"
    decimals = max(0, -math.floor(math.log10(step * scale) + 1e-9))
    return f"{value * scale:.{decimals}f}{suffix}"


class _Frame:
    """Maps data coordinates to pixels inside a chart's plot area."""

    def __init__(self, width: int, height: int, xs: Sequence[float], ys: Sequence[float], percent: bool,
                 y_min: float | None, y_max: float | None) -> None:
        self.width, self.height, self.percent = width, height, percent
        self.x0, self.x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
        if self.x1 == self.x0:
            self.x0, self.x1 = self.x0 - 0.5, self.x1 + 0.5
        low = min(ys) if ys else 0.0
        high = max(ys) if ys else 1.0
        low = y_min if y_min is not None else low
        high = y_max if y_max is not None else high
        if high == low:
            low, high = low - 0.5, high + 0.5
        self.y_ticks = nice_ticks(low, high)
        self.y0 = min(self.y_ticks[0], low)
        self.y1 = max(self.y_ticks[-1], high)

    def x(self, value: float) -> float:
        span = self.width - _LEFT - _RIGHT
        return _LEFT + (value - self.x0) / (self.x1 - self.x0) * span

    def y(self, value: float) -> float:
        span = self.height - _TOP - _BOTTOM
        return self.height - _BOTTOM - (value - self.y0) / (self.y1 - self.y0) * span

    def axes(self) -> str:
        parts = []
        step = self.y_ticks[1] - self.y_ticks[0] if len(self.y_ticks) > 1 else None
        for tick in self.y_ticks:
            y = self.y(tick)
            parts.append(f'<line class="grid" x1="{_LEFT}" y1="{y:.1f}" x2="{self.width - _RIGHT}" y2="{y:.1f}"/>')
            parts.append(f'<text class="tick" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                         f"{escape(_label(tick, self.percent, step))}</text>")
        for tick in nice_ticks(self.x0, self.x1, 6):
            if self.x0 <= tick <= self.x1 and float(tick).is_integer():
                x = self.x(tick)
                parts.append(f'<text class="tick" x="{x:.1f}" y="{self.height - _BOTTOM + 16}" '
                             f'text-anchor="middle">{int(tick)}</text>')
        bottom = self.height - _BOTTOM
        parts.append(f'<line class="axis" x1="{_LEFT}" y1="{bottom}" x2="{self.width - _RIGHT}" y2="{bottom}"/>')
        parts.append(f'<line class="axis" x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{bottom}"/>')
        return "".join(parts)


def _figure(title: str, svg_body: str, width: int, height: int, legend: Sequence[tuple[str, str]] = ()) -> str:
    keys = "".join(f'<span class="key"><i style="background:{color}"></i>{escape(name)}</span>'
                   for name, color in legend)
    return (f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
            f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="{escape(title)}">{svg_body}</svg>'
            + (f'<div class="legend">{keys}</div>' if keys else "") + "</figure>")


def _empty(width: int, height: int) -> str:
    return f'<text class="empty" x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle">no data yet</text>'


def line_chart(title: str, series: Sequence[Series], *, width: int = 520, height: int = 210,
               percent: bool = False, y_min: float | None = None, y_max: float | None = None) -> str:
    """A line chart; each series is one ``path.series`` (with dots where it has few points)."""
    points = [(x, y) for s in series for x, y in s.points if y is not None and math.isfinite(y)]
    if not points:
        return _figure(title, _empty(width, height), width, height)
    frame = _Frame(width, height, [p[0] for p in points], [p[1] for p in points], percent, y_min, y_max)
    body, legend = [frame.axes()], []
    for index, item in enumerate(series):
        color = item.color or PALETTE[index % len(PALETTE)]
        legend.append((item.name, color))
        commands, pen_down, kept = [], False, []
        for x, y in item.points:
            if y is None or not math.isfinite(y):
                pen_down = False
                continue
            commands.append(f"{'L' if pen_down else 'M'}{frame.x(x):.1f} {frame.y(y):.1f}")
            pen_down = True
            kept.append((x, y))
        if not commands:
            continue
        body.append(f'<path class="series" data-series="{escape(item.name)}" d="{" ".join(commands)}" '
                    f'fill="none" stroke="{color}" stroke-width="2" stroke-linejoin="round"/>')
        if len(kept) <= 40:
            body.extend(f'<circle cx="{frame.x(x):.1f}" cy="{frame.y(y):.1f}" r="2.5" fill="{color}">'
                        f"<title>{escape(item.name)} @ {x:g}: {escape(_label(y, percent))}</title></circle>"
                        for x, y in kept)
    return _figure(title, "".join(body), width, height, legend if len(series) > 1 else ())


def stacked_chart(title: str, xs: Sequence[float], layers: Sequence[tuple[str, Sequence[float | None], str]], *,
                  width: int = 520, height: int = 210) -> str:
    """Shares stacked from 0 to 1 over ``xs``: one filled ``path.series`` per layer (missing = 0)."""
    if not xs:
        return _figure(title, _empty(width, height), width, height)
    frame = _Frame(width, height, list(xs), [0.0, 1.0], True, 0.0, 1.0)
    body = [frame.axes()]
    below = [0.0] * len(xs)
    for name, values, color in layers:
        above = [low + (value or 0.0) for low, value in zip(below, values, strict=True)]
        if len(xs) == 1:  # a single iteration: draw a narrow band so it is visible
            x_left, x_right = frame.x(xs[0]) - 6, frame.x(xs[0]) + 6
            d = (f"M{x_left:.1f} {frame.y(below[0]):.1f} L{x_left:.1f} {frame.y(above[0]):.1f} "
                 f"L{x_right:.1f} {frame.y(above[0]):.1f} L{x_right:.1f} {frame.y(below[0]):.1f} Z")
        else:
            top = [f"{frame.x(x):.1f} {frame.y(y):.1f}" for x, y in zip(xs, above, strict=True)]
            bottom = [f"{frame.x(x):.1f} {frame.y(y):.1f}" for x, y in zip(reversed(xs), reversed(below), strict=True)]
            d = "M" + " L".join(top + bottom) + " Z"
        body.append(f'<path class="series" data-series="{escape(name)}" d="{d}" fill="{color}" '
                    f'fill-opacity="0.85" stroke="none"><title>{escape(name)}</title></path>')
        below = above
    return _figure(title, "".join(body), width, height, [(name, color) for name, _, color in layers])


def bar(value: float, *, width: int = 120, height: int = 12, color: str = "#dc2626") -> str:
    """A tiny inline bar for a table cell: ``value`` in [0, 1] of the width."""
    filled = max(0.0, min(1.0, value)) * width
    return (f'<svg class="bar" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="{value:.0%}"><rect x="0" y="0" width="{width}" height="{height}" fill="#e5e7eb"/>'
            f'<rect class="series" x="0" y="0" width="{filled:.1f}" height="{height}" fill="{color}"/></svg>')
