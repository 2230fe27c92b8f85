"""TF-IDF over word n-grams of cleaned tweets (optionally with character n-grams), then
logistic regression (scikit-learn). The fitted pipeline is the served artifact.

Placeholder tokens that say where a tweet points, not how its author feels (``xxuser``,
``xxurl``), are trained with and then silenced: every n-gram holding one gets a zero weight.
In Sentiment140 a reply or a link leans positive; a tweet to an airline is a reply by
construction, so that lean would call complaints positive. Training with them lets them absorb
the lean instead of the words around them (dropping them before training does worse; see
docs/models.md). Rows may carry a ``weight`` column (feedback examples in retraining).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from airparadis.bundle import BundleInfo, SentimentClassifier, write_info
from airparadis.formats.sklearn import SklearnClassifier, save_sklearn
from airparadis.metrics import accuracy
from airparadis.text import NORMALISATIONS, check_normalisation, clean_tweets
from training_jobs.families import Reporter, report_validation
from training_jobs.families.params import validate_params

if TYPE_CHECKING:
    import optuna

# Cleaned text is space-separated tokens; placeholders like "xxurl" must stay whole.
TOKEN_PATTERN = r"\S+"
CURVE_FRACTIONS = (0.25, 1.0)
"""When tuning, a trial first fits on a quarter of the training rows and reports its
validation accuracy, so the pruner can stop a poor configuration before the full fit."""


class TfidfLogisticRegression:
    name = "tfidf_lr"
    format = "sklearn"

    def search_space(self, trial: optuna.trial.BaseTrial) -> dict[str, Any]:
        return {
            "C": trial.suggest_float("C", 0.3, 10.0, log=True),
            "ngram_max": trial.suggest_int("ngram_max", 1, 3),
            "min_df": trial.suggest_int("min_df", 1, 3),
            "max_features": trial.suggest_categorical("max_features", [None, 200_000, 500_000]),
            "char_ngram_max": trial.suggest_categorical("char_ngram_max", [0, 4, 5]),
            "class_weight": trial.suggest_categorical("class_weight", [None, "balanced"]),
            "normalisation": trial.suggest_categorical("normalisation", list(NORMALISATIONS)),
        }

    def build(self, params: dict[str, Any], seed: int) -> Pipeline:
        p = validate_params(self.name, params)
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
        p = validate_params(self.name, params)
        normalisation = check_normalisation(p["normalisation"])
        cleaned = clean_tweets(train["text"], normalisation)
        labels = train["label"].to_numpy()
        weights = row_weights(train)
        fractions = CURVE_FRACTIONS if report is not None else (1.0,)
        info = BundleInfo(
            family=self.name, format=self.format, normalisation=normalisation, params=p
        )
        order = np.random.default_rng(seed).permutation(len(cleaned))
        pipeline = self.build(params, seed)
        for step, fraction in enumerate(fractions, start=1):
            rows = np.sort(order[: int(len(order) * fraction)])
            pipeline = self.build(params, seed)
            pipeline.fit(
                [cleaned[i] for i in rows],
                labels[rows],
                lr__sample_weight=None if weights is None else weights[rows],
            )
            silence_tokens(pipeline, info.params["neutral_tokens"])
            if report is not None:
                val_cleaned = clean_tweets(validation["text"], normalisation)
                proba = pipeline.predict_proba(val_cleaned)[:, 1]
                score = accuracy(validation["label"].to_numpy(), proba, info.threshold)
                report_validation(report, step, score)
        return SklearnClassifier(pipeline, info)

    def fit_weighted(
        self,
        generic: pd.DataFrame,
        feedback: pd.DataFrame,
        weights: Sequence[float],
        params: dict[str, Any],
        seed: int,
    ) -> list[SentimentClassifier]:
        """One model per feedback weight, sharing one vectorizer fit (the costly part)."""
        p = validate_params(self.name, params)
        normalisation = check_normalisation(p["normalisation"])
        texts = pd.concat([generic["text"], feedback["text"]], ignore_index=True)
        cleaned = clean_tweets(texts, normalisation)
        labels = np.concatenate([generic["label"].to_numpy(), feedback["label"].to_numpy()])
        template = self.build(params, seed)
        vectorizer = clone(template.named_steps["tfidf"])
        features = vectorizer.fit_transform(cleaned)

        def sample_weight(weight: float) -> np.ndarray:
            return np.concatenate([np.ones(len(generic)), np.full(len(feedback), float(weight))])

        # One after the other: liblinear draws from C's global rand(), so fits sharing a
        # process in threads could interleave their draws and stop being reproducible, and
        # joblib's processes hand the features over read-only, which liblinear refuses.
        fitted = [
            clone(template.named_steps["lr"]).fit(features, labels, sample_weight(w))
            for w in weights
        ]
        models: list[SentimentClassifier] = []
        for model in fitted:
            pipeline = Pipeline([("tfidf", vectorizer), ("lr", model)])
            silence_tokens(pipeline, p["neutral_tokens"])
            info = BundleInfo(
                family=self.name, format=self.format, normalisation=normalisation, params=dict(p)
            )
            models.append(SklearnClassifier(pipeline, info))
        return models

    def save(self, model: SentimentClassifier, directory: Path) -> None:
        assert isinstance(model, SklearnClassifier)
        save_sklearn(model.pipeline, directory)
        write_info(directory, model.info)


def row_weights(frame: pd.DataFrame) -> np.ndarray | None:
    """Per-row training weights (the ``weight`` column), or None when all rows count once."""
    if "weight" not in frame.columns:
        return None
    return np.asarray(frame["weight"].fillna(1.0).to_numpy(), dtype=np.float64)


def silence_tokens(pipeline: Pipeline, tokens: Sequence[str]) -> None:
    """Zero the logistic-regression weight of every word n-gram holding one of `tokens`."""
    if not tokens:
        return
    features = pipeline.named_steps["tfidf"]
    words = features.transformer_list[0][1] if isinstance(features, FeatureUnion) else features
    silenced = set(tokens)
    columns = [i for term, i in words.vocabulary_.items() if silenced & set(term.split())]
    pipeline.named_steps["lr"].coef_[0, columns] = 0.0
