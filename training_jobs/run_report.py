"""What a data scientist reads in the MLflow UI: the datasets of a run (the Dataset column),
evaluation plots of the served artifact, and plain-words descriptions of runs, registered
models and versions, written where they are made so the UI never shows an empty page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.data.dataset_source import DatasetSource
from mlflow.data.dataset_source_registry import get_registered_sources
from mlflow.data.pandas_dataset import from_pandas

from airparadis import LABELS
from training_jobs.split import Split

DATASET_NAME = "sentiment140"
NOTE_TAG = "mlflow.note.content"  # what the UI shows as a run's or a model's description


def _local_source(uri: str) -> DatasetSource:
    """MLflow registers its local-file source twice (for the schemes '' and 'file') and warns
    that any path is ambiguous between the two; they are one class, so name it ourselves."""
    sources: list[Any] = list(get_registered_sources())  # classes, typed as instances upstream
    local = next(s for s in sources if s.__name__ == "LocalArtifactDatasetSource")
    source: DatasetSource = local(uri)
    return source


def log_datasets(split: Split, sources: str) -> None:
    """One MLflow dataset per split (labels as words), so lineage shows in the UI."""
    for context, frame in (
        ("training", split.train), ("validation", split.validation), ("test", split.test),
    ):  # fmt: skip
        labelled = frame[["text"]].assign(label=[LABELS[int(y)] for y in frame["label"]])
        dataset = from_pandas(
            labelled,
            source=_local_source(sources),
            name=f"{DATASET_NAME}-{context}",
            targets="label",
        )
        mlflow.log_input(dataset, context=context)


def log_feedback_datasets(frames: dict[str, pd.DataFrame], source: Path) -> None:
    """The labelled feedback a calibration run fitted and judged on, as datasets of the run
    (the split it did not train on is logged by the training run it calibrates)."""
    for context, frame in frames.items():
        if not len(frame):
            continue
        labelled = frame[["text"]].assign(label=[LABELS[int(y)] for y in frame["label"]])
        dataset = from_pandas(
            labelled, source=_local_source(str(source)), name=f"feedback-{context}",
            targets="label",
        )  # fmt: skip
        mlflow.log_input(dataset, context=context)


def log_evaluation_plots(labels: np.ndarray, proba: np.ndarray, threshold: float) -> None:
    """Confusion matrix, ROC and precision-recall curves, and a reliability curve of the
    served artifact on the test split, logged as figures of the active run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import (
        ConfusionMatrixDisplay,
        PrecisionRecallDisplay,
        RocCurveDisplay,
    )

    predicted = (proba >= threshold).astype(int)
    figures: dict[str, Any] = {}
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ConfusionMatrixDisplay.from_predictions(
        labels, predicted, display_labels=list(LABELS), ax=ax, colorbar=False
    )
    ax.set_title(f"Test split, threshold {threshold:.2f}")
    figures["confusion_matrix.png"] = fig
    fig, ax = plt.subplots(figsize=(4.5, 4))
    RocCurveDisplay.from_predictions(labels, proba, ax=ax, name="served model")
    ax.set_title("ROC, test split")
    figures["roc_curve.png"] = fig
    fig, ax = plt.subplots(figsize=(4.5, 4))
    PrecisionRecallDisplay.from_predictions(labels, proba, ax=ax, name="served model")
    ax.set_title("Precision-recall, test split")
    figures["pr_curve.png"] = fig
    fig, ax = plt.subplots(figsize=(4.5, 4))
    observed, predicted_mean = calibration_curve(labels, proba, n_bins=10, strategy="quantile")
    ax.plot(predicted_mean, observed, marker="o", label="served model")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfectly calibrated")
    ax.set_xlabel("mean predicted P(positive)")
    ax.set_ylabel("observed positive share")
    ax.set_title("Reliability, test split")
    ax.legend(loc="upper left", fontsize=8)
    figures["calibration_curve.png"] = fig
    for name, figure in figures.items():
        figure.tight_layout()
        mlflow.log_figure(figure, f"plots/{name}")
        plt.close(figure)


def run_description(
    family: str, stage: str, fingerprint: str, rows_train: int, test: dict[str, float]
) -> str:
    metrics = ", ".join(
        f"{name} {test[key]:.4f}"
        for key, name in (("accuracy", "accuracy"), ("roc_auc", "ROC-AUC"),
                          ("macro_f1", "macro-F1"), ("recall_negative", "complaints caught"))
        if key in test and test[key] == test[key]
    )  # fmt: skip
    return (
        f"**{stage}** of the `{family}` family on {rows_train:,} training tweets "
        f"(data fingerprint `{fingerprint[:12]}`). Served artifact on the test split: {metrics}."
    )


def describe_run(description: str) -> None:
    mlflow.set_tag(NOTE_TAG, description)


def describe_version(
    name: str, version: str, run_description: str, gate_summary: str, card_uri: str = ""
) -> None:
    """The version's description says what it is, why it got its alias and where its model
    card is; the registered model gets a standing description once."""
    client = MlflowClient()
    card = f"Model card: `{card_uri}` (the run's artifacts)." if card_uri else ""
    parts = [run_description, f"Gate: {gate_summary}", card]
    client.update_model_version(name, version, description="\n\n".join(p for p in parts if p))
    if not client.get_registered_model(name).description:
        client.update_registered_model(
            name,
            description=(
                "Air Paradis tweet sentiment (negative / positive): one version per training, "
                "retraining or calibration run. `@champion` is served; `@challenger` is the "
                "runner-up the gate kept. Each version's description gives its data, metrics, "
                "the gate's decision and where its model card is."
            ),
        )
