"""The PPO trainer end to end on a real (small) Qwen3: iterations, store, commands, checkpoints, resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.conftest import REPO, small_run_settings
from trainer import ppo
from trainer.config import load_config
from trainer.store import RunReader, send_command, wait_command
from trainer.train import Trainer


def make_trainer(model, run_dir, *extra):
    config = load_config(overrides=[*small_run_settings(model), *extra])
    return Trainer(config, run_dir, echo=lambda line: None)


def test_first_iteration_has_near_zero_kl_and_fills_the_store(throwaway_model, tmp_path):
    trainer = make_trainer(throwaway_model, tmp_path / "run")
    try:
        metrics = trainer.train_iteration()
    finally:
        trainer.close()
    assert abs(metrics["kl"]) < 1e-3  # fresh LoRA: the policy is its reference
    assert metrics["rollout_time_s"] > 0 and metrics["update_time_s"] > 0
    with RunReader(tmp_path / "run") as reader:
        assert reader.count_episodes() == 4
        row = reader.episodes(limit=1)[0]
        tokens = reader.turn_tokens(row.id)
        assert tokens and tokens[0].advantages is not None and len(tokens[0].advantages) == len(tokens[0].token_ids)
        assert reader.iterations()[0]["iteration"] == 0
        assert reader.tool_health() is not None


def test_an_update_lowers_the_surrogate_loss_on_a_fixed_batch(throwaway_model, tmp_path):
    trainer = make_trainer(throwaway_model, tmp_path / "run", "optim.lr=0.01", "ppo.epochs=4")
    try:
        from trainer.rollout import SamplingSettings, play_episodes

        rollouts, _ = play_episodes(trainer.policy, trainer.envs, [1, 2, 3, 4], SamplingSettings(max_new_tokens=16))
        batch = ppo.collate(rollouts, trainer.policy.pad_token_id, trainer.policy.device)
        ppo.score(trainer.model, trainer.value_head, batch, 1.0, 2)
        ppo.advantages(batch, kl_kind="k3", kl_coef=0.0, gamma=1.0, lam=0.95, whiten=True)

        def surrogate() -> float:
            with torch.no_grad():
                logprobs, values, _ = ppo.forward_actions(trainer.model, trainer.value_head, batch)
            ratio = torch.exp(logprobs - batch.old_logprobs) * batch.action_mask
            return float(-(ratio * batch.advantages).sum() / batch.action_mask.sum())

        before = surrogate()
        trainer.model.train()
        stats = ppo.update(trainer.model, trainer.value_head, trainer.optimizer, batch, trainer.config,
                           torch.Generator().manual_seed(0), 1.0)
        assert stats.steps > 0 and stats.skipped_steps == 0
        assert surrogate() < before
    finally:
        trainer.close()


def test_prompt_and_tool_tokens_get_no_gradient(throwaway_model, tmp_path):
    """The PPO losses of a real batch depend on assistant tokens only."""
    from trainer import ppo_core
    from trainer.rollout import SamplingSettings, play_episodes

    trainer = make_trainer(throwaway_model, tmp_path / "run")
    try:
        rollouts, _ = play_episodes(trainer.policy, trainer.envs[:2], [5, 6], SamplingSettings(max_new_tokens=8))
        batch = ppo.collate(rollouts, trainer.policy.pad_token_id, trainer.policy.device)
        ppo.score(trainer.model, trainer.value_head, batch, 1.0, 2)
        ppo.advantages(batch, kl_kind="k3", kl_coef=0.05, gamma=1.0, lam=0.95, whiten=True)
        trainer.model.train()
        logprobs, values, entropy = ppo.forward_actions(trainer.model, trainer.value_head, batch)
        for tensor in (logprobs, values, entropy):
            tensor.retain_grad()
        mask = batch.action_mask
        loss = (ppo_core.policy_loss(logprobs, batch.old_logprobs, batch.advantages, mask, 0.2)[0]
                + ppo_core.value_loss(values, batch.old_values, batch.returns, mask, 0.2)[0]
                - 0.01 * ppo_core.masked_mean(entropy, mask))
        loss.backward()
        observed = (1 - mask).bool()
        assert observed.any() and mask.bool().any()
        for tensor in (logprobs, values, entropy):
            assert float(tensor.grad[observed].abs().sum()) == 0.0
            assert float(tensor.grad[mask.bool()].abs().sum()) > 0.0
    finally:
        trainer.close()


def test_right_padded_batches_skip_the_attention_mask_with_the_same_results(throwaway_model, tmp_path,
                                                                           monkeypatch):
    """Leaving out the mask of a right-padded batch (the fast causal kernel) changes no action token."""
    from trainer.rollout import SamplingSettings, play_episodes

    trainer = make_trainer(throwaway_model, tmp_path / "run")
    try:
        rollouts, _ = play_episodes(trainer.policy, trainer.envs, [7, 8, 9, 10], SamplingSettings(max_new_tokens=16))
        batch = ppo.collate(rollouts, trainer.policy.pad_token_id, trainer.policy.device)
        assert ppo.is_right_padded(batch.attention_mask) and not bool(batch.attention_mask.all())
        with torch.no_grad():
            fast = ppo.forward_actions(trainer.model, trainer.value_head, batch)
            monkeypatch.setattr(ppo, "is_right_padded", lambda mask: False)
            masked = ppo.forward_actions(trainer.model, trainer.value_head, batch)
        for a, b in zip(fast, masked, strict=True):
            torch.testing.assert_close(a * batch.action_mask, b * batch.action_mask, rtol=1e-4, atol=1e-5)
    finally:
        trainer.close()


def test_is_right_padded():
    assert ppo.is_right_padded(torch.tensor([[1, 1, 0], [1, 1, 1]]))
    assert not ppo.is_right_padded(torch.tensor([[0, 1, 1], [1, 1, 1]]))  # left padding needs its mask
    assert not ppo.is_right_padded(torch.tensor([[1, 0, 1]]))


def trainer_process(run_dir, model, *extra, resume=False) -> subprocess.Popen:
    args = [sys.executable, "-m", "trainer", "train", "--run-dir", str(run_dir)]
    if resume:
        args.append("--resume")
    for setting in [*([] if resume else small_run_settings(model)), *extra]:
        args += ["--set", setting]
    log = open(run_dir.parent / f"{run_dir.name}.log", "a")  # noqa: SIM115 - closed with the process
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)


def wait_for(condition, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def run_state(run_dir) -> str:
    with RunReader(run_dir) as reader:
        return reader.effective_state()


@pytest.mark.slow
def test_pause_chat_resume_stop_through_the_commands_table(throwaway_model, tmp_path):
    run_dir = tmp_path / "run"
    process = trainer_process(run_dir, throwaway_model, "run.iterations=1000")
    try:
        wait_for(lambda: (run_dir / "run.db").exists())
        paused = wait_command(run_dir, send_command(run_dir, "pause"), timeout=120)
        assert paused.status == "done" and run_state(run_dir) == "paused"
        with RunReader(run_dir) as reader:
            count = reader.count_episodes()
        chat = wait_command(run_dir, send_command(run_dir, "chat", {
            "messages": [{"role": "user", "content": "Add 2 and 3."}], "servers": ["math"], "max_calls": 2,
            "max_new_tokens": 16}), timeout=120)
        assert chat.status == "done", chat.result
        assert chat.result["turns"] and chat.result["turns"][0]["status"]
        time.sleep(1.0)
        with RunReader(run_dir) as reader:  # paused: no training episodes were added, only the chat
            assert reader.count_episodes(phase="train") == count
            assert reader.count_episodes(phase="chat") == 1
        assert wait_command(run_dir, send_command(run_dir, "resume"), timeout=60).status == "done"
        wait_for(lambda: RunReader(run_dir).count_episodes(phase="train") > count)
        assert wait_command(run_dir, send_command(run_dir, "stop"), timeout=120).status == "done"
        assert process.wait(120) == 0
        assert run_state(run_dir) == "stopped"
        assert any((run_dir / "checkpoints").glob("iter-*"))
    finally:
        process.kill()


@pytest.mark.slow
def test_resume_after_kill_keeps_every_finished_episode(throwaway_model, tmp_path):
    run_dir = tmp_path / "run"
    process = trainer_process(run_dir, throwaway_model, "run.iterations=1000")
    try:
        wait_for(lambda: (run_dir / "checkpoints").exists() and any((run_dir / "checkpoints").glob("iter-*")))
        with RunReader(run_dir) as reader:  # a reader attached while the trainer writes
            seen = [reader.count_episodes()]
            for _ in range(20):
                time.sleep(0.1)
                seen.append(reader.count_episodes())
            assert seen == sorted(seen)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        with RunReader(run_dir) as reader:
            assert reader.integrity_check() == "ok"
            kept = reader.count_episodes()
            assert kept >= 4 and kept % 4 == 0  # whole iterations only
            done = len(reader.iterations())  # how far it got before the kill depends on the machine
        wait_for(lambda: run_state(run_dir) == "crashed", timeout=30)
        total = done + 2
        resumed = trainer_process(run_dir, throwaway_model, f"run.iterations={total}", resume=True)
        assert resumed.wait(300) == 0
        with RunReader(run_dir) as reader:
            assert reader.run_info().state == "finished"
            assert [row["iteration"] for row in reader.iterations()] == list(range(total))
    finally:
        process.kill()


@pytest.mark.slow
def test_checkpoint_resume_equals_an_uninterrupted_run(throwaway_model, tmp_path):
    straight = tmp_path / "straight"
    assert trainer_process(straight, throwaway_model, "run.iterations=3").wait(300) == 0
    split = tmp_path / "split"
    assert trainer_process(split, throwaway_model, "run.iterations=2").wait(300) == 0
    assert trainer_process(split, throwaway_model, "run.iterations=3", resume=True).wait(300) == 0
    with RunReader(straight) as a, RunReader(split) as b:
        first, second = a.iterations(), b.iterations()
        assert [r["iteration"] for r in first] == [r["iteration"] for r in second] == [0, 1, 2]
        for x, y in zip(first, second, strict=True):
            for key in ("mean_return", "policy_loss", "value_loss", "kl", "entropy"):
                assert x[key] == pytest.approx(y[key], rel=1e-4, abs=1e-6), (x["iteration"], key)
    from safetensors.torch import load_file

    final_a = load_file(str(straight / "checkpoints" / "iter-000003" / "adapter" / "adapter_model.safetensors"))
    final_b = load_file(str(split / "checkpoints" / "iter-000003" / "adapter" / "adapter_model.safetensors"))
    assert final_a.keys() == final_b.keys()
    for key in final_a:
        torch.testing.assert_close(final_a[key], final_b[key], rtol=1e-4, atol=1e-6)
