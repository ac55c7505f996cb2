"""The workbench's plain modules (no Textual): formatting, charts, queries, the live feed, runs, tokens."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path

import pytest
from wb_support import copy_run

from trainer.config import PRESETS
from trainer.store import STATUSES, RunReader, RunStore, TurnTokens
from workbench import charts, formatting
from workbench.chat_client import ChatSession, ChatSettings
from workbench.live_feed import DecimatingSeries, LiveFeed, elapsed_s, process_rss_mb
from workbench.replay_query import QueryError, ReplayQuery, fetch_page
from workbench.runs import Children, NewRun, RunsError, log_tail, new_run_dir, serve_command, train_command
from workbench.token_view import (
    TokenDecoder,
    metric_values,
    run_tokenizer_file,
    scale_of,
    token_strip,
    tokenizer_file,
)

SUCCESS_TURN = {
    "index": 0,
    "raw_text": '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>',
    "thinking": "",
    "calls": [{"name": "add", "arguments": {"a": 1, "b": 2}, "response": '{"result": 3}', "is_error": False,
               "latency_s": 0.012, "status": "tool_execution"}],
    "parse_error": None,
    "feedback": '{"result": 3}',
    "status": "success",
    "reward": 10.0,
    "latency_s": 0.02,
}
BROKEN_TURN = {
    "index": 1,
    "raw_text": "<tool_call>{\"name\": \x11oops</tool_call>",
    "thinking": "",
    "calls": [],
    "parse_error": "invalid JSON: Expecting value",
    "feedback": "Error: invalid JSON. Write <tool_call>...",
    "status": "invalid_json",
    "reward": -0.8,
    "latency_s": 0.0,
}


def record(i: int, status: str = "tool_execution", reward: float = 0.0) -> dict:
    """A minimal episode record, as EpisodeRecord.to_dict() shapes it."""
    turn = dict(SUCCESS_TURN, status=status, reward=reward)
    return {
        "task": {"id": f"t{i}", "suite": "math", "instruction": f"Add {i} and 2."},
        "seed": i,
        "turns": [turn],
        "outcome": "success" if status == "success" else "truncated",
        "total_reward": reward,
        "started_at": 0.0,
        "duration_s": 0.1,
    }


# -- formatting ----------------------------------------------------------------------------


def test_turn_cells_show_the_four_parts_of_a_successful_call():
    cells = formatting.turn_cells(SUCCESS_TURN, (30, 30, 30), 10)
    assert "<tool_call>" in cells.output.plain
    assert json.loads(cells.call.plain.replace("\n", "")) == {"name": "add", "arguments": {"a": 1, "b": 2}}
    assert "\n  " in formatting.pretty_call(SUCCESS_TURN["calls"][0]), "indented where there is room"
    assert cells.response.plain == '{"result": 3}'
    assert cells.outcome.plain.splitlines()[:2] == ["success", "+10.0"]
    assert "12 ms" in cells.outcome.plain
    assert "green" in str(cells.outcome.spans[0].style)


def test_turn_cells_show_the_parse_error_and_clean_control_characters():
    cells = formatting.turn_cells(BROKEN_TURN, (12, 20, 20), 2)
    assert "\x11" not in cells.output.plain and "·" in cells.output.plain
    assert cells.call.plain.startswith("parse error: invalid")
    assert all(len(line) <= 20 for line in cells.call.plain.splitlines())
    assert len(cells.call.plain.splitlines()) == 2 and cells.call.plain.endswith("…")
    assert cells.response.plain.startswith("Error: invalid JSON")
    assert cells.outcome.plain.startswith("invalid_json\n-0.8")


def test_number_formats():
    assert formatting.duration(3725) == "1:02:05" and formatting.duration(65) == "1:05"
    assert formatting.duration(None) == "—"
    assert formatting.percent(0.256) == "26%" and formatting.signed(-0.8) == "-0.8"
    assert formatting.megabytes(2048) == "2.0 GB" and formatting.megabytes(12) == "12 MB"


# -- charts ------------------------------------------------------------------------------------


def test_line_chart_has_the_requested_size_and_labels_its_range():
    chart = charts.line_chart([charts.Series([0, 1, 4, 9, None, 25], "cyan", "y")], width=30, height=5)
    lines = chart.plain.splitlines()
    assert len(lines) == 5 and all(len(line) == 30 for line in lines)
    assert lines[0].strip().startswith("25") and lines[-1].strip().startswith("0.00")
    assert any(ch != " " for ch in "".join(line[8:] for line in lines))


def test_charts_bucket_long_series_into_the_width():
    values = list(range(10_000))
    assert len(charts.bucket(values, 50)) == 50
    assert charts.bucket(values, 2) == [2499.5, 7499.5]
    shares = [{s: 1.0 if s == "success" else 0.0 for s in STATUSES}] * 500
    grid = charts.stacked_shares(shares, STATUSES, {"success": "green"}, width=20, height=4)
    assert grid.plain.splitlines() == ["█" * 20] * 4
    assert len(charts.sparkline(values, 12)) == 12 and charts.sparkline(values, 12)[-1] == "█"


# -- replay queries ------------------------------------------------------------------------------


def test_replay_query_turns_typed_fields_into_a_store_filter():
    flt = ReplayQuery(iteration="2-5", status="any:tool_error", suite="math", min_reward="-1.5", search="modulo").to_filter()
    assert (flt.min_iteration, flt.max_iteration, flt.any_status, flt.suite) == (2, 5, "tool_error", "math")
    assert flt.min_reward == -1.5 and flt.search == "modulo"
    assert ReplayQuery(iteration=">=3").to_filter().min_iteration == 3
    assert ReplayQuery(iteration="<3").to_filter().max_iteration == 2
    assert ReplayQuery(iteration="7").to_filter().iteration == 7


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("iteration", "abc", "iteration takes"), ("status", "great", "status must be"),
     ("min_reward", "lots", "min reward must be a number"), ("phase", "warmup", "phase must be")],
)
def test_replay_query_refuses_bad_fields_with_one_line(field, value, message):
    with pytest.raises(QueryError, match=message) as error:
        ReplayQuery(**{field: value}).to_filter()
    assert "\n" not in str(error.value)


def test_fetch_page_counts_filters_and_clamps_pages(tmp_path):
    run = copy_run(tmp_path)
    with RunReader(run) as reader:
        total = reader.count_episodes()
        page = fetch_page(reader, ReplayQuery(), page=99, page_size=5)
        assert page.total == total and page.page == page.pages - 1 and len(page.rows) <= 5
        evals = fetch_page(reader, ReplayQuery(phase="eval"))
        assert evals.total == reader.count_episodes(phase="eval") > 0
        assert all(row.phase == "eval" for row in evals.rows)
        worst = fetch_page(reader, ReplayQuery(order="worst")).rows
        assert [r.total_reward for r in worst] == sorted(r.total_reward for r in worst)


# -- the live feed -------------------------------------------------------------------------------


def test_decimating_series_stays_bounded_and_spans_the_whole_history():
    series = DecimatingSeries(capacity=64)
    for i in range(100_000):
        series.append(i)
    items = series.items()
    assert len(series) < 64 and items[0] == 0 and items[-1] == 99_999
    assert items == sorted(items)


def test_live_feed_reads_a_recorded_run_with_a_bounded_backlog(tmp_path):
    run = copy_run(tmp_path)
    feed = LiveFeed(run, backlog=5)
    update = feed.poll()
    assert update.reset and update.info is not None and update.info.effective_state == "finished"
    assert len(update.episodes) == 5 and all(view.turns for view in update.episodes)
    assert len(update.iterations) == 3 and update.iterations[-1]["iteration"] == 2
    assert update.tool_health is not None and update.evals
    again = feed.poll()
    assert not again.reset and not again.episodes and not again.iterations
    assert elapsed_s(update.info) > 0
    feed.close()


def test_live_feed_is_incremental_and_starts_over_when_the_run_is_rewound(tmp_path):
    store = RunStore.create(tmp_path / "run", "run", PRESETS["tiny-cpu"], "tiny")
    try:
        store.set_state("running")
        store.add_episodes([record(i) for i in range(3)], iteration=0)
        store.add_iteration(0, {"mean_return": 0.0, "success_rate": 0.0})
        feed = LiveFeed(tmp_path / "run", backlog=10, max_episodes=4)
        first = feed.poll()
        assert [v.row.iteration for v in first.episodes] == [0, 0, 0]
        store.add_episodes([record(3, "success", 10.0)], iteration=1)
        store.add_iteration(1, {"mean_return": 10.0, "success_rate": 1.0})
        second = feed.poll()
        assert not second.reset and [v.row.id for v in second.episodes] == [4]
        assert [m["iteration"] for m in second.iterations] == [1]
        assert len(feed.episodes) == 4
        store.add_episodes([record(i) for i in range(5, 8)], iteration=2)
        feed.poll()
        assert len(feed.episodes) == 4, "the buffer keeps max_episodes"
        store.discard_after(0)  # what a resume from an older checkpoint does
        rewound = feed.poll()
        assert rewound.reset and [m["iteration"] for m in feed.series.items()] == [0]
        assert rss_is_plausible(process_rss_mb(rewound.info.pid, rewound.info.host))
        feed.close()
    finally:
        store.close()


def rss_is_plausible(value: float | None) -> bool:
    return value is None if sys.platform != "linux" else value is not None and value > 1


def test_live_feed_waits_for_a_run_that_does_not_exist_yet(tmp_path):
    update = LiveFeed(tmp_path / "nothing").poll()
    assert update.info is None and "does not exist" in update.waiting


# -- runs and processes ----------------------------------------------------------------------------


def test_new_run_form_defaults_start_the_tiny_model_on_the_cpu():
    form = NewRun()
    form.check()
    assert form.preset == "tiny-cpu" and form.overrides() == ["task.suite=all"]
    custom = NewRun(model="Qwen/Qwen3-0.6B", device="cpu", iterations="5", extra="ppo.clip_eps=0.1")
    assert custom.overrides() == ["model.name=Qwen/Qwen3-0.6B", "task.suite=all", "model.device=cpu",
                                  "run.iterations=5", "ppo.clip_eps=0.1"]


@pytest.mark.parametrize(
    ("form", "message"),
    [(NewRun(iterations="zero"), "run.iterations"), (NewRun(extra="ppo.clip=1"), "did you mean"),
     (NewRun(preset="huge"), "unknown preset"), (NewRun(device="tpu"), "device must be")],
)
def test_new_run_form_errors_are_one_line(form, message):
    with pytest.raises(RunsError, match=message) as error:
        form.check()
    assert "\n" not in str(error.value)


def test_commands_and_run_folders(tmp_path):
    first = new_run_dir(tmp_path, now=0)
    first.mkdir()
    second = new_run_dir(tmp_path, now=0)
    assert first != second and second.name.startswith(first.name)
    argv = train_command(first, preset="tiny-cpu", overrides=["run.iterations=2"])
    assert argv[1:] == ["-m", "trainer", "train", "--run-dir", str(first), "--preset", "tiny-cpu",
                        "--set", "run.iterations=2"]
    assert "--resume" in train_command(first, resume=True)
    assert serve_command(first, "ck")[-2:] == ["--checkpoint", "ck"]
    log = tmp_path / "trainer.log"
    log.write_text("a\n" + "x" * 50_000 + "\nlast line\r\n")
    assert log_tail(log, 1) == ["last line"] and log_tail(tmp_path / "missing.log") == []


async def test_children_refuse_a_folder_that_already_holds_a_run(tmp_path):
    run = copy_run(tmp_path)
    children = Children()
    with pytest.raises(RunsError, match="already holds a run"):
        await children.start_train(run)
    with pytest.raises(RunsError, match="not a run folder"):
        await children.start_train(tmp_path / "empty", resume=True)


async def test_a_child_that_fails_explains_itself_from_its_log(tmp_path):
    children = Children()
    argv = [sys.executable, "-c", "import sys; print('error: no model here', flush=True); sys.exit(3)"]
    child = await children._spawn("train", tmp_path / "bad", argv, "trainer.log")
    assert children.get(tmp_path / "bad", "train") in (child, None)
    assert await child.wait(30) == 3
    assert child.failure() == "train process exited with code 3: error: no model here"
    assert children.get(tmp_path / "bad", "train") is None and children.last(tmp_path / "bad", "train") is child


# -- tokens ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer_json(tmp_path_factory) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(["hello world", "call the tool"] * 20, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|im_end|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    folder = tmp_path_factory.mktemp("tok")
    tokenizer.save(str(folder / "tokenizer.json"))
    return folder / "tokenizer.json"


def test_tokenizer_is_found_for_folders_adapters_and_the_hub_cache(tmp_path, tokenizer_json, monkeypatch):
    model = tokenizer_json.parent
    assert tokenizer_file(str(model)) == tokenizer_json
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(model)}))
    assert tokenizer_file(str(adapter)) == tokenizer_json
    snapshot = tmp_path / "hub" / "models--Qwen--Qwen3-4B" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "tokenizer.json").write_text(tokenizer_json.read_text())
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert tokenizer_file("Qwen/Qwen3-4B") == snapshot / "tokenizer.json"
    assert tokenizer_file("Qwen/Not-Here") is None and tokenizer_file(str(tmp_path / "nothing")) is None
    run = tmp_path / "run"
    run.mkdir()
    assert run_tokenizer_file(run, str(model)) == tokenizer_json
    (run / "tokenizer.json").write_text(tokenizer_json.read_text())
    assert run_tokenizer_file(run, str(model)) == run / "tokenizer.json", "the run's own copy wins"


def test_token_pieces_and_metric_colours(tokenizer_json):
    decoder = TokenDecoder(tokenizer_json)
    from tokenizers import Tokenizer

    ids = Tokenizer.from_file(str(tokenizer_json)).encode("hello world<|im_end|>").ids
    assert "".join(decoder.pieces(ids)) == "hello world<|im_end|>"
    tokens = TurnTokens(0, ids, logprobs=[-0.1] * len(ids), ref_logprobs=[-0.3] * len(ids),
                        advantages=[1.0, -1.0] + [0.0] * (len(ids) - 2))
    kl = metric_values(tokens, "kl")
    assert kl[0] == pytest.approx(0.2) and metric_values(tokens, "value") == [None] * len(ids)
    assert scale_of(metric_values(tokens, "advantage"), "advantage") == 1.0
    strip = token_strip(decoder.pieces(ids), metric_values(tokens, "advantage"), "advantage", selected=1)
    assert strip.plain == "hello world<|im_end|>"
    styles = [str(span.style) for span in strip.spans]
    assert "reverse" in styles[1] and styles[0] != styles[2]


# -- chat ------------------------------------------------------------------------------------------


def test_chat_payload_and_backend_choice(tmp_path):
    payload = ChatSettings(servers=["math"], thinking=True).payload([{"role": "user", "content": "hi"}])
    assert payload["servers"] == ["math"] and payload["thinking"] is True and payload["messages"][0]["content"] == "hi"
    assert "servers" not in ChatSettings().payload([])
    session = ChatSession(tmp_path, Children())
    assert [session.backend_for(s) for s in ("running", "paused", "stopped", "crashed")] == [
        "trainer", "trainer", "checkpoint", "checkpoint"]


def test_the_recorded_run_is_small_and_complete():
    from wb_support import SMALL_RUN

    size = sum(p.stat().st_size for p in SMALL_RUN.rglob("*") if p.is_file())
    assert size < 2 * 1024 * 1024
    with sqlite3.connect(f"file:{SMALL_RUN / 'run.db'}?mode=ro", uri=True) as db:
        assert db.execute("SELECT count(*) FROM iterations").fetchone()[0] == 3
        assert db.execute("SELECT count(*) FROM evals").fetchone()[0] >= 1
        assert db.execute("SELECT count(*) FROM checkpoints").fetchone()[0] >= 1
    assert list(SMALL_RUN.glob("checkpoints/*/adapter"))


async def test_children_run_at_a_lower_priority_than_the_interface(tmp_path):
    from workbench.runs import CHILD_NICENESS

    children = Children()
    child = await children._spawn("train", tmp_path / "run", [sys.executable, "-c", "import time; time.sleep(30)"],
                                  "trainer.log")
    try:
        expected = min(19, os.getpriority(os.PRIO_PROCESS, 0) + CHILD_NICENESS)
        assert os.getpriority(os.PRIO_PROCESS, child.pid) == expected
    finally:
        child.kill()
