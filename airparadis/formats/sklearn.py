"""The scikit-learn format: a fitted pipeline over cleaned text, stored with joblib.

A TF-IDF + logistic-regression pipeline is also compiled, at training time, into a vocabulary
lookup and a dot product (`LinearTextScorer`, stored as plain arrays): the pipeline costs about
0.7 ms a call whatever the batch size, which would cap single-tweet serving far below the
server's own overhead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from airparadis.bundle_format import BundleInfo, register_format
from airparadis.fastpath import linear_table
from airparadis.text import clean_tweet, clean_tweets, text_cleaner

SKLEARN_FILE = "model.joblib"
LINEAR_FILE = "linear.npz"


class LinearTextScorer:
    """P(positive) of TF-IDF (word n-grams, l2 norm) + binary logistic regression, per tweet.

    Each known n-gram maps to (coef * idf, idf), so one pass over a tweet's n-grams gives both
    the dot product and the norm; results equal the pipeline's up to float rounding. The pass
    runs in C (`airparadis._fastpath.LinearTable`) where the extension is built, else in its
    pure-Python twin with the same results (`airparadis.fastpath`); `make bench` measures both.
    """

    def __init__(
        self,
        terms: list[str],
        weighted: np.ndarray,
        idf: np.ndarray,
        intercept: float,
        ngram_range: tuple[int, int],
        sublinear_tf: bool,
    ) -> None:
        self.terms = terms
        self.weighted = np.ascontiguousarray(weighted, dtype=np.float64)
        self.idf = np.ascontiguousarray(idf, dtype=np.float64)
        self.intercept = float(intercept)
        self.min_n, self.max_n = ngram_range
        self.sublinear_tf = sublinear_tf
        self.table = linear_table(
            terms, self.weighted, self.idf, self.intercept, self.min_n, self.max_n, sublinear_tf
        )

    def save(self, path: Path) -> None:
        """Plain arrays: serving rebuilds the scorer without scikit-learn or unpickling."""
        np.savez(
            path,
            terms=np.array(self.terms, dtype=str),
            weighted=self.weighted,
            idf=self.idf,
            meta=np.array([self.intercept, self.min_n, self.max_n, float(self.sublinear_tf)]),
        )

    @classmethod
    def load(cls, path: Path) -> LinearTextScorer:
        with np.load(path, allow_pickle=False) as data:
            intercept, min_n, max_n, sublinear = data["meta"].tolist()
            return cls(
                data["terms"].tolist(),
                data["weighted"],
                data["idf"],
                intercept,
                (int(min_n), int(max_n)),
                bool(sublinear),
            )

    @classmethod
    def from_pipeline(cls, pipeline: Any) -> LinearTextScorer | None:
        """The compiled scorer, or None when the pipeline is not of the supported shape."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        steps = getattr(pipeline, "steps", None)
        if not steps or len(steps) != 2:
            return None
        vectorizer, model = steps[0][1], steps[1][1]
        supported = (
            isinstance(vectorizer, TfidfVectorizer)
            and isinstance(model, LogisticRegression)
            and vectorizer.analyzer == "word"
            and vectorizer.token_pattern == r"\S+"
            and not vectorizer.lowercase
            and vectorizer.norm == "l2"
            and vectorizer.use_idf
            and vectorizer.stop_words is None
            and vectorizer.preprocessor is None
            and vectorizer.tokenizer is None
            and model.coef_.shape[0] == 1
        )
        if not supported:
            return None
        idf = np.asarray(vectorizer.idf_, dtype=np.float64)
        coef = np.asarray(model.coef_[0], dtype=np.float64)
        terms = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
        return cls(
            terms,
            coef * idf,
            idf,
            float(model.intercept_[0]),
            vectorizer.ngram_range,
            vectorizer.sublinear_tf,
        )

    def contributions(self, cleaned: str) -> tuple[list[str], list[float], float]:
        """Exact split of the logit into per-token parts, and the intercept.

        Each n-gram's term (coef * tf-idf / norm) is shared equally by the tokens it spans,
        so the parts plus the intercept add up to the logit the model computes.
        """
        tokens = cleaned.split()
        positions: dict[int, list[tuple[int, int]]] = {}
        for n in range(self.min_n, self.max_n + 1):
            for start in range(len(tokens) - n + 1):
                index = self.table.lookup(" ".join(tokens[start : start + n]))
                if index >= 0:
                    positions.setdefault(index, []).append((start, n))
        norm = 0.0
        weights: dict[int, float] = {}
        for index, spans in positions.items():
            weighted, idf = float(self.weighted[index]), float(self.idf[index])
            count = len(spans)
            tf = 1.0 + math.log(count) if self.sublinear_tf else float(count)
            weights[index] = weighted * tf / count  # per occurrence
            norm += (idf * tf) ** 2
        parts = [0.0] * len(tokens)
        scale = 1.0 / math.sqrt(norm) if norm > 0.0 else 0.0
        for index, spans in positions.items():
            for start, n in spans:
                share = weights[index] * scale / n
                for position in range(start, start + n):
                    parts[position] += share
        return tokens, parts, self.intercept


