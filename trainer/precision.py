"""Mixed precision on the CPU: bf16 matrix products where the processor multiplies bf16 natively.

Intel's AMX tiles and AVX-512 BF16 run bf16 matmuls several times faster than float32; on other CPUs
autocast would emulate them, slower than float32. Weights, optimizer state and losses stay float32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def cpu_multiplies_bf16() -> bool:
    """Whether this CPU has native bf16 matrix instructions (AMX or AVX-512 BF16)."""
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")  # private, so looked up defensively
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


@contextlib.contextmanager
def cpu_bf16_matmuls(enabled: bool = True) -> Iterator[bool]:
    """Run the block's CPU matmuls in bf16 when ``enabled`` and native; yields whether they are."""
    active = enabled and cpu_multiplies_bf16()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=active):
        yield active
