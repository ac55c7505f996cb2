"""The PPO math against hand-computed numbers, autograd checks on masked positions, and a tiny training run."""

from __future__ import annotations

import math

import pytest
import torch

from trainer.ppo_core import (
    AdaptiveKLController,
    FixedKLController,
    entropy_from_logits,
    explained_variance,
    gae,
    group_advantages,
    is_finite_loss,
    kl_penalty,
    lr_schedule,
    masked_mean,
    masked_var,
    masked_whiten,
    minibatch_indices,
    place_turn_rewards,
    policy_loss,
    token_rewards,
    turn_ends,
    value_loss,
)


@pytest.fixture(autouse=True)
def one_thread():
    """These tensors are tiny: with several threads, synchronisation costs more than the math (10x here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def t(*rows: list[float]) -> torch.Tensor:
    """A float tensor from rows."""
    return torch.tensor(rows, dtype=torch.float32)


def mask(*rows: list[int]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.bool)


def close(a: torch.Tensor, b: torch.Tensor | list, atol: float = 1e-5) -> bool:
    return torch.allclose(a, torch.as_tensor(b, dtype=a.dtype), atol=atol)


# --------------------------------------------------------------------------------------------------
# GAE
# --------------------------------------------------------------------------------------------------


def test_gae_single_turn_by_hand() -> None:
    # gamma=0.9, lam=0.5:  delta_2 = 1 - 0.3 = 0.7;  A_2 = 0.7
    # delta_1 = 0.9*0.3 - 0.4 = -0.13;  A_1 = -0.13 + 0.45*0.7 = 0.185
    # delta_0 = 0.9*0.4 - 0.5 = -0.14;  A_0 = -0.14 + 0.45*0.185 = -0.05675
    advantages, returns = gae(t([0, 0, 1]), t([0.5, 0.4, 0.3]), mask([1, 1, 1]), gamma=0.9, lam=0.5)
    assert close(advantages, [[-0.05675, 0.185, 0.7]])
    assert close(returns, [[0.44325, 0.585, 1.0]])


def test_gae_monte_carlo_limit() -> None:
    # gamma = lam = 1: A_t = (sum of future rewards) - V_t, and the return is the episode's reward.
    advantages, returns = gae(t([0, 0, 1]), t([0.5, 0.4, 0.3]), mask([1, 1, 1]), gamma=1.0, lam=1.0)
    assert close(advantages, [[0.5, 0.6, 0.7]])
    assert close(returns, [[1.0, 1.0, 1.0]])


# A two-turn episode: 2 prompt tokens, turn 1 (2 tokens), 2 tool-response tokens, turn 2 (2 tokens), 2 pads.
TWO_TURN_MASK = [0, 0, 1, 1, 0, 0, 1, 1, 0, 0]
TWO_TURN_REWARDS = [0, 0, 0, -0.5, 0, 0, 0, 10, 0, 0]
# Values on observation tokens are 100: they must never be used as bootstrap targets.
TWO_TURN_VALUES = [100, 100, 1, 2, 100, 100, 3, 4, 100, 100]
# Compressed to actions: r = [0, -0.5, 0, 10], V = [1, 2, 3, 4]; gamma = 0.9, lam = 0.8 (gamma*lam = 0.72)
#   s=3: delta = 10 - 4 = 6                          A = 6
#   s=2: delta = 0.9*4 - 3 = 0.6                     A = 0.6 + 0.72*6 = 4.92
#   s=1: delta = -0.5 + 0.9*3 - 2 = 0.2  (V of the FIRST token of turn 2, not of a tool token)
#                                                    A = 0.2 + 0.72*4.92 = 3.7424
#   s=0: delta = 0.9*2 - 1 = 0.8                     A = 0.8 + 0.72*3.7424 = 3.494528
TWO_TURN_ADVANTAGES = [0, 0, 3.494528, 3.7424, 0, 0, 4.92, 6, 0, 0]
TWO_TURN_RETURNS = [0, 0, 4.494528, 5.7424, 0, 0, 7.92, 10, 0, 0]


def test_gae_two_turns_skips_tool_tokens_and_padding() -> None:
    advantages, returns = gae(
        t(TWO_TURN_REWARDS), t(TWO_TURN_VALUES), mask(TWO_TURN_MASK), gamma=0.9, lam=0.8
    )
    assert close(advantages, [TWO_TURN_ADVANTAGES])
    assert close(returns, [TWO_TURN_RETURNS])


def test_gae_rows_are_independent_whatever_their_padding() -> None:
    # Row 0: the two-turn episode. Row 1: a one-turn episode, left-padded, whose padding holds garbage.
    rewards = t(TWO_TURN_REWARDS, [0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    values = t(TWO_TURN_VALUES, [float("nan")] * 7 + [0.5, 0.4, 0.3])
    action_mask = mask(TWO_TURN_MASK, [0, 0, 0, 0, 0, 0, 0, 1, 1, 1])
    advantages, returns = gae(rewards, values, action_mask, gamma=0.9, lam=0.8)
    assert close(advantages[0], TWO_TURN_ADVANTAGES)
    single, _ = gae(t([0, 0, 1]), t([0.5, 0.4, 0.3]), mask([1, 1, 1]), gamma=0.9, lam=0.8)
    assert close(advantages[1, 7:], single[0])
    assert torch.all(advantages[1, :7] == 0) and torch.all(returns[1, :7] == 0)


def test_gae_ignores_rewards_and_values_on_observations() -> None:
    rewards = t(TWO_TURN_REWARDS)
    rewards[0, 4] = 55.0  # a reward on a tool token is not an action's reward
    values = t(TWO_TURN_VALUES)
    values[0, 5] = -7.0
    advantages, _ = gae(rewards, values, mask(TWO_TURN_MASK), gamma=0.9, lam=0.8)
    assert close(advantages, [TWO_TURN_ADVANTAGES])


def _reference_gae(
    rewards: list[float], values: list[float], m: list[int], gamma: float, lam: float
) -> list[float]:
    """The textbook loop over one row's action tokens, written independently of the implementation."""
    steps = [i for i, on in enumerate(m) if on]
    out = [0.0] * len(m)
    running = 0.0
    for k in reversed(range(len(steps))):
        i = steps[k]
        next_value = values[steps[k + 1]] if k + 1 < len(steps) else 0.0
        running = rewards[i] + gamma * next_value - values[i] + gamma * lam * running
        out[i] = running
    return out


