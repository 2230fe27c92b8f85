"""The EM prior estimate recovers a known shift on synthetic, calibrated posteriors."""

from __future__ import annotations

import numpy as np
import pytest

from airparadis.label_shift import adjust_posteriors, estimate_prior


def calibrated_sample(prior: float, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn at `prior`, scores from two Gaussians, posteriors exact under `prior`."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prior).astype(int)
    score = rng.normal(np.where(y == 1, 1.0, -1.0), 1.0)
    # Exact posterior of the Gaussian pair under a 50/50 prior: sigmoid(2 * score).
    return y, 1.0 / (1.0 + np.exp(-2.0 * score))


@pytest.mark.parametrize("true_prior", [0.15, 0.5, 0.8])
def test_em_recovers_the_live_prior_from_unlabelled_posteriors(true_prior: float) -> None:
    y, p = calibrated_sample(true_prior, 20_000, seed=3)
    estimate = estimate_prior(p, training_prior=0.5)
    assert estimate.converged
    assert estimate.prior == pytest.approx(y.mean(), abs=0.02)
    # The naive reading, the mean posterior, is biased towards the training prior.
    if true_prior != 0.5:
        assert abs(p.mean() - y.mean()) > abs(estimate.prior - y.mean())


def test_adjusted_posteriors_are_exact_under_the_new_prior() -> None:
    p = np.array([0.1, 0.5, 0.9])
    adjusted = adjust_posteriors(p, training_prior=0.5, new_prior=0.2)
    odds = p / (1 - p) * (0.2 / 0.8)
    np.testing.assert_allclose(adjusted, odds / (1 + odds))
    np.testing.assert_allclose(adjust_posteriors(p, 0.3, 0.3), p)


def test_empty_or_non_finite_sample_keeps_the_training_prior() -> None:
    assert estimate_prior(np.array([]), 0.4).prior == pytest.approx(0.4)
    assert estimate_prior(np.array([np.nan]), 0.4).count == 0
