"""Forensics with a real model and a real run: re-runs reproduce and diff, comparisons, and the
flag -> promote -> held-out evaluation round trip, on the throwaway Qwen3."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.conftest import small_run_settings
from trainer.cli import main as trainer_main
from trainer.config import load_config
from trainer.curation import BASE, PolicyChoice, flag_episode, promote, rerun_argv, resolve_checkpoint
from trainer.episode_diff import diff_episodes
from trainer.forensics import ForensicsError, compare, load_choice, per_task_outcomes, rerun, run_config
from trainer.records import EpisodeRecord, TurnRecord
from trainer.rollout import EpisodeRollout
from trainer.store import RunReader
from trainer.train import Trainer


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The throwaway model's matrices are tiny: one thread beats several on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained_run(throwaway_model, tmp_path_factory) -> SimpleNamespace:
    """One PPO iteration, then what Trainer.run does at its end: a held-out eval and a checkpoint.

    Between the iteration and the eval a person flags a training episode and promotes it, with the
    trainer's store open: the eval must then also play the regression file.
    """
    run_dir = tmp_path_factory.mktemp("runs") / "forensics"
    overrides = [*small_run_settings(throwaway_model), "run.iterations=1", "eval.num_tasks=3", "optim.lr=0.05"]
    trainer = Trainer(load_config(overrides=overrides), run_dir, echo=lambda line: None)
    try:
        trainer.train_iteration()
        trainer.iteration = 1
        with RunReader(run_dir) as reader:
            flagged = reader.episodes(phase="train", order="oldest", limit=1)[0]
        flag_episode(run_dir, flagged.id, "bad", "never called a tool")
        promoted = promote(run_dir)
        eval_result = trainer.run_eval()
        trainer.checkpoint()
        trainer.store.set_state("finished")
    finally:
        trainer.close()
    perturbed = tmp_path_factory.mktemp("adapters") / "perturbed"
    shutil.copytree(run_dir / "checkpoints" / "iter-000001" / "adapter", perturbed)
    weights = load_file(perturbed / "adapter_model.safetensors")
    generator = torch.Generator().manual_seed(0)
    save_file({name: value + 0.5 * torch.randn(value.shape, generator=generator) for name, value in weights.items()},
              perturbed / "adapter_model.safetensors")
    return SimpleNamespace(run_dir=run_dir, flagged=flagged, promoted=promoted, eval_result=eval_result,
                           perturbed=perturbed)


def held_out_episodes(run_dir: Path) -> list:
    with RunReader(run_dir) as reader:
        return reader.episodes(phase="eval", split="heldout", order="oldest")


def test_a_greedy_eval_episode_reruns_identically_with_its_checkpoint(trained_run):
    run_dir = trained_run.run_dir
    episodes = held_out_episodes(run_dir)
    assert len(episodes) == 3 and all(row.iteration == 1 for row in episodes)
    choice = resolve_checkpoint(run_dir, "1")
    assert (choice.label, choice.kind, choice.iteration) == ("iter-000001", "adapter", 1)
    policy = load_choice(choice, run_config(run_dir))
    for row in episodes:
        result = rerun(run_dir, row.id, "iter-000001", policy=policy)
        assert result.diff.identical, "\n".join(result.diff.lines())
        assert [t["raw_text"] for t in result.rerun["turns"]] == [t["raw_text"] for t in result.stored["turns"]]
        assert [(t["status"], t["reward"]) for t in result.rerun["turns"]] == [
            (t["status"], t["reward"]) for t in result.stored["turns"]]
    default = rerun(run_dir, episodes[0].id)  # no checkpoint named: the one that played it
    assert default.policy.label == "iter-000001" and default.diff.identical


def test_a_rerun_with_another_adapter_shows_where_it_diverges(trained_run, capsys):
    """With the command line the workbench runs in a child process (it never imports torch itself)."""
    episode = held_out_episodes(trained_run.run_dir)[0]
    argv = rerun_argv(trained_run.run_dir, episode.id, str(trained_run.perturbed))
    assert argv[:3] == [sys.executable, "-m", "trainer"]
    assert trainer_main(argv[3:]) == 0  # what `python -m trainer` runs, without paying its start-up here
    result = json.loads(capsys.readouterr().out)
    recomputed = diff_episodes(result["stored"], result["rerun"]).to_dict()["turns"]  # the UI can redo it
    assert json.loads(json.dumps(recomputed)) == result["diff"]["turns"]
    assert result["policy"]["label"] == "perturbed" and not result["identical"]
    first = result["diff"]["first_difference"]
    assert first == 0  # the very first generation already differs
    assert "text" in result["diff"]["turns"][0]["differs"]
    assert result["stored"]["task"] == result["rerun"]["task"] and result["stored"]["seed"] == result["rerun"]["seed"]
    assert trainer_main(["rerun", str(trained_run.run_dir), str(episode.id), "--adapter", "iter-000009"]) == 2
    assert "no checkpoint 'iter-000009'" in capsys.readouterr().err


def test_flagged_episodes_are_promoted_and_evaluated_as_a_regression_suite(trained_run):
    promoted = trained_run.promoted
    assert promoted.episode_ids == [trained_run.flagged.id] and promoted.task_ids == [trained_run.flagged.task_id]
    assert trained_run.eval_result["regression"]["episodes"] == 1
    with RunReader(trained_run.run_dir) as reader:
        (regression,) = reader.evals(suite="regression")
        assert (regression.iteration, regression.split, regression.n) == (1, "regression", 1)
        (replayed,) = reader.episodes(phase="eval", split="regression")
        assert replayed.task_id == trained_run.flagged.task_id
        assert reader.episode(replayed.id)["task"]["verifier"] == reader.episode(trained_run.flagged.id)["task"][
            "verifier"]
        main = [e for e in reader.evals() if e.suite != "regression"]
        assert len(main) == 1 and main[0].split == "heldout"
        best = reader.best_checkpoint()
        assert best is not None and best.heldout_success == main[0].success_rate  # regression never decides best


def test_compare_stores_openable_episodes_and_lists_disagreements(trained_run):
    run_dir = trained_run.run_dir
    result = compare(run_dir, ["iter-000001", str(trained_run.perturbed)], n=2)
    data = result.to_dict()
    assert data["labels"] == ["iter-000001", "perturbed"] and data["n"] == 2
    with RunReader(run_dir) as reader:
        stored = reader.comparison(result.id)
        assert stored.result["policies"]["perturbed"]["episode_ids"] == data["policies"]["perturbed"]["episode_ids"]
        for label, policy in data["policies"].items():
            assert len(policy["episode_ids"]) == 2
            for episode_id, task in zip(policy["episode_ids"], result.tasks, strict=True):
                record = reader.episode(episode_id)
                assert record["_row"].phase == "compare" and record["policy"] == label
                assert record["task"]["id"] == task["task_id"]
        # the checkpoint's greedy play on the same seeds is exactly its stored held-out play
        held_out = held_out_episodes(run_dir)[:2]
        mine = data["policies"]["iter-000001"]["episode_ids"]
        for stored_row, compare_id in zip(held_out, mine, strict=True):
            assert diff_episodes(reader.episode(stored_row.id), reader.episode(compare_id)).identical
    for item in data["disagreements"]:
        assert set(item["outcomes"]) == {"iter-000001", "perturbed"}
        assert all(outcome["episode_id"] is not None for outcome in item["outcomes"].values())
    with pytest.raises(ForensicsError, match="named twice"):
        compare(run_dir, ["1", "iter-000001"], n=1, store=False)


def test_compare_on_the_command_line_prints_the_table(trained_run, capsys):
    assert trainer_main(["compare", str(trained_run.run_dir), "1", "-n", "1", "--no-store"]) == 0
    out = capsys.readouterr().out
    assert "comparison (not stored): 1 tasks" in out  # one checkpoint alone is compared with base
    header = out.splitlines()[1].split()
    assert header == ["base", "iter-000001"]
    assert out.splitlines()[2].startswith("success") and "structural_fail" in out


def played(task_id: str, *finals: tuple[str, str]) -> list[EpisodeRollout]:
    """Rollouts whose records end with the given (outcome, last status) pairs."""
    rollouts = []
    for index, (outcome, status) in enumerate(finals):
        turn = TurnRecord(0, "x", "", [], None, "", status, 10.0 if status == "success" else -1.0, 0.0)
        record = EpisodeRecord(task={"id": f"{task_id}-{index}", "instruction": f"do {index}"}, seed=index,
                               turns=[turn], outcome=outcome, total_reward=turn.reward)
        rollouts.append(EpisodeRollout(record=record, stream=None))
    return rollouts


def test_disagreements_put_success_flips_first():
    late = PolicyChoice("iter-000010", "adapter", Path("x"), 10)
    runs = {"base": played("t", ("terminated", "structural_fail"), ("success", "success"),
                           ("truncated", "tool_error")),
            "iter-000010": played("t", ("terminated", "structural_fail"), ("truncated", "tool_error"),
                                  ("truncated", "invalid_json"))}
    tasks, disagreements = per_task_outcomes([BASE, late], runs, {"base": [1, 2, 3], "iter-000010": [4, 5, 6]}, 40)
    assert [t["disagree"] for t in tasks] == [False, True, True]
    assert [d["task_id"] for d in disagreements] == ["t-1", "t-2"]  # the success flip comes first
    assert disagreements[0]["success_differs"] and not disagreements[1]["success_differs"]
    assert disagreements[0]["seed"] == 41
    assert disagreements[0]["outcomes"]["iter-000010"] == {
        "outcome": "truncated", "success": False, "final_status": "tool_error", "total_reward": -1.0, "turns": 1,
        "episode_id": 5}