def test_gae_matches_the_textbook_loop_on_random_rows() -> None:
    generator = torch.Generator().manual_seed(0)
    rewards = torch.randn(6, 40, generator=generator)
    values = torch.randn(6, 40, generator=generator)
    action_mask = torch.rand(6, 40, generator=generator) > 0.4
    action_mask[3] = False  # an episode with no action at all
    advantages, returns = gae(rewards, values, action_mask, gamma=0.97, lam=0.9)
    for row in range(6):
        expected = _reference_gae(
            rewards[row].tolist(), values[row].tolist(), action_mask[row].int().tolist(), 0.97, 0.9
        )
        assert close(advantages[row], expected, atol=1e-4)
    assert close(returns, torch.where(action_mask, advantages + values, 0.0), atol=1e-5)


def test_group_advantages_by_hand() -> None:
    """Two tasks, two samples each: each row's returns-to-go minus the other sample's episode return."""
    mask = torch.tensor([[0, 1, 1, 0, 1], [0, 1, 1, 1, 0], [1, 1, 0, 0, 0], [1, 0, 1, 0, 0]])
    rewards = torch.tensor([[9.0, -1.0, 0.0, 7.0, 10.0],  # 9 and 7 sit on observations: ignored
                            [0.0, 0.0, 0.0, 0.0, 0.0],
                            [0.0, -0.5, 0.0, 0.0, 0.0],
                            [0.0, 0.0, -0.8, 0.0, 0.0]])
    advantages, returns = group_advantages(rewards * mask, mask, gamma=1.0, group_size=2)
    # episode returns: row 0: 9, row 1: 0, row 2: -0.5, row 3: -0.8
    assert returns[0].tolist() == [0.0, 9.0, 10.0, 0.0, 10.0]
    assert advantages[0].tolist() == [0.0, 9.0, 10.0, 0.0, 10.0]  # baseline: row 1's 0
    assert advantages[1].tolist() == [0.0, -9.0, -9.0, -9.0, 0.0]
    assert advantages[2].tolist() == pytest.approx([0.3, 0.3, 0.0, 0.0, 0.0])
    assert advantages[3].tolist() == pytest.approx([-0.3, 0.0, -0.3, 0.0, 0.0])


