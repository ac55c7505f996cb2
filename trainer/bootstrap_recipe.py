"""The bootstrap recipe, importable without torch (the CLI builds its flags from it at start-up)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BootstrapRecipe:
    """Everything that determines the tiny model's files; change any of it and they are rebuilt."""

    # 3: the first build that really trains on every suite (the mixture sampler fix)
    # 4: the causal fast path and bf16 matmuls make a step ~1.5x cheaper, spent on more steps
    version: int = 4
    seed: int = 0
    suite: str = "all"
    episodes: int = 6000  # demonstrations played through the environment
    vocab_size: int = 2048
    digit_group: int = 3
    hidden: int = 256
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 512
    steps: int = 2000
    batch_size: int = 16
    lr: float = 3e-3
    warmup_steps: int = 40
    weight_decay: float = 0.01
    max_tokens: int = 1024  # longer demonstrations are dropped
    # Each demonstration is also trained on without its system turn (no tool list): the same
    # actions after a prompt a sixth as long. Copying numbers and names from the question is the
    # hard skill for a model this small, and short sequences teach it for far less compute.
    short_form: bool = True
    # A share of the demonstrations can make one typical mistake first (an invented tool, broken JSON,
    # a misnamed argument), get the environment's real answer to it, and then make the right call. The
    # mistake is context only, never a training target. Off in the shipped recipe: with 0.3 (and
    # length_pool_batches=256) the same 1,200 steps reached 4.7 % held-out success instead of 15.6 %.
    mistake_share: float = 0.0
    # Batches are cut from pools of this many batches sorted by length (less padding in bigger pools).
    length_pool_batches: int = 8
    # Matrix products in bfloat16 (weights, optimizer and loss stay float32) where the CPU multiplies
    # bf16 natively (AMX or AVX-512 BF16); elsewhere the build runs in float32, which is slower and
    # gives slightly different weights.
    bf16_matmuls: bool = True

    def demonstration_seeds(self) -> range:
        """The task seeds whose episodes are played as demonstrations (the trainer draws elsewhere)."""
        return range(self.seed * 1_000_003, self.seed * 1_000_003 + self.episodes)
