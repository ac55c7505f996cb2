"""bf16 matrix products on the CPU only where the processor has them natively."""

from __future__ import annotations

import torch

from trainer.precision import cpu_bf16_matmuls, cpu_multiplies_bf16


def test_matmuls_run_in_bf16_exactly_when_enabled_and_native():
    a, b = torch.randn(4, 8), torch.randn(8, 3)
    with cpu_bf16_matmuls(enabled=False) as active:
        assert active is False and (a @ b).dtype == torch.float32
    with cpu_bf16_matmuls(enabled=True) as active:
        assert active == cpu_multiplies_bf16()
        assert (a @ b).dtype == (torch.bfloat16 if active else torch.float32)
    assert (a @ b).dtype == torch.float32  # nothing leaks out of the block