def test_group_advantages_discount_and_shape_checks() -> None:
    mask = torch.ones(3, 2)
    rewards = torch.tensor([[0.0, 4.0], [0.0, 0.0], [2.0, 0.0]])
    advantages, _ = group_advantages(rewards, mask, gamma=0.5, group_size=3)
    # G_0: 2, 0, 2; baselines: (0 + 2) / 2 = 1, (2 + 2) / 2 = 2, 1
    assert advantages.tolist() == [[1.0, 3.0], [-2.0, -2.0], [1.0, -1.0]]
    with pytest.raises(ValueError, match="groups of 2"):
        group_advantages(rewards, mask, gamma=1.0, group_size=2)
    with pytest.raises(ValueError, match="groups of 1"):
        group_advantages(rewards, mask, gamma=1.0, group_size=1)


def test_gae_outputs_carry_no_gradient() -> None:
    values = torch.tensor([[0.5, 0.4, 0.3]], requires_grad=True)
    advantages, returns = gae(t([0, 0, 1]), values, mask([1, 1, 1]), gamma=1.0, lam=0.95)
    assert not advantages.requires_grad and not returns.requires_grad


# --------------------------------------------------------------------------------------------------
# KL penalty and rewards
# --------------------------------------------------------------------------------------------------


def test_kl_estimators_by_hand() -> None:
    logp, ref = torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)])
    # k1 = log 0.5 - log 0.25 = log 2
    assert close(kl_penalty(logp, ref, "k1"), [math.log(2)])
    # k3 with r = log 0.25 - log 0.5 = -log 2:  exp(r) - 1 - r = 0.5 - 1 + log 2
    assert close(kl_penalty(logp, ref, "k3"), [0.5 - 1 + math.log(2)])
    # The other way round k1 goes negative, k3 never does: r = log 2, 2 - 1 - log 2
    assert close(kl_penalty(ref, logp, "k1"), [-math.log(2)])
    assert close(kl_penalty(ref, logp, "k3"), [1 - math.log(2)])
    same = torch.tensor([-1.3, -0.2])
    assert torch.all(kl_penalty(same, same, "k3") == 0)
    with pytest.raises(ValueError, match="k2"):
        kl_penalty(logp, ref, "k2")  # type: ignore[arg-type]


def test_kl_estimators_are_unbiased_for_the_true_kl() -> None:
    p = torch.tensor([0.6, 0.3, 0.1])
    q = torch.tensor([0.2, 0.5, 0.3])
    true_kl = float((p * (p / q).log()).sum())
    # Expectation under a ~ p, computed exactly over the three outcomes.
    for kind in ("k1", "k3"):
        expected = float((p * kl_penalty(p.log(), q.log(), kind)).sum())
        assert expected == pytest.approx(true_kl, abs=1e-6)


def test_token_rewards_by_hand() -> None:
    rewards = token_rewards(t([0, 0, 1, 0]), t([5, 0.2, 0.4, 7]), 0.1, mask([0, 1, 1, 0]))
    assert close(rewards, [[0, -0.02, 0.96, 0]])


