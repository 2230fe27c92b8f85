"""Calibration learned from labelled feedback: a map of the model's logit plus a threshold.

A model trained on Sentiment140 ranks airline tweets well but assumes their world: half of
them positive, and its own logit scale. A calibration holds, per model,
``calibrated logit = slope * logit(p_raw) + intercept`` ("temperature": intercept 0; "platt":
both; "identity": neither; "domain_head": Platt plus the feedback's own n-grams, see
`airparadis.domain_head`; "prior": the EM label-shift correction) and the decision threshold.
How one is chosen and fitted on the feedback is `airparadis.calibration_fit`; this module is
what serving needs, so the predictor loads no fitting code.

The result travels in ``bundle.json`` (`BundleInfo.calibration`, a versioned dict) and
`airparadis.bundle.load_bundle` wraps the classifier in `CalibratedClassifier`: every route
(v1, v2, explain, score, dashboard) then serves calibrated probabilities and labels without
knowing about calibration. The raw score stays reachable for the label-shift monitor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from airparadis.bundle_format import BundleInfo, SentimentClassifier, write_info
from airparadis.domain_head import HEAD_FILE, DomainHead
from airparadis.embedding import ENCODER_FILE, ENCODER_TOKENIZER_FILE, SERVING, EncoderRuntime

CALIBRATION_FORMAT = 4
"""Version of the serialised dict; bump it when its meaning changes (v2: "domain_head"; v3: the
head's feature set and generic sample; v4: the generic intercept, read as the intercept in
older formats)."""
READABLE_FORMATS = (1, 2, 3, 4)
GENERIC_THRESHOLD = 0.5
"""The decision threshold at the generic prior: the head fitted beside a balanced generic sample
decides there (the served threshold is chosen for the domain's prior)."""

Method = Literal["identity", "temperature", "platt", "domain_head", "prior"]
METHODS: tuple[Method, ...] = ("identity", "temperature", "platt", "domain_head")
"""The methods cross-validation chooses among on labelled feedback."""
ALL_METHODS: tuple[Method, ...] = (*METHODS, "prior")
""""prior": the EM label-shift correction (slope 1, intercept the log-odds shift) estimated on
unlabelled traffic, served before labels can support a fitted method
(`airparadis.calibration_fit.prior_calibration`)."""
_EPS = 1e-6


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
    """"domain_head": the feature set chosen by cross-validation ("ngram", "ngram+embedding",
    "ngram+embedding+direction")."""
    head_generic_rows: int = 0
    """"domain_head": generic Sentiment140 rows fitted beside the feedback."""
    generic_intercept: float | None = None
    """The intercept at the generic prior: for a head fitted beside generic rows, its intercept
    without the domain indicator; otherwise (and in formats before v4) the intercept itself,
    since a calibration fitted on feedback alone cannot tell the domain's prior apart (None
    given: filled with `intercept`)."""
    version: int = CALIBRATION_FORMAT
    head: DomainHead | None = field(default=None, compare=False, repr=False)
    """The loaded n-gram part (not serialised: it lives in `head_file`)."""

    def __post_init__(self) -> None:
        if self.generic_intercept is None:
            object.__setattr__(self, "generic_intercept", self.intercept)

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

    def at_generic_prior(self) -> Calibration:
        """This calibration with its generic intercept, deciding at `GENERIC_THRESHOLD`: the
        served head without the domain's prior, the view the gate reads generic quality in."""
        intercept = self.intercept if self.generic_intercept is None else self.generic_intercept
        return replace(
            self, intercept=intercept, generic_intercept=intercept, threshold=GENERIC_THRESHOLD
        )

    def apply(self, p_raw: np.ndarray, texts: Sequence[str] | None = None) -> np.ndarray:
        """Calibrated P(positive) of raw P(positive) (the head also reads the raw `texts`)."""
        z = self.slope * logit(p_raw) + self.intercept
        if self.head is not None:
            if texts is None:
                raise CalibrationError("the domain head needs the tweets' texts")
            z = z + self.head.logit_shift(texts)
        return sigmoid(z)

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


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function, through tanh: no overflow warning at large |z|."""
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64))))


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


def load_calibration(
    directory: Path, info: BundleInfo, runtime: EncoderRuntime = SERVING
) -> Calibration | None:
    """The calibration of the bundle at `directory`, its head loaded from its file (its
    encoder run as `runtime` says)."""
    if not info.calibration:
        return None
    head_file = info.calibration.get("head_file")
    head = DomainHead.load(directory / str(head_file), runtime) if head_file else None
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


def generic_prior_proba(
    classifier: SentimentClassifier, texts: Sequence[str], served: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """(P(positive), threshold) of the model at the generic prior, where generic quality is
    read: a domain head at its generic intercept, deciding at `GENERIC_THRESHOLD`; any other
    model as its raw score at the raw threshold (a map of the logit is monotone, so at the
    generic prior it decides as the raw model does; its fitted intercept is the domain's).

    `served`: the served P(positive) of the same `texts`, when already computed; the head's
    generic logit differs from the served one by the intercepts' difference only, so the head
    (its embeddings) is not run twice."""
    calibration: Calibration | None = getattr(classifier, "calibration", None)
    if calibration is None or calibration.head is None:
        return raw_proba(classifier, texts), raw_threshold(classifier.info)
    generic = calibration.at_generic_prior()
    if served is None:
        return generic.apply(raw_proba(classifier, texts), texts), generic.threshold
    return sigmoid(logit(served) + generic.intercept - calibration.intercept), generic.threshold


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
