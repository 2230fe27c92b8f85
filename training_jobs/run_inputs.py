"""What a training run reads and records first: the split of the configured data, the family's
parameters (settings, then explicit ones, validated by the family's model), and both logged to
MLflow before anything is fitted."""

from __future__ import annotations

from typing import Any

import mlflow

from airparadis.settings import PlatformSettings
from training_jobs.data import LoadReport, load_sources
from training_jobs.families import Family
from training_jobs.families.params import PARAMS_MODELS, FamilyParams, validate_params
from training_jobs.settings import TrainingSettings
from training_jobs.split import Split, split_data, stratified_sample


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
    """The family's configured parameters (its ``AIRPARADIS_TRAIN_<FAMILY>_*`` settings, else
    its defaults), then explicit ones (Optuna, CLI), validated by the family's params model."""
    nested: dict[str, FamilyParams] = {"rnn": settings.rnn, "transformer": settings.transformer}
    configured = nested.get(family.name)
    base = configured.model_dump() if configured is not None else {}
    shared = settings.normalisation
    if shared is not None and "normalisation" in PARAMS_MODELS[family.name].model_fields:
        base["normalisation"] = shared
    return validate_params(family.name, {**base, **(params or {})})


def log_inputs(
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
