"""Replay with 10,000 episodes: query times of pages and filters, and filter-to-frame in the app (JSON).

    python bench/ui_replay.py [--episodes 10000]

The store is built from the recorded test run's episodes (real records of a tiny-model run),
repeated over many iterations with their statuses and rewards varied. Then: each page/filter query
as the Replay screen runs it (count + one page), and in the app, the time from a filter change or a
page key to the frame that shows the new rows. Target: fluid (well under 100 ms a step).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ui_frames import FramedApp, next_frame, summary  # noqa: E402

from trainer.store import STATUSES, RunReader, RunStore  # noqa: E402
from workbench.app.screens.replay import DEBOUNCE_S  # noqa: E402
from workbench.replay_query import ReplayQuery, fetch_page  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SMALL_RUN = REPO / "tests" / "data" / "recorded" / "small"
QUERIES = {
    "first_page": ReplayQuery(),
    "last_page": ReplayQuery(),
    "iteration": ReplayQuery(iteration="100"),
    "iteration_range": ReplayQuery(iteration="200-400"),
    "status": ReplayQuery(status="tool_error"),
    "any_turn_status": ReplayQuery(status="any:invalid_json"),
    "reward": ReplayQuery(min_reward="0"),
    "phase": ReplayQuery(phase="eval"),
    "search_word": ReplayQuery(search="modulo"),
    "search_two_words": ReplayQuery(search="percent result"),
    "combined": ReplayQuery(iteration=">=100", status="invalid_json", search="add", order="best"),
}


def build(folder: Path, episodes: int) -> Path:
    """A run with ``episodes`` episodes made from the recorded run's records."""
    with RunReader(SMALL_RUN) as reader:
        records = [reader.episode(row.id) for row in reader.episodes(limit=1000)]
        config = reader.run_info().config
    for record in records:
        record.pop("_row", None)
    rng = random.Random(0)
    run = folder / "big"
    with RunStore.create(run, "big", config, "tiny") as store:
        per_iteration = 16
        for iteration in range(0, episodes // per_iteration):
            batch = []
            for _ in range(per_iteration):
                record = json.loads(json.dumps(rng.choice(records)))
                status = rng.choice(STATUSES)
                record["turns"][-1]["status"] = status
                record["outcome"] = "success" if status == "success" else "truncated"
                record["total_reward"] = 10.0 if status == "success" else -rng.random() * 3
                batch.append(record)
            phase = "eval" if iteration % 10 == 9 else "train"
            store.add_episodes(batch, iteration, phase=phase)
    return run


def query_times(run: Path, repeats: int = 5) -> dict:
    out = {}
    with RunReader(run) as reader:
        for name, query in QUERIES.items():
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                page = fetch_page(reader, query, page=10**9 if name == "last_page" else 0)
                times.append(time.perf_counter() - started)
            out[name] = {"ms_median": round(sorted(times)[len(times) // 2] * 1000, 2), "matches": page.total}
    return out


async def ui_times(run: Path) -> dict:
    from workbench.app.screens.replay import ReplayScreen

    shown_at = [0.0]
    original = ReplayScreen._show_page

    def stamped(self, page, query=None):  # note when the rows of a page start going in
        shown_at.append(time.perf_counter())
        original(self, page, query)

    ReplayScreen._show_page = stamped
    app = FramedApp(run_dir=run)
    steps: dict[str, list[float]] = {"page_key": [], "filter_change": []}
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("3")
        screen = app.screen
        while getattr(screen, "page", None) is None:
            await asyncio.sleep(0.01)

        async def shown(before: float, want) -> float | None:
            """The first frame after the new rows went into the table (frames before show old rows)."""
            while not (shown_at[-1] > before and want()):
                await asyncio.sleep(0.0005)
            return await next_frame(app, shown_at[-1])

        for _ in range(20):
            target = (screen.page_no + 1) % screen.page.pages
            before = time.perf_counter()
            await pilot.press("right_square_bracket" if target else "o")
            frame = await shown(before, lambda t=target: screen.page is not None and screen.page.page == (t if t else 0))
            steps["page_key"].append((frame or time.perf_counter()) - before)
        statuses = [*STATUSES, ""]
        from textual.widgets import Select

        select = screen.query_one("#f-status", Select)
        for i in range(12):
            value = statuses[i % len(statuses)]
            old = screen.page
            before = time.perf_counter()
            if value:
                select.value = value
            else:
                select.clear()
            frame = await shown(
                before, lambda o=old, v=value: screen.page is not o and screen.shown_query.status == v
            )
            # the filter waits DEBOUNCE_S for more typing before it queries: report the work after that
            steps["filter_change"].append((frame or time.perf_counter()) - before - DEBOUNCE_S)
    return {
        "page_key_to_frame_ms": summary(steps["page_key"]),
        "filter_change_to_frame_after_debounce_ms": summary(steps["filter_change"]),
        "filter_debounce_ms": DEBOUNCE_S * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        run = build(Path(tmp), args.episodes)
        report = {"bench": "ui_replay", "episodes": args.episodes, "build_s": round(time.perf_counter() - started, 1)}
        report["queries"] = query_times(run)
        report["app"] = asyncio.run(ui_times(run))
        report["ok"] = all(q["ms_median"] < 100 for q in report["queries"].values()) and (
            report["app"]["page_key_to_frame_ms"]["p95"] < 100)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
