"""The domain head: a logistic regression fitted on labelled feedback only, stacked on the
generic model's logit.

Its features are the generic logit plus a TF-IDF of the feedback's own cleaned word n-grams,
so it learns the words of the airline's customers ("delayed", "cancelled flight") that
Sentiment140 never weighed, while the generic model stays untouched. Platt scaling is the same
head with no n-gram features: ``head logit = slope * generic logit + intercept + Σ coef·tfidf``.

It travels next to ``bundle.json`` as plain arrays in an ``.npz`` file (vocabulary, idf,
coefficients; no pickles), referenced from the calibration dict. Cleaning goes through
`airparadis.text`, and n-grams through scikit-learn's analyser, so fitting and serving split a
tweet the same way.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from airparadis.text import clean_tweet, clean_tweets

HEAD_FILE = "domain_head.npz"
HEAD_FORMAT = 1
NGRAM_RANGE = (1, 2)
MIN_DF = 2
C_GRID: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0)


def _vectorizer_kwargs() -> dict[str, object]:
    return {"token_pattern": r"\S+", "lowercase": False, "ngram_range": NGRAM_RANGE}


@dataclass(frozen=True)
class DomainHead:
    """The n-gram part of the head (the logit weight and intercept live in the calibration)."""

    vocabulary: tuple[str, ...]
    idf: np.ndarray
    coef: np.ndarray

    _index: dict[str, int] = field(init=False, repr=False, compare=False)
    analyzer: Callable[[str], list[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {term: i for i, term in enumerate(self.vocabulary)})
        vectorizer = CountVectorizer(**_vectorizer_kwargs())  # type: ignore[arg-type]
        object.__setattr__(self, "analyzer", vectorizer.build_analyzer())

    def features(self, cleaned: Sequence[str]) -> sp.csr_matrix:
        """Sublinear, idf-weighted, L2-normalised n-gram features (scikit-learn's TF-IDF)."""
        counts = CountVectorizer(
            vocabulary=dict(self._index),
            **_vectorizer_kwargs(),  # type: ignore[arg-type]
        ).transform(cleaned)
        counts = sp.csr_matrix(counts, dtype=np.float64)
        counts.data = 1.0 + np.log(counts.data)
        weighted = sp.csr_matrix(counts.multiply(self.idf[None, :]))
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sp.csr_matrix(sp.diags(1.0 / norms) @ weighted)

    def logit_shift(self, texts: Sequence[str]) -> np.ndarray:
        """The head's n-gram contribution to the logit of each raw tweet."""
        if not self.vocabulary:
            return np.zeros(len(texts))
        return np.asarray(self.features(clean_tweets(list(texts))) @ self.coef, dtype=np.float64)

    def contributions(self, text: str) -> list[tuple[str, float]]:
        """(n-gram, logit part) of one raw tweet; they sum to `logit_shift`."""
        index: dict[str, int] = self._index
        counts = Counter(g for g in self.analyzer(clean_tweet(text)) if g in index)
        if not counts:
            return []
        weights = {g: (1.0 + math.log(c)) * float(self.idf[index[g]]) for g, c in counts.items()}
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        return [(g, w / norm * float(self.coef[index[g]])) for g, w in weights.items()]

    def save(self, path: Path) -> None:
        np.savez(
            path, format=np.array(HEAD_FORMAT), vocabulary=np.array(self.vocabulary, dtype=str),
            idf=self.idf, coef=self.coef,
        )  # fmt: skip

    @classmethod
    def load(cls, path: Path) -> DomainHead:
        with np.load(path, allow_pickle=False) as data:
            if int(data["format"]) != HEAD_FORMAT:
                raise ValueError(f"{path.name}: head format v{int(data['format'])} is not v1")
            vocabulary = tuple(str(t) for t in data["vocabulary"].tolist())
            return cls(vocabulary, np.asarray(data["idf"], float), np.asarray(data["coef"], float))


@dataclass(frozen=True)
class FittedHead:
    head: DomainHead
    slope: float
    intercept: float


def fit_head(cleaned: Sequence[str], z: np.ndarray, y: np.ndarray, c: float) -> FittedHead:
    """Fit the head on cleaned texts, generic logits `z` and labels `y` (L2 strength 1/c)."""
    vectorizer = TfidfVectorizer(min_df=MIN_DF, sublinear_tf=True, **_vectorizer_kwargs())  # type: ignore[arg-type]
    try:
        ngrams = sp.csr_matrix(vectorizer.fit_transform(cleaned))
        vocabulary = tuple(vectorizer.get_feature_names_out().tolist())
        idf = np.asarray(vectorizer.idf_, dtype=np.float64)
    except ValueError:  # no n-gram seen twice: the head is Platt scaling
        ngrams = sp.csr_matrix((len(cleaned), 0))
        vocabulary, idf = (), np.zeros(0)
    features = sp.hstack([ngrams, sp.csr_matrix(np.asarray(z, float)[:, None])]).tocsr()
    # liblinear: an order of magnitude faster than lbfgs on these small sparse problems; the
    # large intercept scaling keeps its penalty on the intercept negligible.
    model = LogisticRegression(C=c, solver="liblinear", intercept_scaling=10.0, max_iter=1000)
    model.fit(features, y)
    coef = np.asarray(model.coef_[0], dtype=np.float64)
    head = DomainHead(vocabulary, idf, coef[:-1])
    return FittedHead(head, float(coef[-1]), float(model.intercept_[0]))


def head_logit(fitted: FittedHead, cleaned: Sequence[str], z: np.ndarray) -> np.ndarray:
    """The head's logit for cleaned texts whose generic logits are `z`."""
    shift = (
        fitted.head.features(cleaned) @ fitted.head.coef
        if fitted.head.vocabulary
        else np.zeros(len(cleaned))
    )
    return np.asarray(fitted.slope * np.asarray(z) + fitted.intercept + shift, dtype=np.float64)
