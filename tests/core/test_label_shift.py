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


def test_the_prior_policy_applies_only_a_confident_distant_estimate_that_does_not_hurt() -> None:
    from airparadis.calibration import logit
    from airparadis.calibration_fit import prior_calibration
    from airparadis.label_shift import PriorEstimate, log_odds_shift, prior_policy

    y, p = calibrated_sample(0.15, 4000, seed=4)
    estimate = estimate_prior(p, training_prior=0.5)
    rules = {"min_tweets": 500, "min_log_odds": 0.7}
    assert prior_policy(estimate, **rules).apply
    # Labels at hand that it helps keep it on; too few labels cannot veto it.
    kept = prior_policy(estimate, **rules, labelled=(p[:300], y[:300]))
    assert kept.apply and kept.adjusted_macro_f1 is not None
    assert kept.raw_macro_f1 is not None and kept.adjusted_macro_f1 >= kept.raw_macro_f1
    # Feedback from a balanced population, where the shift hurts: switched off.
    y_bal, p_bal = calibrated_sample(0.5, 600, seed=5)
    hurt = prior_policy(estimate, **rules, labelled=(p_bal, y_bal))
    assert not hurt.apply and "hurts" in hurt.reason
    # Not confident (too few tweets, no convergence) or not far: nothing is applied.
    few = PriorEstimate(estimate.prior, 0.5, estimate.iterations, True, 100)
    assert not prior_policy(few, **rules).apply
    unconverged = PriorEstimate(estimate.prior, 0.5, 1000, False, 4000)
    assert not prior_policy(unconverged, **rules).apply
    near = PriorEstimate(0.45, 0.5, 10, True, 4000)
    assert not prior_policy(near, **rules).apply and "close" in prior_policy(near, **rules).reason
    # Served as a calibration, it is exactly Bayes' re-weighting (a slope-1 map of the logit).
    calibration = prior_calibration(estimate, 0.5, (p_bal, y_bal))
    assert calibration.method == "prior" and calibration.slope == 1.0
    assert calibration.intercept == pytest.approx(log_odds_shift(0.5, estimate.prior))
    assert calibration.apply(p) == pytest.approx(
        adjust_posteriors(p, 0.5, estimate.prior), abs=1e-9
    )
    assert calibration.prior == estimate.prior and calibration.heldout["raw"]["n"] == 600
    assert float(logit(np.array([estimate.prior]))[0]) == pytest.approx(
        calibration.intercept, abs=1e-6
    )


def _miscalibrated_sample(prior: float, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Posteriors of a model that ranks well but is off on tweets it never fitted: the true
    log-odds halved and moved down, as a model shrinks and shifts out of sample."""
    rng = np.random.default_rng(seed)
    y = (rng.random(count) < prior).astype(np.int64)
    x = rng.normal(np.where(y == 1, 1.0, -1.0), 1.0)
    return 1.0 / (1.0 + np.exp(-(0.5 * 2.0 * x - 0.3))), y


@pytest.mark.parametrize("live_prior", [0.5, 0.2])
def test_em_through_the_heldout_map_reads_the_live_prior_of_a_miscalibrated_model(
    live_prior: float,
) -> None:
    from airparadis.calibration_fit import fit_heldout_map

    heldout = fit_heldout_map(*_miscalibrated_sample(0.52, 4000, seed=1))
    assert heldout is not None and heldout.prior == pytest.approx(0.52, abs=0.03)
    live, _ = _miscalibrated_sample(live_prior, 5000, seed=2)
    naive = estimate_prior(live, training_prior=0.52)
    mapped = estimate_prior(live, training_prior=0.52, heldout=heldout)
    assert abs(naive.prior - live_prior) > 0.08, naive  # EM alone is fooled by the offset
    assert mapped.prior == pytest.approx(live_prior, abs=0.03)
    assert mapped.training_prior == pytest.approx(heldout.prior)


def test_the_prior_correction_serves_the_heldout_map_then_the_shift() -> None:
    from airparadis.calibration import logit
    from airparadis.calibration_fit import fit_heldout_map, prior_calibration

    heldout = fit_heldout_map(*_miscalibrated_sample(0.5, 4000, seed=3))
    assert heldout is not None
    live, y = _miscalibrated_sample(0.2, 5000, seed=4)
    estimate = estimate_prior(live, training_prior=0.5, heldout=heldout)
    calibration = prior_calibration(estimate, 0.5, (live, y), heldout)
    served = 1.0 / (1.0 + np.exp(-(calibration.slope * logit(live) + calibration.intercept)))
    assert served.mean() == pytest.approx(0.2, abs=0.03)  # calibrated at the live share
    assert calibration.slope == pytest.approx(heldout.slope)


def test_a_one_class_heldout_split_gives_no_map() -> None:
    from airparadis.calibration_fit import fit_heldout_map

    assert fit_heldout_map(np.array([0.2, 0.7]), np.array([1, 1])) is None
