"""The metrics table every family reports on the same split."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, precision_recall_fscore_support, roc_auc_score

from airparadis import LABELS


def binary_metrics(
    y_true: np.ndarray, p_positive: np.ndarray, threshold: float = 0.5
) -> dict[str, float]:
    """Accuracy, ROC-AUC and per-class precision/recall/F1 (keys like ``f1_negative``)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    p_positive = np.asarray(p_positive, dtype=np.float64)
    y_pred = (p_positive >= threshold).astype(np.int64)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=[0, 1], zero_division=0
    )
    metrics: dict[str, float] = {
        "n": float(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "roc_auc": float(roc_auc_score(y_true, p_positive))
        if len(np.unique(y_true)) == 2
        else float("nan"),
    }
    for index, label in enumerate(LABELS):
        metrics[f"precision_{label}"] = float(precision[index])
        metrics[f"recall_{label}"] = float(recall[index])
        metrics[f"f1_{label}"] = float(f1[index])
        metrics[f"support_{label}"] = float(support[index])
    return metrics


def metrics_table(by_split: dict[str, dict[str, float]]) -> str:
    """Markdown table: one row per class and split, as the seed reported it."""
    lines = [
        "| split | class | precision | recall | f1 | support |",
        "|---|---|---|---|---|---|",
    ]
    for split, m in by_split.items():
        for label in LABELS:
            lines.append(
                f"| {split} | {label} | {m[f'precision_{label}']:.4f} | {m[f'recall_{label}']:.4f}"
                f" | {m[f'f1_{label}']:.4f} | {int(m[f'support_{label}'])} |"
            )
    lines += ["", "| split | n | accuracy | ROC-AUC |", "|---|---|---|---|"]
    for split, m in by_split.items():
        lines.append(f"| {split} | {int(m['n'])} | {m['accuracy']:.4f} | {m['roc_auc']:.4f} |")
    return "\n".join(lines) + "\n"
