"""The metrics table every family reports on the same split (metrics live in core:
`airparadis.metrics`, shared with calibration, serving and the dashboard)."""

from __future__ import annotations

import math

from airparadis import LABELS
from airparadis.metrics import binary_metrics, finite_metrics, json_safe

__all__ = ["binary_metrics", "finite_metrics", "json_safe", "metrics_table"]

DOMAIN_COLUMNS = (
    ("macro_f1", "macro-F1"),
    ("balanced_accuracy", "balanced acc"),
    ("recall_negative", "complaints caught"),
    ("precision_positive", "positive precision"),
    ("brier", "Brier"),
    ("ece", "ECE"),
)


def _cell(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.4f}"


def metrics_table(by_split: dict[str, dict[str, float]]) -> str:
    """Markdown tables: one row per class and split, as the seed reported it, then the
    summary metrics (accuracy, ROC-AUC) and the imbalance- and calibration-aware ones."""
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
        lines.append(
            f"| {split} | {int(m['n'])} | {_cell(m['accuracy'])} | {_cell(m['roc_auc'])} |"
        )
    lines += [
        "",
        "| split | " + " | ".join(title for _, title in DOMAIN_COLUMNS) + " |",
        "|---|" + "---|" * len(DOMAIN_COLUMNS),
    ]
    for split, m in by_split.items():
        cells = " | ".join(_cell(m.get(key, float("nan"))) for key, _ in DOMAIN_COLUMNS)
        lines.append(f"| {split} | {cells} |")
    return "\n".join(lines) + "\n"
