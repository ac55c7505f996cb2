"""The math of token-level, multi-turn PPO for a tool-calling language model (torch only, no model code).

One rollout row is one episode laid out as tokens::

    [prompt ......][assistant turn 1][tool response 1][assistant turn 2][tool response 2]...[pad ...]
    action_mask:  0 0 0 0 0 0 0 0 0 0  1 1 1 1 1 1 1  0 0 0 0 0 0 0 0  1 1 1 1 1 1 1 1   ...  0 0 0

Generated assistant tokens are *actions* (``action_mask == 1``); prompt, tool-response and padding
tokens are *observations* the policy did not choose, so they get no reward, no advantage, no value
target and no gradient. The execution reward of a turn sits on the LAST token of that turn, and every
action token pays a KL penalty against the frozen reference policy.

Every tensor is ``[B, T]`` (B episodes, T token positions) unless said otherwise. The functions are small
and stateless, each with its formula in its docstring, in the spirit of CleanRL's single-file PPO:

    kl_t       = kl_penalty(logp_t, logp_ref_t)                  (per token)
    r_t        = R_turn * [t is the last token of a turn] - beta * kl_t   (token_rewards)
    A_t, G_t   = gae(r, V, action_mask, gamma, lam)             (GAE over action tokens only)
       or      = group_advantages(r, action_mask, gamma, K)     (several samples per task, no critic)
    L          = policy_loss + vf_coef * value_loss - ent_coef * entropy

Means are token-level over all action tokens of the (mini)batch (``masked_mean``), so a long turn weighs
more than a short one, as in TRL's PPO.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import torch

KLKind = Literal["k1", "k3"]
ScheduleKind = Literal["constant", "linear", "cosine"]


# --------------------------------------------------------------------------------------------------
# Masked statistics
# --------------------------------------------------------------------------------------------------


def _bool(mask: torch.Tensor) -> torch.Tensor:
    """The mask as booleans (callers may pass 0/1 ints or floats)."""
    return mask if mask.dtype == torch.bool else mask != 0


def _zero_outside(mask: torch.Tensor, *tensors: torch.Tensor) -> list[torch.Tensor]:
    """Each tensor with its masked-out entries set to 0, so padding garbage (NaN, -inf) never reaches a
    formula whose derivative would turn ``0 * inf`` into a NaN gradient."""
    return [torch.where(mask, t, torch.zeros_like(t)) for t in tensors]


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``x`` over the positions where ``mask`` is set.

    mean = sum_t m_t x_t / max(1, sum_t m_t)

    Masked-out entries are replaced by 0 with ``torch.where`` (not multiplied by 0), so a NaN or inf in
    padding can neither poison the value nor the gradient. An empty mask gives 0 rather than NaN: an
    empty minibatch then contributes no gradient. ``dim=None`` reduces everything to a scalar.
    """
    m = _bool(mask)
    values = torch.where(m, x, torch.zeros_like(x))
    if dim is None:
        return values.sum() / m.sum().clamp(min=1)
    return values.sum(dim) / m.sum(dim).clamp(min=1)


