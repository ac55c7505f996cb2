"""Curation without a model: the v2 store (flags, the compare phase), promotion, filters, diffs,
SFT and metrics export, and the HTML report in a real headless Chromium.

The run used here is real: episodes played through MCPGymEnv against the bundled MCP servers (an
oracle playing the reference calls, after a broken first turn), stored with RunStore.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from mcp_servers.tasks.suites import sample_tasks
from mcp_servers.tasks.taskfile import load_task_file
from tests.conftest import REPO
from trainer import store as store_module
from trainer.cli import main as trainer_main
from trainer.curation import CurationError, parse_filter, promote, resolve_run
from trainer.episode_diff import diff_episodes
from trainer.export import episode_examples, export_episodes, export_metrics, metric_rows
from trainer.store import (
    EpisodeEntry,
    RunAnnotator,
    RunReader,
    RunStore,
    StoreError,
    TurnTokens,
    add_flag,
    collect_tool_stats,
    remove_flag,
)

BAD_TURNS = ("Let me think about it.", '<tool_call>{"name": "arithmetic", "arguments": {</tool_call>')


def qwen_call(call) -> str:
    """A call written exactly as Qwen3's template renders one."""
    return f"<tool_call>\n{json.dumps(call.to_dict())}\n</tool_call>"


def play_oracle(tasks) -> list[dict]:
    """Each task played through the real environment: one broken turn, then the reference calls."""
    from trainer.env import MCPGymEnv

    env = MCPGymEnv(suite="all", split="train")
    records = []
    try:
        for index, task in enumerate(tasks):
            env.reset(seed=index, options={"task": task})
            actions = [BAD_TURNS[index % 2], *(qwen_call(call) for call in task.reference_calls)]
            for action in actions:
                *_, terminated, truncated, _ = env.step(action)
                if terminated or truncated:
                    break
            records.append(env.record.to_dict())
    finally:
        env.close()
    return records


@pytest.fixture(scope="module")
def oracle_run(tmp_path_factory) -> SimpleNamespace:
    tasks = [*sample_tasks("math", "train", 2, seed=0), *sample_tasks("database", "train", 1, seed=0)]
    records = play_oracle(tasks)
    run_dir = tmp_path_factory.mktemp("runs") / "oracle"
    with RunStore.create(run_dir, "oracle", {"task": {"suite": "all"}}, "tiny") as store:
        ids = store.add_episodes(records, iteration=0, phase="train", split="train")
        ids += store.add_episodes(records[:1], iteration=1, phase="eval", split="heldout")
        for iteration, (ret, success, kl) in enumerate(((-1.2, 0.0, 0.0), (3.5, 0.3, 0.12), (7.0, 0.5, 0.2))):
            store.add_iteration(iteration, {
                "mean_return": ret, "success_rate": success, "kl": kl, "entropy": 1.5 - iteration / 4,
                "status_shares": {"success": success, "tool_execution": 0.2, "tool_error": 0.1,
                                  "invalid_json": 0.1, "structural_fail": 0.6 - success},
                "approx_kl": kl / 2})
        store.add_eval(1, "all", "heldout", 3, 1 / 3, mean_return=2.0, status_shares={"success": 0.25})
        store.add_eval(2, "all", "heldout", 3, 2 / 3, mean_return=5.0, status_shares={"success": 0.5})
        store.add_tool_stats(0, collect_tool_stats(records))
        store.set_state("finished")
    return SimpleNamespace(run_dir=run_dir, tasks=tasks, records=records, ids=ids)


@pytest.fixture
def fresh_run(oracle_run, tmp_path) -> Path:
    """A private copy of the oracle run, for tests that write flags."""
    target = tmp_path / "oracle"
    shutil.copytree(oracle_run.run_dir, target)
    return target


# --------------------------------------------------------------------------------------------
# The store, version 2


def test_a_version_1_database_upgrades_keeping_every_episode(oracle_run, tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 1)
    with RunStore.create(tmp_path / "old", "old", {}, "tiny") as old:
        tokens = [TurnTokens(0, [1, 2, 3], logprobs=[-0.5, -0.25, -1.0])]
        (episode_id,) = old.add_episodes([EpisodeEntry(oracle_run.records[0], "train", tokens)], iteration=0)
        with pytest.raises(StoreError, match="CHECK constraint failed"):
            old.add_episodes(oracle_run.records[:1], iteration=0, phase="compare")
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 2)
    with pytest.raises(StoreError, match="old schema version 1"):
        RunReader(tmp_path / "old")
    add_flag(tmp_path / "old", episode_id, "bug", "upgraded by a viewer's flag")  # migrates first
    with RunReader(tmp_path / "old") as reader:
        assert reader.run_info().schema_version == 2
        assert reader.episode(episode_id)["task"] == oracle_run.records[0]["task"]
        assert reader.turn_tokens(episode_id)[0].logprobs == [-0.5, -0.25, -1.0]
        assert [f.kind for f in reader.flags()] == ["bug"]
        assert reader.integrity_check() == "ok"
    with RunStore.open_writer(tmp_path / "old") as writer:
        (compared,) = writer.add_episodes(oracle_run.records[:1], iteration=1, phase="compare")
        writer.discard_after(-1)  # foreign keys are back on: records, tokens and flags cascade
        assert writer._conn.execute("SELECT count(*) FROM turn_tokens").fetchone()[0] == 0
        assert writer._conn.execute("SELECT count(*) FROM flags").fetchone()[0] == 0
        # a resume replays training, not comparisons: those stay
        assert [row.id for row in writer.episodes()] == [compared]
        assert writer._conn.execute("SELECT count(*) FROM episode_records").fetchone()[0] == 1


