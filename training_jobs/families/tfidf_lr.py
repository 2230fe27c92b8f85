"""TF-IDF over word n-grams of cleaned tweets (optionally with character n-grams), then
logistic regression (scikit-learn). The fitted pipeline is the served artifact."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from airparadis.bundle import BundleInfo, SentimentClassifier, write_info
from airparadis.formats.sklearn import SklearnClassifier, save_sklearn
from airparadis.text import clean_tweets
from training_jobs.families import Reporter, report_validation

if TYPE_CHECKING:
    import optuna

    from training_jobs.settings import TrainingSettings

# Cleaned text is space-separated tokens; placeholders like "xxurl" must stay whole.
TOKEN_PATTERN = r"\S+"
CURVE_FRACTIONS = (0.25, 1.0)
"""When tuning, a trial first fits on a quarter of the training rows and reports its
validation accuracy, so the pruner can stop a poor configuration before the full fit."""


class TfidfLogisticRegression:
    name = "tfidf_lr"
    format = "sklearn"
    default_params: ClassVar[dict[str, Any]] = {
        "ngram_max": 3,
        "min_df": 2,
        "max_features": None,
        "sublinear_tf": True,
        "char_ngram_max": 0,
        "char_min_df": 3,
        "C": 2.0,
        "class_weight": None,
    }

    def settings_params(self, settings: TrainingSettings) -> dict[str, Any]:
        return {}

    def search_space(self, trial: optuna.trial.BaseTrial) -> dict[str, Any]:
        return {
            "C": trial.suggest_float("C", 0.3, 10.0, log=True),
            "ngram_max": trial.suggest_int("ngram_max", 1, 3),
            "min_df": trial.suggest_int("min_df", 1, 3),
            "max_features": trial.suggest_categorical("max_features", [None, 200_000, 500_000]),
            "char_ngram_max": trial.suggest_categorical("char_ngram_max", [0, 4, 5]),
            "class_weight": trial.suggest_categorical("class_weight", [None, "balanced"]),
        }

    def build(self, params: dict[str, Any], seed: int) -> Pipeline:
        p = {**self.default_params, **params}
        features: Any = TfidfVectorizer(
            token_pattern=TOKEN_PATTERN,
            lowercase=False,
            ngram_range=(1, int(p["ngram_max"])),
            min_df=int(p["min_df"]),
            max_features=p["max_features"],
            sublinear_tf=bool(p["sublinear_tf"]),
            dtype=np.float32,
        )
        if int(p["char_ngram_max"]) > 0:
            chars = TfidfVectorizer(
                analyzer="char_wb",
                lowercase=False,
                ngram_range=(2, int(p["char_ngram_max"])),
                min_df=int(p["char_min_df"]),
                sublinear_tf=True,
                dtype=np.float32,
            )
            features = FeatureUnion([("words", features), ("chars", chars)])
        return Pipeline(
            [
                ("tfidf", features),
                (
                    "lr",
                    LogisticRegression(
                        C=float(p["C"]),
                        class_weight=p["class_weight"],
                        solver="liblinear",
                        max_iter=1000,
                        random_state=seed,
                    ),
                ),
            ]
        )

    def fit(
        self,
        train: pd.DataFrame,
        validation: pd.DataFrame,
        params: dict[str, Any],
        seed: int,
        report: Reporter | None = None,
    ) -> SentimentClassifier:
        cleaned = clean_tweets(train["text"])
        labels = train["label"].to_numpy()
        fractions = CURVE_FRACTIONS if report is not None else (1.0,)
        info = BundleInfo(
            family=self.name, format=self.format, params={**self.default_params, **params}
        )
        order = np.random.default_rng(seed).permutation(len(cleaned))
        pipeline = self.build(params, seed)
        for step, fraction in enumerate(fractions, start=1):
            rows = np.sort(order[: int(len(order) * fraction)])
            pipeline = self.build(params, seed)
            pipeline.fit([cleaned[i] for i in rows], labels[rows])
            if report is not None:
                proba = pipeline.predict_proba(clean_tweets(validation["text"]))[:, 1]
                accuracy = float(np.mean((proba >= 0.5) == validation["label"].to_numpy()))
                report_validation(report, step, accuracy)
        return SklearnClassifier(pipeline, info)

    def save(self, model: SentimentClassifier, directory: Path) -> None:
        assert isinstance(model, SklearnClassifier)
        save_sklearn(model.pipeline, directory)
        write_info(directory, model.info)
