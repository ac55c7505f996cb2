"""GPU-only checks (skipped without CUDA): the paged 8-bit optimizer and a PPO iteration on CUDA."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import small_run_settings

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_paged_adamw_8bit_step_moves_the_weights():
    import bitsandbytes as bnb

    layer = torch.nn.Linear(256, 256, device="cuda")
    optimizer = bnb.optim.PagedAdamW8bit(layer.parameters(), lr=1e-2)
    before = layer.weight.detach().clone()
    layer(torch.randn(8, 256, device="cuda")).pow(2).mean().backward()
    optimizer.step()
    assert not torch.equal(before, layer.weight)


def test_a_ppo_iteration_on_cuda_with_the_paged_optimizer(throwaway_model, tmp_path):
    from trainer.config import load_config
    from trainer.train import Trainer

    config = load_config(overrides=[*small_run_settings(throwaway_model), "model.device=cuda",
                                    "optim.optimizer=paged_adamw_8bit", "model.gradient_checkpointing=true"])
    trainer = Trainer(config, tmp_path / "run", echo=lambda line: None)
    try:
        metrics = trainer.train_iteration()
    finally:
        trainer.close()
    assert metrics["peak_gpu_mem_mb"] > 0
    assert abs(metrics["kl"]) < 1e-2