def test_flags_are_stored_replaced_filtered_and_removed(fresh_run, oracle_run):
    first, second = oracle_run.ids[:2]
    add_flag(fresh_run, first, "bad", "called percent before adding")
    add_flag(fresh_run, first, "bad", "  replaced note  ")
    add_flag(fresh_run, first, "bug")
    add_flag(fresh_run, second, "good")
    with RunReader(fresh_run) as reader:
        assert [(f.kind, f.note) for f in reader.flags(episode_id=first)] == [("bad", "replaced note"), ("bug", None)]
        assert reader.count_episodes(flagged="bad") == 1
        assert reader.count_episodes(flagged="any") == 2
        assert [row.id for row in reader.episodes(flagged="good")] == [second]
        with pytest.raises(StoreError, match="unknown flag kind 'meh'"):
            reader.episodes(flagged="meh")
    with pytest.raises(StoreError, match="unknown flag kind"):
        add_flag(fresh_run, first, "meh")
    with pytest.raises(StoreError, match="no episode with id 999"):
        add_flag(fresh_run, 999, "good")
    assert remove_flag(fresh_run, first, "bug") == 1
    assert remove_flag(fresh_run, first) == 1
    with RunReader(fresh_run) as reader:
        assert [f.episode_id for f in reader.flags()] == [second]


def test_a_flag_waits_for_the_trainers_transaction_and_never_claims_the_run(fresh_run, oracle_run):
    with RunStore.open_writer(fresh_run) as trainer:
        trainer.set_state("running")
        before = trainer.run_info()
        holding = threading.Event()

        def long_write() -> None:
            with trainer._write() as db:
                db.execute("UPDATE run SET error = NULL WHERE id = 1")
                holding.set()
                time.sleep(0.6)

        thread = threading.Thread(target=long_write)
        thread.start()
        holding.wait(5)
        started = time.monotonic()
        add_flag(fresh_run, oracle_run.ids[0], "good")
        waited = time.monotonic() - started
        thread.join()
        after = trainer.run_info()
        trainer.set_state("finished")
    assert waited > 0.3  # it waited for the lock instead of failing
    assert (after.heartbeat_at, after.pid, after.state) == (before.heartbeat_at, before.pid, "running")


def test_the_annotator_stores_compare_episodes_and_comparisons(fresh_run, oracle_run):
    with RunAnnotator(fresh_run) as annotator:
        ids = annotator.add_episodes(oracle_run.records[:2], iteration=3, phase="compare", split="heldout")
        comparison = annotator.add_comparison(["base", "iter-3"], "all", "heldout", 2, 7, {"episodes": ids})
    with RunReader(fresh_run) as reader:
        assert [row.id for row in reader.episodes(phase="compare", order="oldest")] == ids
        stored = reader.comparison(comparison)
        assert (stored.labels, stored.seed, stored.result) == (["base", "iter-3"], 7, {"episodes": ids})
        with pytest.raises(StoreError, match="no comparison with id 99"):
            reader.comparison(99)


# --------------------------------------------------------------------------------------------
# Filters, diffs, promotion


def test_filters_parse_from_key_value_words():
    flt = parse_filter(["phase=eval", "success=yes", "min-reward=-1.5", "iteration=3", "flagged=bad"])
    assert (flt.phase, flt.success, flt.min_reward, flt.iteration, flt.flagged) == ("eval", True, -1.5, 3, "bad")
    for words, message in ((["phase=test"], "phase must be one of"), (["success=maybe"], "true or false"),
                           (["colour=red"], "unknown filter 'colour'"), (["iteration=x"], "whole number"),
                           (["flagged"], "KEY=VALUE")):
        with pytest.raises(CurationError, match=message):
            parse_filter(words)


