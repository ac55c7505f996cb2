"""Shared by the UI benches: notice when the workbench produces a frame, even when run headless.

Textual hands every screen update to ``App._display``; headless, it skips only the write to the
terminal. The hook below renders the update to terminal text (the work a real terminal frame costs)
and notes the time, so "key press to repaint" and "commit to on screen" are measured to a frame.
``_display`` is private Textual API: fine for a benchmark, never used by the product.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from workbench.app import WorkbenchApp


class FramedApp(WorkbenchApp):
    """The workbench, noting ``time.perf_counter()`` of every frame in ``frames``."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.frames: list[float] = []

    def _display(self, screen, renderable) -> None:  # noqa: D401 - hook
        if renderable is not None and not self._batch_count:
            render = getattr(renderable, "render_segments", None)
            if render is not None:
                render(self.console)
            self.frames.append(time.perf_counter())
        super()._display(screen, renderable)


async def next_frame(app: FramedApp, after: float, timeout: float = 5.0) -> float | None:
    """The time of the first frame after ``after`` (None if none within ``timeout`` seconds)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        later = [stamp for stamp in app.frames[-50:] if stamp > after]
        if later:
            return later[0]
        await asyncio.sleep(0.001)
    return None


def summary(values: list[float], scale: float = 1000.0, digits: int = 1) -> dict[str, float | int]:
    """n, p50, p95, p99 and max of ``values`` (in milliseconds by default)."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * scale, digits)

    return {"n": len(values), "p50": round(statistics.median(values) * scale, digits), "p95": pct(95),
            "p99": pct(99), "max": round(ordered[-1] * scale, digits)}
