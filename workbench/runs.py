"""Runs on disk, and the trainer and policy processes the workbench starts for them.

The workbench never trains in its own process: a trainer is ``python -m trainer train --run-dir D``
started with :func:`asyncio.create_subprocess_exec` (``multiprocessing`` does not work inside a
running Textual app), stdin closed, output appended to ``D/trainer.log``. It runs in its own session,
so closing the workbench leaves a long run going; ``qwen-workbench open D`` attaches to it again.
Children run at a lower CPU priority (``CHILD_NICENESS``): where the cores are few, a trainer that
saturates them would otherwise starve the interface it is shown in; with idle cores it changes nothing.
Chat with a run that has no trainer starts a policy process (``python -m trainer serve``) the same
way; those are stopped when the workbench closes.

Nothing here imports Textual: the app calls these functions, tests and benches call them directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from trainer.config import PRESETS, ConfigError, load_config
from trainer.store import CONFIG_NAME, DB_NAME, LOG_NAME, RunSummary, list_runs

DEFAULT_RUNS_DIR = Path("runs")
SERVE_LOG_NAME = "serve.log"
SERVE_IDLE_EXIT_S = 900.0
DEVICES = ("cpu", "auto", "cuda")
CHILD_NICENESS = 5  # added to a child's nice value, right after it starts (before torch spawns threads)
_SOURCE_ROOT = Path(__file__).resolve().parent.parent


class RunsError(Exception):
    """A run that cannot be started or a form that cannot be used, with a one-line reason."""


def discover(runs_dir: Path | str) -> list[RunSummary]:
    """Every run under ``runs_dir`` (newest first; unreadable folders last, with their reason)."""
    return list_runs(runs_dir)


def is_run_dir(path: Path | str) -> bool:
    """Whether ``path`` already holds a run (its database or its saved config)."""
    path = Path(path)
    return (path / DB_NAME).is_file() or (path / CONFIG_NAME).is_file()


def new_run_dir(runs_dir: Path | str, now: float | None = None) -> Path:
    """A fresh, not yet existing ``runs_dir/run-YYYYmmdd-HHMMSS`` (suffixed when that name is taken)."""
    root = Path(runs_dir)
    stamp = time.strftime("run-%Y%m%d-%H%M%S", time.localtime(now))
    candidate, n = root / stamp, 2
    while candidate.exists():
        candidate, n = root / f"{stamp}-{n}", n + 1
    return candidate


# --------------------------------------------------------------------------------------------
# The new-run form


def suite_choices() -> list[str]:
    """The task suites a run can train on (read from the suites module, which is light)."""
    from mcp_servers.tasks.suites import suite_names

    names = suite_names()
    return ["all", *[name for name in names if name != "all"]]


@dataclass(frozen=True)
class NewRun:
    """What the new-run form asks; the defaults start the tiny model on the CPU.

    Empty strings mean "the preset's value", so the form never has to know every preset.
    """

    preset: str = "tiny-cpu"
    model: str = ""
    suite: str = "all"
    device: str = ""
    iterations: str = ""
    extra: str = ""  # more KEY=VALUE settings, separated by spaces

    def overrides(self) -> list[str]:
        """The ``--set`` arguments this form stands for."""
        items: list[str] = []
        if self.model.strip():
            items.append(f"model.name={self.model.strip()}")
        if self.suite.strip():
            items.append(f"task.suite={self.suite.strip()}")
        if self.device.strip():
            items.append(f"model.device={self.device.strip()}")
        if self.iterations.strip():
            items.append(f"run.iterations={self.iterations.strip()}")
        items.extend(item for item in self.extra.split() if item)
        return items

    def check(self) -> None:
        """Raise RunsError with the config's own one-line message when the settings cannot work."""
        if self.preset not in PRESETS:
            raise RunsError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        if self.device.strip() and self.device.strip() not in DEVICES:
            raise RunsError(f"device must be one of {', '.join(DEVICES)}")
        try:
            load_config(preset_name=self.preset, overrides=self.overrides())
        except ConfigError as exc:
            raise RunsError(str(exc)) from None


def train_command(
    run_dir: Path, *, preset: str | None = None, overrides: Sequence[str] = (), resume: bool = False
) -> list[str]:
    """The argv of a trainer process for ``run_dir``."""
    argv = [sys.executable, "-m", "trainer", "train", "--run-dir", str(run_dir)]
    if resume:
        argv.append("--resume")
    elif preset:
        argv += ["--preset", preset]
    for item in overrides:
        argv += ["--set", item]
    return argv


def serve_command(run_dir: Path, checkpoint: str | None = None, idle_exit_s: float = SERVE_IDLE_EXIT_S) -> list[str]:
    """The argv of a policy process answering chat commands for ``run_dir``."""
    argv = [sys.executable, "-m", "trainer", "serve", "--run-dir", str(run_dir), "--idle-exit", f"{idle_exit_s:g}"]
    if checkpoint:
        argv += ["--checkpoint", str(checkpoint)]
    return argv


