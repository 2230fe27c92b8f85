"""Choosing and fitting a calibration (`airparadis.calibration`) on labelled feedback.

The method is chosen by cross-validation on the feedback (out-of-fold log loss), and the
decision threshold, the one that maximises macro-F1, inside each fold, so the held-out figures
stored with it are honest (with a fine-tuned encoder, read on the feedback it was not tuned
on). Before labels can support a fitted method, `prior_calibration`
serves the EM label-shift correction estimated on unlabelled traffic.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from sklearn.model_selection import StratifiedKFold

from airparadis.calibration import (
    METHODS,
    Calibration,
    CalibrationError,
    Method,
    logit,
    sigmoid,
)
from airparadis.domain_head import (
    C_GRID,
    DIRECTION_FEATURES,
    FEATURE_SETS,
    HEAD_FILE,
    Direction,
    DomainHead,
    FeatureSet,
    FittedHead,
    HeadRows,
    fit_head,
    generic_direction,
    head_logit,
    head_rows,
)
from airparadis.embedding import SERVING, EncoderRuntime, SentenceEncoder
from airparadis.label_shift import HeldoutMap, PriorEstimate, log_odds_shift
from airparadis.metrics import binary_metrics, reliability_bins
from airparadis.text import clean_tweets

HELDOUT_KEYS = (
    "macro_f1", "balanced_accuracy", "recall_negative", "precision_positive", "brier", "ece", "n",
)  # fmt: skip
THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenericSample:
    """Labelled generic (Sentiment140 training) tweets and the model's raw P(positive) on
    them: fitted beside the feedback so the domain head keeps generic tweets ranked."""

    texts: Sequence[str]
    p_raw: np.ndarray
    labels: np.ndarray
    direction: Direction | None = None
    """The generic sentiment direction fitted on a larger generic sample
    (`training_jobs.generic_direction`); None: fitted on these tweets' own embeddings."""


def _log_loss(y: np.ndarray, z: np.ndarray) -> float:
    # log(1 + e^-z) for positives, log(1 + e^z) for negatives, stably.
    signed = np.where(y == 1, -z, z)
    return float(np.mean(np.logaddexp(0.0, signed)))


def fit_map(method: Method, z: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) minimising log loss of ``slope * z + intercept`` on labels `y`."""
    if method == "identity":
        return 1.0, 0.0
    if method == "temperature":
        result = minimize(lambda w: _log_loss(y, w[0] * z), x0=[1.0], method="L-BFGS-B",
                          bounds=[(1e-3, 100.0)])  # fmt: skip
        return float(result.x[0]), 0.0
    result = minimize(lambda w: _log_loss(y, w[0] * z + w[1]), x0=[1.0, 0.0], method="L-BFGS-B",
                      bounds=[(1e-3, 100.0), (-50.0, 50.0)])  # fmt: skip
    return float(result.x[0]), float(result.x[1])


def macro_f1_by_threshold(p: np.ndarray, y: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Macro-F1 at each threshold, in one vectorised pass (same values as `binary_metrics`)."""
    predicted = np.asarray(p)[None, :] >= np.asarray(thresholds)[:, None]
    positive = np.asarray(y)[None, :] == 1
    tp = (predicted & positive).sum(axis=1)
    fp = (predicted & ~positive).sum(axis=1)
    fn = (~predicted & positive).sum(axis=1)
    tn = (~predicted & ~positive).sum(axis=1)
    f1_pos = np.divide(
        2 * tp, 2 * tp + fp + fn, out=np.zeros(len(tp)), where=(2 * tp + fp + fn) > 0
    )
    f1_neg = np.divide(
        2 * tn, 2 * tn + fn + fp, out=np.zeros(len(tn)), where=(2 * tn + fn + fp) > 0
    )
    return np.asarray((f1_pos + f1_neg) / 2, dtype=np.float64)


