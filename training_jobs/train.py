"""Train one family on the configured data, log everything to MLflow, and register it.

The same path serves every family: fit in memory, export the served artifact, load it back
through `airparadis.bundle.load_bundle` (as serving will), and score *that* on the split. The
in-memory model is scored on the test split too, so the accuracy lost to export and
quantization is logged (``export_test_accuracy_delta``). Registration goes through the gate
(`training_jobs.gated_registration`); what the run reads comes from `training_jobs.run_inputs`,
and retraining on feedback from `training_jobs.feedback_fit`.
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
from airparadis.calibration import Calibration
from airparadis.calibration_fit import fit_heldout_map
from airparadis.drift import build_reference, save_reference
from airparadis.settings import PlatformSettings
from airparadis.tracking import configure_tracking
from training_jobs.data import load_sources
from training_jobs.families import get_family
from training_jobs.feedback_fit import (
    DomainFeedback,
    calibrate_served,
    fit_with_feedback,
    log_calibration,
)
from training_jobs.gate import GateDecision
from training_jobs.gated_registration import gate_and_register, generic_gate_frame
from training_jobs.metrics import binary_metrics, finite_metrics, metrics_table
from training_jobs.registry import RegisteredModel, log_bundle
from training_jobs.run_inputs import log_inputs, prepare_split, resolve_params
from training_jobs.run_report import (
    describe_run,
    log_datasets,
    log_evaluation_plots,
    run_description,
)
from training_jobs.settings import TrainingSettings

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
    feedback_weight: float | None = None
    calibration: Calibration | None = None


def _score(model: SentimentClassifier, frame: pd.DataFrame) -> tuple[dict[str, float], np.ndarray]:
    proba = model.predict_proba(frame["text"].tolist())
    return binary_metrics(frame["label"].to_numpy(), proba, model.info.threshold), proba


def _bundle_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


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
    domain: DomainFeedback | None = None,
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
    retraining = fit_on_validation or extra_train is not None or domain is not None
    stage = "retrain" if retraining else "train"

    with mlflow.start_run(
        run_name=f"{stage}-{family.name}", nested=parent_run_id is not None,
        parent_run_id=parent_run_id,
    ) as run:  # fmt: skip
        mlflow.set_tags({"family": family.name, "format": family.format, "stage": stage})
        log_inputs(family, params, settings, split, report)
        log_datasets(split, ",".join(str(p) for p in settings.data))
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
        weight: float | None = None
        if domain is not None and len(domain.fit):
            model, weight, selection = fit_with_feedback(
                family, fit_frame, split.validation, domain, params, settings.seed,
                settings.gate.generic_max_drop,
            )  # fmt: skip
            mlflow.log_param("feedback.weight", weight)
            mlflow.log_metrics({f"feedback.select_macro_f1.w{w:g}": v
                                for w, v in selection.items()})  # fmt: skip
            fit_frame = pd.concat([fit_frame, domain.fit.assign(weight=weight)], ignore_index=True)
        else:
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
            served.info.params["train_prior"] = _weighted_prior(fit_frame)
            write_info(bundle_dir, served.info)
            calibration = None
            if domain is not None and len(domain.select):
                served, calibration = calibrate_served(served, bundle_dir, domain.select, settings)
                if calibration is not None:
                    log_calibration(calibration)
            exported = {k: v for k, v in served.info.params.items() if k.startswith("export_")}
            mlflow.log_params(exported)  # e.g. the precision the export settled on

            named = [("test", split.test)]
            if not fit_on_validation:
                named.insert(0, ("validation", split.validation))
            if settings.eval_data:
                named.append(("eval", load_sources(settings.eval_data)[0]))
            if domain is not None and len(domain.gate):
                named.append(("feedback_gate", domain.gate))
            by_split: dict[str, dict[str, float]] = {}
            for name, frame in named:
                by_split[name], proba = _score(served, frame)
                if name == "test":
                    predictions = pd.DataFrame({"label": frame["label"], "p_positive": proba})
            test_raw = predictions["p_positive"].to_numpy()
            if calibration is not None:  # generic quality is read on the raw score
                from airparadis.calibration import raw_proba, raw_threshold

                test_raw = raw_proba(served, split.test["text"].tolist())
                by_split["test_raw"] = binary_metrics(
                    split.test["label"].to_numpy(), test_raw, raw_threshold(served.info)
                )
            for name, values in by_split.items():
                mlflow.log_metrics({f"{name}_{k}": v for k, v in finite_metrics(values).items()})
            mlflow.log_metrics(
                {
                    "reference_test_accuracy": reference["accuracy"],
                    "reference_test_roc_auc": reference["roc_auc"],
                    "export_test_accuracy_delta": by_split.get("test_raw", by_split["test"])[
                        "accuracy"
                    ]
                    - reference["accuracy"],
                }
            )
            table = metrics_table(by_split)
            mlflow.log_text(table, "metrics_table.md")
            _log_predictions(predictions)
            log_evaluation_plots(
                predictions["label"].to_numpy(),
                predictions["p_positive"].to_numpy(),
                served.info.threshold,
            )
            description = run_description(
                family.name, stage, split.fingerprint, len(fit_frame), by_split["test"]
            )
            describe_run(description)

            served.info.metrics = {
                f"test_{k}": v for k, v in finite_metrics(by_split["test"]).items()
            }
            write_info(bundle_dir, served.info)
            drift = build_reference(
                fit_frame["text"].tolist(),
                split.test["text"].tolist(),
                predictions["p_positive"].to_numpy(),
                served.info.threshold,
                settings.seed,
                em_map=fit_heldout_map(test_raw, split.test["label"].to_numpy()),
            )
            save_reference(bundle_dir, drift)
            mlflow.log_metrics(
                {"drift_reference.oov_share": drift.stats.oov_share,
                 "drift_reference.positive_share": drift.stats.positive_share}
            )  # fmt: skip
            model_uri = log_bundle(served, bundle_dir)

            registered = decision = None
            if register_model:
                gate_frame = generic_gate_frame(settings, split)
                registered, decision = gate_and_register(
                    model_uri, served, gate_frame, settings, platform,
                    tags={"family": family.name, "format": family.format,
                          "data.fingerprint": split.fingerprint, "stage": stage},
                    domain_frame=domain.gate if domain is not None else None,
                    description=description,
                )  # fmt: skip
        return TrainResult(
            run_id=run.info.run_id,
            metrics=by_split,
            table=table,
            fingerprint=split.fingerprint,
            registered=registered,
            gate=decision,
            feedback_weight=weight,
            calibration=calibration,
        )


def _weighted_prior(frame: pd.DataFrame) -> float:
    """Positive share of the training rows, counting each at its weight."""
    labels = frame["label"].to_numpy(dtype=np.float64)
    if "weight" not in frame.columns:
        return float(labels.mean())
    weights = frame["weight"].fillna(1.0).to_numpy(dtype=np.float64)
    return float(np.average(labels, weights=weights))


def _log_predictions(predictions: pd.DataFrame) -> None:
    """Test-split labels and P(positive), so `airparadis compare` can draw ROC curves."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(PREDICTIONS_ARTIFACT).name
        predictions.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), str(Path(PREDICTIONS_ARTIFACT).parent))