def test_episode_diff_marks_call_status_and_reward(oracle_run):
    record = oracle_run.records[0]
    same = diff_episodes(record, json.loads(json.dumps(record)))
    assert same.identical and same.first_difference is None
    changed = json.loads(json.dumps(record))
    last = changed["turns"][-1]
    last["calls"][0]["arguments"] = {"op": "add", "a": 1, "b": 2}
    last.update(status="tool_execution", reward=0.0)
    changed["outcome"] = "truncated"
    extra = json.loads(json.dumps(last))
    changed["turns"].append(extra)
    diff = diff_episodes(record, changed, "stored", "iter-5")
    index = len(record["turns"]) - 1
    assert diff.first_difference == index
    assert set(diff.turns[index].differs) == {"call", "status", "reward"}
    assert diff.turns[index + 1].left is None and not diff.identical
    text = "\n".join(diff.lines())
    assert "tool_execution*" in text and "+0*" in text and "(episode over)" in text


def test_promote_turns_flagged_episodes_into_a_task_file(fresh_run, oracle_run):
    with pytest.raises(CurationError, match="no flagged episodes"):
        promote(fresh_run)
    first, _, third = oracle_run.ids[:3]
    add_flag(fresh_run, first, "bad")
    add_flag(fresh_run, oracle_run.ids[3], "bug")  # the eval replay of the first task: same task id
    add_flag(fresh_run, third, "good")
    with RunAnnotator(fresh_run) as annotator:  # an episode whose task cannot be replayed (a chat)
        (chat,) = annotator.add_episodes([{"task": {"id": "chat", "instruction": "hi"}, "turns": []}], 0, "chat")
        annotator.add_flag(chat, "bad")
    result = promote(fresh_run)
    assert result.path == fresh_run / "regression.jsonl"
    assert result.task_ids == [oracle_run.tasks[0].id, oracle_run.tasks[2].id]
    assert sorted(result.episode_ids) == sorted([first, oracle_run.ids[3], third])
    assert len(result.skipped) == 1 and result.skipped[0].startswith(f"episode {chat}:")
    loaded = load_task_file(result.path)
    for task, original in zip(loaded, (oracle_run.tasks[0], oracle_run.tasks[2]), strict=True):
        assert (task.id, task.instruction, task.verifier, task.reference_calls) == (
            original.id, original.instruction, original.verifier, original.reference_calls)
        assert "regression" in task.tags
    only_good = promote(fresh_run, "good", fresh_run / "good.jsonl")
    assert only_good.task_ids == [oracle_run.tasks[2].id]
    assert resolve_run(fresh_run) == fresh_run
    with pytest.raises(StoreError, match="no run folder"):
        resolve_run(fresh_run / "missing")


# --------------------------------------------------------------------------------------------
# Export


def test_export_jsonl_and_datasets_load_back_and_render_with_the_chat_template(
    oracle_run, throwaway_model, tmp_path, monkeypatch
):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import datasets
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(throwaway_model)
    result = export_episodes(oracle_run.run_dir, tmp_path / "sft.jsonl", filters=parse_filter(["phase=train"]))
    assert result.count == 3
    export_episodes(oracle_run.run_dir, tmp_path / "sft-hf", format="hf", filters=parse_filter(["phase=train"]))
    from_json = datasets.load_dataset("json", data_files=str(tmp_path / "sft.jsonl"), split="train",
                                      cache_dir=str(tmp_path / "cache"))
    from_disk = datasets.load_from_disk(str(tmp_path / "sft-hf"))
    originals = episode_examples(oracle_run.run_dir, parse_filter(["phase=train"]))
    for dataset in (from_json, from_disk):
        assert len(dataset) == 3
        for row, original, record in zip(dataset, originals, oracle_run.records, strict=True):
            tools = json.loads(row["tools"])
            rendered = tokenizer.apply_chat_template(row["messages"], tools=tools, tokenize=False)
            assert rendered == tokenizer.apply_chat_template(original["messages"], tools=json.loads(original["tools"]),
                                                             tokenize=False)  # nothing lost in Arrow
            assert "<tools>" in rendered and all(t["function"]["name"] in rendered for t in tools)
            for turn in record["turns"]:
                if turn["calls"]:  # what the model wrote is exactly what an SFT example teaches
                    assert f"<|im_start|>assistant\n{turn['raw_text']}<|im_end|>" in rendered
                    assert f"<tool_response>\n{turn['calls'][0]['response']}\n</tool_response>" in rendered
            assert row["outcome"] == record["outcome"] and row["task_id"] == record["task"]["id"]
    math_tools = json.loads(originals[0]["tools"])
    assert [t["function"]["name"] for t in math_tools] == list(oracle_run.tasks[0].tools)
    database_tools = json.loads(originals[2]["tools"])
    assert "query" in [t["function"]["name"] for t in database_tools]  # every tool of the server
    broken = originals[1]["messages"][2]
    assert broken == {"role": "assistant", "content": BAD_TURNS[1]}  # no tool_calls: it did not parse
    assert originals[1]["messages"][3]["content"].startswith("Error:")


