"""Input drift: light statistics of tweets, and how far live traffic has moved from training.

Training stores a `DriftReference` in every bundle; the predictor compares a rolling window
of live inputs and outputs against it. Both sides compute the statistics with the functions
here, on text cleaned by `airparadis.text`, so the comparison measures the traffic, not a
difference in code.

The population stability index (PSI) over binned values is the usual reading:
below 0.1 stable, 0.1 to 0.25 a moderate shift, above 0.25 a major one.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from airparadis import DEFAULT_THRESHOLD
from airparadis.label_shift import HeldoutMap
from airparadis.text import clean_tweet

REFERENCE_FILE = "drift_reference.json"
VOCABULARY_FILE = "drift_vocabulary.txt"
PROBA_EDGES: tuple[float, ...] = tuple(np.linspace(0.0, 1.0, 11).round(2).tolist())
LENGTH_EDGES: tuple[float, ...] = (0, 3, 6, 9, 12, 15, 18, 22, 27, 35, 1e9)
"""Bins of tokens per cleaned tweet; the last bin catches anything longer."""
PSI_EPSILON = 1e-4
VOCABULARY_MIN_COUNT = 2
VOCABULARY_SAMPLE = 200_000
"""Tweets of the training split that the vocabulary is counted on; enough for a stable
out-of-vocabulary share, and it keeps the extra training time to a few seconds."""


@dataclass(frozen=True)
class InputStats:
    """Statistics of a set of tweets and the model's P(positive) for them."""

    count: int
    mean_tokens: float
    oov_share: float
    positive_share: float
    length_shares: list[float]
    proba_shares: list[float]


@dataclass(frozen=True)
class DriftReference:
    """What the model saw at training time: held-out statistics and its vocabulary, and the
    map that calibrates its raw posteriors on held-out tweets (the live EM prior runs through
    it; None for bundles trained before it existed)."""

    stats: InputStats
    vocabulary: frozenset[str] = field(repr=False)
    threshold: float = DEFAULT_THRESHOLD
    em_map: HeldoutMap | None = None


@dataclass(frozen=True)
class DriftReport:
    live: InputStats
    reference: InputStats
    psi_probability: float
    psi_length: float

    def as_dict(self) -> dict[str, object]:
        return {
            "psi_probability": self.psi_probability,
            "psi_length": self.psi_length,
            "live": asdict(self.live),
            "reference": asdict(self.reference),
            "proba_edges": list(PROBA_EDGES),
            "length_edges": list(LENGTH_EDGES[:-1]),
        }


def shares(values: np.ndarray, edges: Sequence[float]) -> list[float]:
    """Share of `values` in each bin; the last bin is closed, so P(positive) = 1 counts."""
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=np.asarray(edges))
    total = counts.sum()
    return (counts / total).tolist() if total else [0.0] * (len(edges) - 1)


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index; empty bins are floored so that it stays finite."""
    e = np.maximum(np.asarray(expected, dtype=float), PSI_EPSILON)
    a = np.maximum(np.asarray(actual, dtype=float), PSI_EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def build_vocabulary(texts: Iterable[str], min_count: int = VOCABULARY_MIN_COUNT) -> frozenset[str]:
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(clean_tweet(text).split())
    return frozenset(token for token, n in counts.items() if n >= min_count)


def input_stats(
    texts: Sequence[str], proba: np.ndarray, vocabulary: frozenset[str], threshold: float
) -> InputStats:
    tokens = [clean_tweet(t).split() for t in texts]
    lengths = np.fromiter((len(t) for t in tokens), dtype=float, count=len(tokens))
    total = int(lengths.sum())
    unknown = sum(1 for words in tokens for w in words if w not in vocabulary)
    proba = np.asarray(proba, dtype=float)
    return InputStats(
        count=len(texts),
        mean_tokens=float(lengths.mean()) if len(texts) else float("nan"),
        oov_share=unknown / total if total else float("nan"),
        positive_share=float(np.mean(proba >= threshold)) if len(texts) else float("nan"),
        length_shares=shares(lengths, LENGTH_EDGES),
        proba_shares=shares(proba, PROBA_EDGES),
    )


def build_reference(
    train_texts: Sequence[str],
    heldout_texts: Sequence[str],
    heldout_proba: np.ndarray,
    threshold: float,
    seed: int = 0,
    em_map: HeldoutMap | None = None,
) -> DriftReference:
    """The vocabulary comes from training tweets; the statistics from held-out ones, which
    the model did not fit, so they look like what live traffic should look like."""
    if len(train_texts) > VOCABULARY_SAMPLE:
        picked = np.random.default_rng(seed).choice(
            len(train_texts), VOCABULARY_SAMPLE, replace=False
        )
        train_texts = [train_texts[i] for i in picked]
    vocabulary = build_vocabulary(train_texts)
    stats = input_stats(heldout_texts, heldout_proba, vocabulary, threshold)
    return DriftReference(stats=stats, vocabulary=vocabulary, threshold=threshold, em_map=em_map)


def compare(reference: DriftReference, texts: Sequence[str], proba: np.ndarray) -> DriftReport:
    live = input_stats(texts, proba, reference.vocabulary, reference.threshold)
    return DriftReport(
        live=live,
        reference=reference.stats,
        psi_probability=psi(reference.stats.proba_shares, live.proba_shares),
        psi_length=psi(reference.stats.length_shares, live.length_shares),
    )


def save_reference(directory: Path, reference: DriftReference) -> None:
    body: dict[str, object] = {"threshold": reference.threshold, "stats": asdict(reference.stats)}
    if reference.em_map is not None:
        body["em_map"] = reference.em_map.to_dict()
    (directory / REFERENCE_FILE).write_text(json.dumps(body, indent=2))
    (directory / VOCABULARY_FILE).write_text("\n".join(sorted(reference.vocabulary)) + "\n")


def load_reference(directory: Path) -> DriftReference | None:
    """None for bundles trained before drift references existed: drift is then not tracked."""
    path = directory / REFERENCE_FILE
    if not path.is_file():
        return None
    body = json.loads(path.read_text())
    words = (directory / VOCABULARY_FILE).read_text().split("\n")
    return DriftReference(
        stats=InputStats(**body["stats"]),
        vocabulary=frozenset(w for w in words if w),
        threshold=float(body["threshold"]),
        em_map=HeldoutMap.from_dict(body["em_map"]) if "em_map" in body else None,
    )