def masked_var(x: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    """Variance of ``x`` over the masked positions (a scalar).

    var = sum_t m_t (x_t - mean)^2 / (n - 1)   with n = sum_t m_t   (unbiased, Bessel's correction)
    var = sum_t m_t (x_t - mean)^2 / n                                (unbiased=False)

    With fewer than two elements the unbiased variance is undefined; it is returned as 0, so whitening
    a single value leaves it at 0 instead of producing NaN.
    """
    m = _bool(mask)
    mean = masked_mean(x, m)
    centred = torch.where(m, x - mean, torch.zeros_like(x))
    n = m.sum()
    denominator = n - 1 if unbiased else n
    return (centred**2).sum() / denominator.clamp(min=1)


def masked_whiten(
    x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True, eps: float = 1e-8
) -> torch.Tensor:
    """Normalise ``x`` to unit variance (and zero mean) over the masked positions.

    x' = (x - mean) / sqrt(var + eps)            (shift_mean=True)
    x' = (x - mean) / sqrt(var + eps) + mean     (shift_mean=False: rescale only, keep the mean)

    Statistics come from masked positions only; masked-out positions come back as 0, so whitened
    advantages stay zero on observation and padding tokens.
    """
    m = _bool(mask)
    mean = masked_mean(x, m)
    whitened = (x - mean) * torch.rsqrt(masked_var(x, m) + eps)
    if not shift_mean:
        whitened = whitened + mean
    return torch.where(m, whitened, torch.zeros_like(whitened))


# --------------------------------------------------------------------------------------------------
# Rewards: KL penalty and per-token rewards
# --------------------------------------------------------------------------------------------------


def kl_penalty(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, kind: KLKind = "k3") -> torch.Tensor:
    """Per-token estimate of KL(pi || pi_ref) from the log-probs of the sampled tokens.

    k1 = log pi(a) - log pi_ref(a)                 unbiased, can be negative per token, high variance
    k3 = exp(r) - 1 - r,   r = log pi_ref(a) - log pi(a)
                                                   unbiased and always >= 0, lower variance
                                                   (Schulman, "Approximating KL Divergence", 2020)

    Both are unbiased because a ~ pi: E[k1] = KL and E[exp(r) - 1] = 0. No masking here; see
    ``token_rewards``.
    """
    if kind == "k1":
        return logprobs - ref_logprobs
    if kind == "k3":
        log_ratio = ref_logprobs - logprobs
        return torch.expm1(log_ratio) - log_ratio
    raise ValueError(f"unknown KL estimator {kind!r}; use 'k1' or 'k3'")


def turn_ends(action_mask: torch.Tensor) -> torch.Tensor:
    """Booleans marking the last token of each assistant turn (a maximal run of action tokens).

    end_t = m_t and not m_{t+1}   (m_T = 0)

    Assumes consecutive turns are separated by at least one observation token, which the chat template
    guarantees (each turn is followed by the tool response or the end of the episode).
    """
    m = _bool(action_mask)
    following = torch.zeros_like(m)
    following[:, :-1] = m[:, 1:]
    return m & ~following


def place_turn_rewards(action_mask: torch.Tensor, rewards: Sequence[Sequence[float]]) -> torch.Tensor:
    """Scatter per-turn rewards onto the last token of each turn: the ``turn_end_rewards`` tensor.

    ``rewards[b][k]`` is the reward of the k-th assistant turn of episode b. The number of rewards of an
    episode must equal its number of action-token runs (``turn_ends``); a mismatch raises ValueError.
    """
    ends = turn_ends(action_mask)
    if len(rewards) != ends.shape[0]:
        raise ValueError(f"got rewards for {len(rewards)} episodes, but the batch holds {ends.shape[0]}")
    out = torch.zeros(ends.shape, dtype=torch.float32, device=ends.device)
    for row, episode_rewards in enumerate(rewards):
        positions = ends[row].nonzero().squeeze(-1)
        if positions.numel() != len(episode_rewards):
            raise ValueError(
                f"episode {row} has {positions.numel()} assistant turns in its action mask "
                f"but {len(episode_rewards)} turn rewards"
            )
        out[row, positions] = torch.tensor(list(episode_rewards), dtype=torch.float32, device=ends.device)
    return out


def token_rewards(
    turn_end_rewards: torch.Tensor, kl: torch.Tensor, kl_coef: float, action_mask: torch.Tensor
) -> torch.Tensor:
    """Per-token rewards: the turn reward minus the KL penalty, on action tokens only.

    r_t = R_t - beta * kl_t   where m_t = 1   (R_t: the turn's reward if t ends a turn, else 0)
    r_t = 0                   elsewhere

    A non-zero turn reward on a non-action position is a caller bug (it would silently vanish), so it
    raises ValueError.
    """
    m = _bool(action_mask)
    if bool(((turn_end_rewards != 0) & ~m).any()):
        raise ValueError(
            "a turn reward sits on a non-action token; put it on the last generated token of the turn"
        )
    rewards = turn_end_rewards - kl_coef * kl
    return torch.where(m, rewards, torch.zeros_like(rewards))


# --------------------------------------------------------------------------------------------------
# Generalised advantage estimation over action tokens
# --------------------------------------------------------------------------------------------------


def compress_actions(action_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The order that moves each row's action tokens to the front, keeping their order.

    Returns ``(order, compressed_mask)``: ``x.gather(1, order)`` lists the action tokens of a row first
    (in time order), then everything else; ``compressed_mask`` is 1 on that leading run. The sort is
    stable, which keeps the time order within the action tokens.
    """
    m = _bool(action_mask)
    order = torch.sort((~m).to(torch.int8), dim=1, stable=True).indices
    return order, m.gather(1, order)


def gae(
    rewards: torch.Tensor, values: torch.Tensor, action_mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al., 2016) over the ACTION tokens of each row.

    Observation tokens (prompt, tool responses, padding) are not decisions of the policy, so they are
    skipped rather than treated as steps: compress each row to its action tokens, run standard GAE on
    that sequence, scatter the results back. On the compressed sequence (s = 0 .. n-1):

        delta_s = r_s + gamma * V_{s+1} - V_s          with V_n = 0 (terminal after the last action)
        A_s     = delta_s + gamma * lam * A_{s+1}      with A_n = 0
        G_s     = A_s + V_s                            (the value target, "returns")

    So the last token of turn k bootstraps from the value of the FIRST token of turn k+1, never from a
    tool-response token, and the last action token of the episode is terminal. Rewards and values at
    observation positions are ignored. Both outputs are 0 on non-action positions and carry no
    gradient. The loop runs over the longest row's number of action tokens, vectorised over B.
    """
    with torch.no_grad():
        order, m = compress_actions(action_mask)
        r = torch.where(m, rewards.gather(1, order).float(), 0.0)
        v = torch.where(m, values.gather(1, order).float(), 0.0)
        n_steps = int(m.sum(1).max().item()) if m.numel() else 0
        advantages_c = torch.zeros_like(r)
        next_value = r.new_zeros(r.shape[0])  # V after the last action: terminal
        next_advantage = r.new_zeros(r.shape[0])
        for s in reversed(range(n_steps)):
            delta = r[:, s] + gamma * next_value - v[:, s]
            advantage = delta + gamma * lam * next_advantage
            advantage = torch.where(m[:, s], advantage, 0.0)  # rows with fewer actions: still terminal
            advantages_c[:, s] = advantage
            next_value, next_advantage = v[:, s], advantage
        returns_c = torch.where(m, advantages_c + v, 0.0)
        advantages = torch.zeros_like(advantages_c).scatter(1, order, advantages_c)
        returns = torch.zeros_like(returns_c).scatter(1, order, returns_c)
    return advantages, returns


def group_advantages(
    rewards: torch.Tensor, action_mask: torch.Tensor, gamma: float, group_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages against a leave-one-out group baseline (RLOO: Kool et al., 2019; Ahmadian et al., 2024).

    Rows come in consecutive groups of K = ``group_size`` samples of the same task. Over the action
    tokens of row i:

        G_t = sum_{k>=0} gamma^k r_{t+k}                       (return-to-go, KL penalty included)
        b_i = 1/(K-1) * sum_{j in group(i), j != i} G_0^(j)     (the other samples' episode returns)
        A_t = G_t - b_i

    b_i does not depend on row i's actions, so the policy gradient stays unbiased; it takes the task's
    difficulty out of the advantage, which a critic that cannot tell whether a copied name will be
    right does not. Returns ``(A, G)``; G (GAE with V = 0 and lambda = 1) is the value target.
    """
    if group_size < 2 or rewards.shape[0] % group_size:
        raise ValueError(f"{rewards.shape[0]} rows do not form groups of {group_size} (at least 2)")
    m = _bool(action_mask)
    returns, _ = gae(rewards, torch.zeros_like(rewards), m, gamma, 1.0)
    first = m.to(torch.int8).argmax(dim=1, keepdim=True)  # each row's first action token
    episode_return = returns.gather(1, first).squeeze(1).view(-1, group_size)
    others = (episode_return.sum(dim=1, keepdim=True) - episode_return) / (group_size - 1)
    advantages = torch.where(m, returns - others.reshape(-1, 1), 0.0)
    return advantages, returns


# --------------------------------------------------------------------------------------------------
# Losses and diagnostics
# --------------------------------------------------------------------------------------------------


def policy_loss(
    new_logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    action_mask: torch.Tensor,
    clip_eps: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate loss (Schulman et al., 2017), averaged over action tokens.

    rho_t  = exp(log pi_new(a_t) - log pi_old(a_t))
    L      = mean_t max(-A_t * rho_t, -A_t * clip(rho_t, 1 - eps, 1 + eps))

    Returns ``(loss, clip_fraction, approx_kl)``; the last two are detached diagnostics:
    clip_fraction = share of action tokens where the clipped term is the larger one (its gradient is
    cut), approx_kl = mean_t (rho_t - 1) - log rho_t, the k3 estimate of KL(pi_old || pi_new).
    Masked positions of every input are set to 0 first, so padding log-probs of -inf cannot turn into
    NaN gradients.
    """
    m = _bool(action_mask)
    new_logprobs, old_logprobs, advantages = _zero_outside(m, new_logprobs, old_logprobs, advantages)
    log_ratio = new_logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    loss = masked_mean(torch.maximum(unclipped, clipped), m)
    with torch.no_grad():
        clip_fraction = masked_mean((clipped > unclipped).float(), m)
        approx_kl = masked_mean(torch.expm1(log_ratio) - log_ratio, m)
    return loss, clip_fraction, approx_kl


def value_loss(
    new_values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    action_mask: torch.Tensor,
    clip_value: float | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clipped value loss, averaged over action tokens.

    V_clip = V_old + clip(V - V_old, -eps, +eps)
    L      = 0.5 * mean_t max((V_t - G_t)^2, (V_clip_t - G_t)^2)

    ``clip_value=None`` disables clipping (L = 0.5 * mean (V - G)^2). Returns ``(loss, clip_fraction)``,
    the latter (detached) being the share of tokens where the clipped error is the larger one.
    """
    m = _bool(action_mask)
    v, old_values, returns = _zero_outside(m, new_values, old_values, returns)
    unclipped = (v - returns) ** 2
    if clip_value is None:
        return 0.5 * masked_mean(unclipped, m), torch.zeros((), device=v.device)
    v_clipped = old_values + torch.clamp(v - old_values, -clip_value, clip_value)
    clipped = (v_clipped - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(unclipped, clipped), m)
    with torch.no_grad():
        clip_fraction = masked_mean((clipped > unclipped).float(), m)
    return loss, clip_fraction


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the categorical distribution at each position: ``[..., V] -> [...]``.

    H = -sum_i p_i log p_i,   p = softmax(z)   (terms with p_i = 0 count as 0, so -inf logits are fine)

    Pass the temperature-scaled logits the policy samples from; average with
    ``masked_mean(entropy_from_logits(logits), action_mask)`` so only action tokens count.
    """
    logp = torch.log_softmax(logits.float(), dim=-1)
    p = logp.exp()
    # 0 log 0 = 0: zero the -inf log-probs before the product, or its backward computes 0 * -inf = NaN.
    return -(p * logp.masked_fill(p == 0, 0.0)).sum(dim=-1)


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> float:
    """How much of the returns' variance the value predictions explain, over masked positions.

    EV = 1 - Var[G - V] / Var[G]

    1 is a perfect critic, 0 is no better than predicting the mean, negative is worse than that.
    NaN when the returns have no variance (EV is undefined), as in CleanRL.
    """
    with torch.no_grad():
        variance = masked_var(returns.float(), mask)
        if variance.item() == 0:
            return math.nan
        return float(1.0 - masked_var((returns - values).float(), mask) / variance)


def is_finite_loss(loss: torch.Tensor) -> bool:
    """True when every entry of ``loss`` is finite; the trainer skips the update (and warns) otherwise."""
    return bool(torch.isfinite(loss).all().item())


# --------------------------------------------------------------------------------------------------
# KL coefficient controllers
# --------------------------------------------------------------------------------------------------


class FixedKLController:
    """A constant KL coefficient beta."""

    def __init__(self, kl_coef: float) -> None:
        self.value = float(kl_coef)

    def update(self, current_kl: float, n_steps: int) -> float:
        """Nothing to adapt; returns the coefficient."""
        return self.value


class AdaptiveKLController:
    """Adapts beta so the observed KL tracks a target (Ziegler et al., 2019, "Fine-Tuning LMs from Human
    Preferences").

    e       = clip(KL / KL_target - 1, -0.2, 0.2)
    beta   <- beta * (1 + e * n_steps / horizon)

    KL above target raises beta (a stronger pull back to the reference), below target lowers it. The
    clip bounds the change per update; ``horizon`` (in samples) sets how fast beta moves.
    """

    def __init__(self, init_kl_coef: float, target: float, horizon: float) -> None:
        if target <= 0 or horizon <= 0:
            raise ValueError(f"target and horizon must be positive, got target={target}, horizon={horizon}")
        self.value = float(init_kl_coef)
        self.target = float(target)
        self.horizon = float(horizon)

    def update(self, current_kl: float, n_steps: int) -> float:
        """Move beta after a batch of ``n_steps`` samples with mean KL ``current_kl``; returns the new beta."""
        error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error * n_steps / self.horizon
        return self.value


# --------------------------------------------------------------------------------------------------
# Minibatches and learning-rate schedules
# --------------------------------------------------------------------------------------------------


def minibatch_indices(
    n: int, minibatch_size: int, generator: torch.Generator | None = None
) -> list[torch.Tensor]:
    """A shuffled split of the episode indices ``0 .. n-1`` into minibatches.

    Each episode appears exactly once per epoch; the last minibatch is smaller when ``minibatch_size``
    does not divide ``n`` (no episode is dropped). Minibatches are over episodes, not tokens, so a turn
    is never split from the rest of its episode.
    """
    if minibatch_size < 1:
        raise ValueError(f"minibatch_size must be at least 1, got {minibatch_size}")
    permutation = torch.randperm(n, generator=generator)
    return list(torch.split(permutation, minibatch_size))


def lr_schedule(kind: ScheduleKind, warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """A learning-rate multiplier for ``torch.optim.lr_scheduler.LambdaLR``: ``step -> factor``.

    warmup  (step < W):  factor = (step + 1) / W         (linear ramp; the first step already learns)
    after, with p = clip((step - W) / max(1, N - W), 0, 1):
        constant:  1
        linear:    1 - p
        cosine:    0.5 * (1 + cos(pi * p))

    W = ``warmup_steps``, N = ``total_steps``; the factor reaches 0 at step N for linear and cosine.
    """
    if kind not in ("constant", "linear", "cosine"):
        raise ValueError(f"unknown lr schedule {kind!r}; use 'constant', 'linear' or 'cosine'")
    if warmup_steps < 0 or total_steps < 1:
        raise ValueError(f"need warmup_steps >= 0 and total_steps >= 1, got {warmup_steps} and {total_steps}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(max((step - warmup_steps) / max(1, total_steps - warmup_steps), 0.0), 1.0)
        if kind == "linear":
            return 1.0 - progress
        if kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0

    return factor
