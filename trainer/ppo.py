"""The PPO learner: one policy with LoRA, its frozen base as the reference, a value head as critic.

Read top to bottom, one iteration is:

1. ``collate``: the rollouts' token streams become right-padded [B, T] tensors with an action mask
   (1 on generated assistant tokens), the sampling log-probs, and each turn's reward on its last token.
2. ``score``: one pass with the adapters disabled gives the reference log-probs (no second copy of
   the weights); one pass with them enabled gives the critic's values.
3. ``advantages``: per-token reward r_t - beta * KL_t, GAE over action tokens only, whitening.
4. ``update``: several epochs of shuffled minibatches of episodes, each step minimising
   L = L_clip + vf_coef * L_value - ent_coef * H, the policy's and the value head's gradients each
   clipped to the norm on their own; a step whose loss is not finite is skipped with a warning.

The critic is a float32 linear value head. "head" (the default): it reads the policy's own
(LoRA-adapted) hidden states through a stop-gradient, so one forward pass gives both log-probs and
values and the value loss trains the head alone. "shared": the same, but the value gradients also
flow into the policy's adapter (the two objectives share capacity; on the tiny model this wrecked the
policy, see trainer.config.ModelConfig). "separate": the head reads the hidden states of a second
LoRA adapter ("critic") on the same frozen base; the policy's features are its own, at the price of a
second forward and backward pass per minibatch and a second adapter's weights and optimizer state.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from trainer import ppo_core
from trainer.generation import is_right_padded, position_ids_from_mask, unwrap

log = logging.getLogger(__name__)


class ValueHead(nn.Module):
    """V(s_t) = w . h_t + b on the hidden state before token t, in float32 whatever the model's dtype.

    With ``stop_gradient`` the value loss trains w and b only: h_t is read as a constant, so the
    critic can never reshape the features the policy acts on (``model.critic = "head"``).
    """

    def __init__(self, hidden_size: int, stop_gradient: bool = False) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden_size, 1, dtype=torch.float32)
        self.stop_gradient = stop_gradient
        nn.init.normal_(self.linear.weight, std=1.0 / (hidden_size + 1))
        nn.init.zeros_(self.linear.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.linear((hidden.detach() if self.stop_gradient else hidden).float()).squeeze(-1)


@dataclass
class Batch:
    """Right-padded rollout tensors, [B, T] each, plus what ``score`` and ``advantages`` add."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    action_mask: torch.Tensor  # float, 1 on assistant tokens
    old_logprobs: torch.Tensor  # from the sampling pass
    turn_rewards: torch.Tensor  # the turn's execution reward on its last token
    ref_logprobs: torch.Tensor | None = None
    old_values: torch.Tensor | None = None
    kl: torch.Tensor | None = None
    advantages: torch.Tensor | None = None
    returns: torch.Tensor | None = None

    def select(self, rows: torch.Tensor) -> Batch:
        """The sub-batch of episodes ``rows``, trimmed to its longest sequence."""
        width = int(self.attention_mask[rows].sum(dim=1).max().item())
        pick = {name: (value[rows, :width] if isinstance(value, torch.Tensor) else value)
                for name, value in self.__dict__.items()}
        return Batch(**pick)


def collate(rollouts: Sequence[Any], pad_id: int, device: torch.device) -> Batch:
    """Stack rollouts (``trainer.rollout.EpisodeRollout``) into a right-padded ``Batch``."""
    width = max(len(r.stream) for r in rollouts)
    shape = (len(rollouts), width)
    ids = torch.full(shape, pad_id, dtype=torch.long)
    attention = torch.zeros(shape, dtype=torch.long)
    actions = torch.zeros(shape)
    logprobs = torch.zeros(shape)
    rewards = torch.zeros(shape)
    for row, rollout in enumerate(rollouts):
        n = len(rollout.stream)
        ids[row, :n] = torch.tensor(rollout.stream.token_ids)
        attention[row, :n] = 1
        actions[row, :n] = torch.tensor(rollout.stream.action_mask, dtype=torch.float32)
        logprobs[row, :n] = torch.tensor(rollout.logprobs, dtype=torch.float32)
        for end, reward in zip(rollout.stream.turn_ends, rollout.turn_rewards, strict=False):
            rewards[row, end] = reward
    return Batch(ids.to(device), attention.to(device), actions.to(device), logprobs.to(device), rewards.to(device))


