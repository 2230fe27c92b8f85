"""Evaluate any registered or local model on any supported data files."""

from __future__ import annotations

from pathlib import Path

from airparadis.bundle import load_bundle
from airparadis.embedding import bulk_runtime
from airparadis.settings import PlatformSettings
from airparadis.tracking import connect, download_model, needs_registry
from training_jobs.data import LoadReport, load_sources
from training_jobs.metrics import binary_metrics


def evaluate(
    model_uri: str, data: list[Path], platform: PlatformSettings
) -> tuple[dict[str, float], LoadReport]:
    frame, report = load_sources(data)
    if needs_registry(model_uri):
        connect(platform)
    model = load_bundle(download_model(model_uri), bulk_runtime(cached=False))
    proba = model.predict_proba(frame["text"].tolist())
    metrics = binary_metrics(frame["label"].to_numpy(), proba, model.info.threshold)
    metrics["neutral_left_out"] = float(report.neutral)
    metrics["malformed"] = float(report.malformed)
    return metrics, report
