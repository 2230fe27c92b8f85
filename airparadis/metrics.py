"""The metrics every report uses (training logs, `compare`, `evaluate`, the gate, calibration).

Airline tweets are mostly complaints, so accuracy alone flatters a model that calls everything
negative: macro-F1, balanced accuracy, the share of complaints caught (negative recall) and the
precision of "positive" sit beside it, with two calibration measures (Brier score, expected
calibration error). Every label-based metric uses the model's own decision threshold.

A metric that is undefined on the data (ROC-AUC of a one-class file) is NaN here; `json_safe`
turns NaN into null, with a warning, before anything is printed or stored as JSON.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from airparadis import DEFAULT_THRESHOLD, LABELS

logger = logging.getLogger(__name__)

ECE_BINS = 10


def accuracy(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> float:
    """Share of right labels, calling positive a score at or above `threshold`: the model's
    own threshold (``BundleInfo.threshold``) on probabilities, its logit on raw logits.

    Numpy only, so that validation inside a training loop (a GPU machine without the
    project's environment included) needs nothing else.
    """
    y = np.asarray(y_true).astype(np.int64)
    predicted = (np.asarray(scores) >= threshold).astype(np.int64)
    return float(np.mean(predicted == y))


def reliability_bins(
    y_true: np.ndarray, p_positive: np.ndarray, bins: int = ECE_BINS
) -> list[dict[str, float | int]]:
    """Equal-width bins of P(positive): mean prediction, observed positive share, count."""
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(p_positive, dtype=np.float64)
    index = np.minimum((p * bins).astype(np.int64), bins - 1)
    out: list[dict[str, float | int]] = []
    for b in range(bins):
        members = index == b
        count = int(members.sum())
        if count:
            out.append(
                {
                    "p_mean": float(p[members].mean()),
                    "frac_positive": float(y[members].mean()),
                    "count": count,
                }
            )
    return out


def expected_calibration_error(
    y_true: np.ndarray, p_positive: np.ndarray, bins: int = ECE_BINS
) -> float:
    """Count-weighted gap between predicted and observed positive share over the bins."""
    total = len(np.asarray(y_true))
    if total == 0:
        return float("nan")
    return float(
        sum(
            int(b["count"]) * abs(float(b["p_mean"]) - float(b["frac_positive"]))
            for b in reliability_bins(y_true, p_positive, bins)
        )
        / total
    )


def binary_metrics(
    y_true: np.ndarray, p_positive: np.ndarray, threshold: float = DEFAULT_THRESHOLD
) -> dict[str, float]:
    """Accuracy, ROC-AUC, macro-F1, balanced accuracy, Brier, ECE and per-class
    precision/recall/F1 (keys like ``f1_negative``); `recall_negative` is complaints caught."""
    from sklearn.metrics import (
        balanced_accuracy_score,
        brier_score_loss,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    y_true = np.asarray(y_true, dtype=np.int64)
    p_positive = np.asarray(p_positive, dtype=np.float64)
    y_pred = (p_positive >= threshold).astype(np.int64)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=[0, 1], zero_division=0
    )
    two_classes = len(np.unique(y_true)) == 2
    empty = len(y_true) == 0
    metrics: dict[str, float] = {
        "n": float(len(y_true)),
        "accuracy": float("nan") if empty else accuracy(y_true, p_positive, threshold),
        "roc_auc": float(roc_auc_score(y_true, p_positive)) if two_classes else float("nan"),
        "macro_f1": float(np.mean(f1)) if not empty else float("nan"),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred))
        if two_classes
        else float("nan"),
        "brier": float("nan")
        if empty
        else float(brier_score_loss(y_true, p_positive, pos_label=1)),
        "ece": expected_calibration_error(y_true, p_positive),
        "positive_share_predicted": float("nan") if empty else float(y_pred.mean()),
    }
    for index, label in enumerate(LABELS):
        metrics[f"precision_{label}"] = float(precision[index])
        metrics[f"recall_{label}"] = float(recall[index])
        metrics[f"f1_{label}"] = float(f1[index])
        metrics[f"support_{label}"] = float(support[index])
    return metrics


def json_safe(value: Any, where: str = "output") -> Any:
    """`value` with every NaN/inf float replaced by None (JSON has no NaN), each one logged."""
    if isinstance(value, float) and not math.isfinite(value):
        logger.warning("%s: %s is undefined on this data; written as null", where, value)
        return None
    if isinstance(value, dict):
        return {k: json_safe(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def finite_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The defined metrics only: MLflow and tables get no NaN."""
    return {k: v for k, v in metrics.items() if math.isfinite(v)}