def test_token_rewards_refuse_a_reward_on_an_observation() -> None:
    with pytest.raises(ValueError, match="non-action token"):
        token_rewards(t([0, 1, 0]), t([0, 0, 0]), 0.1, mask([1, 0, 0]))


def test_turn_ends_and_place_turn_rewards() -> None:
    action_mask = mask(TWO_TURN_MASK, [0, 0, 0, 0, 0, 0, 0, 1, 1, 1])
    ends = turn_ends(action_mask)
    assert ends[0].nonzero().flatten().tolist() == [3, 7]
    assert ends[1].nonzero().flatten().tolist() == [9]
    placed = place_turn_rewards(action_mask, [[-0.5, 10.0], [1.0]])
    assert close(placed[0], TWO_TURN_REWARDS)
    assert placed[1].tolist() == [0] * 9 + [1.0]
    with pytest.raises(ValueError, match="episode 1 has 1 assistant turns"):
        place_turn_rewards(action_mask, [[-0.5, 10.0], [1.0, 2.0]])


# --------------------------------------------------------------------------------------------------
# Masked statistics
# --------------------------------------------------------------------------------------------------


def test_masked_mean_and_var_by_hand() -> None:
    x = t([1, 2, 3, float("nan")], [4, float("inf"), 6, 8])
    m = mask([1, 1, 1, 0], [1, 0, 1, 1])
    assert masked_mean(x, m).item() == pytest.approx((1 + 2 + 3 + 4 + 6 + 8) / 6)
    assert close(masked_mean(x, m, dim=1), [2.0, 6.0])
    assert masked_var(t([1, 2, 3, 99]), mask([1, 1, 1, 0])).item() == pytest.approx(1.0)
    assert masked_var(t([1, 2, 3, 99]), mask([1, 1, 1, 0]), unbiased=False).item() == pytest.approx(2 / 3)
    assert masked_mean(x, torch.zeros_like(m)).item() == 0.0  # empty: 0, not NaN
    assert masked_var(t([5.0, 1.0]), mask([1, 0])).item() == 0.0  # one element: 0, not NaN


def test_whitening_uses_masked_positions_only() -> None:
    x = t([1, 2, 3, 1000, -1000])
    m = mask([1, 1, 1, 0, 0])
    assert close(masked_whiten(x, m), [[-1, 0, 1, 0, 0]])
    # shift_mean=False rescales around the mean and keeps it.
    assert close(masked_whiten(x, m, shift_mean=False), [[1, 2, 3, 0, 0]])
    big = torch.randn(4, 50) * 7 + 3
    big_mask = torch.rand(4, 50) > 0.3
    white = masked_whiten(big, big_mask)
    assert masked_mean(white, big_mask).item() == pytest.approx(0.0, abs=1e-5)
    assert masked_var(white, big_mask).item() == pytest.approx(1.0, abs=1e-4)
    assert torch.all(white[~big_mask] == 0)


def test_explained_variance() -> None:
    returns = t([1, 2, 3, 50])
    m = mask([1, 1, 1, 0])
    # R - V = [0, 0, 1]: Var = 1/3 (unbiased); Var R = 1  ->  EV = 2/3
    assert explained_variance(t([1, 2, 2, -50]), returns, m) == pytest.approx(2 / 3)
    assert explained_variance(t([1, 2, 3, 0]), returns, m) == pytest.approx(1.0)
    assert explained_variance(t([2, 2, 2, 0]), returns, m) == pytest.approx(0.0)  # predicting the mean
    assert explained_variance(t([3, 2, 1, 0]), returns, m) < 0
    assert math.isnan(explained_variance(t([1, 2, 3]), t([4, 4, 4]), mask([1, 1, 1])))


# --------------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------------

# Five tokens, the last one padding. Old log-probs are 0, so new log-probs are log(ratio).
RATIOS = [1.1, 1.5, 0.5, 1.5, 1.0]
ADVANTAGES = [1.0, 1.0, -1.0, -2.0, 0.0]
LOSS_MASK = [1, 1, 1, 1, 0]


