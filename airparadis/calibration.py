"""Calibration learned from labelled feedback: a map of the model's logit plus a threshold.

A model trained on Sentiment140 ranks airline tweets well but assumes their world: half of
them positive, and its own logit scale. From labelled feedback we fit, per model,
``calibrated logit = slope * logit(p_raw) + intercept`` ("temperature": intercept 0; "platt":
both; "identity": neither; "domain_head": Platt plus the feedback's own n-grams, see
`airparadis.domain_head`) and the decision threshold that maximises macro-F1. The method is
chosen by cross-validation on the feedback (out-of-fold log loss), and the threshold inside
each fold, so the held-out figures stored with it are honest.

The result travels in ``bundle.json`` (`BundleInfo.calibration`, a versioned dict) and
`airparadis.bundle.load_bundle` wraps the classifier in `CalibratedClassifier`: every route
(v1, v2, explain, score, dashboard) then serves calibrated probabilities and labels without
knowing about calibration. The raw score stays reachable for the label-shift monitor.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy.optimize import minimize
from sklearn.model_selection import StratifiedKFold

from airparadis.bundle_format import BundleInfo, SentimentClassifier, write_info
from airparadis.domain_head import (
    C_GRID,
    FEATURE_SETS,
    HEAD_FILE,
    DomainHead,
    FeatureSet,
    FittedHead,
    HeadRows,
    fit_head,
    head_logit,
    head_rows,
)
from airparadis.embedding import ENCODER_FILE, ENCODER_TOKENIZER_FILE, SentenceEncoder
from airparadis.label_shift import HeldoutMap, PriorEstimate, log_odds_shift
from airparadis.metrics import binary_metrics, reliability_bins
from airparadis.text import clean_tweets

CALIBRATION_FORMAT = 3
"""Version of the serialised dict; bump it when its meaning changes (v2: "domain_head"; v3: the
head's feature set and generic sample)."""
READABLE_FORMATS = (1, 2, 3)

Method = Literal["identity", "temperature", "platt", "domain_head", "prior"]
METHODS: tuple[Method, ...] = ("identity", "temperature", "platt", "domain_head")
"""The methods cross-validation chooses among on labelled feedback."""
ALL_METHODS: tuple[Method, ...] = (*METHODS, "prior")
""""prior": the EM label-shift correction (slope 1, intercept the log-odds shift) estimated on
unlabelled traffic, served before labels can support a fitted method (`prior_calibration`)."""
HELDOUT_KEYS = (
    "macro_f1", "balanced_accuracy", "recall_negative", "precision_positive", "brier", "ece", "n",
)  # fmt: skip
THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)
_EPS = 1e-6
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenericSample:
    """Labelled generic (Sentiment140 training) tweets and the model's raw P(positive) on
    them: fitted beside the feedback so the domain head keeps generic tweets ranked."""

    texts: Sequence[str]
    p_raw: np.ndarray
    labels: np.ndarray


class CalibrationError(ValueError):
    """The feedback cannot support a calibration (too few labels, a single class)."""


