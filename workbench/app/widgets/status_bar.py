"""The run's status line: state (crashed included), iteration, throughput, device, memory, elapsed."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widget import Widget

from trainer.store import RunInfo
from workbench.formatting import duration, megabytes, number
from workbench.live_feed import elapsed_s

STATE_STYLE = {
    "running": "bold green",
    "paused": "bold yellow",
    "created": "cyan",
    "stopped": "bold white",
    "finished": "bold blue",
    "crashed": "bold white on red",
    "starting": "bold cyan",
}


def state_text(state: str | None) -> Text:
    state = state or "—"
    return Text(f" {state} ", style=STATE_STYLE.get(state, "bold"))


def status_line(
    info: RunInfo | None,
    last: dict[str, Any] | None,
    *,
    rss_mb: float | None = None,
    note: str | None = None,
    waiting: str | None = None,
    now: float | None = None,
) -> Text:
    """Everything the status line says, in one Text (a pure function: tested and snapshot-stable)."""
    text = Text(no_wrap=True, overflow="ellipsis")
    if info is None:
        text.append_text(state_text("starting" if waiting else None))
        text.append(f"  {waiting or 'no run open'}", style="dim")
        return text
    text.append_text(state_text(info.effective_state))
    text.append(f"  {info.name}", style="bold")
    config = info.config or {}
    total = (config.get("run") or {}).get("iterations")
    iteration = last.get("iteration") if last else None
    shown = "—" if iteration is None else str(iteration + 1)
    text.append(f"  iter {shown}/{total or '?'}")
    if last:
        text.append(f"  {number(last.get('episodes_per_s'), 2)} ep/s")
        text.append(f"  {number(last.get('tokens_per_s'), 0)} tok/s")
    model = config.get("model") or {}
    text.append(f"  {model.get('device', '?')}", style="cyan")
    gpu = last.get("peak_gpu_mem_mb") if last else None
    if gpu is not None:
        text.append(f"  gpu {megabytes(gpu)}")
    elif rss_mb is not None:
        text.append(f"  mem {megabytes(rss_mb)}")
    text.append(f"  {duration(elapsed_s(info, now))}", style="dim")
    if info.effective_state == "crashed":
        reason = info.error or "the trainer process is gone (no heartbeat)"
        text.append(f"  {reason}", style="red")
    if note:
        text.append(f"  {note}", style="italic yellow")
    return text


class StatusBar(Widget):
    """One line at the top of the Live and Chat screens.

    A plain widget rather than a Static: a new text repaints this line only, where Static.update
    would lay out the whole screen again (the line changes every second while a run trains).
    """

    DEFAULT_CSS = "StatusBar { height: 1; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.text = Text()

    def show(self, text: Text) -> None:
        if text.plain != self.text.plain or text.spans != self.text.spans:
            self.text = text
            self.refresh()

    def render(self) -> Text:
        return self.text