def test_policy_loss_by_hand() -> None:
    # eps = 0.2; per token max(-A*rho, -A*clip(rho)):
    #   A=1,  rho=1.1: -1.1 vs -1.1 -> -1.1  (inside the clip range)
    #   A=1,  rho=1.5: -1.5 vs -1.2 -> -1.2  (clipped: no incentive to push further)
    #   A=-1, rho=0.5:  0.5 vs  0.8 ->  0.8  (clipped)
    #   A=-2, rho=1.5:  3.0 vs  2.4 ->  3.0  (pessimistic bound keeps the unclipped, larger loss)
    new = torch.tensor([[math.log(r) for r in RATIOS]], requires_grad=True)
    loss, clip_fraction, approx_kl = policy_loss(new, torch.zeros(1, 5), t(ADVANTAGES), mask(LOSS_MASK), 0.2)
    assert loss.item() == pytest.approx((-1.1 - 1.2 + 0.8 + 3.0) / 4)
    assert clip_fraction.item() == pytest.approx(0.5)
    expected_kl = sum(r - 1 - math.log(r) for r in RATIOS[:4]) / 4
    assert approx_kl.item() == pytest.approx(expected_kl, rel=1e-5)
    loss.backward()
    # d/dlogp of -A*rho is -A*rho / n on unclipped tokens; 0 where the clip is active or masked.
    assert close(new.grad, [[-1.1 / 4, 0.0, 0.0, 2 * 1.5 / 4, 0.0]])


def test_policy_loss_without_clipping_is_minus_mean_advantage() -> None:
    loss, clip_fraction, approx_kl = policy_loss(
        torch.zeros(1, 5), torch.zeros(1, 5), t(ADVANTAGES), mask(LOSS_MASK), 0.2
    )
    assert loss.item() == pytest.approx(-(1 + 1 - 1 - 2) / 4)
    assert clip_fraction.item() == 0 and approx_kl.item() == 0


def test_value_loss_by_hand() -> None:
    # eps = 0.2:
    #   v=1, old=0.9, R=1.5: (1-1.5)^2 = 0.25; V_clip = 1.0 -> 0.25          -> 0.25
    #   v=2, old=1,   R=3:   (2-3)^2   = 1;    V_clip = 1.2 -> 1.8^2 = 3.24  -> 3.24 (clipped)
    #   v=2, old=1,   R=1.5: 0.25;             V_clip = 1.2 -> 0.09          -> 0.25
    new = torch.tensor([[1.0, 2.0, 2.0, 0.0]], requires_grad=True)
    old, returns, m = t([0.9, 1.0, 1.0, 0]), t([1.5, 3.0, 1.5, 0]), mask([1, 1, 1, 0])
    loss, clip_fraction = value_loss(new, old, returns, m, 0.2)
    assert loss.item() == pytest.approx(0.5 * (0.25 + 3.24 + 0.25) / 3)
    assert clip_fraction.item() == pytest.approx(1 / 3)
    loss.backward()
    # 0.5 * 2 (v - R) / 3 on unclipped tokens; 0 on the clipped one and the masked one.
    assert close(new.grad, [[-0.5 / 3, 0.0, 0.5 / 3, 0.0]])
    unclipped, fraction = value_loss(new, old, returns, m, None)
    assert unclipped.item() == pytest.approx(0.5 * (0.25 + 1.0 + 0.25) / 3)
    assert fraction.item() == 0


