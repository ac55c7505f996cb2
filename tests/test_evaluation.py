"""Evaluation summaries: the pass@k estimator (bench/headroom.py) and per-suite success."""

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


def test_an_evaluation_reports_each_suite_of_a_mixture_on_its_own():
    from trainer.evaluation import evaluate
    from trainer.model_loading import load_policy
    from trainer.rollout import SamplingSettings

    policy = load_policy("tiny", device="cpu", lora=None)
    report, rollouts = evaluate(policy, suite="all", split="heldout", episodes=10, batch_size=10,
                                settings=SamplingSettings(max_new_tokens=64, greedy=True), seed=1234)
    suites = {r.record.task["suite"] for r in rollouts}
    assert set(report.success_by_suite) == suites and len(suites) == 5  # these ten seeds draw all five domains
    for suite, rate in report.success_by_suite.items():
        played = [r.record.outcome == "success" for r in rollouts if r.record.task["suite"] == suite]
        assert rate == pytest.approx(sum(played) / len(played))
    weighted = sum(rate * sum(r.record.task["suite"] == s for r in rollouts)
                   for s, rate in report.success_by_suite.items()) / len(rollouts)
    assert weighted == pytest.approx(report.success_rate)