def choose_threshold(p: np.ndarray, y: np.ndarray) -> float:
    """The threshold on `p` with the best macro-F1; among equal ones, the middle one."""
    scores = macro_f1_by_threshold(p, y, THRESHOLD_GRID)
    best = np.flatnonzero(scores >= scores.max() - 1e-12)
    return float(THRESHOLD_GRID[best[len(best) // 2]])


def _heldout(y: np.ndarray, p: np.ndarray, decisions_at: np.ndarray) -> dict[str, float | None]:
    """Metrics of probabilities `p` whose labels were decided at per-row thresholds."""
    shifted = sigmoid(logit(p) - logit(decisions_at))  # same decisions at threshold 0.5
    labelled = binary_metrics(y, shifted, 0.5)
    probabilistic = binary_metrics(y, p, 0.5)
    merged = {**labelled, "brier": probabilistic["brier"], "ece": probabilistic["ece"]}
    return {k: (float(merged[k]) if math.isfinite(merged[k]) else None) for k in HELDOUT_KEYS}


def fit_calibration(
    p_raw: np.ndarray,
    y: np.ndarray,
    raw_threshold: float = 0.5,
    min_labels: int = 50,
    folds: int = 5,
    seed: int = 42,
    methods: Sequence[Method] = METHODS,
    texts: Sequence[str] | None = None,
    generic: GenericSample | None = None,
    encoder_dir: Path | None = None,
    encoder_runtime: EncoderRuntime = SERVING,
    encoder_seen: int = 0,
) -> Calibration:
    """Choose and fit the calibration on labelled feedback (raw P(positive), labels 0/1).

    With the feedback's raw `texts`, the domain head competes too (its L2 strength and
    feature set chosen on the same folds); without them, only the maps of the logit do. A
    `generic` sample joins every fit of the head (never its held-out folds); `encoder_dir`
    (an exported encoder, `airparadis.embedding.exported_encoder`) lets the "ngram+embedding"
    feature set compete, and with a generic sample "ngram+embedding+direction" too; it runs
    as `encoder_runtime` says (training passes `airparadis.embedding.bulk_runtime`).

    An encoder fine-tuned on the first `encoder_seen` feedbacks (`training_jobs.encoder_tuning`)
    embeds them as it was fitted to, so the head's out-of-fold figures on them are optimistic:
    when the head is chosen, the stored held-out figures and reliability curve read the later
    feedbacks alone. The choices still read every row; on the few later ones they would follow
    noise.

    Raises `CalibrationError` below `min_labels` labels or with fewer than two examples of
    either class per fold: with that little evidence nothing should change.
    """
    p_raw = np.asarray(p_raw, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if len(y) < min_labels:
        raise CalibrationError(f"{len(y)} labelled feedbacks; calibration needs {min_labels}")
    minority = int(min(y.sum(), len(y) - y.sum()))
    n_folds = min(folds, minority)
    if n_folds < 2:
        raise CalibrationError("calibration needs at least two feedbacks of each class")
    z = logit(p_raw)
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    chosen: tuple[float, Method] | None = None
    out_of_fold: dict[Method, tuple[np.ndarray, np.ndarray]] = {}
    cleaned = clean_tweets(list(texts)) if texts is not None else None
    head_c: float | None = None
    head_features: FeatureSet = "ngram"
    encoder = (
        SentenceEncoder.load(encoder_dir, encoder_runtime) if encoder_dir is not None else None
    )
    rows: HeadRows | None = None
    extra: HeadRows | None = None
    direction: Direction | None = None
    for method in methods:
        if method == "domain_head":
            if cleaned is None:
                continue
            rows = head_rows(cleaned, z, y, True, encoder)
            if generic is not None and len(generic.labels):
                extra = head_rows(
                    clean_tweets(list(generic.texts)), logit(generic.p_raw), generic.labels,
                    False, encoder,
                )  # fmt: skip
            if extra is not None and encoder is not None:
                assert generic is not None
                direction = generic.direction or generic_direction(rows.join(extra))
            feature_sets = [
                f for f in FEATURE_SETS
                if f == "ngram" or (encoder is not None and (
                    f != DIRECTION_FEATURES or direction is not None))
            ]  # fmt: skip
            loss, head_c, head_features, oof_p, oof_t = _cross_validate_head(
                rows, extra, splitter, feature_sets, direction
            )
            out_of_fold[method] = (oof_p, oof_t)
            if chosen is None or loss < chosen[0] - 1e-9:
                chosen = (loss, method)
            continue
        oof_p = np.empty_like(p_raw)
        oof_t = np.empty_like(p_raw)
        for fit_rows, held_rows in splitter.split(z, y):
            slope, intercept = fit_map(method, z[fit_rows], y[fit_rows])
            threshold = choose_threshold(sigmoid(slope * z[fit_rows] + intercept), y[fit_rows])
            oof_p[held_rows] = sigmoid(slope * z[held_rows] + intercept)
            oof_t[held_rows] = threshold
        out_of_fold[method] = (oof_p, oof_t)
        loss = _log_loss(y, logit(oof_p))
        if chosen is None or loss < chosen[0] - 1e-9:
            chosen = (loss, method)
    assert chosen is not None
    method = chosen[1]
    head: DomainHead | None = None
    if method == "domain_head":
        assert rows is not None and head_c is not None
        fitted = fit_head(
            rows.join(extra) if extra is not None else rows, head_c, head_features, encoder,
            encoder_dir, direction,
        )  # fmt: skip
        if fitted.slope <= 0:
            # A head that weighs the generic logit negatively inverts the generic model
            # instead of adapting it: not a calibration. The best map of the logit is kept.
            logger.warning("domain head inverts the generic logit (slope %.3f): not used",
                           fitted.slope)  # fmt: skip
            others = [m for m in methods if m != "domain_head" and m in out_of_fold]
            if not others:
                raise CalibrationError("the domain head inverts the generic model")
            method = min(others, key=lambda m: _log_loss(y, logit(out_of_fold[m][0])))
    oof_p, oof_t = out_of_fold[method]
    # Only the head reads the encoder: a map's out-of-fold figures are honest on every row.
    judged = np.arange(len(y)) >= (encoder_seen if method == "domain_head" else 0)
    generic_intercept: float | None = None
    if method == "domain_head":
        slope, intercept, head = fitted.slope, fitted.intercept, fitted.head
        generic_intercept = fitted.generic_intercept
        # In-sample head probabilities are optimistic: the threshold comes out of fold.
        threshold = choose_threshold(oof_p, y)
    else:
        slope, intercept = fit_map(method, z, y)
        threshold = choose_threshold(sigmoid(slope * z + intercept), y)
    return Calibration(
        method=method,
        slope=slope,
        intercept=intercept,
        generic_intercept=generic_intercept,
        threshold=threshold,
        prior=float(y.mean()),
        labels=len(y),
        raw_threshold=raw_threshold,
        heldout={
            "raw": _heldout(y[judged], p_raw[judged], np.full(judged.sum(), raw_threshold)),
            "calibrated": _heldout(y[judged], oof_p[judged], oof_t[judged]),
        },
        reliability=reliability_bins(y[judged], oof_p[judged]),
        head_file=HEAD_FILE if head is not None else None,
        head_c=head_c if head is not None else None,
        head_features=head_features if head is not None else None,
        head_generic_rows=len(extra.y) if head is not None and extra is not None else 0,
        head=head,
    )


def _cross_validate_head(
    rows: HeadRows,
    generic: HeadRows | None,
    splitter: StratifiedKFold,
    feature_sets: Sequence[FeatureSet],
    direction: Direction | None = None,
) -> tuple[float, float, FeatureSet, np.ndarray, np.ndarray]:
    """(out-of-fold log loss, chosen C, chosen feature set, out-of-fold P, per-row
    thresholds) of the domain head on the feedback `rows`; each fold learns its own
    vocabulary, so no held-out n-gram leaks into it, and the `generic` rows join every fit."""
    best: tuple[float, float, FeatureSet, np.ndarray] | None = None
    folds = list(splitter.split(rows.z, rows.y))
    for features in feature_sets:
        for c in C_GRID:
            oof_p = np.empty_like(rows.z)
            for fit_rows, held_rows in folds:
                fitting = rows.take(fit_rows)
                both = fitting.join(generic) if generic is not None else fitting
                fitted: FittedHead = fit_head(both, c, features, direction=direction)
                oof_p[held_rows] = sigmoid(head_logit(fitted, rows.take(held_rows)))
            loss = _log_loss(rows.y, logit(oof_p))
            logger.debug("domain head %s C=%g: out-of-fold log loss %.4f", features, c, loss)
            if best is None or loss < best[0] - 1e-9:
                best = (loss, c, features, oof_p)
    assert best is not None
    loss, c, features, oof_p = best
    # Per-fold thresholds for the stored held-out figures: each fold's rows are decided at
    # the threshold chosen on the other folds' out-of-fold probabilities.
    oof_t = np.empty_like(rows.z)
    for fit_rows, held_rows in folds:
        oof_t[held_rows] = choose_threshold(oof_p[fit_rows], rows.y[fit_rows])
    return loss, c, features, oof_p, oof_t


def prior_calibration(
    estimate: PriorEstimate,
    raw_threshold: float = 0.5,
    labelled: tuple[np.ndarray, np.ndarray] | None = None,
    heldout: HeldoutMap | None = None,
) -> Calibration:
    """The EM prior correction as a calibration (every route then serves it): posteriors
    re-weighted from the training prior to the estimated live one, decided at the raw
    threshold. With the `heldout` map the estimate was made through, the served map is that
    map then the shift (a Platt map still). `labelled` feedback (raw P, labels; nothing was
    fitted on it) gives its held-out figures."""
    slope, base = (heldout.slope, heldout.intercept) if heldout is not None else (1.0, 0.0)
    intercept = base + log_odds_shift(estimate.training_prior, estimate.prior)
    heldout_figures: dict[str, dict[str, float | None]] = {}
    reliability: list[dict[str, float | int]] = []
    if labelled is not None and len(labelled[1]):
        p, y = np.asarray(labelled[0], float), np.asarray(labelled[1], np.int64)
        adjusted = sigmoid(slope * logit(p) + intercept)
        at = np.full_like(p, raw_threshold)
        heldout_figures = {"raw": _heldout(y, p, at), "calibrated": _heldout(y, adjusted, at)}
        reliability = reliability_bins(y, adjusted)
    return Calibration(
        method="prior", slope=slope, intercept=intercept, threshold=raw_threshold,
        prior=estimate.prior, labels=0 if labelled is None else len(labelled[1]),
        raw_threshold=raw_threshold, heldout=heldout_figures, reliability=reliability,
    )  # fmt: skip


def fit_heldout_map(p_positive: np.ndarray, labels: np.ndarray) -> HeldoutMap | None:
    """The Platt map that calibrates the model's raw posteriors on its held-out split (what
    the live EM prior runs through, `airparadis.label_shift`); None without both classes."""
    y = np.asarray(labels, dtype=np.int64)
    if y.size == 0 or y.min() == y.max():
        return None
    slope, intercept = fit_map("platt", logit(p_positive), y)
    return HeldoutMap(slope, intercept, float(y.mean()))
