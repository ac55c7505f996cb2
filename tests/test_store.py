"""The run store on real SQLite files, with real writer subprocesses for crash and concurrency."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from trainer import store as store_module
from trainer.records import CallRecord, EpisodeRecord, TurnRecord
from trainer.store import (
    COMMAND_KINDS,
    CommandTimeout,
    EpisodeEntry,
    EpisodeFilter,
    RunReader,
    RunStore,
    StoreError,
    ToolStat,
    TurnTokens,
    collect_tool_stats,
    decode_floats,
    decode_ints,
    effective_state,
    encode_floats,
    encode_ints,
    list_runs,
    migrate,
    send_command,
    wait_command,
)

REPO = Path(__file__).resolve().parent.parent
SUITES = ("math", "search", "database", "data")


def make_record(i: int, suite: str = "math", outcome: str | None = None) -> EpisodeRecord:
    """A realistic two-turn episode: a failed call, then a success or a plain execution."""
    outcome = outcome or ("success" if i % 3 == 0 else "truncated")
    last = "success" if outcome == "success" else "tool_execution"
    task = {"id": f"{suite}-{i}", "suite": suite, "instruction": f"Add {i} and 7 using the {suite} tools."}
    turns = [
        TurnRecord(
            index=0,
            raw_text=f'<tool_call>{{"name": "add", "arguments": {{"a": "x{i}"}}}}</tool_call>',
            thinking="",
            calls=[
                CallRecord("add", {"a": f"x{i}"}, "Error executing tool add: bad a", True, 0.01, "tool_error")
            ],
            parse_error=None,
            feedback="Error executing tool add: bad a",
            status="tool_error",
            reward=-0.5,
            latency_s=0.01,
        ),
        TurnRecord(
            index=1,
            raw_text=f'<tool_call>{{"name": "add", "arguments": {{"a": {i}, "b": 7}}}}</tool_call>',
            thinking="",
            calls=[CallRecord("add", {"a": i, "b": 7}, str(i + 7), False, 0.03, last)],
            parse_error=None,
            feedback=str(i + 7),
            status=last,
            reward=10.0 if last == "success" else 0.0,
            latency_s=0.03,
        ),
    ]
    return EpisodeRecord(
        task=task, seed=i, turns=turns, outcome=outcome, total_reward=sum(t.reward for t in turns)
    )


def tokens_for(n_turns: int) -> list[TurnTokens]:
    return [
        TurnTokens(
            t, [1, 2, 3, 100_000 + t], [-0.5, -0.25, -1.0, -2.0], None, [0.1] * 4, [1.5] * 4, [2.5] * 4
        )
        for t in range(n_turns)
    ]


@pytest.fixture
def run(tmp_path: Path) -> RunStore:
    store = RunStore.create(tmp_path / "runs" / "r1", "r1", {"lr": 1e-5, "suite": "math"}, "tiny")
    yield store
    store.close()


# ------------------------------------------------------------------------------------------
# Basics


def test_create_writes_folder_config_and_run_row(run: RunStore) -> None:
    assert json.loads((run.run_dir / "config.json").read_text()) == {"lr": 1e-5, "suite": "math"}
    assert run.checkpoints_dir.is_dir()
    assert run.log_path == run.run_dir / "trainer.log"
    with RunReader(run.run_dir) as reader:
        info = reader.run_info()
        assert (info.name, info.model, info.state, info.config["suite"]) == ("r1", "tiny", "created", "math")
        assert info.schema_version == store_module.SCHEMA_VERSION
        run.set_state("running")
        assert reader.effective_state() == "running"
        run.set_state("crashed", error="CUDA out of memory")
        info = reader.run_info()
        assert (info.state, info.error) == ("crashed", "CUDA out of memory") and info.ended_at
    assert sqlite3.connect(run.run_dir / "run.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_create_refuses_existing_run_and_bad_config(run: RunStore, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="already exists; resume it"):
        RunStore.create(run.run_dir, "again", {}, "tiny")
    with pytest.raises(StoreError, match="not JSON-serialisable"):
        RunStore.create(tmp_path / "bad", "bad", {"f": object()}, "tiny")
    with pytest.raises(StoreError, match="unknown run state 'flying'"):
        run.set_state("flying")


def test_episode_round_trip_light_rows_and_tokens(run: RunStore) -> None:
    batch = [
        EpisodeEntry(make_record(0), split="train", tokens=tokens_for(2)),
        make_record(1).to_dict(),  # a plain dict works too
        make_record(2, suite="search"),
    ]
    ids = run.add_episodes(batch, iteration=4, phase="train", split="heldout")
    assert ids == [1, 2, 3]
    with RunReader(run.run_dir) as reader:
        rows = reader.episodes()
        assert [r.id for r in rows] == [3, 2, 1]  # newest first
        first = rows[-1]
        assert (first.task_id, first.suite, first.split, first.seed) == ("math-0", "math", "train", 0)
        assert (first.outcome, first.final_status, first.success, first.n_turns) == (
            "success",
            "success",
            True,
            2,
        )
        assert first.total_reward == pytest.approx(9.5)
        assert rows[0].split == "heldout"  # the batch's split where the entry gives none
        assert not hasattr(first, "record")
        full = reader.episode(1)
        assert EpisodeRecord.from_dict({k: v for k, v in full.items() if k != "_row"}) == make_record(0)
        assert full["_row"] == first
        tokens = reader.turn_tokens(1)
        assert [t.turn_index for t in tokens] == [0, 1]
        assert tokens[1].token_ids == [1, 2, 3, 100_001]
        assert tokens[0].logprobs == [-0.5, -0.25, -1.0, -2.0] and tokens[0].ref_logprobs is None
        assert tokens[0].values == pytest.approx([0.1] * 4, rel=1e-6)
        assert reader.turn_tokens(2) == []
        with pytest.raises(StoreError, match="no episode with id 99"):
            reader.episode(99)


def test_filters_pagination_search_and_live_polling(run: RunStore) -> None:
    for iteration in range(3):
        run.add_episodes([make_record(iteration * 10 + k, SUITES[k % 4]) for k in range(10)], iteration)
    run.add_episodes([make_record(999, "math")], iteration=2, phase="eval", split="heldout")
    with RunReader(run.run_dir) as reader:
        assert reader.count_episodes() == 31
        assert reader.count_episodes(iteration=1) == 10
        assert reader.count_episodes(phase="eval", split="heldout") == 1
        assert reader.count_episodes(suite="search", min_iteration=1) == 6  # k = 1, 5, 9
        assert reader.count_episodes(success=True) == reader.count_episodes(outcome="success")
        assert reader.count_episodes(status="tool_error") == 0  # the last turn's status...
        assert reader.count_episodes(any_status="tool_error") == 31  # ...versus any turn's
        assert reader.count_episodes(min_reward=5) == reader.count_episodes(success=True)
        flt = EpisodeFilter(suite="math", max_iteration=1)
        assert {r.suite for r in reader.episodes(flt)} == {"math"}
        page1 = reader.episodes(limit=10, offset=0, order="oldest")
        page2 = reader.episodes(limit=10, offset=10, order="oldest")
        assert [r.id for r in page1 + page2] == list(range(1, 21))
        best = reader.episodes(order="best", limit=3)
        assert all(r.total_reward == pytest.approx(9.5) for r in best)
        assert [r.task_id for r in reader.episodes(search="ADD 999")] == ["math-999"]
        assert reader.count_episodes(search="bad a") == 31  # tool error text is searchable
        assert reader.count_episodes(search="add 999 nosuchword") == 0
        assert reader.latest_episode_id() == 31
        assert [r.id for r in reader.episodes_after(28)] == [29, 30, 31]
        assert reader.episodes_after(31) == []
        for bad in ({"order": "random"}, {"limit": -1}, {"colour": "red"}):
            with pytest.raises(StoreError):
                reader.episodes(**bad)


def test_hostile_episode_input(run: RunStore) -> None:
    with pytest.raises(StoreError, match="needs a 'task' object"):
        run.add_episodes([{"turns": []}], iteration=0)
    with pytest.raises(StoreError, match="must be a dict or have to_dict"):
        run.add_episodes([42], iteration=0)
    with pytest.raises(StoreError, match="unknown phase 'test'"):
        run.add_episodes([make_record(0)], iteration=0, phase="test")
    with pytest.raises(StoreError, match="32-bit"):
        run.add_episodes([EpisodeEntry(make_record(0), tokens=[TurnTokens(0, [2**40])])], iteration=0)
    with RunReader(run.run_dir) as reader:
        assert reader.count_episodes() == 0  # a failed batch leaves nothing behind


def test_array_codecs_are_compact_and_exact() -> None:
    ids = [0, 1, 151_643, 2**31 - 1]
    assert len(encode_ints(ids)) == 16 and decode_ints(encode_ints(ids)) == ids
    floats = [0.5, -1.25, 3.0e-3]
    assert decode_floats(encode_floats(floats)) == pytest.approx(floats, rel=1e-6)
    assert encode_floats(None) is None and decode_floats(None) is None


# ------------------------------------------------------------------------------------------
# Metrics, tools, checkpoints, evals


class FakeScalar:
    """Stands in for a 0-d tensor or numpy scalar: something float() understands."""

    def __init__(self, value: float) -> None:
        self.value = value

    def __float__(self) -> float:
        return self.value


def test_iterations_columns_shares_and_extra(run: RunStore) -> None:
    run.add_iteration(
        0,
        {
            "mean_return": FakeScalar(1.5),
            "kl": 0.02,
            "status_shares": {"success": 0.25, "tool_error": 0.75},
            "peak_gpu_mem_mb": 5120,
            "my_metric": 7,
        },
    )
    run.add_iteration(1, {"mean_return": 2.0, "lr": 1e-5})
    run.add_iteration(1, {"mean_return": 3.0})  # a resumed iteration replaces its row
    with RunReader(run.run_dir) as reader:
        rows = reader.iterations()
        assert [r["iteration"] for r in rows] == [0, 1]
        assert rows[0]["mean_return"] == 1.5 and rows[0]["share_success"] == 0.25
        assert rows[0]["share_structural_fail"] is None and rows[0]["my_metric"] == 7
        assert rows[1]["mean_return"] == 3.0 and rows[1]["lr"] is None
        assert [r["iteration"] for r in reader.iterations(since=0)] == [1]
        assert reader.last_iteration() == 1
    with pytest.raises(StoreError, match="not a number"):
        run.add_iteration(2, {"kl": "high"})


def test_schema_columns_match_metric_names(run: RunStore) -> None:
    columns = [row[1] for row in run._conn.execute("PRAGMA table_info(iterations)")]
    assert columns == ["iteration", "time", *store_module.ITERATION_METRICS, "extra"]


def test_tool_health_over_run_and_last_iterations(run: RunStore) -> None:
    stats = collect_tool_stats([make_record(0), make_record(1)])
    assert stats == {"add": ToolStat(calls=4, errors=2, latency_s=pytest.approx(0.08))}
    run.add_tool_stats(0, stats)
    run.add_tool_stats(1, {"add": ToolStat(10, 0, 1.0), "search": ToolStat(4, 4, 2.0)})
    run.add_tool_stats(1, {"search": ToolStat(4, 0, 2.0)})  # summed into the same iteration
    with RunReader(run.run_dir) as reader:
        whole = {h.tool: h for h in reader.tool_health()}
        assert whole["add"].calls == 14 and whole["add"].errors == 2
        assert whole["search"].error_rate == 0.5 and whole["search"].mean_latency_s == 0.5
        last = {h.tool: h for h in reader.tool_health(last_n=1)}
        assert last["add"].calls == 10 and last["add"].error_rate == 0.0


def test_collect_tool_stats_ignores_hallucinated_tools() -> None:
    record = make_record(0).to_dict()
    record["turns"][0]["calls"].append(
        {
            "name": "made_up",
            "arguments": {},
            "response": "",
            "is_error": True,
            "latency_s": 0.0,
            "status": "structural_fail",
        }
    )
    assert set(collect_tool_stats([record])) == {"add"}


def test_checkpoints_best_is_unique_and_evals(run: RunStore) -> None:
    first = run.add_checkpoint(10, run.checkpoints_dir / "it10", heldout_success=0.4, is_best=True)
    second = run.add_checkpoint(20, run.checkpoints_dir / "it20")
    run.update_checkpoint(second, heldout_success=0.6, is_best=True)
    run.update_checkpoint(first, kept=False)
    run.add_eval(20, "math", "heldout", 50, 0.62, mean_return=4.0, status_shares={"success": 0.62})
    with pytest.raises(StoreError, match="unknown status"):
        run.add_eval(20, "math", "heldout", 50, 0.5, status_shares={"great": 1.0})
    with RunReader(run.run_dir) as reader:
        checkpoints = reader.checkpoints()
        assert [(c.iteration, c.is_best, c.kept) for c in checkpoints] == [
            (10, False, False),
            (20, True, True),
        ]
        assert reader.best_checkpoint().heldout_success == 0.6
        (evaluation,) = reader.evals(split="heldout")
        assert evaluation.shares["success"] == 0.62 and evaluation.shares["tool_error"] is None
        assert reader.evals(suite="search") == []


def test_discard_after_forgets_replayed_iterations(run: RunStore) -> None:
    for iteration in range(3):
        run.add_episodes([EpisodeEntry(make_record(iteration), tokens=tokens_for(2))], iteration)
        run.add_iteration(iteration, {"kl": 0.1})
    run.discard_after(0)
    with RunReader(run.run_dir) as reader:
        assert reader.count_episodes() == 1 and reader.last_iteration() == 0
    assert run._conn.execute("SELECT count(*) FROM turn_tokens").fetchone()[0] == 2  # cascaded


# ------------------------------------------------------------------------------------------
# Commands and liveness


def test_commands_round_trip_between_threads(run: RunStore) -> None:
    def trainer() -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for command in run.take_pending_commands():
                run.finish_command(command.id, "done", {"paused_at": 3, "echo": command.payload})
                return
            time.sleep(0.01)

    thread = threading.Thread(target=trainer)
    thread.start()
    command_id = send_command(run.run_dir, "pause", {"why": "chat"})
    done = wait_command(run.run_dir, command_id, timeout=5)
    thread.join()
    assert (done.status, done.result) == ("done", {"paused_at": 3, "echo": {"why": "chat"}})
    assert done.finished and done.done_at >= done.created_at


def test_command_errors_timeout_and_interrupted_commands(run: RunStore) -> None:
    with pytest.raises(StoreError, match="unknown command 'explode'"):
        send_command(run.run_dir, "explode")
    assert "chat" in COMMAND_KINDS
    first = send_command(run.run_dir, "checkpoint")
    with pytest.raises(CommandTimeout, match="still pending"):
        wait_command(run.run_dir, first, timeout=0.1)
    assert [c.id for c in run.take_pending_commands()] == [first]
    assert run.take_pending_commands() == []  # claimed once only
    second = send_command(run.run_dir, "stop")
    with pytest.raises(StoreError, match="done or failed"):
        run.finish_command(second, "maybe")
    run.close()  # the trainer dies with `first` running
    resumed = RunStore.open_writer(run.run_dir)
    try:
        with RunReader(run.run_dir) as reader:
            assert reader.command(first).status == "failed"
            assert "interrupted" in reader.command(first).result["error"]
            # the stop was meant for the dead trainer: it must not stop the resumed one
            assert reader.commands(status="pending") == []
            assert reader.command(second).status == "failed"
            assert "stopped first" in reader.command(second).result["error"]
    finally:
        resumed.close()


def test_effective_state_detects_dead_or_silent_trainers(run: RunStore) -> None:
    host = store_module.socket.gethostname()
    now = time.time()
    assert effective_state("running", os.getpid(), host, now) == "running"
    assert effective_state("paused", os.getpid(), host, now - 3600) == "crashed"  # silent
    assert effective_state("running", None, "elsewhere", now - 10, heartbeat_interval_s=5) == "running"
    assert effective_state("finished", None, None, None) == "finished"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert effective_state("running", dead.pid, host, now) == "crashed"
    assert effective_state("running", dead.pid, "another-host", now) == "running"  # cannot check its pid


def test_heartbeat_thread_keeps_the_run_fresh(run: RunStore) -> None:
    run.set_state("running")
    before = run.run_info().heartbeat_at
    run.start_heartbeat(0.05)
    time.sleep(0.2)
    run.stop_heartbeat()
    info = run.run_info()
    assert info.heartbeat_at > before and info.heartbeat_interval_s == 0.05


# ------------------------------------------------------------------------------------------
# Hostile folders and files


def test_not_a_run_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        RunReader(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match="is not a run: it has no run.db"):
        RunReader(tmp_path / "empty")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(StoreError, match="is not a folder"):
        RunReader(tmp_path / "afile")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "run.db").write_bytes(os.urandom(8192))
    for opener in (RunReader, RunStore.open_writer, lambda d: send_command(d, "stop")):
        with pytest.raises(StoreError, match="not a readable run database") as info:
            opener(corrupt)
        assert "\n" not in str(info.value)


def test_foreign_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    folder = tmp_path / "foreign"
    folder.mkdir()
    conn = sqlite3.connect(folder / "run.db")
    conn.execute("CREATE TABLE notes (text)")
    conn.commit()
    conn.close()
    for opener in (RunReader, RunStore.open_writer, lambda d: send_command(d, "stop")):
        with pytest.raises(StoreError, match="not a run database"):
            opener(folder)
    conn = sqlite3.connect(folder / "run.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # not switched to WAL
    assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 1


def test_newer_schema_is_refused_everywhere(run: RunStore, tmp_path: Path) -> None:
    run._conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    for opener in (RunReader, RunStore.open_writer, lambda d: send_command(d, "stop")):
        with pytest.raises(StoreError, match="schema version 99, newer than this qwen-workbench supports"):
            opener(run.run_dir)
    (summary,) = list_runs(run.run_dir.parent)
    assert not summary.ok and "newer" in summary.error


def test_migration_hook_upgrades_old_databases(run: RunStore, monkeypatch: pytest.MonkeyPatch) -> None:
    run.add_episodes([make_record(0)], iteration=0)
    run.close()

    def add_notes(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE episodes ADD COLUMN note TEXT")

    current = store_module.SCHEMA_VERSION
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", current + 1)
    monkeypatch.setattr(store_module, "MIGRATIONS", {**store_module.MIGRATIONS, current: add_notes})
    with pytest.raises(StoreError, match=rf"old schema version {current} .*migrate\(run_dir\)"):
        RunReader(run.run_dir)
    assert migrate(run.run_dir) == current + 1
    with RunReader(run.run_dir) as reader:
        assert reader.run_info().schema_version == current + 1
        assert reader.count_episodes() == 1
        assert "note" in [row[1] for row in reader._conn.execute("PRAGMA table_info(episodes)")]


def test_reader_cannot_write(run: RunStore) -> None:
    with RunReader(run.run_dir) as reader, pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader._conn.execute("DELETE FROM run")


def test_list_runs_summarises_and_reports_broken_folders(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    older = RunStore.create(root / "a-old", "a-old", {}, "tiny")
    older.add_iteration(0, {})
    older.add_iteration(1, {})
    older.add_checkpoint(1, "ckpt", heldout_success=0.3)
    older.add_eval(1, "math", "heldout", 20, 0.45)
    older.add_episodes([make_record(0)], iteration=1)
    older.set_state("running")
    older.close()
    time.sleep(0.01)
    newer = RunStore.create(root / "b-new", "b-new", {}, "Qwen/Qwen3-4B")
    newer.set_state("finished")
    newer.close()
    (root / "not-a-run").mkdir()
    (root / ".hidden").mkdir()
    (root / "notes.txt").write_text("hello")
    summaries = list_runs(root)
    assert [s.name for s in summaries] == ["b-new", "a-old", "not-a-run"]
    b, a, broken = summaries
    assert (b.model, b.state, b.iterations, b.episodes) == ("Qwen/Qwen3-4B", "finished", 0, 0)
    assert (a.iterations, a.last_iteration, a.episodes, a.best_heldout_success) == (2, 1, 1, 0.45)
    assert a.state == "running"  # its "trainer" (this process) is alive and beat moments ago
    assert not broken.ok and "no run.db" in broken.error
    assert list_runs(tmp_path / "nowhere") == []


# ------------------------------------------------------------------------------------------
# Real writer processes: concurrent readers and kill -9

WRITER = r"""
import sys, time
from trainer.store import RunStore, EpisodeEntry, TurnTokens
run_dir, batches, batch_size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = RunStore.open_writer(run_dir)
store.set_state("running")
store.start_heartbeat(0.2)
for b in range(batches):
    record = lambda i: {
        "task": {"id": f"t{i}", "suite": "math", "instruction": f"task {i}"}, "seed": i,
        "turns": [{"index": 0, "raw_text": "x" * 400, "calls": [], "status": "tool_execution",
                   "reward": 0.0, "feedback": "y" * 200}],
        "outcome": "truncated", "total_reward": 0.0,
    }
    entries = [EpisodeEntry(record(b * batch_size + k), tokens=[TurnTokens(0, list(range(256)), [0.5] * 256)])
               for k in range(batch_size)]
    store.add_episodes(entries, iteration=b)
    store.add_iteration(b, {"kl": 0.01 * b})
    if b == 0:
        print("started", flush=True)
