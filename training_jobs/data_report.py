"""The data analysis behind `airparadis data report`: what a labelled tweet source holds.

One pass over the cleaned tweets (`airparadis.text`, the cleaning every model sees) gives the
class balance, tweet lengths per class, the words and bigrams that tell the classes apart,
duplicates and conflicting labels, the share of non-ASCII and mojibake text, and, against a
second source, how much of that source's vocabulary the first one covers: the domain gap
between generic tweets and airline tweets shows up there as out-of-vocabulary tokens.

Rows are read as they are (`read_source`, no de-duplication), so that duplicates can be
counted; a feedback export (``tweet``, ``predicted_label``, ``verdict``, ``correct_label``)
gives each row the label retraining would give it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from airparadis import LABELS
from airparadis.text import clean_tweets, repair_mojibake
from training_jobs.data import DataError, SourceReport, expand_sources, read_source
from training_jobs.families.tfidf_lr import TOKEN_PATTERN

FEEDBACK_COLUMNS = frozenset({"tweet", "predicted_label", "verdict"})
TOP_TERMS = 15
MIN_TERM_COUNT = 5
"""Words and bigrams seen fewer times than this are not ranked (their log-odds are noise)."""
LENGTH_QUANTILES = (0.1, 0.5, 0.9, 0.99)


@dataclass
class TellingTerm:
    term: str
    count: int
    z: float
    """Log-odds ratio of the class against the other, over its standard error (Monroe et al.,
    informative Dirichlet prior from the pooled counts): large means telling and frequent."""


@dataclass
class SourceSummary:
    """The numbers of one source; `report.md` and the MLflow metrics are written from it."""

    name: str
    rows: int
    neutral: int
    malformed: int
    class_counts: dict[str, int]
    tokens_quantiles: dict[str, dict[str, float]]
    chars_mean: dict[str, float]
    duplicate_rows: int
    """Rows whose cleaned text already appeared in an earlier row (the extra copies)."""
    conflicting_texts: int
    """Distinct cleaned texts that appear with both labels."""
    conflicting_rows: int
    non_ascii_share: float
    mojibake_share: float
    """Share of rows that `repair_mojibake` changes: UTF-8 read as latin-1 (``Ã©``)."""
    vocabulary: int
    telling: dict[str, dict[str, list[TellingTerm]]] = field(default_factory=dict)
    """class -> {"words": [...], "bigrams": [...]}, most telling first."""


@dataclass
class Overlap:
    """How much of source B's vocabulary source A's covers."""

    a: str
    b: str
    token_coverage: float
    """Share of B's running tokens whose word occurs in A."""
    type_coverage: float
    """Share of B's distinct words that occur in A."""
    oov_rate: float
    top_oov: list[tuple[str, int]]


@dataclass
class LabelledTweets:
    name: str
    frame: pd.DataFrame
    """Columns ``text`` and ``label`` (0 negative, 1 positive), one row per source row."""
    neutral: int = 0
    malformed: int = 0


def read_labelled(path: Path) -> LabelledTweets:
    """Every labelled row of a file or folder, duplicates kept; DataError when none is usable."""
    frames, neutral, malformed = [], 0, 0
    for source in expand_sources([path]):
        if source.suffix.lower() == ".parquet" and _is_feedback_export(source):
            frames.append(_read_feedback(source))
            continue
        frame, report = read_source(source)
        frames.append(frame)
        neutral, malformed = neutral + report.neutral, malformed + report.malformed
        if report.kept == 0:
            raise DataError(f"{source}: no usable labelled rows ({_first_error(report)})")
    combined = pd.concat(frames, ignore_index=True)
    return LabelledTweets(str(path), combined, neutral, malformed)


def _first_error(report: SourceReport) -> str:
    return report.errors[0] if report.errors else f"{report.rows} rows, none labelled"


def _is_feedback_export(path: Path) -> bool:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        names = set(pq.read_schema(path).names)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc
    return names >= FEEDBACK_COLUMNS


def _read_feedback(path: Path) -> pd.DataFrame:
    from training_jobs.retrain import feedback_label

    rows = pd.read_parquet(path).to_dict("records")
    try:
        labelled = [(str(row["tweet"]), feedback_label(row)) for row in rows]
    except (ValueError, KeyError) as exc:
        raise DataError(f"{path}: not a feedback export this code reads ({exc})") from exc
    if not labelled:
        raise DataError(f"{path}: the feedback export holds no rows")
    frame = pd.DataFrame(labelled, columns=["text", "label"])
    frame["label"] = frame["label"].astype("int8")
    return frame


