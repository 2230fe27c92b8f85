"""TF-IDF over word n-grams of cleaned tweets, then logistic regression (scikit-learn)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from airparadis.bundle import BundleInfo, SentimentClassifier, write_info
from airparadis.formats.sklearn import SklearnClassifier, save_sklearn
from airparadis.text import clean_tweets

# Cleaned text is space-separated tokens; placeholders like "xxurl" must stay whole.
TOKEN_PATTERN = r"\S+"


class TfidfLogisticRegression:
    name = "tfidf_lr"
    format = "sklearn"
    default_params: ClassVar[dict[str, Any]] = {
        "ngram_max": 3,
        "min_df": 2,
        "max_features": None,
        "sublinear_tf": True,
        "C": 2.0,
    }

    def build(self, params: dict[str, Any], seed: int) -> Pipeline:
        p = {**self.default_params, **params}
        return Pipeline(
            [
                (
                    "tfidf",
                    TfidfVectorizer(
                        token_pattern=TOKEN_PATTERN,
                        lowercase=False,
                        ngram_range=(1, int(p["ngram_max"])),
                        min_df=int(p["min_df"]),
                        max_features=p["max_features"],
                        sublinear_tf=bool(p["sublinear_tf"]),
                        dtype=np.float32,
                    ),
                ),
                (
                    "lr",
                    LogisticRegression(
                        C=float(p["C"]), solver="liblinear", max_iter=1000, random_state=seed
                    ),
                ),
            ]
        )

    def fit(
        self, train: pd.DataFrame, validation: pd.DataFrame, params: dict[str, Any], seed: int
    ) -> SentimentClassifier:
        pipeline = self.build(params, seed)
        pipeline.fit(clean_tweets(train["text"]), train["label"].to_numpy())
        info = BundleInfo(
            family=self.name, format=self.format, params={**self.default_params, **params}
        )
        return SklearnClassifier(pipeline, info)

    def save(self, model: SentimentClassifier, directory: Path) -> None:
        assert isinstance(model, SklearnClassifier)
        save_sklearn(model.pipeline, directory)
        write_info(directory, model.info)
