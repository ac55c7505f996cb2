"""Held-out success against training time, one line per side, as a PNG.

matplotlib draws it when it is installed; otherwise Pillow does (installed beside transformers here),
with the same content: axes, ticks, one coloured line with markers per side and a legend.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

COLOURS = {"ours": (31, 119, 180), "trl": (214, 39, 40)}
LABELS = {"ours": "ours (PPO)", "trl": "trl GRPOTrainer"}


def _points(curve: Sequence[Mapping[str, Any]]) -> list[tuple[float, float]]:
    return [(float(p["train_s"]), float(p["heldout_success"])) for p in curve]


def draw_curves(curves: Mapping[str, Sequence[Mapping[str, Any]]], path: Path, *, title: str) -> str | None:
    """Draw ``curves`` (side -> points with train_s and heldout_success) to ``path``; the renderer used."""
    try:
        _with_matplotlib(curves, path, title)
        return "matplotlib"
    except ImportError:
        pass
    try:
        _with_pillow(curves, path, title)
        return "pillow"
    except ImportError:
        return None


def _with_matplotlib(curves: Mapping[str, Sequence[Mapping[str, Any]]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5), dpi=100)
    for side, curve in curves.items():
        xs, ys = zip(*_points(curve), strict=True) if curve else ((), ())
        colour = tuple(c / 255 for c in COLOURS.get(side, (0, 0, 0)))
        axes.plot(xs, [100 * y for y in ys], marker="o", color=colour, label=LABELS.get(side, side))
    axes.set(title=title, xlabel="training time (s, evaluation excluded)", ylabel="held-out success (%)")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _ticks(top: float, count: int = 5) -> list[float]:
    """Round tick values from 0 up to the first one at or above ``top`` (about ``count`` steps)."""
    raw = max(top, 1e-9) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [round(step * i, 10) for i in range(math.ceil(top / step - 1e-9) + 1)] if top > 0 else [0.0, step]


def _with_pillow(curves: Mapping[str, Sequence[Mapping[str, Any]]], path: Path, title: str) -> None:
    from PIL import Image, ImageDraw

    width, height, left, right, top, bottom = 800, 500, 70, 20, 40, 60
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    points = {side: _points(curve) for side, curve in curves.items()}
    x_ticks = _ticks(max([x for pts in points.values() for x, _ in pts] + [1.0]))
    y_ticks = _ticks(1.1 * max([100 * y for pts in points.values() for _, y in pts] + [10.0]))
    x_max, y_max = x_ticks[-1], y_ticks[-1]

    def at(x: float, y: float) -> tuple[float, float]:
        return (left + (width - left - right) * x / x_max, height - bottom - (height - top - bottom) * y / y_max)

    for value in y_ticks:
        _, y = at(0, value)
        draw.line([(left, y), (width - right, y)], fill=(230, 230, 230))
        draw.text((left - 8, y), f"{value:g}", fill="black", anchor="rm")
    for value in x_ticks:
        x, _ = at(value, 0)
        draw.line([(x, top), (x, height - bottom)], fill=(230, 230, 230))
        draw.text((x, height - bottom + 8), f"{value:g}", fill="black", anchor="mt")
    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    draw.text((width / 2, 15), title, fill="black", anchor="mm")
    draw.text((width / 2, height - 20), "training time (s, evaluation excluded)", fill="black", anchor="mm")
    draw.text((8, top - 20), "held-out success (%)", fill="black")
    for row, (side, pts) in enumerate(points.items()):
        colour = COLOURS.get(side, (0, 0, 0))
        pixels = [at(x, 100 * y) for x, y in pts]
        if len(pixels) > 1:
            draw.line(pixels, fill=colour, width=2)
        for x, y in pixels:
            draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=colour)
        draw.line([(left + 15, top + 15 + 18 * row), (left + 40, top + 15 + 18 * row)], fill=colour, width=3)
        draw.text((left + 48, top + 15 + 18 * row), LABELS.get(side, side), fill="black", anchor="lm")
    image.save(path, format="PNG")