def _head_chunk(head: nn.Module, temperature: float, hidden: torch.Tensor, targets: torch.Tensor):
    """log pi(target) and the entropy of pi for a chunk of states (pi = softmax(logits / T))."""
    logits = head(hidden).float() / temperature
    logz = torch.logsumexp(logits, dim=-1)
    logprob = logits.gather(-1, targets[:, None]).squeeze(-1) - logz
    probs = torch.softmax(logits, dim=-1)
    entropy = logz - (probs * logits).sum(-1)
    return logprob, entropy


def _action_states(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Final hidden states at the positions that predict action tokens, and where those tokens are.

    Token t is predicted from the hidden state at t-1, so that state also carries V(s_t).
    Returns ``(states [N, H], rows [N], columns [N])`` with the action tokens at ``(rows, columns + 1)``.
    """
    hidden = unwrap(model).get_decoder()(
        input_ids=batch.input_ids,
        attention_mask=None if is_right_padded(batch.attention_mask) else batch.attention_mask,
        position_ids=position_ids_from_mask(batch.attention_mask),
        use_cache=False,
    ).last_hidden_state
    rows, columns = batch.action_mask[:, 1:].bool().nonzero(as_tuple=True)
    return hidden[rows, columns], rows, columns


def _scatter(batch: Batch, rows: torch.Tensor, columns: torch.Tensor, pieces: list[torch.Tensor]) -> torch.Tensor:
    """Per-action-token values laid out as [B, T] (zero elsewhere)."""
    zeros = torch.zeros(batch.input_ids.shape, dtype=torch.float32, device=batch.input_ids.device)
    return zeros.index_put((rows, columns + 1), torch.cat(pieces).float()) if pieces else zeros


def forward_actions(
    model: nn.Module,
    value_head: ValueHead | None,
    batch: Batch,
    *,
    temperature: float = 1.0,
    chunk_size: int = 512,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Log-probs, values and entropies of the action tokens, [B, T] each (zero elsewhere).

    The vocabulary projection runs only on action positions, in chunks, recomputed in the backward
    pass. Values come from the same hidden states (the shared critic); ``value_head=None`` skips them.
    """
    states, rows, columns = _action_states(model, batch)
    targets = batch.input_ids[rows, columns + 1]
    head = unwrap(model).get_output_embeddings()
    logprob_pieces, entropy_pieces = [], []
    for start in range(0, targets.shape[0], chunk_size):
        piece = (states[start : start + chunk_size], targets[start : start + chunk_size])
        if torch.is_grad_enabled():
            logprob, entropy = checkpoint(_head_chunk, head, temperature, *piece, use_reentrant=False)
        else:
            logprob, entropy = _head_chunk(head, temperature, *piece)
        logprob_pieces.append(logprob)
        entropy_pieces.append(entropy)
    values = _scatter(batch, rows, columns, [value_head(states)]) if value_head is not None else None
    return _scatter(batch, rows, columns, logprob_pieces), values, _scatter(batch, rows, columns, entropy_pieces)


def forward_values(model: nn.Module, value_head: ValueHead, batch: Batch) -> torch.Tensor:
    """V(s_t) at every action token, [B, T] (zero elsewhere), with no vocabulary projection at all."""
    states, rows, columns = _action_states(model, batch)
    return _scatter(batch, rows, columns, [value_head(states)])


def adapters_disabled(model: nn.Module):
    """Context in which a peft model runs as its frozen base: the reference policy."""
    disable = getattr(model, "disable_adapter", None)
    return disable() if callable(disable) else contextlib.nullcontext()


@contextlib.contextmanager
def adapter_active(model: nn.Module, name: str):
    """Run with the LoRA adapter ``name`` active (the separate critic's), then switch back.

    peft's ``set_adapter`` also freezes the adapters it deactivates; every adapter stays trainable
    here, since only the active one takes part in a forward pass anyway.
    """
    previous = model.active_adapter
    model.set_adapter(name)
    model.set_requires_grad(list(model.peft_config), requires_grad=True)
    try:
        yield
    finally:
        model.set_adapter(previous)
        model.set_requires_grad(list(model.peft_config), requires_grad=True)


def critic_values(model: nn.Module, value_head: ValueHead, batch: Batch, critic_adapter: str | None) -> torch.Tensor:
    """V(s_t) from the separate critic adapter, or (shared critic) from the policy's own states."""
    with adapter_active(model, critic_adapter) if critic_adapter else contextlib.nullcontext():
        return forward_values(model, value_head, batch)


def _backward_if_finite(loss: torch.Tensor) -> bool:
    """Back-propagate ``loss`` unless it is NaN or infinite; False means the step must be skipped."""
    if not ppo_core.is_finite_loss(loss):
        return False
    loss.backward()
    return True


@torch.no_grad()
def score(model: nn.Module, value_head: ValueHead, batch: Batch, temperature: float, micro_batch: int, *,
          reference: nn.Module | None = None, critic_adapter: str | None = None) -> None:
    """Fill ``ref_logprobs`` and ``old_values``, micro-batch by micro-batch.

    The reference is the frozen base (the policy with its adapters disabled), or ``reference`` when
    the policy has no adapters (a full fine-tune keeps a frozen copy of its starting weights).
    """
    refs, values = [], []
    for start in range(0, batch.input_ids.shape[0], micro_batch):
        rows = torch.arange(start, min(start + micro_batch, batch.input_ids.shape[0]), device=batch.input_ids.device)
        part = batch.select(rows)
        pad = batch.input_ids.shape[1] - part.input_ids.shape[1]
        if reference is not None:
            ref, _, _ = forward_actions(reference, None, part, temperature=temperature)
        else:
            with adapters_disabled(model):
                ref, _, _ = forward_actions(model, None, part, temperature=temperature)
        value = critic_values(model, value_head, part, critic_adapter)
        refs.append(nn.functional.pad(ref, (0, pad)))
        values.append(nn.functional.pad(value, (0, pad)))
    batch.ref_logprobs = torch.cat(refs)
    batch.old_values = torch.cat(values)


def advantages(batch: Batch, *, kl_kind: str, kl_coef: float, gamma: float, lam: float, whiten: bool,
               group_size: int = 1) -> None:
    """Per-token KL, KL-penalised rewards, advantages over action tokens, and (optionally) whitening.

    The advantages are GAE against the critic's values, or with ``group_size`` >= 2 (rows in groups of
    samples of one task) the return against the group's leave-one-out mean (``ppo_core.group_advantages``).
    """
    mask = batch.action_mask
    batch.kl = ppo_core.kl_penalty(batch.old_logprobs, batch.ref_logprobs, kind=kl_kind) * mask
    rewards = ppo_core.token_rewards(batch.turn_rewards, batch.kl, kl_coef, mask)
    if group_size >= 2:
        adv, returns = ppo_core.group_advantages(rewards, mask, gamma, group_size)
    else:
        adv, returns = ppo_core.gae(rewards, batch.old_values, mask, gamma, lam)
    batch.advantages = ppo_core.masked_whiten(adv, mask) if whiten else adv
    batch.returns = returns


@dataclass
class UpdateStats:
    policy_loss: float = 0.0
    value_loss: float = 0.0
    entropy: float = 0.0
    clip_fraction: float = 0.0
    approx_kl: float = 0.0
    grad_norm: float = 0.0
    skipped_steps: int = 0
    steps: int = 0


def update(
    model: nn.Module,
    value_head: ValueHead,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    config: Any,
    generator: torch.Generator,
    temperature: float,
    critic_adapter: str | None = None,
) -> UpdateStats:
    """Several epochs of clipped-PPO minibatch steps over the episodes of ``batch``.

    With a separate critic the policy and value losses are back-propagated one after the other, each
    while its own adapter is active: activation checkpointing recomputes a forward pass during the
    backward pass, and that recomputation must see the adapter the forward pass saw.
    """
    ppo, optim = config.ppo, config.optim
    # Each parameter group (the adapters; the value head) is clipped to the norm on its own: a large
    # value error must not shrink the policy's step, as one global norm over both would.
    groups = [group["params"] for group in optimizer.param_groups]
    shared = critic_adapter is None
    sums = UpdateStats()
    n = batch.input_ids.shape[0]
    for _ in range(ppo.epochs):
        epoch_kl = []
        for rows in ppo_core.minibatch_indices(n, ppo.minibatch_size, generator):
            rows = rows.to(batch.input_ids.device)
            minibatch = batch.select(rows)
            tokens = minibatch.action_mask.sum().clamp(min=1)
            optimizer.zero_grad(set_to_none=True)
            step = UpdateStats()
            finite = True
            for start in range(0, len(rows), ppo.micro_batch_size):
                micro = minibatch.select(torch.arange(start, min(start + ppo.micro_batch_size, len(rows)),
                                                      device=rows.device))
                weight = micro.action_mask.sum() / tokens
                logprobs, values, entropy = forward_actions(model, value_head if shared else None, micro,
                                                            temperature=temperature)
                mask = micro.action_mask
                pl, clip_fraction, approx_kl = ppo_core.policy_loss(logprobs, micro.old_logprobs, micro.advantages,
                                                                    mask, ppo.clip_eps)
                ent = ppo_core.masked_mean(entropy, mask)
                if shared:
                    vl, _ = ppo_core.value_loss(values, micro.old_values, micro.returns, mask, ppo.clip_value)
                    finite = _backward_if_finite((pl + ppo.vf_coef * vl - ppo.ent_coef * ent) * weight)
                else:
                    finite = _backward_if_finite((pl - ppo.ent_coef * ent) * weight)
                    if finite:
                        with adapter_active(model, critic_adapter):
                            values = forward_values(model, value_head, micro)
                            vl, _ = ppo_core.value_loss(values, micro.old_values, micro.returns, mask, ppo.clip_value)
                            finite = _backward_if_finite(ppo.vf_coef * vl * weight)
                if not finite:
                    break
                w = float(weight)
                step.policy_loss += float(pl.detach()) * w
                step.value_loss += float(vl.detach()) * w
                step.entropy += float(ent.detach()) * w
                step.clip_fraction += float(clip_fraction) * w
                step.approx_kl += float(approx_kl) * w
            if not finite:
                log.warning("non-finite PPO loss: update step skipped")
                optimizer.zero_grad(set_to_none=True)
                sums.skipped_steps += 1
                continue
            norms = [torch.nn.utils.clip_grad_norm_(group, optim.max_grad_norm) for group in groups]
            grad_norm = norms[0]  # the policy's (reported); every group's must be finite
            if not all(torch.isfinite(norm) for norm in norms):
                log.warning("non-finite gradient norm: update step skipped")
                optimizer.zero_grad(set_to_none=True)
                sums.skipped_steps += 1
                continue
            optimizer.step()
            sums.steps += 1
            sums.policy_loss += step.policy_loss
            sums.value_loss += step.value_loss
            sums.entropy += step.entropy
            sums.clip_fraction += step.clip_fraction
            sums.approx_kl += step.approx_kl
            sums.grad_norm += float(grad_norm)
            epoch_kl.append(step.approx_kl)
        if ppo.early_stop_kl is not None and epoch_kl and sum(epoch_kl) / len(epoch_kl) > ppo.early_stop_kl:
            break
    if sums.steps:
        for name in ("policy_loss", "value_loss", "entropy", "clip_fraction", "approx_kl", "grad_norm"):
            setattr(sums, name, getattr(sums, name) / sums.steps)
    return sums
