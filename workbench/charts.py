"""Small terminal charts drawn as Rich text: braille line charts and stacked status shares.

Pure functions of the data and a size, so the widgets stay thin and these are tested directly. More
points than columns are averaged into buckets, so a chart costs the same for 10 iterations or 10,000.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich.text import Text

_BRAILLE_BASE = 0x2800
# dot bit for (column 0..1, row 0..3) inside one braille cell
_DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
SPARK = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class Series:
    """One line of a chart: its values in x order (None = missing), colour and legend label."""

    values: Sequence[float | None]
    style: str
    label: str


def _finite(value: float | None) -> bool:
    return value is not None and not math.isnan(value) and not math.isinf(value)


def bucket(values: Sequence[float | None], n: int) -> list[float | None]:
    """``values`` squeezed (averaged) or kept as they are into at most ``n`` points."""
    if n <= 0:
        return []
    if len(values) <= n:
        return list(values)
    out: list[float | None] = []
    for i in range(n):
        chunk = [v for v in values[i * len(values) // n : (i + 1) * len(values) // n] if _finite(v)]
        out.append(sum(chunk) / len(chunk) if chunk else None)  # type: ignore[arg-type]
    return out


def value_range(series: Sequence[Series], fixed: tuple[float | None, float | None] = (None, None)) -> tuple[float, float]:
    """The y range covering every finite value (``fixed`` ends win); never empty."""
    finite = [v for s in series for v in s.values if _finite(v)]
    lo = fixed[0] if fixed[0] is not None else (min(finite) if finite else 0.0)
    hi = fixed[1] if fixed[1] is not None else (max(finite) if finite else 1.0)
    if hi - lo < 1e-12:
        pad = abs(hi) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    return float(lo), float(hi)


def line_chart(
    series: Sequence[Series],
    width: int,
    height: int,
    y_range: tuple[float | None, float | None] = (None, None),
    label_width: int = 7,
) -> Text:
    """Series as braille lines in ``width`` x ``height`` cells, with the y range labelled at the left."""
    plot_w = max(1, width - label_width - 1)
    height = max(1, height)
    lo, hi = value_range(series, y_range)
    dots_w, dots_h = plot_w * 2, height * 4
    cells = [[0] * plot_w for _ in range(height)]
    colours: list[list[str | None]] = [[None] * plot_w for _ in range(height)]

    def plot(x: int, y: int, style: str) -> None:
        cx, cy = x // 2, (dots_h - 1 - y) // 4
        if 0 <= cx < plot_w and 0 <= cy < height:
            cells[cy][cx] |= _DOTS[x % 2][(dots_h - 1 - y) % 4]
            colours[cy][cx] = style

    for line in series:
        points = bucket(line.values, dots_w)
        if not points:
            continue
        last: tuple[int, int] | None = None
        for i, value in enumerate(points):
            if not _finite(value):
                last = None
                continue
            x = round(i * (dots_w - 1) / max(1, len(points) - 1)) if len(points) > 1 else 0
            y = round((min(max(value, lo), hi) - lo) / (hi - lo) * (dots_h - 1))  # type: ignore[operator]
            if last is not None:
                x0, y0 = last
                steps = max(abs(x - x0), abs(y - y0), 1)
                for k in range(steps + 1):
                    plot(round(x0 + (x - x0) * k / steps), round(y0 + (y - y0) * k / steps), line.style)
            else:
                plot(x, y, line.style)
            last = (x, y)

    text = Text(no_wrap=True, overflow="crop")
    for row in range(height):
        if row == 0:
            label = _axis(hi, label_width)
        elif row == height - 1:
            label = _axis(lo, label_width)
        else:
            label = " " * label_width
        text.append(label + "│", style="dim")
        for col in range(plot_w):
            bits = cells[row][col]
            text.append(chr(_BRAILLE_BASE + bits) if bits else " ", style=colours[row][col] or "")
        if row < height - 1:
            text.append("\n")
    return text


def _axis(value: float, width: int) -> str:
    if abs(value) >= 1000 or (value != 0 and abs(value) < 0.01):
        label = f"{value:.1e}"
    else:
        label = f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"
    return label[:width].rjust(width)


def legend(series: Sequence[Series], last: bool = True) -> Text:
    """``■ label 1.23`` for each series (its last finite value when ``last``)."""
    text = Text(no_wrap=True, overflow="ellipsis")
    for i, line in enumerate(series):
        if i:
            text.append("  ")
        text.append("■ ", style=line.style)
        text.append(line.label)
        if last:
            value = next((v for v in reversed(line.values) if _finite(v)), None)
            if value is not None:
                text.append(": ")
                text.append(f"{value:.3g}", style="bold")
    return text


def stacked_shares(
    rows: Sequence[Mapping[str, float | None]],
    order: Sequence[str],
    styles: Mapping[str, str],
    width: int,
    height: int,
) -> Text:
    """One column per iteration (bucketed to ``width``): the share of each status stacked bottom-up."""
    width, height = max(1, width), max(1, height)
    columns: list[dict[str, float]] = []
    if len(rows) <= width:
        columns = [{k: float(r.get(k) or 0.0) for k in order} for r in rows]
    else:
        for i in range(width):
            chunk = rows[i * len(rows) // width : (i + 1) * len(rows) // width]
            columns.append({k: sum(float(r.get(k) or 0.0) for r in chunk) / max(1, len(chunk)) for k in order})
    grid: list[list[str | None]] = [[None] * len(columns) for _ in range(height)]
    for col, shares in enumerate(columns):
        total = sum(shares.values()) or 1.0
        cumulative, filled = 0.0, 0
        for key in order:
            cumulative += shares[key] / total
            top = round(cumulative * height)
            for level in range(filled, top):
                grid[height - 1 - level][col] = key
            filled = max(filled, top)
    text = Text(no_wrap=True, overflow="crop")
    for row in range(height):
        for col in range(len(columns)):
            key = grid[row][col]
            text.append("█" if key else " ", style=styles.get(key, "") if key else "")
        if row < height - 1:
            text.append("\n")
    return text


def sparkline(values: Sequence[float | None], width: int) -> str:
    """A one-line chart of ``values`` squeezed into ``width`` characters."""
    points = bucket(values, width)
    finite = [v for v in points if _finite(v)]
    if not finite:
        return " " * min(width, len(points))
    lo, hi = min(finite), max(finite)
    span = (hi - lo) or 1.0
    return "".join(
        SPARK[min(len(SPARK) - 1, int((v - lo) / span * (len(SPARK) - 1) + 0.5))] if _finite(v) else " "
        for v in points  # type: ignore[operator]
    )
