"""Retraining on labelled in-domain feedback: the feedback split into what is fitted, what
chooses the feedback weight and fits the calibration, and what only the gate reads; one model
per candidate weight; the calibration written into the served bundle."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from airparadis.bundle import SentimentClassifier, load_bundle
from airparadis.calibration import Calibration, CalibrationError, save_calibration
from airparadis.calibration_fit import fit_calibration
from airparadis.metrics import accuracy
from training_jobs.families import Family
from training_jobs.metrics import binary_metrics
from training_jobs.settings import TrainingSettings

logger = logging.getLogger(__name__)

CALIBRATION_FOLDS = 5
"""Cross-validation folds of the calibration fit on feedback: each label is scored by a fit
that did not see it, and five keeps every fold big enough at the minimum label count."""


@dataclass(frozen=True)
class DomainFeedback:
    """Labelled in-domain feedback, time-ordered and split so nothing is judged on what it
    was fitted on: `fit` is trained on, `select` chooses the weight and fits the calibration,
    `gate` (the latest) is only scored by the gate."""

    fit: pd.DataFrame
    select: pd.DataFrame
    gate: pd.DataFrame
    weights: tuple[float, ...]


def fit_with_feedback(
    family: Family,
    fit_frame: pd.DataFrame,
    validation: pd.DataFrame,
    domain: DomainFeedback,
    params: dict[str, Any],
    seed: int,
    generic_max_drop: float = 0.005,
) -> tuple[SentimentClassifier, float, dict[float, float]]:
    """(model, chosen weight, selection score per weight): one model per candidate weight,
    kept is the one with the best macro-F1 on the `select` slice (served as it would be:
    calibrated there, out-of-fold, when the slice is large enough)."""
    weights = domain.weights
    fit_weighted = getattr(family, "fit_weighted", None)
    if fit_weighted is not None:
        models: list[SentimentClassifier] = fit_weighted(
            fit_frame, domain.fit, weights, params, seed
        )
    else:
        models = [
            family.fit(
                pd.concat([fit_frame, domain.fit.assign(weight=w)], ignore_index=True),
                validation,
                params,
                seed,
            )
            for w in weights
        ]
    if len(models) == 1 or not len(domain.select):
        return models[0], weights[0], {}
    # Candidates that would fail the gate's generic criterion are not chosen: their
    # validation accuracy must stay within `generic_max_drop` of the best candidate's.
    generic = {
        w: accuracy(
            validation["label"].to_numpy(),
            m.predict_proba(validation["text"].tolist()),
            m.info.threshold,
        )
        for w, m in zip(weights, models, strict=True)
    }
    allowed = [w for w in weights if generic[w] >= max(generic.values()) - generic_max_drop]
    scores = {w: select_score(models[weights.index(w)], domain.select) for w in allowed}
    best = max(scores, key=lambda w: scores[w])
    return models[weights.index(best)], best, scores


def select_score(model: SentimentClassifier, select: pd.DataFrame) -> float:
    """Macro-F1 on held-out feedback as the model would be served: calibrated there
    (out-of-fold) when the slice allows, else raw."""
    texts, labels = select["text"].tolist(), select["label"].to_numpy()
    proba = model.predict_proba(texts)
    try:
        heldout = fit_calibration(proba, labels, model.info.threshold, min_labels=2)
        value = heldout.heldout["calibrated"]["macro_f1"]
    except CalibrationError:
        value = None
    if value is None:
        value = binary_metrics(labels, proba, model.info.threshold)["macro_f1"]
    return float(value)


def calibrate_served(
    served: SentimentClassifier, bundle_dir: Path, frame: pd.DataFrame, settings: TrainingSettings
) -> tuple[SentimentClassifier, Calibration | None]:
    """Fit the calibration on labelled feedback `frame` and write it into the bundle; below
    `calibration_min_labels` (or with one class) nothing changes."""
    from airparadis.calibration import raw_proba, raw_threshold

    try:
        calibration = fit_calibration(
            raw_proba(served, frame["text"].tolist()), frame["label"].to_numpy(),
            raw_threshold(served.info), settings.calibration_min_labels,
            CALIBRATION_FOLDS, settings.seed, texts=frame["text"].tolist(),
        )  # fmt: skip
    except CalibrationError as exc:
        logger.info("no calibration: %s", exc)
        return served, None
    save_calibration(bundle_dir, served.info, calibration)
    return load_bundle(bundle_dir), calibration


def log_calibration(calibration: Calibration) -> None:
    mlflow.log_params(
        {"calibration.method": calibration.method, "calibration.labels": calibration.labels,
         "calibration.head_c": calibration.head_c,
         "calibration.head_features": calibration.head_features,
         "calibration.head_generic_rows": calibration.head_generic_rows,
         "calibration.head_ngrams": len(calibration.head.vocabulary) if calibration.head else 0}
    )  # fmt: skip
    mlflow.log_metrics(
        {"calibration.slope": calibration.slope, "calibration.intercept": calibration.intercept,
         "calibration.threshold": calibration.threshold, "calibration.prior": calibration.prior}
    )  # fmt: skip
    for kind, values in calibration.heldout.items():
        mlflow.log_metrics({f"feedback_{kind}_{k}": v for k, v in values.items() if v is not None})
    mlflow.log_dict(calibration.to_dict(), "calibration.json")
