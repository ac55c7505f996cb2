"""How a turn reads on screen: four columns side by side, and the small number formats around them.

A turn becomes four Rich texts: what the model wrote, the call parsed out of it (pretty JSON) or the
parse error, what the MCP server answered (or the tool's error), and the status with its reward,
coloured by :data:`workbench.styles.STATUS_STYLE`. Live, Chat and Replay all use these, so a turn
looks the same everywhere. Rich only: nothing here imports Textual.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from workbench.styles import STATUS_STYLE

# Chat turns with no call are final answers; they are not an environment status.
ANSWER_STYLE = "bold blue"
COLUMN_TITLES = ("model output", "parsed call", "MCP response", "status")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def status_style(status: str | None) -> str:
    """The colour of a status (answers and unknown statuses get their own neutral colours)."""
    if status == "answer":
        return ANSWER_STYLE
    return STATUS_STYLE.get(status or "", "dim")


def clean(text: Any) -> str:
    """Text safe to paint: control characters (a tiny model writes plenty) become a visible dot."""
    return _CONTROL.sub("·", str(text or "")).replace("\t", "  ")


def clip(text: str, width: int | None = None, max_lines: int | None = None) -> str:
    """Wrap ``text`` to ``width`` and keep at most ``max_lines`` lines, marking what was cut."""
    if width is None or width <= 0:
        lines = text.splitlines() or [""]
    else:
        lines = []
        for line in text.splitlines() or [""]:
            lines.extend(line[i : i + width] for i in range(0, max(len(line), 1), width))
    if max_lines is not None and len(lines) > max_lines:
        kept = lines[:max_lines]
        tail = kept[-1]
        if width is not None and width > 1 and len(tail) >= width:
            tail = tail[: width - 1]
        kept[-1] = tail + "…"
        lines = kept
    return "\n".join(lines)


def pretty_call(call: Mapping[str, Any], width: int | None = None) -> str:
    """A call as the model should have written it: ``{"name": ..., "arguments": {...}}``. Indented in a
    panel (no width); compact in a narrow table column, where indentation would cost more lines than
    it saves."""
    value = {"name": call.get("name"), "arguments": call.get("arguments") or {}}
    if width is not None:
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, indent=2, ensure_ascii=False)


def signed(value: float | None, digits: int = 1) -> str:
    """A reward with its sign (``+10.0``, ``-0.8``); an em dash when unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:+.{digits}f}"


@dataclass(frozen=True)
class TurnCells:
    """The four columns of one turn."""

    output: Text
    call: Text
    response: Text
    outcome: Text

    def as_tuple(self) -> tuple[Text, Text, Text, Text]:
        return (self.output, self.call, self.response, self.outcome)

    @property
    def height(self) -> int:
        """Lines the tallest column needs (each column is clipped to its width already)."""
        return max(len(cell.plain.splitlines() or [""]) for cell in self.as_tuple())


def output_text(turn: Mapping[str, Any], width: int | None = None, max_lines: int | None = None) -> Text:
    """What the model wrote; a thinking block, when there is one, is dimmed above the rest."""
    raw = clean(turn.get("raw_text"))
    thinking = clean(turn.get("thinking"))
    text = Text()
    if thinking:
        visible = raw.split("</think>", 1)[-1].lstrip("\n") if "</think>" in raw else raw
        body = clip(f"<think>{thinking}</think>\n{visible}", width, max_lines)
        split = min(len(body), len(thinking) + len("<think></think>"))
        text.append(body[:split], style="dim italic")
        text.append(body[split:])
        return text
    text.append(clip(raw, width, max_lines) if raw else "(nothing)", style="" if raw else "dim")
    return text