def test_masked_positions_get_zero_gradient_even_with_garbage() -> None:
    bad = float("nan")
    m = mask([1, 1, 0, 0])
    new_logprobs = torch.tensor([[-1.0, -2.0, float("-inf"), bad]], requires_grad=True)
    new_values = torch.tensor([[0.5, 1.0, bad, float("inf")]], requires_grad=True)
    logits = torch.randn(1, 4, 6)
    logits[0, 1, :3] = float("-inf")  # banned tokens at an action position are fine too
    logits.requires_grad_(True)
    p_loss, _, _ = policy_loss(new_logprobs, t([-1.1, -1.9, bad, 0]), t([1, -1, bad, 5]), m, 0.2)
    v_loss, _ = value_loss(new_values, t([0.4, 1.1, bad, 0]), t([1, 2, bad, 3]), m, 0.2)
    entropy = masked_mean(entropy_from_logits(logits), m)
    total = p_loss + 0.5 * v_loss - 0.01 * entropy
    assert is_finite_loss(total)
    total.backward()
    for grad in (new_logprobs.grad, new_values.grad):
        assert torch.all(grad[0, 2:] == 0)
        assert torch.all(torch.isfinite(grad)) and torch.all(grad[0, :2] != 0)
    assert torch.all(logits.grad[0, 2:] == 0) and torch.all(torch.isfinite(logits.grad))


def test_entropy_from_logits() -> None:
    assert entropy_from_logits(torch.zeros(2, 8)).tolist() == pytest.approx([math.log(8)] * 2)
    certain = torch.tensor([0.0, float("-inf"), float("-inf")])
    assert entropy_from_logits(certain).item() == 0.0
    logits = torch.randn(3, 5, 11)
    expected = torch.distributions.Categorical(logits=logits).entropy()
    assert close(entropy_from_logits(logits), expected)


def test_is_finite_loss() -> None:
    assert is_finite_loss(torch.tensor(1.5))
    assert not is_finite_loss(torch.tensor(float("nan")))
    assert not is_finite_loss(torch.tensor([1.0, float("inf")]))


# --------------------------------------------------------------------------------------------------
# A full update on a tiny linear policy
# --------------------------------------------------------------------------------------------------


