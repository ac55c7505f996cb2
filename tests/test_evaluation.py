"""The pass@k estimator used by bench/headroom.py."""

from __future__ import annotations

import itertools

import pytest

from trainer.evaluation import pass_at_k


@pytest.mark.parametrize(("samples", "successes", "k"), [(8, 0, 1), (8, 1, 1), (8, 3, 2), (5, 2, 3), (4, 4, 4)])
def test_pass_at_k_is_the_share_of_k_subsets_holding_a_success(samples, successes, k):
    outcomes = [True] * successes + [False] * (samples - successes)
    subsets = list(itertools.combinations(outcomes, k))
    expected = sum(any(subset) for subset in subsets) / len(subsets)
    assert pass_at_k(samples, successes, k) == pytest.approx(expected)


def test_pass_at_k_hand_values():
    assert pass_at_k(8, 2, 1) == pytest.approx(0.25)
    assert pass_at_k(8, 1, 8) == 1.0
    assert pass_at_k(8, 0, 8) == 0.0
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2) = 1 - 3/6


@pytest.mark.parametrize(("samples", "successes", "k"), [(4, 5, 1), (4, -1, 1), (4, 1, 0), (4, 1, 5)])
def test_pass_at_k_rejects_impossible_counts(samples, successes, k):
    with pytest.raises(ValueError, match="need 0 <= successes"):
        pass_at_k(samples, successes, k)
