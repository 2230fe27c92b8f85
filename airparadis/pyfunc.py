"""MLflow pyfunc face of a model bundle, so any MLflow tool can load a registered model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc.model import PythonModel

from airparadis import LABELS
from airparadis.bundle import SentimentClassifier, load_bundle

BUNDLE_ARTIFACT = "bundle"


class BundlePyfunc(PythonModel):  # type: ignore[misc]
    """Takes a frame with a ``text`` column; returns ``label`` and ``probability`` columns."""

    def load_context(self, context: Any) -> None:
        self._model: SentimentClassifier = load_bundle(Path(context.artifacts[BUNDLE_ARTIFACT]))

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        texts = [str(t) for t in model_input["text"].tolist()]
        proba = self._model.predict_proba(texts)
        labels = np.where(proba >= self._model.info.threshold, LABELS[1], LABELS[0])
        return pd.DataFrame({"label": labels, "probability": proba})
