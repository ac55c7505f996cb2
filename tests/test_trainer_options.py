"""Trainer options beyond the defaults: the separate critic adapter, the full fine-tune's frozen
reference, and the adaptive KL coefficient, each on a real (small) Qwen3."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import small_run_settings
from trainer import ppo
from trainer.checkpoints import load_checkpoint
from trainer.config import load_config
from trainer.rollout import SamplingSettings, play_episodes
from trainer.train import CRITIC_ADAPTER, Trainer, task_seeds


def make_trainer(model, run_dir, *extra) -> Trainer:
    config = load_config(overrides=[*small_run_settings(model), *extra])
    return Trainer(config, run_dir, echo=lambda line: None)


def adapter_weights(model: torch.nn.Module, adapter: str) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters() if f".{adapter}." in name}


def scored_batch(trainer: Trainer, seeds: list[int]) -> ppo.Batch:
    rollouts, _ = play_episodes(trainer.policy, trainer.envs[: len(seeds)], seeds, SamplingSettings(max_new_tokens=8))
    batch = ppo.collate(rollouts, trainer.policy.pad_token_id, trainer.policy.device)
    ppo.score(trainer.model, trainer.value_head, batch, 1.0, 2, reference=trainer.reference,
              critic_adapter=trainer.critic_adapter)
    ppo.advantages(batch, kl_kind="k3", kl_coef=0.0, gamma=1.0, lam=0.95, whiten=True)
    return batch


def changed(before: dict[str, torch.Tensor], model: torch.nn.Module) -> bool:
    now = dict(model.named_parameters())
    return any(not torch.equal(before[name], now[name].detach()) for name in before)


@pytest.mark.parametrize("critic", ["head", "shared", "separate"])
def test_the_value_loss_reaches_the_policy_adapter_only_with_a_shared_critic(throwaway_model, tmp_path, critic):
    """With zero advantages and no entropy bonus only the value loss has a gradient."""
    trainer = make_trainer(throwaway_model, tmp_path / "run", f"model.critic={critic}", "optim.lr=0.01",
                           "ppo.ent_coef=0")
    try:
        batch = scored_batch(trainer, [1, 2, 3, 4])
        batch.advantages = torch.zeros_like(batch.advantages)
        batch.returns = batch.returns + 5.0  # a value error to learn from
        policy_before = adapter_weights(trainer.model, "default")
        critic_before = adapter_weights(trainer.model, CRITIC_ADAPTER)
        head_before = {n: p.detach().clone() for n, p in trainer.value_head.named_parameters()}
        trainer.model.train()
        stats = ppo.update(trainer.model, trainer.value_head, trainer.optimizer, batch, trainer.config,
                           torch.Generator().manual_seed(0), 1.0, critic_adapter=trainer.critic_adapter)
        assert stats.steps > 0 and stats.skipped_steps == 0
        assert changed(head_before, trainer.value_head)
        if critic in ("head", "shared"):
            assert trainer.critic_adapter is None and not critic_before
            # the head reads the policy's states as constants; the shared critic trains through them
            assert changed(policy_before, trainer.model) == (critic == "shared")
        else:
            assert trainer.critic_adapter == CRITIC_ADAPTER and critic_before
            assert changed(critic_before, trainer.model)
            assert not changed(policy_before, trainer.model)
            assert trainer.model.active_adapter == "default"  # rollouts keep sampling from the policy
    finally:
        trainer.close()


def test_a_separate_critic_trains_and_comes_back_from_its_checkpoint(throwaway_model, tmp_path):
    trainer = make_trainer(throwaway_model, tmp_path / "run", "model.critic=separate", "optim.lr=0.01")
    try:
        start = adapter_weights(trainer.model, CRITIC_ADAPTER)
        metrics = trainer.train_iteration()
        assert abs(metrics["kl"]) < 1e-3  # the policy's own adapter starts as the reference
        trainer.iteration += 1
        trained = adapter_weights(trainer.model, CRITIC_ADAPTER)
        assert changed(start, trainer.model)
        path = trainer.checkpoint()
        assert (path / "adapter" / CRITIC_ADAPTER / "adapter_model.safetensors").is_file()
    finally:
        trainer.close()
    fresh = make_trainer(throwaway_model, tmp_path / "fresh", "model.critic=separate")
    try:
        load_checkpoint(path, fresh.model, fresh.value_head, fresh.optimizer, fresh.scheduler)
        restored = adapter_weights(fresh.model, CRITIC_ADAPTER)
        assert restored.keys() == trained.keys()
        for name in trained:
            torch.testing.assert_close(restored[name], trained[name])
    finally:
        fresh.close()


def test_a_full_fine_tune_measures_kl_against_its_starting_weights(throwaway_model, tmp_path):
    trainer = make_trainer(throwaway_model, tmp_path / "run", "lora.enabled=false", "optim.lr=0.01",
                           "ppo.epochs=2")
    try:
        assert trainer.reference is not None
        assert not any(p.requires_grad for p in trainer.reference.parameters())
        first = trainer.train_iteration()
        trainer.iteration += 1
        second = trainer.train_iteration()
    finally:
        trainer.close()
    assert abs(first["kl"]) < 1e-3
    assert second["kl"] > 1e-3  # the policy moved; its reference did not


def test_the_adaptive_kl_coefficient_moves_and_is_checkpointed(throwaway_model, tmp_path):
    trainer = make_trainer(throwaway_model, tmp_path / "run", "ppo.adaptive_kl=true", "ppo.kl_coef=0.1",
                           "ppo.kl_target=5", "ppo.kl_horizon=8")
    try:
        first = trainer.train_iteration()
        trainer.iteration += 1
        # KL ~0 against a target of 5 nats: beta falls by the clipped 20 % times n/horizon = 4/8
        assert first["kl_coef"] == pytest.approx(0.1)
        assert trainer.kl_controller.value == pytest.approx(0.1 * (1 - 0.2 * 4 / 8))
        second = trainer.train_iteration()
        trainer.iteration += 1
        assert second["kl_coef"] == pytest.approx(0.09)
        path = trainer.checkpoint()
        saved = trainer.kl_controller.value
    finally:
        trainer.close()
    resumed = make_trainer(throwaway_model, tmp_path / "run2", "ppo.adaptive_kl=true", "ppo.kl_coef=0.1",
                           "ppo.kl_target=5", "ppo.kl_horizon=8")
    try:
        import shutil

        shutil.copytree(path, resumed.store.checkpoints_dir / path.name)
        resumed._restore()
        assert resumed.kl_controller.value == pytest.approx(saved)
    finally:
        resumed.close()


def test_group_size_repeats_each_task_in_consecutive_episodes():
    single = task_seeds(load_config(), 5, 8)
    assert len(set(single)) == 8
    grouped = task_seeds(load_config(overrides=["rollout.group_size=4"]), 5, 8)
    assert grouped == [single[0]] * 4 + [single[1]] * 4


def test_training_never_draws_a_task_seed_the_shipped_model_was_supervised_on():
    """The bootstrap's demonstrations are the tasks of its seeds; replaying them would train (and
    report train success) on memorised tasks. Checked over the first 500 iterations of two configs."""
    import json

    from mcp_servers.assets import asset_path
    from trainer.bootstrap_recipe import BootstrapRecipe

    recipe = BootstrapRecipe(**json.loads((asset_path("tiny-qwen3") / "recipe.json").read_text()))
    supervised = set(recipe.demonstration_seeds())
    assert len(supervised) == recipe.episodes
    for config in (load_config(), load_config(overrides=["rollout.group_size=4", "run.seed=3"])):
        drawn = {seed for iteration in range(500) for seed in task_seeds(config, iteration, 16)}
        assert not drawn & supervised


def test_a_large_value_error_does_not_shrink_the_policy_step(throwaway_model, tmp_path):
    """The policy's and the value head's gradients are clipped each on their own: the same batch with
    a value target off by 1000 moves the policy exactly as far (one global norm would shrink it)."""
    import copy

    def policy_step(run: str, value_error: float) -> dict[str, torch.Tensor]:
        trainer = make_trainer(throwaway_model, tmp_path / run, "optim.lr=0.01")  # same seed: same start
        try:
            batch = copy.deepcopy(shared_batch)
            batch.returns = batch.returns + value_error * batch.action_mask
            before = adapter_weights(trainer.model, "default")
            trainer.model.train()
            ppo.update(trainer.model, trainer.value_head, trainer.optimizer, batch, trainer.config,
                       torch.Generator().manual_seed(0), 1.0)
            now = dict(trainer.model.named_parameters())
            return {name: now[name].detach() - before[name] for name in before}
        finally:
            trainer.close()

    scorer = make_trainer(throwaway_model, tmp_path / "scorer")
    try:
        shared_batch = scored_batch(scorer, [1, 2, 3, 4])
    finally:
        scorer.close()
    small, large = policy_step("a", 0.0), policy_step("b", 1000.0)
    assert any(float(delta.abs().max()) > 0 for delta in small.values())
    for name, delta in small.items():
        torch.testing.assert_close(large[name], delta)