def test_metrics_export_to_csv_and_tensorboard(oracle_run, tmp_path):
    columns, rows = metric_rows(oracle_run.run_dir)
    assert [row["iteration"] for row in rows] == [0, 1, 2]
    assert "approx_kl" in columns and "eval_all_heldout_success_rate" in columns
    export_metrics(oracle_run.run_dir, tmp_path / "metrics.csv")
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("iteration,time,mean_return") and len(lines) == 4
    export_metrics(oracle_run.run_dir, tmp_path / "tb", format="tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    returns = [(e.step, round(e.value, 4)) for e in events.Scalars("train/mean_return")]
    assert returns == [(0, -1.2), (1, 3.5), (2, 7.0)]
    assert [e.step for e in events.Scalars("eval/all/heldout/success_rate")] == [1, 2]
    assert {"train/kl", "train/share_success", "train/approx_kl"} <= set(events.Tags()["scalars"])


# --------------------------------------------------------------------------------------------
# The report

_PROBE = """<script>
window.onerror = function (m) { document.body.setAttribute('data-errors', m); };
window.addEventListener('load', function () {
  var drawn = 0;
  document.querySelectorAll('svg path.series').forEach(function (p) {
    var box = p.getBBox(); if (box.width > 0 && box.height > 0) { drawn += 1; }
  });
  document.body.setAttribute('data-drawn', String(drawn));
});
</script>"""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(chromium() is None, reason="chromium is not installed (apt-get install chromium; .ci/run does)")
def test_the_report_opens_in_headless_chromium_with_its_charts_drawn(fresh_run, oracle_run, tmp_path):
    add_flag(fresh_run, oracle_run.ids[0], "bad", "<script>alert(1)</script>")
    out = tmp_path / "report.html"
    assert trainer_main(["report", str(fresh_run), str(out), "--episodes", "2"]) == 0
    html = out.read_text()
    assert "http://" not in html and "https://" not in html and "<script" not in html  # self-contained, inert
    assert "&lt;script&gt;alert(1)" in html and oracle_run.tasks[0].instruction in html
    for title in ("Mean return per episode", "Success rate", "KL to the reference policy", "Entropy",
                  "Held-out success rate", "Share of turns by status", "Tool health", "Best episodes"):
        assert title in html
    probe = tmp_path / "probe.html"  # the report plus a probe that measures what was drawn
    probe.write_text(html.replace("</body>", _PROBE + "</body>"))
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run",
               f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
               probe.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert 'data-errors="' not in dom, dom.split('data-errors="')[-1][:300]
    drawn = int(dom.split('data-drawn="')[1].split('"')[0])
    # 4 training curves, the eval curve, 5 status layers, and a bar per tool with errors or not
    assert drawn >= 10


# --------------------------------------------------------------------------------------------
# The command line and the import boundary


def test_cli_flag_promote_export_and_their_errors(fresh_run, oracle_run, tmp_path, capsys):
    episode = str(oracle_run.ids[0])
    assert trainer_main(["flag", str(fresh_run), episode, "--kind", "bad", "--note", "wrong order"]) == 0
    assert trainer_main(["flag", str(fresh_run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])[0]["note"] == "wrong order"
    assert trainer_main(["promote", str(fresh_run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["task_ids"] == [oracle_run.tasks[0].id]
    assert trainer_main(["export", str(fresh_run), str(tmp_path / "bad.jsonl"), "--format", "jsonl",
                         "--filter", "flagged=bad"]) == 0
    assert len((tmp_path / "bad.jsonl").read_text().splitlines()) == 1
    capsys.readouterr()
    for argv, message in (
        (["flag", str(fresh_run), "999", "--kind", "good"], "no episode with id 999"),
        (["flag", str(fresh_run), episode], "--kind good|bad|bug is required"),
        (["export", str(fresh_run), str(tmp_path / "x"), "--format", "jsonl", "--filter", "phase=nope"],
         "phase must be one of"),
        (["export", str(fresh_run), str(tmp_path / "x"), "--format", "jsonl", "--filter", "suite=none"],
         "match the filter"),
        (["promote", str(tmp_path / "nowhere")], "no run folder"),
    ):
        assert trainer_main(argv) == 2, argv
        error = capsys.readouterr().err
        assert error.startswith("error: ") and message in error and error.count("\n") == 1


def test_curation_modules_never_import_torch():
    code = ("import sys, trainer.curation, trainer.export, trainer.report, trainer.episode_diff, "
            "trainer.tb_events, trainer.svg_charts, trainer.forensics_cli; "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
