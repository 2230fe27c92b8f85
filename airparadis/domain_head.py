"""The domain head: a logistic regression fitted on labelled feedback (plus, optionally, a
generic Sentiment140 sample), stacked on the generic model's logit.

Its features are the generic logit plus a TF-IDF of the feedback's own cleaned word n-grams,
so it learns the words of the airline's customers ("delayed", "cancelled flight") that
Sentiment140 never weighed, while the generic model stays untouched; with the "ngram+embedding"
feature set it also reads the tweet's MiniLM sentence embedding (`airparadis.embedding`), which
generalises from few labels to complaints worded differently. Platt scaling is the same head
with no other features:
``head logit = slope * generic logit + intercept + Σ coef·tfidf + Σ coef·embedding``.

The "ngram+embedding+direction" set adds one column: the generic sentiment direction, the logit
of a logistic regression fitted on the generic sample's embeddings alone. A few hundred labels
cannot place 384 embedding coefficients well when each is shrunk toward zero; with that column
the head starts from Sentiment140's own notion of sentiment in embedding space and spends its
labels on the domain's departures from it. The column is linear in the embedding, so its
weight folds into the embedding coefficients and the intercepts when the head is fitted: the
saved head has the same form as an "ngram+embedding" one.

Generic rows in the fit keep the head's words and directions honest on ordinary tweets (the
served Sentiment140 ranking holds); a domain indicator column, folded into the intercept when
the head is saved, keeps them from pulling the head's prior back to 50/50. The intercept
without it (the head at the generic prior) is kept too: the gate reads generic quality there.

It travels next to ``bundle.json`` as plain arrays in an ``.npz`` file (vocabulary, idf,
coefficients; no pickles), referenced from the calibration dict, with the ONNX encoder and its
tokenizer beside it when embeddings are used. Cleaning goes through `airparadis.text`, and
n-grams through scikit-learn's analyser, so fitting and serving split a tweet the same way.
"""

from __future__ import annotations

import math
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from airparadis.embedding import (
    ENCODER_FILE,
    ENCODER_TOKENIZER_FILE,
    SERVING,
    EncoderRuntime,
    SentenceEncoder,
    file_digest,
)
from airparadis.text import clean_tweet, clean_tweets

HEAD_FILE = "domain_head.npz"
HEAD_FORMAT = 2
"""v2: optional sentence-embedding coefficients (v1 files, n-grams only, still load)."""
READABLE_HEAD_FORMATS = (1, 2)
EMBEDDING_TOKEN = "[sentence embedding]"
"""The explanation part of the embedding features (one number: they are not words)."""
EMBEDDING_SCALE = 1.0
"""Unit-norm embeddings are multiplied by this before the fit, so one L2 strength suits both
feature blocks (TF-IDF rows are unit-norm too, but sparse: each weight moves the logit more)."""
GENERIC_SHARE = 0.5
"""The generic sample's total weight as a share of the feedback's: enough to keep generic
tweets ranked, not so much that the domain's own evidence is drowned."""
INDICATOR_SCALE = 10.0
"""The domain indicator's value, like liblinear's intercept scaling: its penalty is negligible."""
FeatureSet = Literal["ngram", "ngram+embedding", "ngram+embedding+direction"]
FEATURE_SETS: tuple[FeatureSet, ...] = ("ngram", "ngram+embedding", "ngram+embedding+direction")
DIRECTION_FEATURES: FeatureSet = "ngram+embedding+direction"
"""The feature set that also reads the generic direction (it needs generic rows)."""
NGRAM_RANGE = (1, 2)
MIN_DF = 2
C_GRID: tuple[float, ...] = (1.0, 3.0, 10.0)


def _vectorizer_kwargs() -> dict[str, object]:
    return {"token_pattern": r"\S+", "lowercase": False, "ngram_range": NGRAM_RANGE}


