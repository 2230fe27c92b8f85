"""The scikit-learn format: a fitted pipeline over cleaned text, stored with joblib."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from airparadis.bundle import BundleInfo, register_format
from airparadis.text import clean_tweets

SKLEARN_FILE = "model.joblib"


class SklearnClassifier:
    """A scikit-learn pipeline over cleaned text (TF-IDF + logistic regression)."""

    def __init__(self, pipeline: Any, info: BundleInfo) -> None:
        self.pipeline = pipeline
        self.info = info

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        proba = self.pipeline.predict_proba(clean_tweets(texts))
        return np.asarray(proba[:, 1], dtype=np.float64)


@register_format("sklearn")
def load_sklearn(directory: Path, info: BundleInfo) -> SklearnClassifier:
    import joblib

    return SklearnClassifier(joblib.load(directory / SKLEARN_FILE), info)


def save_sklearn(pipeline: Any, directory: Path) -> None:
    import joblib

    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, directory / SKLEARN_FILE)