def lower_priority(pid: int, niceness: int = CHILD_NICENESS) -> None:
    """Raise a child's nice value by ``niceness`` (best effort: some systems refuse, nothing breaks)."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, pid, os.getpriority(os.PRIO_PROCESS, pid) + niceness)


def child_env() -> dict[str, str]:
    """The environment of a child: unbuffered output (the log is live), and this source tree on the
    path when the workbench runs from a checkout that is not installed."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    if (_SOURCE_ROOT / "trainer" / "__init__.py").is_file():
        parts = [str(_SOURCE_ROOT), *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    return env


def log_tail(path: Path, lines: int = 5, max_bytes: int = 16_384) -> list[str]:
    """The last lines of a log (reads only its end, so a days-long log costs nothing)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    text = text.replace("\r", "\n")
    return [line for line in text.splitlines() if line.strip()][-lines:]


# --------------------------------------------------------------------------------------------
# Child processes


@dataclass
class Child:
    """A trainer or policy process started by this workbench."""

    kind: str  # "train" | "serve"
    run_dir: Path
    argv: list[str]
    process: asyncio.subprocess.Process
    log_path: Path
    started_at: float = field(default_factory=time.time)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def failure(self) -> str | None:
        """Why the process ended badly (its exit code and the log's last line), or None."""
        code = self.process.returncode
        if code in (None, 0):
            return None
        tail = log_tail(self.log_path, 1)
        return f"{self.kind} process exited with code {code}" + (f": {tail[-1]}" if tail else "")

    def kill(self) -> None:
        """SIGKILL the process (for tests and for a trainer that will not stop)."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    async def terminate(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; returns the exit code."""
        if self.running:
            try:
                self.process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(self.process.wait(), timeout)
            except ProcessLookupError:
                pass
            except TimeoutError:
                self.kill()
                await self.process.wait()
        return self.process.returncode

    async def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the process to end (None after ``timeout`` seconds if it has not)."""
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            return None


class Children:
    """The processes this workbench started, by run and kind (one of each per run at a time)."""

    def __init__(self) -> None:
        self._children: dict[tuple[Path, str], Child] = {}

    def get(self, run_dir: Path, kind: str) -> Child | None:
        """The live child of that kind for that run, if any."""
        child = self._children.get((Path(run_dir).resolve(), kind))
        return child if child is not None and child.running else None

    def last(self, run_dir: Path, kind: str) -> Child | None:
        """The newest child of that kind for that run, finished or not (to explain a failure)."""
        return self._children.get((Path(run_dir).resolve(), kind))

    def all(self) -> list[Child]:
        return list(self._children.values())

    async def _spawn(self, kind: str, run_dir: Path, argv: list[str], log_name: str) -> Child:
        run_dir = Path(run_dir)
        if self.get(run_dir, kind) is not None:
            raise RunsError(f"a {kind} process for {run_dir.name} is already running")
        run_dir.mkdir(parents=True, exist_ok=True)
        log_path = run_dir / log_name
        with log_path.open("ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} workbench started: {' '.join(argv)}\n".encode())
            log.flush()
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=child_env(),
                start_new_session=True,
            )
        lower_priority(process.pid)
        child = Child(kind, run_dir, argv, process, log_path)
        self._children[(run_dir.resolve(), kind)] = child
        return child

    async def start_train(
        self,
        run_dir: Path,
        *,
        preset: str | None = None,
        overrides: Sequence[str] = (),
        resume: bool = False,
    ) -> Child:
        """Start a trainer for a new run folder, or resume the run in ``run_dir`` (``resume=True``)."""
        run_dir = Path(run_dir)
        if resume and not (run_dir / CONFIG_NAME).is_file():
            raise RunsError(f"{run_dir} is not a run folder (no {CONFIG_NAME}); start a new run instead")
        if not resume and is_run_dir(run_dir):
            raise RunsError(f"{run_dir} already holds a run; resume it or pick another folder")
        argv = train_command(run_dir, preset=preset, overrides=overrides, resume=resume)
        return await self._spawn("train", run_dir, argv, LOG_NAME)

    async def start_new_run(self, runs_dir: Path, form: NewRun | None = None) -> Child:
        """Check the form, make a fresh run folder under ``runs_dir`` and start its trainer."""
        form = form or NewRun()
        form.check()
        return await self.start_train(new_run_dir(runs_dir), preset=form.preset, overrides=form.overrides())

    async def start_serve(self, run_dir: Path, checkpoint: str | None = None) -> Child:
        """Start a policy process that answers chat commands for a run with no trainer."""
        return await self._spawn("serve", Path(run_dir), serve_command(Path(run_dir), checkpoint), SERVE_LOG_NAME)

    async def stop_serving(self, timeout: float = 5.0) -> None:
        """End every policy process (a trainer keeps running on its own)."""
        await asyncio.gather(*(c.terminate(timeout) for c in self.all() if c.kind == "serve" and c.running))

    async def terminate_all(self, timeout: float = 5.0) -> None:
        """End every child, trainers included (tests and benches clean up with this)."""
        await asyncio.gather(*(c.terminate(timeout) for c in self.all() if c.running))
