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
from airparadis.calibration import Calibration, CalibrationError, save_calibration
from airparadis.calibration_fit import fit_calibration, fit_heldout_map
from airparadis.drift import build_reference, save_reference
from airparadis.metrics import accuracy
from airparadis.settings import PlatformSettings
from airparadis.tracking import configure_tracking
from training_jobs.data import LoadReport, load_sources
from training_jobs.families import Family, get_family
from training_jobs.gate import (
    DomainCheck,
    GateDecision,
    champion_score,
    decide,
    decide_prior,
    decide_with_domain,
    generic_score,
    score,
    served_generic_auc,
    served_generic_metric,
)
from training_jobs.metrics import binary_metrics, finite_metrics, metrics_table
from training_jobs.model_card import build_card, log_card
from training_jobs.registry import RegisteredModel, log_bundle, register_version, set_alias
from training_jobs.run_report import (
    describe_run,
    describe_version,
    log_datasets,
    log_evaluation_plots,
    run_description,
)
from training_jobs.settings import TrainingSettings
from training_jobs.split import Split, split_data, stratified_sample

logger = logging.getLogger(__name__)

PREDICTIONS_ARTIFACT = "predictions/test.parquet"


@dataclass(frozen=True)
class DomainFeedback:
    """Labelled in-domain feedback, time-ordered and split so nothing is judged on what it
    was fitted on: `fit` is trained on, `select` chooses the weight and fits the calibration,
    `gate` (the latest) is only scored by the gate."""

    fit: pd.DataFrame
    select: pd.DataFrame
    gate: pd.DataFrame
    weights: tuple[float, ...]


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


def generic_gate_frame(settings: TrainingSettings, split: Split) -> pd.DataFrame:
    """The generic gate set: the operator's fixed gate files when given, else the test split."""
    return load_sources(settings.gate_data)[0] if settings.gate_data else split.test


def served_generic_frame(test: pd.DataFrame, settings: TrainingSettings) -> pd.DataFrame:
    """The fixed sample of the generic gate set the served generic criterion reads."""
    if len(test) <= settings.gate_generic_served_rows:
        return test
    return test.sample(settings.gate_generic_served_rows, random_state=settings.seed)


def gate_and_register(
    model_uri: str,
    served: SentimentClassifier,
    gate_frame: pd.DataFrame,
    settings: TrainingSettings,
    platform: PlatformSettings,
    tags: dict[str, str],
    domain_frame: pd.DataFrame | None = None,
    description: str = "",
    prior_only: bool = False,
) -> tuple[RegisteredModel, GateDecision]:
    """Register a new version, score it and the champion on the gate set(s), set the alias.

    With `domain_frame` (the latest feedback) the two-criteria rule applies (see
    `training_jobs.gate`); otherwise the candidate must beat the champion on the gate set.
    `prior_only` (a prior correction with no labels to judge it) is promoted when the raw
    generic score holds: its evidence is the label-shift policy, not labels.
    """
    texts, labels = gate_frame["text"].tolist(), gate_frame["label"].to_numpy()
    domain = None
    if domain_frame is not None and len(domain_frame):
        domain = (
            domain_frame["text"].tolist(), domain_frame["label"].to_numpy(),
            settings.gate_domain_metric,
        )  # fmt: skip
    scorer = generic_score if domain is not None or prior_only else score
    candidate = scorer(served, texts, labels, settings.gate_metric)
    served_generic = None
    if domain is not None:
        sample = served_generic_frame(gate_frame, settings)
        served_generic = (
            sample["text"].tolist(), sample["label"].to_numpy(),
            served_generic_metric(bool(settings.gate_data), settings.gate_metric),
        )  # fmt: skip
    champion, champion_version, champion_domain, champion_served = champion_score(
        platform, texts, labels, settings.gate_metric, tags.get("data.fingerprint"),
        domain=domain, generic_raw=domain is not None or prior_only,
        served_generic=served_generic,
    )  # fmt: skip
    version = register_version(model_uri, platform.model_name, tags)
    if domain is not None:
        assert served_generic is not None
        check = DomainCheck(
            settings.gate_domain_metric, settings.gate_domain_margin,
            settings.gate_generic_max_drop, len(domain[1]), score(served, *domain),
            champion_domain, served_generic_auc(served, *served_generic), champion_served,
            settings.gate_generic_served_max_drop, served_generic[2],
        )  # fmt: skip
        decision = decide_with_domain(
            candidate, champion, check, settings.gate_metric, platform, champion_version
        )
        mlflow.log_metric("gate.domain_candidate_score", check.candidate)
        if check.champion is not None:
            mlflow.log_metric("gate.domain_champion_score", check.champion)
        if check.served_candidate is not None:
            mlflow.log_metric("gate.generic_served_roc_auc_candidate", check.served_candidate)
        if check.served_champion is not None:
            mlflow.log_metric("gate.generic_served_roc_auc_champion", check.served_champion)
        mlflow.log_params({"gate.domain_metric": check.metric, "gate.domain_rows": check.rows,
                           "gate.generic_max_drop": check.generic_max_drop})  # fmt: skip
    elif prior_only:
        decision = decide_prior(
            candidate, champion, settings.gate_generic_max_drop, settings.gate_metric, platform,
            champion_version,
        )  # fmt: skip
    else:
        decision = decide(
            candidate, champion, settings.gate_margin, settings.gate_metric, platform,
            champion_version,
        )  # fmt: skip
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
    run = mlflow.active_run()
    assert run is not None, "gate_and_register logs into the active run"
    card = build_card(platform.model_name, version, served, decision, tags, run.info.run_id)
    card_uri = log_card(card)
    describe_version(platform.model_name, version, description, decision.summary(), card_uri)
    logger.info("%s", decision.summary())
    return registered, decision


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
            settings.calibration_folds, settings.seed, texts=frame["text"].tolist(),
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
        _log_inputs(family, params, settings, split, report)
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
                settings.gate_generic_max_drop,
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