@dataclass(frozen=True)
class DomainHead:
    """The n-gram and embedding parts of the head (the logit weight and intercept live in the
    calibration)."""

    vocabulary: tuple[str, ...]
    idf: np.ndarray
    coef: np.ndarray
    embedding_coef: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Coefficients of the scaled embedding (empty: the "ngram" feature set)."""
    encoder: SentenceEncoder | None = field(default=None, compare=False, repr=False)
    encoder_dir: Path | None = field(default=None, compare=False, repr=False)
    """Where the encoder's files are (copied beside the head file when it is saved)."""

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

    def embedding_shift(self, cleaned: Sequence[str]) -> np.ndarray:
        """The embedding part of the logit of cleaned tweets (zeros without embeddings)."""
        if not self.embedding_coef.size:
            return np.zeros(len(cleaned))
        if self.encoder is None:
            raise ValueError("this domain head reads sentence embeddings but has no encoder")
        embedded = self.encoder.embed_cleaned(cleaned)
        return np.asarray(EMBEDDING_SCALE * embedded @ self.embedding_coef, dtype=np.float64)

    def logit_shift(self, texts: Sequence[str]) -> np.ndarray:
        """The head's n-gram and embedding contribution to the logit of each raw tweet."""
        cleaned = clean_tweets(list(texts))
        shift = self.embedding_shift(cleaned)
        if self.vocabulary:
            shift = shift + self.features(cleaned) @ self.coef
        return np.asarray(shift, dtype=np.float64)

    def contributions(self, text: str) -> list[tuple[str, float]]:
        """(n-gram, logit part) of one raw tweet, plus one `EMBEDDING_TOKEN` part when the
        head reads embeddings; they sum to `logit_shift`."""
        index: dict[str, int] = self._index
        cleaned = clean_tweet(text)
        parts: list[tuple[str, float]] = []
        if self.embedding_coef.size:
            parts.append((EMBEDDING_TOKEN, float(self.embedding_shift([cleaned])[0])))
        counts = Counter(g for g in self.analyzer(cleaned) if g in index)
        if not counts:
            return parts
        weights = {g: (1.0 + math.log(c)) * float(self.idf[index[g]]) for g, c in counts.items()}
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        return [*((g, w / norm * float(self.coef[index[g]])) for g, w in weights.items()), *parts]

    def save(self, path: Path) -> None:
        """The arrays to `path`; with embeddings, the encoder's two files beside it."""
        digest = ""
        if self.embedding_coef.size:
            if self.encoder_dir is None:
                raise ValueError("this domain head reads sentence embeddings but has no encoder")
            for name in (ENCODER_FILE, ENCODER_TOKENIZER_FILE):
                if (self.encoder_dir / name).resolve() != (path.parent / name).resolve():
                    shutil.copyfile(self.encoder_dir / name, path.parent / name)
            digest = file_digest(path.parent / ENCODER_FILE)
        np.savez(
            path, format=np.array(HEAD_FORMAT), vocabulary=np.array(self.vocabulary, dtype=str),
            idf=self.idf, coef=self.coef, embedding_coef=self.embedding_coef,
            encoder_sha256=np.array(digest),
        )  # fmt: skip

    @classmethod
    def load(cls, path: Path, runtime: EncoderRuntime = SERVING) -> DomainHead:
        with np.load(path, allow_pickle=False) as data:
            if int(data["format"]) not in READABLE_HEAD_FORMATS:
                raise ValueError(
                    f"{path.name}: head format v{int(data['format'])} is not one of "
                    f"{READABLE_HEAD_FORMATS}"
                )
            vocabulary = tuple(str(t) for t in data["vocabulary"].tolist())
            embedding_coef = (
                np.asarray(data["embedding_coef"], float) if "embedding_coef" in data else
                np.zeros(0)
            )  # fmt: skip
            digest = str(data["encoder_sha256"]) if "encoder_sha256" in data else ""
            idf, coef = np.asarray(data["idf"], float), np.asarray(data["coef"], float)
        if not embedding_coef.size:
            return cls(vocabulary, idf, coef)
        if file_digest(path.parent / ENCODER_FILE) != digest:
            raise ValueError(f"{ENCODER_FILE} is not the encoder {path.name} was fitted with")
        encoder = SentenceEncoder.load(path.parent, runtime, digest)
        return cls(vocabulary, idf, coef, embedding_coef, encoder, path.parent)


