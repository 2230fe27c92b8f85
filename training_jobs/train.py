"""Train one family on the configured data, log everything to MLflow, and register it."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import mlflow

from airparadis.settings import PlatformSettings
from airparadis.tracking import configure_tracking
from training_jobs.data import LoadReport, load_sources
from training_jobs.families import get_family
from training_jobs.metrics import binary_metrics, metrics_table
from training_jobs.registry import RegisteredModel, register, save_and_log
from training_jobs.settings import TrainingSettings
from training_jobs.split import Split, split_data, stratified_sample

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    metrics: dict[str, dict[str, float]]
    table: str
    fingerprint: str
    registered: RegisteredModel | None


def prepare_split(
    settings: TrainingSettings, platform: PlatformSettings
) -> tuple[Split, LoadReport]:
    frame, report = load_sources(settings.data, cache_dir=platform.home / "cache")
    frame = stratified_sample(frame, settings.max_rows, settings.seed)
    split = split_data(frame, settings.test_size, settings.val_size, settings.seed)
    return split, report


def train(
    family_name: str,
    settings: TrainingSettings,
    platform: PlatformSettings,
    params: dict[str, Any] | None = None,
    register_model: bool = True,
) -> TrainResult:
    family = get_family(family_name)
    params = {**family.default_params, **(params or {})}
    configure_tracking(platform)
    split, report = prepare_split(settings, platform)
    logger.info("data:\n%s", report.summary())

    with mlflow.start_run(run_name=f"train-{family.name}") as run:
        mlflow.set_tags({"family": family.name, "format": family.format, "stage": "train"})
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

        started = time.perf_counter()
        model = family.fit(split.train, split.validation, params, settings.seed)
        mlflow.log_metric("train_seconds", time.perf_counter() - started)

        by_split = {
            name: binary_metrics(
                frame["label"].to_numpy(), model.predict_proba(frame["text"].tolist())
            )
            for name, frame in (("validation", split.validation), ("test", split.test))
        }
        for name, values in by_split.items():
            mlflow.log_metrics({f"{name}_{k}": v for k, v in values.items()})
        table = metrics_table(by_split)
        mlflow.log_text(table, "metrics_table.md")
        model.info.metrics = {f"test_{k}": v for k, v in by_split["test"].items()}

        model_uri = save_and_log(model, family.save)
        registered = None
        if register_model:
            registered = register(
                model_uri,
                platform.model_name,
                platform.champion_alias,
                tags={
                    "family": family.name,
                    "format": family.format,
                    "data.fingerprint": split.fingerprint,
                },
            )
        return TrainResult(
            run_id=run.info.run_id,
            metrics=by_split,
            table=table,
            fingerprint=split.fingerprint,
            registered=registered,
        )