@dataclass(frozen=True)
class Calibration:
    method: Method
    slope: float
    intercept: float
    threshold: float
    prior: float
    labels: int
    raw_threshold: float = 0.5
    fitted_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    heldout: dict[str, dict[str, float | None]] = field(default_factory=dict)
    reliability: list[dict[str, float | int]] = field(default_factory=list)
    head_file: str | None = None
    """"domain_head": the file beside ``bundle.json`` holding its n-gram part."""
    head_c: float | None = None
    """"domain_head": the L2 strength chosen by cross-validation."""
    head_features: str | None = None
    """"domain_head": the feature set chosen by cross-validation ("ngram", "ngram+embedding")."""
    head_generic_rows: int = 0
    """"domain_head": generic Sentiment140 rows fitted beside the feedback."""
    version: int = CALIBRATION_FORMAT
    head: DomainHead | None = field(default=None, compare=False, repr=False)
    """The loaded n-gram part (not serialised: it lives in `head_file`)."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "head"}

    @classmethod
    def from_dict(cls, raw: dict[str, Any], head: DomainHead | None = None) -> Calibration:
        if raw.get("version") not in READABLE_FORMATS:
            raise CalibrationError(
                f"calibration format v{raw.get('version')} is not one of {READABLE_FORMATS}"
            )
        if raw.get("method") not in ALL_METHODS:
            raise CalibrationError(f"unknown calibration method {raw.get('method')!r}")
        return cls(**{**raw, "version": CALIBRATION_FORMAT}, head=head)

    def apply(self, p_raw: np.ndarray, texts: Sequence[str] | None = None) -> np.ndarray:
        """Calibrated P(positive) of raw P(positive) (the head also reads the raw `texts`)."""
        z = self.slope * logit(p_raw) + self.intercept
        if self.head is not None:
            if texts is None:
                raise CalibrationError("the domain head needs the tweets' texts")
            z = z + self.head.logit_shift(texts)
        return _sigmoid(z)

    def apply_one(self, p_raw: float, text: str | None = None) -> float:
        p = min(max(p_raw, _EPS), 1 - _EPS)
        z = self.slope * math.log(p / (1 - p)) + self.intercept
        if self.head is not None:
            if text is None:
                raise CalibrationError("the domain head needs the tweet's text")
            z += sum(part for _, part in self.head.contributions(text))
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.asarray(np.log(p) - np.log1p(-p), dtype=np.float64)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64))))


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
    shifted = _sigmoid(logit(p) - logit(decisions_at))  # same decisions at threshold 0.5
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
) -> Calibration:
    """Choose and fit the calibration on labelled feedback (raw P(positive), labels 0/1).

    With the feedback's raw `texts`, the domain head competes too (its L2 strength and
    feature set chosen on the same folds); without them, only the maps of the logit do. A
    `generic` sample joins every fit of the head (never its held-out folds); `encoder_dir`
    (an exported encoder, `airparadis.embedding.exported_encoder`) lets the "ngram+embedding"
    feature set compete.

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
    encoder = SentenceEncoder.load(encoder_dir) if encoder_dir is not None else None
    rows: HeadRows | None = None
    extra: HeadRows | None = None
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
            feature_sets = FEATURE_SETS if encoder is not None else ("ngram",)
            loss, head_c, head_features, oof_p, oof_t = _cross_validate_head(
                rows, extra, splitter, feature_sets
            )
            out_of_fold[method] = (oof_p, oof_t)
            if chosen is None or loss < chosen[0] - 1e-9:
                chosen = (loss, method)
            continue
        oof_p = np.empty_like(p_raw)
        oof_t = np.empty_like(p_raw)
        for fit_rows, held_rows in splitter.split(z, y):
            slope, intercept = fit_map(method, z[fit_rows], y[fit_rows])
            threshold = choose_threshold(_sigmoid(slope * z[fit_rows] + intercept), y[fit_rows])
            oof_p[held_rows] = _sigmoid(slope * z[held_rows] + intercept)
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
            encoder_dir,
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
    if method == "domain_head":
        slope, intercept, head = fitted.slope, fitted.intercept, fitted.head
        # In-sample head probabilities are optimistic: the threshold comes out of fold.
        threshold = choose_threshold(oof_p, y)
    else:
        slope, intercept = fit_map(method, z, y)
        threshold = choose_threshold(_sigmoid(slope * z + intercept), y)
    return Calibration(
        method=method,
        slope=slope,
        intercept=intercept,
        threshold=threshold,
        prior=float(y.mean()),
        labels=len(y),
        raw_threshold=raw_threshold,
        heldout={
            "raw": _heldout(y, p_raw, np.full_like(p_raw, raw_threshold)),
            "calibrated": _heldout(y, oof_p, oof_t),
        },
        reliability=reliability_bins(y, oof_p),
        head_file=HEAD_FILE if head is not None else None,
        head_c=head_c if head is not None else None,
        head_features=head.features_used if head is not None else None,
        head_generic_rows=len(extra.y) if head is not None and extra is not None else 0,
        head=head,
    )