@dataclass(frozen=True)
class FittedHead:
    head: DomainHead
    slope: float
    intercept: float
    """The served intercept: the domain's prior (its indicator folded in)."""
    generic_intercept: float
    """The intercept without the domain indicator: the head at the generic sample's prior
    (equal to `intercept` when no generic rows were fitted)."""


@dataclass(frozen=True)
class HeadRows:
    """What the head is fitted on: cleaned texts, generic logits, labels, whether each row is
    in-domain feedback (else a generic sample row), and the embeddings when they are used."""

    cleaned: list[str]
    z: np.ndarray
    y: np.ndarray
    domain: np.ndarray
    embeddings: np.ndarray | None = None

    def take(self, rows: np.ndarray) -> HeadRows:
        return HeadRows(
            [self.cleaned[i] for i in rows], self.z[rows], self.y[rows], self.domain[rows],
            None if self.embeddings is None else self.embeddings[rows],
        )  # fmt: skip

    def join(self, other: HeadRows) -> HeadRows:
        both = None
        if self.embeddings is not None and other.embeddings is not None:
            both = np.vstack([self.embeddings, other.embeddings])
        return HeadRows(
            [*self.cleaned, *other.cleaned], np.concatenate([self.z, other.z]),
            np.concatenate([self.y, other.y]), np.concatenate([self.domain, other.domain]), both,
        )  # fmt: skip


def head_rows(
    cleaned: Sequence[str], z: np.ndarray, y: np.ndarray, in_domain: bool,
    encoder: SentenceEncoder | None = None,
) -> HeadRows:  # fmt: skip
    """Rows for `fit_head`, embedded once with `encoder` (embeddings are not fitted, so the
    folds of a cross-validation can share them)."""
    cleaned = list(cleaned)
    return HeadRows(
        cleaned, np.asarray(z, float), np.asarray(y, np.int64),
        np.full(len(cleaned), in_domain, dtype=bool),
        encoder.embed_cleaned(cleaned) if encoder is not None else None,
    )  # fmt: skip


@dataclass(frozen=True)
class Direction:
    """The generic sentiment direction: logit = embedding @ weights + bias."""

    weights: np.ndarray
    bias: float

    def logit(self, embeddings: np.ndarray) -> np.ndarray:
        return np.asarray(embeddings @ self.weights + self.bias, dtype=np.float64)

    def save(self, path: Path) -> None:
        np.savez(path, weights=self.weights, bias=np.array(self.bias))

    @classmethod
    def load(cls, path: Path) -> Direction:
        with np.load(path, allow_pickle=False) as data:
            return cls(np.asarray(data["weights"], np.float64), float(data["bias"]))


def fit_direction(embeddings: np.ndarray, labels: np.ndarray) -> Direction | None:
    """A logistic regression of generic labels on their embeddings (None with one class)."""
    if len(np.unique(labels)) < 2:
        return None
    model = LogisticRegression(max_iter=1000).fit(embeddings, labels)
    return Direction(np.asarray(model.coef_[0], np.float64), float(model.intercept_[0]))


def generic_direction(rows: HeadRows) -> Direction | None:
    """The direction fitted on `rows`' generic sample (None without embeddings or without
    both classes among its generic rows): the fallback when no larger sample's direction is
    given. Fitted once per calibration: the generic rows are the same in every fold."""
    generic = ~rows.domain
    if rows.embeddings is None:
        return None
    return fit_direction(rows.embeddings[generic], rows.y[generic])


