"""Train one family on the configured data, log everything to MLflow, and register it.

The same path serves every family: fit in memory, export the served artifact, load it back
through `airparadis.bundle.load_bundle` (as serving will), and score *that* on the split. The
in-memory model is scored on the test split too, so the accuracy lost to export and
quantization is logged (``export_test_accuracy_delta``). Registration goes through the gate.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from airparadis.bundle import SentimentClassifier, load_bundle, write_info
from airparadis.drift import build_reference, save_reference
from airparadis.settings import PlatformSettings
from airparadis.tracking import configure_tracking
from training_jobs.data import LoadReport, load_sources
from training_jobs.families import Family, get_family
from training_jobs.gate import GateDecision, champion_score, decide, score
from training_jobs.metrics import binary_metrics, metrics_table
from training_jobs.registry import RegisteredModel, log_bundle, register_version, set_alias
from training_jobs.settings import TrainingSettings
from training_jobs.split import Split, split_data, stratified_sample

logger = logging.getLogger(__name__)

PREDICTIONS_ARTIFACT = "predictions/test.parquet"


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    metrics: dict[str, dict[str, float]]
    table: str
    fingerprint: str
    registered: RegisteredModel | None
    gate: GateDecision | None = None


def prepare_split(
    settings: TrainingSettings, platform: PlatformSettings
) -> tuple[Split, LoadReport]:
    frame, report = load_sources(settings.data, cache_dir=platform.home / "cache")
    frame = stratified_sample(frame, settings.max_rows, settings.seed)
    split = split_data(frame, settings.test_size, settings.val_size, settings.seed)
    return split, report


def resolve_params(
    family: Family, settings: TrainingSettings, params: dict[str, Any] | None
) -> dict[str, Any]:
    """Family defaults, then the family's settings, then explicit parameters (Optuna, CLI)."""
    return {**family.default_params, **family.settings_params(settings), **(params or {})}


def _log_inputs(
    family: Family,
    params: dict[str, Any],
    settings: TrainingSettings,
    split: Split,
    report: LoadReport,
) -> None:
    mlflow.log_params({f"model.{k}": v for k, v in params.items()})
    mlflow.log_params(
        {
            "data.sources": ",".join(str(p) for p in settings.data),
            "data.max_rows": settings.max_rows,
            "split.test_size": settings.test_size,
            "split.val_size": settings.val_size,
            "split.seed": settings.seed,
            "data.fingerprint": split.fingerprint,
        }
    )
    mlflow.log_metrics(
        {
            "data.rows_train": len(split.train),
            "data.rows_validation": len(split.validation),
            "data.rows_test": len(split.test),
            "data.malformed": report.malformed,
            "data.neutral_left_out": report.neutral,
            "data.duplicates": report.duplicates,
        }
    )
    mlflow.log_text(report.summary(), "data_report.txt")


def _score(model: SentimentClassifier, frame: pd.DataFrame) -> tuple[dict[str, float], np.ndarray]:
    proba = model.predict_proba(frame["text"].tolist())
    return binary_metrics(frame["label"].to_numpy(), proba, model.info.threshold), proba


def _bundle_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def gate_and_register(
    model_uri: str,
    served: SentimentClassifier,
    gate_frame: pd.DataFrame,
    settings: TrainingSettings,
    platform: PlatformSettings,
    tags: dict[str, str],
) -> tuple[RegisteredModel, GateDecision]:
    """Register a new version, score it and the champion on the gate set, and set the alias."""
    texts, labels = gate_frame["text"].tolist(), gate_frame["label"].to_numpy()
    candidate = score(served, texts, labels, settings.gate_metric)
    champion, champion_version = champion_score(
        platform, texts, labels, settings.gate_metric, tags.get("data.fingerprint")
    )
    version = register_version(model_uri, platform.model_name, tags)
    decision = decide(
        candidate, champion, settings.gate_margin, settings.gate_metric, platform, champion_version
    )
    registered = set_alias(platform.model_name, version, decision.alias, model_uri)
    mlflow.log_params(
        {"gate.metric": decision.metric, "gate.margin": decision.margin,
         "gate.decision": decision.alias, "gate.rows": len(gate_frame)}
    )  # fmt: skip
    mlflow.log_metric("gate.candidate_score", decision.candidate_score)
    if decision.champion_score is not None:
        mlflow.log_metric("gate.champion_score", decision.champion_score)
    mlflow.log_dict(decision.as_dict(), "gate_decision.json")
    from mlflow import MlflowClient

    MlflowClient().set_model_version_tag(platform.model_name, version, "gate", decision.summary())
    logger.info("%s", decision.summary())
    return registered, decision