class SklearnClassifier:
    """A scikit-learn pipeline over cleaned text (TF-IDF + logistic regression).

    With a compiled scorer the pipeline itself is only unpickled if something asks for it.
    """

    def __init__(
        self,
        pipeline: Any,
        info: BundleInfo,
        compile_scorer: bool = True,
        scorer: LinearTextScorer | None = None,
        pipeline_path: Path | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._pipeline_path = pipeline_path
        self.info = info
        if scorer is None and compile_scorer:
            scorer = LinearTextScorer.from_pipeline(pipeline)
        self.scorer = scorer
        self.normalisation = info.normalisation
        if scorer is not None:
            table, normalisation = scorer.table, self.normalisation
            self.score_tweet: Callable[[str], float] = lambda text: table.score(
                clean_tweet(text, normalisation)
            )
            """P(positive) of one raw tweet (see `airparadis.bundle.tweet_scorer`)."""

    @property
    def pipeline(self) -> Any:
        if self._pipeline is None and self._pipeline_path is not None:
            import joblib

            self._pipeline = joblib.load(self._pipeline_path)
        return self._pipeline

    def explain(self, text: str) -> tuple[list[str], list[float]] | None:
        """Exact per-token logit contributions, when the pipeline compiled to a scorer."""
        if self.scorer is None:
            return None
        tokens, parts, _ = self.scorer.contributions(clean_tweet(text, self.normalisation))
        return tokens, parts

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if self.scorer is not None and self.normalisation != "none":
            # The compiled cleaner still cleans each tweet (inside `clean_tweet`); the tokens
            # are then normalised in Python, so the batch pass in C steps aside.
            table, normalisation = self.scorer.table, self.normalisation
            return np.array(
                [table.score(clean_tweet(t, normalisation)) for t in texts], dtype=np.float64
            )
        if self.scorer is not None:
            # Compiled: cleaned and scored in C without the GIL; NaN marks the few texts
            # (non-ASCII, HTML entities) that take the regular-expression cleaner here instead.
            table = self.scorer.table
            proba = np.frombuffer(table.score_texts(text_cleaner(), texts), dtype=np.float64)
            proba = proba.copy()
            for index in np.flatnonzero(np.isnan(proba)).tolist():
                proba[index] = table.score(clean_tweet(texts[index]))
            return proba
        proba = self.pipeline.predict_proba(clean_tweets(texts, self.normalisation))
        return np.asarray(proba[:, 1], dtype=np.float64)


@register_format("sklearn")
def load_sklearn(directory: Path, info: BundleInfo) -> SklearnClassifier:
    if (directory / LINEAR_FILE).is_file():
        scorer = LinearTextScorer.load(directory / LINEAR_FILE)
        return SklearnClassifier(None, info, scorer=scorer, pipeline_path=directory / SKLEARN_FILE)
    import joblib

    return SklearnClassifier(joblib.load(directory / SKLEARN_FILE), info)


def save_sklearn(pipeline: Any, directory: Path) -> None:
    import joblib

    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, directory / SKLEARN_FILE)
    scorer = LinearTextScorer.from_pipeline(pipeline)
    if scorer is not None:
        scorer.save(directory / LINEAR_FILE)