def fit_head(
    rows: HeadRows,
    c: float,
    features: FeatureSet = "ngram",
    encoder: SentenceEncoder | None = None,
    encoder_dir: Path | None = None,
    direction: Direction | None = None,
) -> FittedHead:
    """Fit the head (L2 strength 1/c). The vocabulary comes from the in-domain rows only: the
    generic sample teaches weights, not words nobody in the domain uses. The direction set
    needs `direction` (`generic_direction`)."""
    domain_cleaned = [t for t, d in zip(rows.cleaned, rows.domain, strict=True) if d]
    vectorizer = TfidfVectorizer(min_df=MIN_DF, sublinear_tf=True, **_vectorizer_kwargs())  # type: ignore[arg-type]
    try:
        vectorizer.fit(domain_cleaned)
        ngrams = sp.csr_matrix(vectorizer.transform(rows.cleaned))
        vocabulary = tuple(vectorizer.get_feature_names_out().tolist())
        idf = np.asarray(vectorizer.idf_, dtype=np.float64)
    except ValueError:  # no n-gram seen twice: the head is Platt scaling
        ngrams = sp.csr_matrix((len(rows.cleaned), 0))
        vocabulary, idf = (), np.zeros(0)
    blocks = [ngrams]
    use_embedding = features != "ngram"
    use_direction = features == DIRECTION_FEATURES
    if use_embedding:
        if rows.embeddings is None:
            raise ValueError(f"the {features} head needs the rows' embeddings")
        blocks.append(sp.csr_matrix(EMBEDDING_SCALE * rows.embeddings))
    if use_direction:
        if direction is None:
            raise ValueError(f"the {features} head needs the generic direction")
        assert rows.embeddings is not None
        blocks.append(sp.csr_matrix(direction.logit(rows.embeddings)[:, None]))
    with_generic = not bool(rows.domain.all())
    if with_generic:
        blocks.append(sp.csr_matrix(INDICATOR_SCALE * rows.domain.astype(float)[:, None]))
    blocks.append(sp.csr_matrix(rows.z[:, None]))
    features_matrix = sp.hstack(blocks).tocsr()
    # liblinear: an order of magnitude faster than lbfgs on these small sparse problems; the
    # large intercept scaling keeps its penalty on the intercept negligible.
    model = LogisticRegression(C=c, solver="liblinear", intercept_scaling=10.0, max_iter=1000)
    weights = np.ones(len(rows.y))
    if with_generic:
        generic_rows = int((~rows.domain).sum())
        weights[~rows.domain] = GENERIC_SHARE * int(rows.domain.sum()) / generic_rows
    model.fit(features_matrix, rows.y, sample_weight=weights)
    coef = np.asarray(model.coef_[0], dtype=np.float64)
    slope, coef = float(coef[-1]), coef[:-1]
    intercept = generic_intercept = float(model.intercept_[0])
    if with_generic:  # served traffic is the domain: its indicator is folded into the intercept
        intercept += INDICATOR_SCALE * float(coef[-1])
        coef = coef[:-1]
    if use_direction:  # linear in the embedding: folded into its coefficients and intercepts
        assert direction is not None
        weight, coef = float(coef[-1]), coef[:-1]
        coef = coef.copy()
        coef[len(vocabulary) :] += weight * direction.weights / EMBEDDING_SCALE
        intercept += weight * direction.bias
        generic_intercept += weight * direction.bias
    ngram_coef = coef[: len(vocabulary)]
    embedding_coef = coef[len(vocabulary) :] if use_embedding else np.zeros(0)
    head = DomainHead(
        vocabulary, idf, ngram_coef, embedding_coef,
        encoder if use_embedding else None, encoder_dir if use_embedding else None,
    )  # fmt: skip
    return FittedHead(head, slope, intercept, generic_intercept)


def head_logit(fitted: FittedHead, rows: HeadRows) -> np.ndarray:
    """The head's logit for in-domain rows (their embeddings already computed)."""
    head = fitted.head
    shift = head.features(rows.cleaned) @ head.coef if head.vocabulary else np.zeros(len(rows.z))
    if head.embedding_coef.size:
        assert rows.embeddings is not None
        shift = shift + EMBEDDING_SCALE * rows.embeddings @ head.embedding_coef
    return np.asarray(fitted.slope * rows.z + fitted.intercept + shift, dtype=np.float64)
