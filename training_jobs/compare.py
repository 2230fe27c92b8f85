"""`airparadis compare`: the latest training run of each family, side by side.

Prints one table (the seed's metrics on the test split, plus the extra evaluation set when runs
logged one) and logs it as Markdown with a plot (metrics by family, ROC curves from each run's
test predictions) as artifacts of a ``compare`` run in an experiment of its own
(``<experiment>-compare``), so that comparing never adds runs to the training experiment.
Columns and bars that no run has are left out rather than shown empty.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from airparadis.settings import PlatformSettings
from airparadis.tracking import configure_tracking, ensure_experiment
from training_jobs.families import FAMILY_NAMES
from training_jobs.train import PREDICTIONS_ARTIFACT

COLUMNS = (
    ("test_accuracy", "test accuracy"),
    ("test_roc_auc", "test ROC-AUC"),
    ("test_f1_negative", "F1 neg"),
    ("test_f1_positive", "F1 pos"),
    ("test_macro_f1", "test macro-F1"),
    ("test_balanced_accuracy", "test bal. acc"),
    ("test_recall_negative", "complaints caught"),
    ("test_precision_positive", "pos. precision"),
    ("test_brier", "Brier"),
    ("test_ece", "ECE"),
    ("feedback_gate_macro_f1", "feedback macro-F1"),
    ("eval_accuracy", "eval accuracy"),
    ("eval_roc_auc", "eval ROC-AUC"),
    ("export_test_accuracy_delta", "export Δacc"),
    ("train_seconds", "train s"),
    ("bundle_bytes", "bundle MB"),
)


COMPARE_SUFFIX = "-compare"


@dataclass(frozen=True)
class Comparison:
    table: str
    """Markdown, as logged to MLflow."""
    rows: list[list[str]]
    """Header first: what the terminal prints."""
    run_id: str
    experiment: str
    runs: dict[str, str]


def latest_runs(experiment: str) -> dict[str, Any]:
    """Newest finished train/retrain run per family; transformer modes are kept apart."""
    client = MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return {}
    runs = client.search_runs(
        [found.experiment_id],
        filter_string="attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1000,
    )
    latest: dict[str, Any] = {}
    for run in runs:
        tags = run.data.tags
        if tags.get("stage") not in ("train", "retrain") or tags.get("family") not in FAMILY_NAMES:
            continue
        label = tags["family"]
        mode = run.data.params.get("model.mode")
        if mode:
            label = f"{label} ({mode})"
        latest.setdefault(label, run)
    return latest


def _cell(key: str, value: float | None) -> str:
    if value is None or value != value:  # missing, or NaN from an older run
        return "–"
    if key == "bundle_bytes":
        return f"{value / 1e6:.1f}"
    if key == "train_seconds":
        return f"{value:.0f}"
    if key == "export_test_accuracy_delta":
        return f"{value:+.4f}"
    return f"{value:.4f}"


def present_columns(runs: dict[str, Any]) -> list[tuple[str, str]]:
    """The metric columns at least one run logged: an empty column says nothing."""
    return [
        (key, title)
        for key, title in COLUMNS
        if any(_cell(key, run.data.metrics.get(key)) != "–" for run in runs.values())
    ]


def table_rows(runs: dict[str, Any]) -> list[list[str]]:
    columns = present_columns(runs)
    rows = [["family", "format", "run", *(title for _, title in columns)]]
    for label, run in sorted(runs.items()):
        metrics = run.data.metrics
        rows.append(
            [label, run.data.tags.get("format", "?"), run.info.run_id[:8]]
            + [_cell(key, metrics.get(key)) for key, _ in columns]
        )
    return rows


def markdown_table(rows: list[list[str]]) -> str:
    header, *body = rows
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def _predictions(run_id: str) -> pd.DataFrame | None:
    try:
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=PREDICTIONS_ARTIFACT
        )
    except (MlflowException, OSError):  # older runs have no predictions: no curve, not an error
        return None
    return pd.read_parquet(path)


def plot(runs: dict[str, Any], path: Path) -> None:
    """Bars of accuracy and ROC-AUC by family, and each family's ROC curve on the test split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    labels = sorted(runs)
    fig, (bars, roc) = plt.subplots(1, 2, figsize=(13, 5))
    candidates = ("test_accuracy", "test_roc_auc", "eval_accuracy", "eval_roc_auc")
    keys = [k for k in candidates if any(k in runs[label].data.metrics for label in labels)]
    width = 0.8 / max(len(keys), 1)
    for i, key in enumerate(keys):
        present = [(x, runs[label].data.metrics.get(key)) for x, label in enumerate(labels)]
        xs = [x + i * width for x, value in present if value is not None]
        bars.bar(xs, [value for _, value in present if value is not None], width, label=key)
    offset = (len(keys) - 1) * width / 2
    bars.set_xticks([x + offset for x in range(len(labels))], labels, rotation=15)
    bars.set_ylim(0.5, 1.0)
    bars.set_title("Metrics by family")
    bars.legend(loc="lower right", fontsize=8)
    for label in labels:
        predictions = _predictions(runs[label].info.run_id)
        if predictions is None:
            continue
        fpr, tpr, _ = roc_curve(predictions["label"], predictions["p_positive"])
        auc = runs[label].data.metrics.get("test_roc_auc", float("nan"))
        roc.plot(fpr, tpr, label=f"{label} (AUC {auc:.3f})")
    roc.plot([0, 1], [0, 1], color="grey", linestyle=":")
    roc.set_xlabel("false positive rate")
    roc.set_ylabel("true positive rate")
    roc.set_title("ROC, test split")
    roc.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _key(label: str) -> str:
    """``transformer (frozen)`` -> ``transformer.frozen``: MLflow keys allow no parentheses."""
    return label.replace(" (", ".").replace(")", "")


def compare(platform: PlatformSettings) -> Comparison:
    configure_tracking(platform)
    runs = latest_runs(platform.experiment)
    if not runs:
        raise LookupError(f"no finished training run in experiment {platform.experiment!r}")
    rows = table_rows(runs)
    table = markdown_table(rows)
    experiment = platform.experiment + COMPARE_SUFFIX
    experiment_id = ensure_experiment(platform, experiment)
    with (
        mlflow.start_run(experiment_id=experiment_id, run_name="compare") as run,
        tempfile.TemporaryDirectory() as tmp,
    ):
        mlflow.set_tag("stage", "compare")
        mlflow.log_params({f"run.{_key(label)}": r.info.run_id for label, r in runs.items()})
        mlflow.log_text(table, "comparison.md")
        image = Path(tmp) / "comparison.png"
        plot(runs, image)
        mlflow.log_artifact(str(image))
    return Comparison(
        table, rows, run.info.run_id, experiment, {k: r.info.run_id for k, r in runs.items()}
    )
