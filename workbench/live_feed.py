"""What the Live screen shows, read incrementally from the run store with bounded memory.

:class:`LiveFeed` remembers the newest episode id and iteration it has seen and asks the store only
for what came after (``episodes_after``, ``iterations(since=...)``): a poll costs a few index lookups
however long the run is. The app polls a few times a second from a worker thread and applies each
:class:`FeedUpdate` in one batch. Everything kept is bounded: the last ``max_episodes`` episodes, and
iteration metrics in a :class:`DecimatingSeries` that halves its resolution instead of growing, so a
workbench left open on a days-long run holds the same memory as on a new one.

A trainer that resumes from a checkpoint rewinds the run (later episodes are discarded and redone);
the feed notices (a new trainer pid, or ids and iterations going backwards) and starts over.
"""

from __future__ import annotations

import socket
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.store import (
    STATUSES,
    Checkpoint,
    EpisodeRow,
    EvalRow,
    RunInfo,
    RunReader,
    StoreError,
    ToolHealth,
)

# The metrics of an iteration the Live screen plots or prints; the rest stay in the store.
KEPT_METRICS = (
    "mean_return",
    "success_rate",
    *(f"share_{status}" for status in STATUSES),
    "kl",
    "entropy",
    "tokens_per_s",
    "episodes_per_s",
    "step_time_s",
    "peak_gpu_mem_mb",
    "time",
)


class DecimatingSeries:
    """An append-only sequence that never holds more than ``capacity`` items.

    When full it drops every other item and from then on keeps only every ``stride``-th new one, so
    it always spans the whole history at an even (coarser) resolution. The newest item is always
    available as :attr:`last`, kept or not, so a chart's right edge is never stale.
    """

    def __init__(self, capacity: int = 1024) -> None:
        if capacity < 2:
            raise ValueError("capacity must be at least 2")
        self.capacity = capacity
        self.stride = 1
        self._items: list[Any] = []
        self._count = 0
        self.last: Any = None

    def append(self, item: Any) -> None:
        if self._count % self.stride == 0:
            self._items.append(item)
            if len(self._items) >= self.capacity:
                self._items = self._items[::2]
                self.stride *= 2
        self._count += 1
        self.last = item

    def items(self) -> list[Any]:
        """The kept items, plus the newest one when it was not kept."""
        if self.last is not None and (not self._items or self._items[-1] is not self.last):
            return [*self._items, self.last]
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items())

    @property
    def count(self) -> int:
        """How many items were ever appended."""
        return self._count


@dataclass
class EpisodeView:
    """An episode as the Live screen needs it: its light row and its turns."""

    row: EpisodeRow
    turns: list[dict[str, Any]]


@dataclass
class FeedUpdate:
    """What changed since the last poll (applied by the UI in one batch)."""

    info: RunInfo | None = None
    waiting: str | None = None  # why there is nothing to read yet (no database, unreadable run)
    reset: bool = False  # start over: the run was rewound, or the feed skipped ahead
    episodes: list[EpisodeView] = field(default_factory=list)
    iterations: list[dict[str, Any]] = field(default_factory=list)
    tool_health: list[ToolHealth] | None = None  # None: unchanged
    checkpoints: list[Checkpoint] | None = None
    evals: list[EvalRow] | None = None
    trainer_rss_mb: float | None = None
    polled_at: float = 0.0
    poll_s: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.reset or self.episodes or self.iterations or self.tool_health is not None)


