"""Workbench responsiveness beside a REAL tiny-model trainer (prints JSON).

    python bench/ui_latency.py [--seconds 90] [--model tiny] [--keys 200]

Starts the workbench headless, starts a trainer from it (as the start key does), and while the
trainer runs: presses keys on the Live screen (the cursor up and down the turn table, follow off and on) and
times each key to the next frame; and times every new episode from its commit in the store to the
frame that first shows it. Targets: key to repaint p99 < 50 ms, commit to screen < 500 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ui_frames import FramedApp, next_frame, summary  # noqa: E402

from workbench.app.widgets.turn_table import TurnTable  # noqa: E402
from workbench.runs import NewRun  # noqa: E402

SETTINGS = ("rollout.batch_size=4", "rollout.max_new_tokens=32", "run.iterations=1000", "eval.every=0",
            "checkpoint.every=0", "ppo.minibatch_size=4", "ppo.micro_batch_size=4", "ppo.epochs=1")


class GCPauses:
    """Durations of the interpreter's garbage collections while the bench runs, by generation."""

    def __init__(self) -> None:
        self.by_generation: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._started = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.by_generation[info["generation"]].append(time.perf_counter() - self._started)

    def report(self) -> dict:
        return {f"gen{generation}": summary(pauses) for generation, pauses in self.by_generation.items()}


async def run(seconds: float, model: str, keys: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        app = FramedApp(runs_dir=Path(tmp) / "runs", new_run_defaults=NewRun(model=model, extra=" ".join(SETTINGS)))
        key_latency: list[float] = []
        missed = 0
        report: dict = {"bench": "ui_latency", "targets": {"key_to_frame_p99_ms": 50, "commit_to_screen_ms": 500}}
        try:
            async with app.run_test(size=(160, 45)) as pilot:
                await pilot.press("s")
                started = time.monotonic()
                while app.state != "running" and time.monotonic() - started < 180:
                    await asyncio.sleep(0.1)
                report["trainer_start_s"] = round(time.monotonic() - started, 1)
                while not app.episode_lag and time.monotonic() - started < 300:
                    await asyncio.sleep(0.1)
                app.episode_lag.clear()  # the backlog shown on attach is not "new"
                gc_pauses = GCPauses()
                gc.callbacks.append(gc_pauses)
                end = time.monotonic() + seconds
                # every key changes the screen (a key that changes nothing, like down on the last
                # row, paints no frame): the cursor moves off the last row and back, follow toggles
                sequence = ["up", "down", "up", "down", "f", "f"]
                pressed = 0
                while time.monotonic() < end:
                    if pressed < keys:
                        key = sequence[pressed % len(sequence)]
                        before = time.perf_counter()
                        await pilot.press(key)
                        frame = await next_frame(app, before, timeout=1.0)
                        if frame is None:
                            missed += 1
                        else:
                            key_latency.append(frame - before)
                        pressed += 1
                        await asyncio.sleep(0.05)  # a fast typist, not a flood
                    else:
                        await asyncio.sleep(0.2)
                gc.callbacks.remove(gc_pauses)
                report["gc_pause_ms"] = gc_pauses.report()
                table = app.screen.query_one(TurnTable)
                report["episodes_on_screen"] = table.episode_count
                report["turn_rows_on_screen"] = table.row_count
        finally:
            await app.processes.terminate_all()
        report["key_to_frame_ms"] = {**summary(key_latency), "keys_without_a_frame": missed}
        report["commit_to_screen_ms"] = summary(list(app.episode_lag))
        report["ok"] = bool(key_latency) and report["key_to_frame_ms"]["p99"] < 50 and bool(app.episode_lag) and (
            report["commit_to_screen_ms"]["max"] < 500)
        return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=90.0, help="how long to measure once episodes flow")
    parser.add_argument("--model", default="", help="model.name (default: the preset's, the embedded tiny model)")
    parser.add_argument("--keys", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.seconds, args.model, args.keys)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
