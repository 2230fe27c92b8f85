"""Label shift: how the share of positive tweets in live traffic differs from training.

A classifier's posteriors carry the class prior of the data it was fitted (or calibrated) on.
When only the prior moves (airline customers complain far more than Sentiment140's 50/50),
the EM method of Saerens, Latinne and Decaestecker (2002, "Adjusting the outputs of a
classifier to new a priori probabilities") estimates the new prior from unlabelled posteriors
alone, and Bayes' rule re-weights each posterior to it. Both the predictor's monitor and the
evaluation code use these functions, so what ops see and what the bench measures agree.

EM rests on posteriors that are calibrated at the training prior. A model's posteriors on
tweets it never fitted are not quite that (its mean posterior on held-out tweets sits below or
above their true share), and EM amplifies such an offset the weaker the model ranks: balanced
traffic can read as a large shift. So training fits a `HeldoutMap` (Platt, on the held-out
split) and the monitor runs EM on posteriors put through it, at the held-out share: the
bias-corrected calibration that Alexandari, Kundaje and Shrikumar (2020, "Maximum likelihood
with bias-corrected calibration is hard-to-beat at label shift adaptation") found EM needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit

from airparadis.metrics import binary_metrics

PRIOR_FLOOR = 1e-4
"""Priors are kept inside (floor, 1 - floor): a prior of exactly 0 or 1 cannot be re-weighted."""


@dataclass(frozen=True)
class PriorEstimate:
    """The estimated positive share of a set of tweets, and how EM reached it."""

    prior: float
    training_prior: float
    iterations: int
    converged: bool
    count: int


@dataclass(frozen=True)
class HeldoutMap:
    """``sigmoid(slope * logit(p) + intercept)``: the model's raw P(positive) made calibrated
    on its held-out split, whose positive share is `prior`."""

    slope: float
    intercept: float
    prior: float

    def apply(self, p_positive: np.ndarray) -> np.ndarray:
        p = np.clip(np.asarray(p_positive, dtype=np.float64), 1e-12, 1 - 1e-12)
        return np.asarray(expit(self.slope * logit(p) + self.intercept), dtype=np.float64)

    def to_dict(self) -> dict[str, float]:
        return {"slope": self.slope, "intercept": self.intercept, "prior": self.prior}

    @classmethod
    def from_dict(cls, body: dict[str, float]) -> HeldoutMap:
        return cls(float(body["slope"]), float(body["intercept"]), float(body["prior"]))


def _clip(prior: float) -> float:
    return float(min(max(prior, PRIOR_FLOOR), 1.0 - PRIOR_FLOOR))


def adjust_posteriors(
    p_positive: np.ndarray, training_prior: float, new_prior: float
) -> np.ndarray:
    """P(positive | x) under `new_prior`, from posteriors fitted under `training_prior`.

    Bayes' rule with the class-conditional densities held fixed: each class's posterior is
    scaled by the ratio of its new to its old prior, then renormalised.
    """
    p = np.clip(np.asarray(p_positive, dtype=np.float64), 0.0, 1.0)
    old, new = _clip(training_prior), _clip(new_prior)
    positive = p * (new / old)
    negative = (1.0 - p) * ((1.0 - new) / (1.0 - old))
    total = positive + negative
    with np.errstate(invalid="ignore", divide="ignore"):
        adjusted = np.where(total > 0, positive / total, new)
    return adjusted


def estimate_prior(
    p_positive: np.ndarray,
    training_prior: float,
    *,
    tolerance: float = 1e-6,
    max_iterations: int = 1000,
    heldout: HeldoutMap | None = None,
) -> PriorEstimate:
    """Saerens et al.'s EM: alternate re-weighting the posteriors and averaging them.

    The fixed point is the maximum-likelihood prior of the unlabelled sample, given a
    classifier calibrated at `training_prior`. With a `heldout` map, the raw posteriors are
    first calibrated on held-out data and its share is the training prior. An empty sample
    keeps the training prior.
    """
    p = np.asarray(p_positive, dtype=np.float64)
    p = p[np.isfinite(p)]
    if heldout is not None:
        p, training_prior = heldout.apply(p), heldout.prior
    prior = _clip(training_prior)
    if p.size == 0:
        return PriorEstimate(prior, prior, 0, True, 0)
    for iteration in range(1, max_iterations + 1):
        updated = _clip(float(adjust_posteriors(p, training_prior, prior).mean()))
        if abs(updated - prior) < tolerance:
            return PriorEstimate(updated, _clip(training_prior), iteration, True, int(p.size))
        prior = updated
    return PriorEstimate(prior, _clip(training_prior), max_iterations, False, int(p.size))


def log_odds_shift(training_prior: float, new_prior: float) -> float:
    """The logit offset that `adjust_posteriors` amounts to: a prior correction is a Platt
    map of slope 1, so it can travel and be served as a calibration."""
    old, new = _clip(training_prior), _clip(new_prior)
    return float(np.log(new / (1 - new)) - np.log(old / (1 - old)))


@dataclass(frozen=True)
class PriorDecision:
    """Whether a prior correction should be served, and why."""

    apply: bool
    reason: str
    raw_macro_f1: float | None = None
    adjusted_macro_f1: float | None = None


def prior_policy(
    estimate: PriorEstimate,
    *,
    min_tweets: int,
    min_log_odds: float,
    labelled: tuple[np.ndarray, np.ndarray] | None = None,
    min_check_labels: int = 20,
    threshold: float = 0.5,
    heldout: HeldoutMap | None = None,
) -> PriorDecision:
    """The label-shift policy before labels can support a calibration.

    Apply the EM prior only when it is confident (converged on at least `min_tweets`
    unlabelled tweets) and far from the training prior (odds moved by at least
    `min_log_odds`), since a miscalibrated model makes EM drift on balanced traffic; and
    never when the labelled feedback at hand (`labelled`: raw P(positive), labels; at least
    `min_check_labels` of them, none fitted on) scores lower with it than without. `heldout`
    is the map the estimate was made through (`estimate_prior`).
    """
    if not estimate.converged or estimate.count < min_tweets:
        return PriorDecision(
            False, f"estimate not confident ({estimate.count} tweets, converged "
            f"{estimate.converged}; needs {min_tweets})",
        )  # fmt: skip
    shift = log_odds_shift(estimate.training_prior, estimate.prior)
    if abs(shift) < min_log_odds:
        return PriorDecision(
            False, f"estimated prior {estimate.prior:.3f} is close to the training prior "
            f"{estimate.training_prior:.3f} (log-odds {shift:+.2f}, needs ±{min_log_odds})",
        )  # fmt: skip
    if labelled is None or len(labelled[1]) < min_check_labels:
        seen = 0 if labelled is None else len(labelled[1])
        return PriorDecision(
            True, f"estimated prior {estimate.prior:.3f} vs training {estimate.training_prior:.3f}"
            f" on {estimate.count} tweets; {seen} labels, too few to check it",
        )  # fmt: skip
    p, y = labelled
    raw = float(binary_metrics(y, p, threshold)["macro_f1"])
    calibrated = heldout.apply(p) if heldout is not None else p
    moved = adjust_posteriors(calibrated, estimate.training_prior, estimate.prior)
    adjusted = float(binary_metrics(y, moved, threshold)["macro_f1"])
    if adjusted < raw:
        return PriorDecision(
            False, f"it hurts the {len(y)} labelled feedbacks (macro-F1 {raw:.3f} -> "
            f"{adjusted:.3f})", raw, adjusted,
        )  # fmt: skip
    return PriorDecision(
        True, f"estimated prior {estimate.prior:.3f} vs training {estimate.training_prior:.3f} on"
        f" {estimate.count} tweets; labelled feedback {raw:.3f} -> {adjusted:.3f}", raw, adjusted,
    )  # fmt: skip
