"""Tiny labelled tweets the training tests write themselves: a Sentiment140-format CSV whose
two classes a TF-IDF model separates in seconds, and airline feedback leaning negative."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pandas as pd

POSITIVE = ["love", "great", "awesome", "happy", "thanks", "best", "wonderful", "amazing"]
NEGATIVE = ["hate", "awful", "worst", "sad", "terrible", "sucks", "cancelled", "lost"]
NOUNS = ["flight", "crew", "day", "seat", "trip", "bag", "song", "friends", "morning", "food"]


def tweets(words: list[str], n: int, seed: int) -> list[str]:
    """`n` distinct short tweets, each carrying two words of one sentiment."""
    rng = random.Random(seed)
    out: set[str] = set()
    while len(out) < n:
        a, b = rng.sample(words, 2)
        out.add(f"{a} {rng.choice(NOUNS)} so {b} {rng.choice(NOUNS)} {rng.randint(0, 999)}")
    return sorted(out)


def write_sentiment140(path: Path, per_class: int = 300) -> Path:
    """A Sentiment140-format CSV (target 0/4, id, date, query, user, text)."""
    rows = [(0, t) for t in tweets(NEGATIVE, per_class, 1)]
    rows += [(4, t) for t in tweets(POSITIVE, per_class, 2)]
    with path.open("w", newline="", encoding="latin-1") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL)
        for i, (target, text) in enumerate(rows):
            writer.writerow([target, i, "Mon May 11 03:17:40 UTC 2009", "NO_QUERY", "u", text])
    return path


def feedback(n: int, seed: int) -> pd.DataFrame:
    """Airline complaints and praise, three complaints in four (the domain's prior)."""
    negative = [f"@airparadis {t}" for t in tweets(NEGATIVE, 3 * n // 4, seed)]
    positive = [f"@airparadis {t}" for t in tweets(POSITIVE, n - len(negative), seed + 1)]
    return pd.DataFrame(
        {"text": negative + positive, "label": [0] * len(negative) + [1] * len(positive)}
    )