def _cross_validate_head(
    rows: HeadRows,
    generic: HeadRows | None,
    splitter: StratifiedKFold,
    feature_sets: Sequence[FeatureSet],
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
                fitted: FittedHead = fit_head(
                    fitting.join(generic) if generic is not None else fitting, c, features
                )
                oof_p[held_rows] = _sigmoid(head_logit(fitted, rows.take(held_rows)))
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
        adjusted = _sigmoid(slope * logit(p) + intercept)
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


def calibration_of(info: BundleInfo) -> Calibration | None:
    return Calibration.from_dict(info.calibration) if info.calibration else None


def with_calibration(info: BundleInfo, calibration: Calibration | None) -> BundleInfo:
    """The bundle info serving `calibration` (or the raw model again, with None)."""
    current = calibration_of(info)
    raw_threshold = current.raw_threshold if current else info.threshold
    if calibration is None:
        return replace(info, calibration=None, threshold=raw_threshold)
    calibration = replace(calibration, raw_threshold=raw_threshold)
    return replace(info, calibration=calibration.to_dict(), threshold=calibration.threshold)


def save_calibration(directory: Path, info: BundleInfo, calibration: Calibration | None) -> None:
    """Write `calibration` into the bundle at `directory`: its dict into ``bundle.json`` and,
    for a domain head, the head's arrays beside it."""
    if calibration is not None and calibration.head is not None:
        calibration.head.save(directory / HEAD_FILE)
    else:
        (directory / HEAD_FILE).unlink(missing_ok=True)
    if calibration is None or calibration.head is None or not calibration.head.embedding_coef.size:
        for name in (ENCODER_FILE, ENCODER_TOKENIZER_FILE):
            (directory / name).unlink(missing_ok=True)
    write_info(directory, with_calibration(info, calibration))


def load_calibration(directory: Path, info: BundleInfo) -> Calibration | None:
    """The calibration of the bundle at `directory`, its head loaded from its file."""
    if not info.calibration:
        return None
    head_file = info.calibration.get("head_file")
    head = DomainHead.load(directory / str(head_file)) if head_file else None
    return Calibration.from_dict(info.calibration, head)


def raw_threshold(info: BundleInfo) -> float:
    """The decision threshold of the model's raw score."""
    current = calibration_of(info)
    return current.raw_threshold if current else info.threshold


def training_prior(info: BundleInfo) -> float:
    """Positive share the served posteriors assume (EM's training prior, `label_shift`):
    the calibration feedback's share, else the training split's, else one half."""
    current = calibration_of(info)
    if current is not None:
        return current.prior
    prior = info.params.get("train_prior", info.metrics.get("train_prior"))
    return float(prior) if prior is not None else 0.5


def raw_proba(classifier: SentimentClassifier, texts: Sequence[str]) -> np.ndarray:
    """The model's uncalibrated P(positive), whether or not it is calibrated."""
    raw: Callable[[Sequence[str]], np.ndarray] = getattr(
        classifier, "predict_raw_proba", classifier.predict_proba
    )
    return raw(texts)


class CalibratedClassifier:
    """A classifier whose probabilities, labels, fast path and explanations are calibrated.

    ``info.threshold`` is already the calibrated threshold (`with_calibration` wrote it).
    Exact linear explanations are logit parts: the map scales them by the slope, and the
    intercept joins the bias, so parts plus bias still give the served logit.
    """

    def __init__(self, inner: SentimentClassifier, calibration: Calibration) -> None:
        self.inner = inner
        self.info = inner.info
        self.calibration = calibration
        inner_scorer: Callable[[str], float] | None = getattr(inner, "score_tweet", None)
        if inner_scorer is not None:
            apply_one = calibration.apply_one
            self.score_tweet: Callable[[str], float] = lambda text: apply_one(
                inner_scorer(text), text
            )
        inner_explain: Callable[[str], tuple[list[str], list[float]] | None] | None = getattr(
            inner, "explain", None
        )
        if inner_explain is not None:
            slope, head = calibration.slope, calibration.head

            def explain(text: str) -> tuple[list[str], list[float]] | None:
                result = inner_explain(text)
                if result is None:
                    return None
                tokens, parts = list(result[0]), [slope * part for part in result[1]]
                # The head's n-grams add their own parts (a word the generic model also
                # weighs gets both), so parts plus bias still give the served logit.
                first = {token: i for i, token in reversed(list(enumerate(tokens)))}
                for ngram, part in head.contributions(text) if head is not None else ():
                    if ngram in first:
                        parts[first[ngram]] += part
                    else:
                        tokens.append(ngram)
                        parts.append(part)
                return tokens, parts

            self.explain = explain

    def predict_raw_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.predict_proba(texts)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.calibration.apply(self.inner.predict_proba(texts), texts)

    def __getattr__(self, name: str) -> Any:
        # Format-specific attributes (the scikit-learn pipeline, the ONNX session) stay
        # reachable for export and inspection.
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)