def call_text(turn: Mapping[str, Any], width: int | None = None, max_lines: int | None = None) -> Text:
    """The parsed call(s) as pretty JSON, or the parse error when nothing usable was parsed."""
    calls = [c for c in turn.get("calls") or [] if isinstance(c, Mapping)]
    if calls:
        body = "\n".join(pretty_call(call, width) for call in calls)
        return Text(clip(clean(body), width, max_lines), style="white")
    error = turn.get("parse_error")
    if error:
        return Text(clip("parse error: " + clean(error), width, max_lines), style=status_style(turn.get("status")))
    if turn.get("status") == "answer":
        return Text("(final answer, no call)", style="dim")
    return Text("(no call)", style="dim")


def response_text(turn: Mapping[str, Any], width: int | None = None, max_lines: int | None = None) -> Text:
    """What the MCP server answered, per call; errors in their status colour. Without a call, the
    environment's feedback to the model (what it was told to fix)."""
    calls = [c for c in turn.get("calls") or [] if isinstance(c, Mapping)]
    text = Text()
    if calls:
        parts = []
        for call in calls:
            body = clean(call.get("response"))
            style = status_style(call.get("status")) if call.get("is_error") else ""
            parts.append((body or "(empty)", style))
        joined = "\n".join(p for p, _ in parts)
        clipped = clip(joined, width, max_lines)
        style = next((s for _, s in parts if s), "")
        text.append(clipped, style=style)
        return text
    feedback = clean(turn.get("feedback"))
    text.append(clip(feedback, width, max_lines) if feedback else "—", style="dim")
    return text


def outcome_text(turn: Mapping[str, Any]) -> Text:
    """Status and reward, coloured; the calls' latency below when any call ran."""
    status = str(turn.get("status") or "?")
    text = Text(status, style=status_style(status))
    text.append("\n")
    reward = turn.get("reward")
    text.append(signed(reward if isinstance(reward, (int, float)) else None), style=status_style(status))
    latency = sum(float(c.get("latency_s") or 0.0) for c in turn.get("calls") or [] if isinstance(c, Mapping))
    if latency:
        text.append(f"\n{latency * 1000:.0f} ms", style="dim")
    return text


def turn_cells(
    turn: Mapping[str, Any], widths: Sequence[int] | None = None, max_lines: int | None = None
) -> TurnCells:
    """The four columns of a turn, each wrapped to its width and clipped to ``max_lines``."""
    w = list(widths) if widths is not None else [None, None, None, None]
    return TurnCells(
        output_text(turn, w[0], max_lines),
        call_text(turn, w[1], max_lines),
        response_text(turn, w[2], max_lines),
        outcome_text(turn),
    )


def episode_label(row: Any, turn_index: int, n_turns: int) -> Text:
    """The first column of a turn row: the episode on its first turn, the turn number after."""
    if turn_index == 0:
        text = Text(f"#{row.id} ", style="bold")
        text.append(f"it{row.iteration}", style="dim")
        text.append(f"\n{row.phase} · {row.suite}", style="dim")
        outcome = "success" if row.success else (row.final_status or row.outcome)
        text.append(f"\n{row.outcome} {signed(row.total_reward)}", style=status_style(outcome))
        text.append(f"\nturn 1/{n_turns}", style="dim")
        return text
    return Text(f"  turn {turn_index + 1}/{n_turns}", style="dim")


# --------------------------------------------------------------------------------------------
# Numbers


def duration(seconds: float | None) -> str:
    """``1:02:03`` style elapsed time; an em dash when unknown."""
    if seconds is None or seconds < 0 or math.isnan(seconds):
        return "—"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def percent(value: float | None, digits: int = 0) -> str:
    """A share as a percentage; an em dash when unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value * 100:.{digits}f}%"


def number(value: float | None, digits: int = 2) -> str:
    """A metric value, compact; an em dash when unknown."""
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return "—"
    if value != 0 and (abs(value) >= 10_000 or abs(value) < 10 ** -digits):
        return f"{value:.{digits}e}"
    return f"{value:.{digits}f}"


def when(timestamp: float | None) -> str:
    """A local date and time (``2025-01-31 14:05``); an em dash when unknown."""
    if not timestamp:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def megabytes(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / 1024:.1f} GB" if value >= 1024 else f"{value:.0f} MB"