class LinearPolicy(torch.nn.Module):
    """Logits and a value from token features: the shape of the real (shared-critic) policy, minus the LM."""

    def __init__(self, features: int, vocab: int) -> None:
        super().__init__()
        self.policy = torch.nn.Linear(features, vocab)
        self.value = torch.nn.Linear(features, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.policy(x), self.value(x).squeeze(-1)


def _logprobs(logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits, -1).gather(-1, actions.unsqueeze(-1)).squeeze(-1)


def test_ppo_update_lowers_the_loss_and_favours_rewarded_tokens() -> None:
    torch.manual_seed(0)
    batch, length, features, vocab = 8, 12, 6, 5
    model = LinearPolicy(features, vocab)
    reference = LinearPolicy(features, vocab)
    reference.load_state_dict(model.state_dict())
    x = torch.randn(batch, length, features)
    action_mask = torch.ones(batch, length, dtype=torch.bool)
    action_mask[:, :2] = False  # prompt
    action_mask[:, 6:8] = False  # a tool response between two turns
    action_mask[:2, 10:] = False  # padding
    with torch.no_grad():
        logits, values = model(x)
        actions = torch.distributions.Categorical(logits=logits).sample()
        old_logprobs = _logprobs(logits, actions)
        ref_logprobs = _logprobs(reference(x)[0], actions)
    # Each turn is rewarded by how many of its tokens are token 0.
    good = ((actions == 0) & action_mask).float()
    ends = turn_ends(action_mask)
    turn_rewards = [[float(good[b, :8].sum()), float(good[b, 8:].sum())] for b in range(batch)]
    rewards = token_rewards(
        place_turn_rewards(action_mask, turn_rewards),
        kl_penalty(old_logprobs, ref_logprobs),
        0.02,
        action_mask,
    )
    assert int(ends.sum()) == 2 * batch
    advantages, returns = gae(rewards, values, action_mask, gamma=1.0, lam=0.95)
    advantages = masked_whiten(advantages, action_mask)

    def loss_on_batch() -> tuple[torch.Tensor, torch.Tensor]:
        new_logits, new_values = model(x)
        p_loss, _, _ = policy_loss(_logprobs(new_logits, actions), old_logprobs, advantages, action_mask, 0.2)
        v_loss, _ = value_loss(new_values, values, returns, action_mask, None)
        return p_loss + 0.5 * v_loss, new_logits

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first, first_logits = loss_on_batch()
    for _ in range(20):
        for indices in minibatch_indices(batch, 4, torch.Generator().manual_seed(1)):
            new_logits, new_values = model(x[indices])
            p_loss, _, _ = policy_loss(
                _logprobs(new_logits, actions[indices]),
                old_logprobs[indices],
                advantages[indices],
                action_mask[indices],
                0.2,
            )
            v_loss, _ = value_loss(new_values, values[indices], returns[indices], action_mask[indices], None)
            optimizer.zero_grad()
            (p_loss + 0.5 * v_loss).backward()
            optimizer.step()
    last, last_logits = loss_on_batch()
    assert last.item() < first.item() - 0.1
    p_token0_before = torch.softmax(first_logits, -1)[..., 0][action_mask].mean()
    p_token0_after = torch.softmax(last_logits, -1)[..., 0][action_mask].mean()
    assert p_token0_after > p_token0_before + 0.05


# --------------------------------------------------------------------------------------------------
# KL controllers, minibatches, schedules
# --------------------------------------------------------------------------------------------------


def test_adaptive_kl_controller_moves_towards_the_target() -> None:
    controller = AdaptiveKLController(0.1, target=6.0, horizon=1000)
    assert controller.update(12.0, 100) > 0.1  # KL too high: penalise more
    raised = controller.value
    assert controller.update(1.0, 100) < raised  # KL too low: penalise less
    # The proportional error is clipped to +-0.2: beta * (1 + 0.2 * 100 / 1000)
    fresh = AdaptiveKLController(0.1, target=6.0, horizon=1000)
    assert fresh.update(6000.0, 100) == pytest.approx(0.1 * 1.02)
    assert AdaptiveKLController(0.1, 6.0, 1000).update(6.0, 100) == pytest.approx(0.1)
    fixed = FixedKLController(0.05)
    assert fixed.update(100.0, 100) == 0.05 and fixed.value == 0.05
    with pytest.raises(ValueError):
        AdaptiveKLController(0.1, target=0.0, horizon=1000)


def test_minibatch_indices_cover_every_episode_once() -> None:
    batches = minibatch_indices(20, 8, torch.Generator().manual_seed(3))
    assert [len(b) for b in batches] == [8, 8, 4]
    assert sorted(torch.cat(batches).tolist()) == list(range(20))
    again = minibatch_indices(20, 8, torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip(batches, again, strict=True))
    other = minibatch_indices(20, 8, torch.Generator().manual_seed(4))
    assert not torch.equal(torch.cat(batches), torch.cat(other))
    with pytest.raises(ValueError, match="minibatch_size"):
        minibatch_indices(20, 0)


def test_lr_schedules() -> None:
    constant = lr_schedule("constant", warmup_steps=4, total_steps=10)
    assert [constant(s) for s in range(6)] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])
    linear = lr_schedule("linear", warmup_steps=2, total_steps=12)
    assert linear(2) == pytest.approx(1.0)
    assert linear(7) == pytest.approx(0.5)
    assert linear(12) == pytest.approx(0.0) and linear(50) == pytest.approx(0.0)
    cosine = lr_schedule("cosine", warmup_steps=0, total_steps=10)
    assert cosine(0) == pytest.approx(1.0)
    assert cosine(5) == pytest.approx(0.5)
    assert cosine(10) == pytest.approx(0.0)
    assert cosine(2) > linear(4)  # cosine stays high early: 0.905 vs 0.8
    with pytest.raises(ValueError, match="exponential"):
        lr_schedule("exponential", 0, 10)  # type: ignore[arg-type]


def test_lr_schedule_drives_lambda_lr() -> None:
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_schedule("linear", 2, 4))
    seen = []
    for _ in range(5):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx([0.05, 0.1, 0.1, 0.05, 0.0])