def process_rss_mb(pid: int | None, host: str | None) -> float | None:
    """Resident memory of a process on this host, from /proc (None where that is not available)."""
    if pid is None or host != socket.gethostname():
        return None
    try:
        with open(f"/proc/{int(pid)}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class LiveFeed:
    """Incremental, bounded reader of one run for the Live screen (one poll at a time)."""

    def __init__(
        self,
        run_dir: Path | str,
        *,
        backlog: int = 24,
        batch: int = 64,
        max_episodes: int = 150,
        capacity: int = 1024,
        slow_every_s: float = 1.0,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.backlog = backlog
        self.batch = batch
        self.max_episodes = max_episodes
        self.capacity = capacity
        self.slow_every_s = slow_every_s
        self._reader: RunReader | None = None
        self._clear()

    def _clear(self) -> None:
        self.episodes: deque[EpisodeView] = deque(maxlen=self.max_episodes)
        self.series = DecimatingSeries(self.capacity)
        self.last_episode_id: int | None = None
        self.last_iteration: int | None = None
        self.info: RunInfo | None = None
        self.tool_health: list[ToolHealth] = []
        self.checkpoints: list[Checkpoint] = []
        self.evals: list[EvalRow] = []
        self._slow_at = 0.0

    @property
    def reader(self) -> RunReader | None:
        return self._reader

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _open(self) -> RunReader:
        if self._reader is None:
            self._reader = RunReader(self.run_dir)
        return self._reader

    def poll(self) -> FeedUpdate:
        """Read what is new; a run that cannot be read yet gives an update with ``waiting`` set."""
        started = time.perf_counter()
        try:
            update = self._poll(self._open())
        except StoreError as exc:
            self.close()
            update = FeedUpdate(info=self.info, waiting=str(exc))
        update.polled_at = time.time()
        update.poll_s = time.perf_counter() - started
        return update

    def _poll(self, reader: RunReader) -> FeedUpdate:
        info = reader.run_info()
        latest = reader.latest_episode_id()
        last_iteration = reader.last_iteration()
        update = FeedUpdate(info=info)
        rewound = self.last_episode_id is not None and (
            latest < self.last_episode_id
            or (self.last_iteration is not None and (last_iteration is None or last_iteration < self.last_iteration))
            or (self.info is not None and info.pid != self.info.pid and info.effective_state == "running")
        )
        behind = self.last_episode_id is not None and latest - self.last_episode_id > self.max_episodes
        if rewound or behind:
            self._clear()
            update.reset = True
        self.info = info
        if self.last_episode_id is None:
            self.last_episode_id = max(0, latest - self.backlog)
            update.reset = True
        for row in reader.episodes_after(self.last_episode_id, limit=self.batch):
            view = EpisodeView(row, self._turns(reader, row.id))
            self.episodes.append(view)
            update.episodes.append(view)
            self.last_episode_id = row.id
        new_iterations = reader.iterations(since=self.last_iteration)
        for metrics in new_iterations:
            kept = {"iteration": metrics["iteration"], **{k: metrics.get(k) for k in KEPT_METRICS}}
            self.series.append(kept)
            update.iterations.append(kept)
            self.last_iteration = metrics["iteration"]
        now = time.monotonic()
        if new_iterations or update.reset or now - self._slow_at >= self.slow_every_s:
            # the small tables, re-read now and then; handed on only when they changed
            self._slow_at = now
            health, checkpoints, evals = reader.tool_health(), reader.checkpoints(), reader.evals()
            if update.reset or health != self.tool_health:
                self.tool_health = update.tool_health = health
            if update.reset or checkpoints != self.checkpoints:
                self.checkpoints = update.checkpoints = checkpoints
            if update.reset or evals != self.evals:
                self.evals = update.evals = evals
        if info.effective_state in ("running", "paused"):
            update.trainer_rss_mb = process_rss_mb(info.pid, info.host)
        return update

    @staticmethod
    def _turns(reader: RunReader, episode_id: int) -> list[dict[str, Any]]:
        try:
            record = reader.episode(episode_id)
        except StoreError:
            return []
        return [turn for turn in record.get("turns") or [] if isinstance(turn, dict)]


def elapsed_s(info: RunInfo | None, now: float | None = None) -> float | None:
    """How long the run has been training: until now while live, until it ended otherwise."""
    if info is None or info.started_at is None:
        return None
    if info.effective_state in ("running", "paused"):
        end = time.time() if now is None else now
    else:
        end = info.ended_at or info.heartbeat_at or info.started_at
    return max(0.0, end - info.started_at)