def summarise(tweets: LabelledTweets) -> tuple[SourceSummary, list[str]]:
    """The source's numbers, and its cleaned tweets (for the overlap and the plots)."""
    frame = tweets.frame
    texts = frame["text"].astype(str).tolist()
    labels = frame["label"].to_numpy()
    cleaned = clean_tweets(texts)
    tokens = np.array([len(c.split()) for c in cleaned])
    chars = np.array([len(t) for t in texts])
    counts = {name: int((labels == i).sum()) for i, name in enumerate(LABELS)}
    quantiles, chars_mean = {}, {}
    for i, name in enumerate(LABELS):
        mask = labels == i
        if mask.any():
            values = np.quantile(tokens[mask], LENGTH_QUANTILES)
            quantiles[name] = {
                **{
                    f"p{round(q * 100)}": float(v)
                    for q, v in zip(LENGTH_QUANTILES, values, strict=True)
                },
                "mean": float(tokens[mask].mean()),
            }
            chars_mean[name] = float(chars[mask].mean())
    by_text = pd.DataFrame({"cleaned": cleaned, "label": labels})
    duplicate_rows = int(by_text.duplicated(subset="cleaned").sum())
    labels_per_text = by_text.groupby("cleaned")["label"].nunique()
    conflicted = labels_per_text[labels_per_text > 1].index
    conflicting_rows = int(by_text["cleaned"].isin(conflicted).sum())
    n = max(len(texts), 1)
    summary = SourceSummary(
        name=tweets.name,
        rows=len(texts),
        neutral=tweets.neutral,
        malformed=tweets.malformed,
        class_counts=counts,
        tokens_quantiles=quantiles,
        chars_mean=chars_mean,
        duplicate_rows=duplicate_rows,
        conflicting_texts=len(conflicted),
        conflicting_rows=conflicting_rows,
        non_ascii_share=sum(not t.isascii() for t in texts) / n,
        mojibake_share=sum(repair_mojibake(t) != t for t in texts) / n,
        vocabulary=len({token for c in cleaned for token in c.split()}),
        telling=telling_terms(cleaned, labels),
    )
    return summary, cleaned


def telling_terms(
    cleaned: list[str], labels: np.ndarray, top: int = TOP_TERMS
) -> dict[str, dict[str, list[TellingTerm]]]:
    """Per class, the words and the bigrams with the largest log-odds z-score for it."""
    from sklearn.feature_extraction.text import CountVectorizer

    result: dict[str, dict[str, list[TellingTerm]]] = {name: {} for name in LABELS}
    if len(np.unique(labels)) < 2:
        return result
    for kind, n in (("words", 1), ("bigrams", 2)):
        vectorizer = CountVectorizer(
            token_pattern=TOKEN_PATTERN, lowercase=False, ngram_range=(n, n), min_df=1
        )
        try:
            matrix = vectorizer.fit_transform(cleaned)
        except ValueError:  # no term at all (every tweet empty or one word)
            continue
        per_class = np.vstack(
            [np.asarray(matrix[labels == i].sum(axis=0)).ravel() for i in range(len(LABELS))]
        ).astype(np.float64)
        total = per_class.sum(axis=0)
        keep = total >= MIN_TERM_COUNT
        terms = vectorizer.get_feature_names_out()[keep]
        kept = per_class[:, keep]
        z = _log_odds_z(kept[1], kept[0], total[keep])
        for index, name, sign in ((1, LABELS[1], 1.0), (0, LABELS[0], -1.0)):
            order = np.argsort(-sign * z)[:top]
            result[name][kind] = [
                TellingTerm(str(terms[j]), int(kept[index][j]), float(sign * z[j]))
                for j in order
                if sign * z[j] > 0
            ]
    return result


def _log_odds_z(y_a: np.ndarray, y_b: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """z-scores of the log-odds ratio of each term in class a against class b, with a
    Dirichlet prior proportional to the pooled counts (Monroe, Colaresi & Quinn 2008)."""
    n_a, n_b, alpha_0 = y_a.sum(), y_b.sum(), prior.sum()
    delta = np.log((y_a + prior) / (n_a + alpha_0 - y_a - prior)) - np.log(
        (y_b + prior) / (n_b + alpha_0 - y_b - prior)
    )
    variance = 1.0 / (y_a + prior) + 1.0 / (y_b + prior)
    return np.asarray(delta / np.sqrt(variance))


def vocabulary_overlap(
    a_name: str, a_cleaned: list[str], b_name: str, b_cleaned: list[str], top: int = 20
) -> Overlap:
    """How much of B's vocabulary A's covers: the tokens a model trained on A has seen."""
    vocabulary_a = {token for c in a_cleaned for token in c.split()}
    counts_b = Counter(token for c in b_cleaned for token in c.split())
    running = sum(counts_b.values())
    covered = sum(count for token, count in counts_b.items() if token in vocabulary_a)
    types_covered = sum(token in vocabulary_a for token in counts_b)
    token_coverage = covered / running if running else float("nan")
    oov = Counter({t: c for t, c in counts_b.items() if t not in vocabulary_a})
    return Overlap(
        a=a_name,
        b=b_name,
        token_coverage=token_coverage,
        type_coverage=types_covered / len(counts_b) if counts_b else float("nan"),
        oov_rate=1.0 - token_coverage if running else float("nan"),
        top_oov=oov.most_common(top),
    )


def metrics_of(summary: SourceSummary, overlap: Overlap | None) -> dict[str, Any]:
    """The flat numbers logged to MLflow and shown in the terminal and on the dashboard."""
    metrics: dict[str, Any] = {
        "rows": summary.rows,
        "positive_share": summary.class_counts[LABELS[1]] / max(summary.rows, 1),
        "duplicate_rows": summary.duplicate_rows,
        "conflicting_texts": summary.conflicting_texts,
        "conflicting_rows": summary.conflicting_rows,
        "non_ascii_share": summary.non_ascii_share,
        "mojibake_share": summary.mojibake_share,
        "vocabulary": summary.vocabulary,
    }
    if overlap is not None:
        metrics |= {
            "overlap_token_coverage": overlap.token_coverage,
            "overlap_type_coverage": overlap.type_coverage,
            "overlap_oov_rate": overlap.oov_rate,
        }
    return metrics
