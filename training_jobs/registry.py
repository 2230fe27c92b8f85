"""Logging a bundle to MLflow as a pyfunc model and registering it under an alias."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature

from airparadis.bundle import SentimentClassifier
from airparadis.pyfunc import BUNDLE_ARTIFACT, BundlePyfunc
from training_jobs.model_env import pinned, requirement_names, stage_core

logger = logging.getLogger(__name__)

INPUT_EXAMPLE = pd.DataFrame(
    {"text": ["@united best crew ever, thanks!", "flight delayed again :("]}
)


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: str
    alias: str
    model_uri: str


def log_bundle(model: SentimentClassifier, bundle_dir: Path) -> str:
    """Log the bundle as the active run's pyfunc model, with the core as its code and pinned
    requirements (`training_jobs.model_env`); returns its ``runs:/`` URI."""
    proba = model.predict_proba(INPUT_EXAMPLE["text"].tolist())
    output = pd.DataFrame(
        {
            "label": ["positive" if p >= model.info.threshold else "negative" for p in proba],
            "probability": proba,
        }
    )
    with tempfile.TemporaryDirectory() as code:
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=BundlePyfunc(),
            artifacts={BUNDLE_ARTIFACT: str(bundle_dir)},
            code_paths=[str(stage_core(Path(code)))],
            pip_requirements=pinned(requirement_names(model.info)),
            signature=infer_signature(INPUT_EXAMPLE, output),
            input_example=INPUT_EXAMPLE,
            metadata={"family": model.info.family, "format": model.info.format},
        )
    return str(info.model_uri)


def register_version(model_uri: str, name: str, tags: dict[str, str]) -> str:
    """A new version of `name`, with no alias yet (the gate decides which one it gets)."""
    return str(mlflow.register_model(model_uri, name, tags=tags).version)


def set_alias(name: str, version: str, alias: str, model_uri: str) -> RegisteredModel:
    MlflowClient().set_registered_model_alias(name, alias, version)
    logger.info("registered %s version %s as @%s", name, version, alias)
    return RegisteredModel(name=name, version=version, alias=alias, model_uri=model_uri)