def train(
    family_name: str,
    settings: TrainingSettings,
    platform: PlatformSettings,
    params: dict[str, Any] | None = None,
    register_model: bool = True,
    fit_on_validation: bool = False,
    parent_run_id: str | None = None,
    extra_train: pd.DataFrame | None = None,
    extra_metrics: dict[str, float] | None = None,
) -> TrainResult:
    """Fit, export, score the served artifact, log, and (through the gate) register.

    `fit_on_validation` trains on train+validation (the retrain of a tuned model); the test
    split stays held out either way.
    """
    family = get_family(family_name)
    params = resolve_params(family, settings, params)
    configure_tracking(platform)
    split, report = prepare_split(settings, platform)
    logger.info("data:\n%s", report.summary())
    stage = "retrain" if fit_on_validation or extra_train is not None else "train"

    with mlflow.start_run(
        run_name=f"{stage}-{family.name}", nested=parent_run_id is not None,
        parent_run_id=parent_run_id,
    ) as run:  # fmt: skip
        mlflow.set_tags({"family": family.name, "format": family.format, "stage": stage})
        _log_inputs(family, params, settings, split, report)
        fit_frame = (
            pd.concat([split.train, split.validation], ignore_index=True)
            if fit_on_validation
            else split.train
        )
        if extra_train is not None:  # feedback examples: training only, never evaluated on
            fit_frame = pd.concat([fit_frame, extra_train], ignore_index=True)
        if extra_metrics:
            mlflow.log_metrics(extra_metrics)
        started = time.perf_counter()
        model = family.fit(fit_frame, split.validation, params, settings.seed)
        mlflow.log_metric("train_seconds", time.perf_counter() - started)
        reference, _ = _score(model, split.test)

        with tempfile.TemporaryDirectory() as tmp:
            bundle_dir = Path(tmp) / "bundle"
            started = time.perf_counter()
            family.save(model, bundle_dir)
            mlflow.log_metric("export_seconds", time.perf_counter() - started)
            mlflow.log_metric("bundle_bytes", _bundle_bytes(bundle_dir))
            served = load_bundle(bundle_dir)
            exported = {k: v for k, v in served.info.params.items() if k.startswith("export_")}
            mlflow.log_params(exported)  # e.g. the precision the export settled on

            named = [("test", split.test)]
            if not fit_on_validation:
                named.insert(0, ("validation", split.validation))
            if settings.eval_data:
                named.append(("eval", load_sources(settings.eval_data)[0]))
            by_split: dict[str, dict[str, float]] = {}
            for name, frame in named:
                by_split[name], proba = _score(served, frame)
                if name == "test":
                    predictions = pd.DataFrame({"label": frame["label"], "p_positive": proba})
            for name, values in by_split.items():
                mlflow.log_metrics({f"{name}_{k}": v for k, v in values.items()})
            mlflow.log_metrics(
                {
                    "reference_test_accuracy": reference["accuracy"],
                    "reference_test_roc_auc": reference["roc_auc"],
                    "export_test_accuracy_delta": by_split["test"]["accuracy"]
                    - reference["accuracy"],
                }
            )
            table = metrics_table(by_split)
            mlflow.log_text(table, "metrics_table.md")
            _log_predictions(predictions)

            served.info.metrics = {f"test_{k}": v for k, v in by_split["test"].items()}
            write_info(bundle_dir, served.info)
            drift = build_reference(
                fit_frame["text"].tolist(),
                split.test["text"].tolist(),
                predictions["p_positive"].to_numpy(),
                served.info.threshold,
                settings.seed,
            )
            save_reference(bundle_dir, drift)
            mlflow.log_metrics(
                {"drift_reference.oov_share": drift.stats.oov_share,
                 "drift_reference.positive_share": drift.stats.positive_share}
            )  # fmt: skip
            model_uri = log_bundle(served, bundle_dir)

            registered = decision = None
            if register_model:
                gate_frame = (
                    load_sources(settings.gate_data)[0] if settings.gate_data else split.test
                )
                registered, decision = gate_and_register(
                    model_uri, served, gate_frame, settings, platform,
                    tags={"family": family.name, "format": family.format,
                          "data.fingerprint": split.fingerprint, "stage": stage},
                )  # fmt: skip
        return TrainResult(
            run_id=run.info.run_id,
            metrics=by_split,
            table=table,
            fingerprint=split.fingerprint,
            registered=registered,
            gate=decision,
        )


def _log_predictions(predictions: pd.DataFrame) -> None:
    """Test-split labels and P(positive), so `airparadis compare` can draw ROC curves."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(PREDICTIONS_ARTIFACT).name
        predictions.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), str(Path(PREDICTIONS_ARTIFACT).parent))