print("done", flush=True)
store.set_state("finished")
store.close()
"""


def start_writer(run_dir: Path, batches: int, batch_size: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(run_dir), str(batches), str(batch_size)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
    return proc


@pytest.fixture
def fresh_run(tmp_path: Path) -> Path:
    RunStore.create(tmp_path / "live", "live", {}, "tiny").close()
    return tmp_path / "live"


def test_reader_never_blocks_while_a_process_writes(fresh_run: Path) -> None:
    writer = start_writer(fresh_run, batches=400, batch_size=10)
    try:
        with pytest.raises(StoreError, match="still being trained by pid"):
            RunStore.open_writer(fresh_run)  # a second writer is refused while the first is alive
        counts, polls, states = [], 0, set()
        with RunReader(fresh_run) as reader:
            started = time.monotonic()
            # poll for half a second, longer if a loaded machine slows the writer down
            while writer.poll() is None and time.monotonic() - started < 10:
                if time.monotonic() - started > 0.5 and counts and counts[-1] - counts[0] >= 50:
                    break
                counts.append(reader.count_episodes())
                reader.episodes(limit=20, search="task 1")
                reader.episodes_after(max(0, counts[-1] - 5))
                reader.iterations(since=max(0, len(counts) - 3))
                states.add(reader.effective_state())
                polls += 1
        # a fast writer may finish between two polls: then "finished" is the truth, never anything else
        assert "running" in states and states <= {"running", "finished"}, states
        assert counts == sorted(counts) and counts[-1] > counts[0]
        assert all(c % 10 == 0 for c in counts)  # whole batches only, never half of one
        print(f"{polls} reader polls while writing; episodes {counts[0]} -> {counts[-1]}")
    finally:
        writer.kill()
        writer.wait()


def test_kill_9_mid_write_keeps_every_committed_episode(fresh_run: Path) -> None:
    writer = start_writer(fresh_run, batches=100_000, batch_size=20)
    with RunReader(fresh_run) as reader:
        deadline = time.monotonic() + 20
        while reader.count_episodes() < 200:
            assert time.monotonic() < deadline and writer.poll() is None, "the writer made no progress"
            time.sleep(0.01)
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        assert writer.returncode == -signal.SIGKILL
        with RunReader(fresh_run) as after:  # a viewer attaching after the crash
            assert after.integrity_check() == "ok"
            count = after.count_episodes()
            assert count >= 200 and count % 20 == 0
            assert [r.id for r in after.episodes(order="oldest", limit=count)] == list(range(1, count + 1))
            assert after.episode(count)["task"]["id"] == f"t{count - 1}"
            assert len(after.turn_tokens(count)[0].token_ids) == 256
            assert after.effective_state() == "crashed"  # state says running, but the pid is dead
        assert reader.count_episodes() == count
    resumed = RunStore.open_writer(fresh_run)  # the run resumes after the crash
    try:
        assert resumed.add_episodes([make_record(0)], iteration=999) == [count + 1]
    finally:
        resumed.close()


# ------------------------------------------------------------------------------------------
# Scale: the UI must stay fluid with 10,000 episodes


@pytest.fixture(scope="module")
def big_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("big") / "big"
    template = make_record(0).to_dict()
    started = time.perf_counter()
    with RunStore.create(run_dir, "big", {}, "tiny") as store:
        for iteration in range(20):
            batch: list[dict[str, Any]] = []
            for k in range(500):
                i = iteration * 500 + k
                suite = SUITES[i % 4]
                record = json.loads(json.dumps(template))
                record["task"].update(id=f"{suite}-{i}", suite=suite, instruction=f"Add {i} and 7 please.")
                record["outcome"] = "success" if i % 5 == 0 else "truncated"
                record["total_reward"] = 9.5 if i % 5 == 0 else -0.5
                record["turns"][1]["status"] = "success" if i % 5 == 0 else "tool_error"
                if i == 7_777:
                    record["turns"][1]["raw_text"] = "a rare needle phrase"
                batch.append(record)
            store.add_episodes(batch, iteration)
    print(f"inserted 10,000 episodes in {time.perf_counter() - started:.2f} s")
    return run_dir


def timed(label: str, query: Any) -> Any:
    started = time.perf_counter()
    result = query()
    elapsed = time.perf_counter() - started
    print(f"{label}: {elapsed * 1000:.1f} ms")
    assert elapsed < 0.5, f"{label} took {elapsed:.3f} s"
    return result


def test_ten_thousand_episodes_stay_fast(big_run: Path) -> None:
    with RunReader(big_run) as reader:
        assert timed("count all", reader.count_episodes) == 10_000
        page = timed("first page", lambda: reader.episodes(limit=50))
        assert page[0].id == 10_000 and len(page) == 50
        deep = timed("deep page", lambda: reader.episodes(limit=50, offset=9_000))
        assert deep[0].id == 1_000
        flt = EpisodeFilter(suite="search", status="tool_error", min_iteration=5)
        rows = timed("filtered page", lambda: reader.episodes(flt, limit=50, offset=100))
        assert rows and all(r.suite == "search" and r.final_status == "tool_error" for r in rows)
        assert timed("filtered count", lambda: reader.count_episodes(flt)) == 1_500  # 7500 / 4 * 4/5
        best = timed("best by reward", lambda: reader.episodes(order="best", limit=50, iteration=3))
        assert all(r.total_reward == 9.5 for r in best)
        hits = timed("text search", lambda: reader.episodes(search="needle phrase"))
        assert [r.id for r in hits] == [7_778]
        expected = sum("12" in str(i) for i in range(10_000))  # every word must appear, anywhere
        assert timed("search count", lambda: reader.count_episodes(search="ADD 12")) == expected
        timed("one record", lambda: reader.episode(5_000))
        assert len(timed("live poll", lambda: reader.episodes_after(9_990))) == 10


def test_command_progress_is_read_while_running_and_replaced_when_done(run: RunStore) -> None:
    command_id = send_command(run.run_dir, "chat", {"messages": []})
    run.command_progress(command_id, {"turn": 0, "text": "early"})  # still pending: not published
    with RunReader(run.run_dir) as reader:
        assert reader.command(command_id).result is None
    (taken,) = run.take_pending_commands()
    run.command_progress(taken.id, {"turn": 0, "text": "<tool_call>"})
    with RunReader(run.run_dir) as reader:
        assert reader.command(command_id).result == {"partial": {"turn": 0, "text": "<tool_call>"}}
    run.finish_command(taken.id, "done", {"turns": []})
    run.command_progress(taken.id, {"turn": 1, "text": "late"})  # finished: left alone
    with RunReader(run.run_dir) as reader:
        assert reader.command(command_id).result == {"turns": []}


def test_a_policy_process_leaves_the_run_and_other_commands_alone(run: RunStore) -> None:
    run.set_state("running")
    run.close()
    with sqlite3.connect(run.run_dir / "run.db") as db:  # as if its trainer died a minute ago
        db.execute("UPDATE run SET heartbeat_at = heartbeat_at - 60, pid = 999999")
    with RunReader(run.run_dir) as reader:
        before = reader.run_info()
        assert reader.effective_state() == "crashed"
    pause = send_command(run.run_dir, "pause")
    chat = send_command(run.run_dir, "chat", {"messages": []})
    server = RunStore.open_writer(run.run_dir, claim=False)
    try:
        assert [c.id for c in server.take_pending_commands(kinds=("chat",))] == [chat]
        server.finish_command(chat, "done", {"turns": []})
        with RunReader(run.run_dir) as reader:
            info = reader.run_info()
            assert reader.effective_state() == "crashed", "chatting must not make a crashed run look alive"
            assert (info.pid, info.heartbeat_at) == (before.pid, before.heartbeat_at)
            assert reader.command(pause).status == "pending", "a pause is for a trainer, not for chat"
    finally:
        server.close()


def test_checkpoint_paths_follow_a_run_folder_that_moved(run: RunStore, tmp_path: Path) -> None:
    inside = run.run_dir / "checkpoints" / "iter-000002"
    inside.mkdir(parents=True)
    run.add_checkpoint(2, inside, heldout_success=0.5, is_best=True)
    old = run.run_dir / "checkpoints" / "iter-000001"
    old.mkdir()
    run.close()
    with sqlite3.connect(run.run_dir / "run.db") as db:  # as a run written before paths were relative
        db.execute("INSERT INTO checkpoints (iteration, path, created_at, is_best) VALUES (1, ?, 0, 0)",
                   (str(old.resolve()),))
    moved = tmp_path / "elsewhere" / "r1"
    shutil.copytree(run.run_dir, moved)
    shutil.rmtree(run.run_dir)
    with RunReader(moved) as reader:
        assert reader.best_checkpoint().path == str(moved / "checkpoints" / "iter-000002")
        assert sorted(c.path for c in reader.checkpoints()) == [
            str(moved / "checkpoints" / "iter-000001"), str(moved / "checkpoints" / "iter-000002")]
