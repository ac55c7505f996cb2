"""A run as one self-contained HTML page: curves, status shares, tool health, and telling episodes.

The page has no scripts and loads nothing: CSS and SVG charts (``trainer.svg_charts``) are inline,
so it can be mailed, archived, or opened offline. Torch-free: the UI can write one directly.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from trainer.store import STATUSES, EpisodeRow, RunReader
from trainer.svg_charts import STATUS_COLORS, Series, bar, line_chart, stacked_chart

MAX_TEXT = 600
MAX_RESPONSE = 300

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1120px;
color:#111827;background:#fff;padding:0 16px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #e5e7eb}
.meta{color:#4b5563}.grid{display:flex;flex-wrap:wrap;gap:12px}
figure.chart{margin:0;border:1px solid #e5e7eb;border-radius:6px;padding:8px}
figcaption{font-weight:600;margin-bottom:4px}.legend{font-size:12px;color:#374151}
.key{margin-right:10px;white-space:nowrap}.key i{display:inline-block;width:10px;height:10px;margin-right:4px;
border-radius:2px}
svg .grid{stroke:#f3f4f6}svg .axis{stroke:#9ca3af}svg .tick{font-size:10px;fill:#6b7280}
svg .empty{font-size:12px;fill:#9ca3af}
table{border-collapse:collapse;margin:6px 0}td,th{border-bottom:1px solid #f3f4f6;padding:3px 8px;text-align:left;
vertical-align:top}th{font-weight:600;color:#374151}
.status{font-weight:600}pre{white-space:pre-wrap;word-break:break-word;margin:0;font-size:12px;
background:#f9fafb;padding:4px;border-radius:4px}
details.episode{border:1px solid #e5e7eb;border-radius:6px;padding:6px 10px;margin:8px 0}
details.episode summary{cursor:pointer}
"""


def _time(value: float | None) -> str:
    return dt.datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M") if value else "-"


