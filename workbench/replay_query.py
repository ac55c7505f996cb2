"""The Replay screen's query: filter fields as typed, checked into an EpisodeFilter, one page at a time.

Every field is a string as the user typed it; :meth:`ReplayQuery.to_filter` turns them into the
store's :class:`~trainer.store.EpisodeFilter` or raises :class:`QueryError` with one line saying
which field is wrong and what it accepts. Pages are ``LIMIT/OFFSET`` reads of light rows plus a
count, so a run with 10,000 episodes pages as fast as one with 10.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any

from trainer.store import EPISODE_ORDERS, FLAG_KINDS, PHASES, STATUSES, EpisodeFilter, EpisodeRow, RunReader

PAGE_SIZE = 100
ORDERS = tuple(EPISODE_ORDERS)
_RANGE = re.compile(r"^\s*(\d+)\s*(?:-|\.\.)\s*(\d+)\s*$")
_BOUND = re.compile(r"^\s*(>=|<=|>|<)\s*(-?\d+)\s*$")


class QueryError(ValueError):
    """A filter field that cannot be used; the message names the field and what it accepts."""


@dataclass(frozen=True)
class ReplayQuery:
    """The filters as typed. Empty means "any"."""

    iteration: str = ""  # "5", "3-7", ">=10", "<4"
    phase: str = ""  # train | eval | chat
    status: str = ""  # the last turn's status; "any:tool_error" = any turn had it
    suite: str = ""
    min_reward: str = ""
    max_reward: str = ""
    search: str = ""
    flagged: str = ""  # good | bad | bug | any
    order: str = "newest"

    def with_(self, **changes: Any) -> ReplayQuery:
        return replace(self, **changes)

    def to_filter(self) -> EpisodeFilter:
        """The store filter for these fields, or QueryError naming the bad field."""
        criteria: dict[str, Any] = {}
        criteria.update(_iteration(self.iteration))
        phase = self.phase.strip()
        if phase:
            if phase not in PHASES:
                raise QueryError(f"phase must be one of {', '.join(PHASES)}")
            criteria["phase"] = phase
        status = self.status.strip()
        if status:
            key = "status"
            if status.startswith("any:"):
                key, status = "any_status", status[4:]
            if status not in STATUSES:
                raise QueryError(f"status must be one of {', '.join(STATUSES)}")
            criteria[key] = status
        if self.suite.strip():
            criteria["suite"] = self.suite.strip()
        for name, key in (("min_reward", "min_reward"), ("max_reward", "max_reward")):
            value = getattr(self, name).strip()
            if value:
                criteria[key] = _float(value, name.replace("_", " "))
        flagged = self.flagged.strip()
        if flagged:
            if flagged not in (*FLAG_KINDS, "any"):
                raise QueryError(f"flag must be one of {', '.join(FLAG_KINDS)} or any")
            criteria["flagged"] = flagged
        if self.search.strip():
            criteria["search"] = self.search.strip()[:200]
        if self.order not in ORDERS:
            raise QueryError(f"order must be one of {', '.join(ORDERS)}")
        return EpisodeFilter(**criteria)

    def describe(self) -> str:
        """The active filters in one line (for the pager), or "all episodes"."""
        parts = [
            f"{f.name.replace('_', ' ')} {getattr(self, f.name).strip()}"
            for f in fields(self)
            if f.name != "order" and getattr(self, f.name).strip()
        ]
        return ", ".join(parts) or "all episodes"


def _iteration(text: str) -> dict[str, int]:
    text = text.strip()
    if not text:
        return {}
    if text.isdigit():
        return {"iteration": int(text)}
    match = _RANGE.match(text)
    if match:
        lo, hi = sorted((int(match.group(1)), int(match.group(2))))
        return {"min_iteration": lo, "max_iteration": hi}
    match = _BOUND.match(text)
    if match:
        op, value = match.group(1), int(match.group(2))
        return {
            ">=": {"min_iteration": value},
            ">": {"min_iteration": value + 1},
            "<=": {"max_iteration": value},
            "<": {"max_iteration": value - 1},
        }[op]
    raise QueryError("iteration takes a number (5), a range (3-7) or a bound (>=10, <4)")


def _float(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise QueryError(f"{what} must be a number, e.g. -1.5") from None
    if math.isnan(value) or math.isinf(value):
        raise QueryError(f"{what} must be a finite number")
    return value


@dataclass(frozen=True)
class Page:
    """One page of matching episodes, and where it sits among all of them."""

    rows: list[EpisodeRow]
    total: int
    page: int  # 0-based, clamped to the pages that exist
    page_size: int
    flags: dict[int, tuple[str, ...]] = field(default_factory=dict)  # episode id -> its flag kinds

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))

    @property
    def first(self) -> int:
        """1-based number of the first row on this page (0 when empty)."""
        return self.page * self.page_size + 1 if self.rows else 0

    def describe(self) -> str:
        return f"page {self.page + 1}/{self.pages} · {self.total:,} episodes"


def fetch_page(reader: RunReader, query: ReplayQuery, page: int = 0, page_size: int = PAGE_SIZE) -> Page:
    """The rows of page ``page`` (clamped into range) for ``query``; QueryError on a bad field."""
    flt = query.to_filter()
    total = reader.count_episodes(flt)
    pages = max(1, math.ceil(total / page_size))
    page = min(max(0, page), pages - 1)
    rows = reader.episodes(flt, limit=page_size, offset=page * page_size, order=query.order)
    on_page = {row.id for row in rows}
    flags: dict[int, tuple[str, ...]] = {}
    for flag in reader.flags():  # a person's flags: a handful per run, so all of them is cheap
        if flag.episode_id in on_page:
            flags[flag.episode_id] = (*flags.get(flag.episode_id, ()), flag.kind)
    return Page(rows, total, page, page_size, flags)