def _short(text: Any, limit: int) -> str:
    text = str(text or "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _metric_series(iterations: Sequence[Mapping[str, Any]], key: str, name: str | None = None) -> Series:
    return Series(name or key, [(float(row["iteration"]), row.get(key)) for row in iterations])


def _curves(iterations: Sequence[Mapping[str, Any]]) -> str:
    charts = [
        line_chart("Mean return per episode", [_metric_series(iterations, "mean_return", "return")]),
        line_chart("Success rate", [_metric_series(iterations, "success_rate", "success")], percent=True,
                   y_min=0.0, y_max=1.0),
        line_chart("KL to the reference policy", [_metric_series(iterations, "kl", "kl")]),
        line_chart("Entropy", [_metric_series(iterations, "entropy", "entropy")]),
    ]
    return f'<h2>Training curves</h2><div class="grid">{"".join(charts)}</div>'


def _evals(reader: RunReader) -> str:
    rows = reader.evals()
    series: dict[str, Series] = {}
    for row in rows:
        name = f"{row.suite}/{row.split}"
        series.setdefault(name, Series(name)).points.append((float(row.iteration), row.success_rate))
    chart = line_chart("Held-out success rate", list(series.values()), percent=True, y_min=0.0, y_max=1.0)
    latest = {f"{row.suite}/{row.split}": row for row in rows}
    table = "".join(
        f"<tr><td>{escape(name)}</td><td>{row.iteration}</td><td>{row.n}</td><td>{_percent(row.success_rate)}</td>"
        f"<td>{'-' if row.mean_return is None else f'{row.mean_return:+.2f}'}</td></tr>"
        for name, row in latest.items()
    )
    table = (f"<table><tr><th>suite/split</th><th>iteration</th><th>episodes</th><th>success</th>"
             f"<th>return</th></tr>{table}</table>") if table else "<p>No held-out evaluation yet.</p>"
    return f'<h2>Held-out evaluations</h2><div class="grid">{chart}<div>{table}</div></div>'


def _statuses(iterations: Sequence[Mapping[str, Any]]) -> str:
    xs = [float(row["iteration"]) for row in iterations]
    layers = [(status, [row.get(f"share_{status}") for row in iterations], STATUS_COLORS[status])
              for status in STATUSES]
    return f"<h2>Turn statuses over time</h2>{stacked_chart('Share of turns by status', xs, layers, width=1040)}"


def _tools(reader: RunReader) -> str:
    health = reader.tool_health()
    if not health:
        return "<h2>Tool health</h2><p>No tool calls recorded yet.</p>"
    rows = "".join(
        f"<tr><td>{escape(tool.tool)}</td><td>{tool.calls}</td><td>{tool.errors}</td>"
        f"<td>{bar(tool.error_rate)} {tool.error_rate:.1%}</td><td>{tool.mean_latency_s * 1000:.1f} ms</td></tr>"
        for tool in health
    )
    return ("<h2>Tool health</h2><table><tr><th>tool</th><th>calls</th><th>errors</th><th>error rate</th>"
            f"<th>mean latency</th></tr>{rows}</table>")


def _comparisons(reader: RunReader) -> str:
    comparisons = reader.comparisons()
    if not comparisons:
        return ""
    parts = ["<h2>Checkpoint comparisons</h2>"]
    for comparison in comparisons[-5:]:
        policies = comparison.result.get("policies") or {}
        cells = "".join(
            f"<tr><td>{escape(label)}</td><td>{_percent((policies.get(label) or {}).get('success_rate'))}</td></tr>"
            for label in comparison.labels
        )
        disagreements = len(comparison.result.get("disagreements") or [])
        parts.append(f"<p>Comparison {comparison.id}, {_time(comparison.created_at)}: {comparison.n} tasks of "
                     f"{escape(comparison.suite)}/{escape(comparison.split)}, {disagreements} disagreement(s).</p>"
                     f"<table><tr><th>policy</th><th>success</th></tr>{cells}</table>")
    return "".join(parts)


def _turns(record: Mapping[str, Any]) -> str:
    rows = []
    for turn in record.get("turns") or []:
        if not isinstance(turn, Mapping):
            continue
        status = str(turn.get("status") or "")
        calls = [c for c in turn.get("calls") or [] if isinstance(c, Mapping)]
        call_text = "<br>".join(escape(_short(f"{c.get('name')} {c.get('arguments')}", 200)) for c in calls) or "-"
        answer = "<br>".join(escape(_short(c.get("response"), MAX_RESPONSE)) for c in calls) if calls else escape(
            _short(turn.get("feedback"), MAX_RESPONSE))
        rows.append(
            f"<tr><td>{turn.get('index', '')}</td>"
            f'<td class="status" style="color:{STATUS_COLORS.get(status, "#111827")}">{escape(status)}</td>'
            f"<td>{float(turn.get('reward') or 0.0):+g}</td><td><pre>{escape(_short(turn.get('raw_text'), MAX_TEXT))}"
            f"</pre></td><td>{call_text}</td><td>{answer}</td></tr>"
        )
    return ("<table><tr><th>#</th><th>status</th><th>reward</th><th>model wrote</th><th>call</th>"
            f"<th>tool answered</th></tr>{''.join(rows)}</table>")


def _episode(reader: RunReader, row: EpisodeRow) -> str:
    record = reader.episode(row.id)
    flags = ", ".join(flag.kind for flag in reader.flags(episode_id=row.id))
    return (f'<details class="episode" open><summary><b>episode {row.id}</b> · {escape(row.phase)} · iteration '
            f"{row.iteration} · {escape(row.task_id)} · {escape(row.outcome)} · reward {row.total_reward:+g}"
            + (f" · flagged {escape(flags)}" if flags else "")
            + f"</summary><p>{escape(row.instruction)}</p>{_turns(record)}</details>")


def _episodes(reader: RunReader, count: int) -> str:
    if count <= 0 or reader.count_episodes() == 0:
        return ""
    best = reader.episodes(order="best", limit=count)
    worst = reader.episodes(order="worst", limit=count)
    shown = {row.id for row in best}
    worst = [row for row in worst if row.id not in shown]
    parts = ["<h2>Best episodes</h2>", *(_episode(reader, row) for row in best)]
    if worst:
        parts += ["<h2>Worst episodes</h2>", *(_episode(reader, row) for row in worst)]
    parts.append(_flagged(reader))
    return "".join(parts)


def _flagged(reader: RunReader) -> str:
    flags = reader.flags()
    if not flags:
        return ""
    rows = []
    for flag in flags:
        row: EpisodeRow = reader.episode(flag.episode_id)["_row"]
        rows.append(f"<tr><td>{flag.episode_id}</td><td>{escape(flag.kind)}</td><td>{escape(flag.note or '')}</td>"
                    f"<td>{escape(row.task_id)}</td><td>{escape(row.instruction)}</td><td>{escape(row.outcome)}</td></tr>")
    return ("<h2>Flagged episodes</h2><table><tr><th>episode</th><th>flag</th><th>note</th><th>task</th>"
            f"<th>instruction</th><th>outcome</th></tr>{''.join(rows)}</table>")


def render_report(run_dir: str | Path, episodes: int = 5) -> str:
    """The report of a run as one HTML document (see the module docstring)."""
    with RunReader(run_dir) as reader:
        info = reader.run_info()
        iterations = reader.iterations()
        config = info.config
        task = config.get("task") or {}
        header = (
            f"<h1>{escape(info.name)}</h1><p class=\"meta\">model {escape(info.model)} · state "
            f"{escape(info.effective_state)} · created {_time(info.created_at)} · {len(iterations)} iteration(s) · "
            f"{reader.count_episodes()} episode(s) · suite {escape(str(task.get('suite', '-')))}</p>"
        )
        body = "".join((header, _curves(iterations), _evals(reader), _statuses(iterations), _tools(reader),
                        _comparisons(reader), _episodes(reader, episodes)))
    generated = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(info.name)} · '
            f"qwen-workbench report</title><style>{_CSS}</style></head><body>{body}"
            f'<p class="meta">Written by qwen-workbench on {generated}.</p></body></html>')


def write_report(run_dir: str | Path, out: str | Path, episodes: int = 5) -> Path:
    """Render the report and write it to ``out`` (atomically); returns the path."""
    out = Path(out)
    html = render_report(run_dir, episodes)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(html, encoding="utf-8")
        temporary.replace(out)
    finally:
        temporary.unlink(missing_ok=True)
    return out
