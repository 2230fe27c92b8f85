"""The generic sentiment direction for the domain head, fitted on a larger generic sample than
the head's own and cached.

The head's "ngram+embedding+direction" feature set reads Sentiment140's sentiment axis in
embedding space (`airparadis.domain_head`). Fitted on the head's 1,000 generic tweets that axis
is noisy; on several thousand it is steadier, but embedding them costs tens of seconds on a
CPU. The direction depends only on the encoder and the sampled tweets, so it is computed once
per (encoder, sample) and kept next to the exported encoder; later `calibrate` and `retrain`
runs read it back in milliseconds.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import pandas as pd

from airparadis.domain_head import Direction, fit_direction
from airparadis.embedding import ENCODER_FILE, SentenceEncoder, bulk_runtime, file_digest
from airparadis.text import clean_tweets
from training_jobs.settings import TrainingSettings

logger = logging.getLogger(__name__)
DIRECTIONS_DIR = "directions"
GENERIC_ROWS_PER_FEEDBACK = 2
"""Generic rows the head fits per feedback beyond `head_generic_rows`."""


def sample_key(encoder_dir: Path, texts: list[str], labels: list[int]) -> str:
    """What the direction depends on: the encoder's weights and the labelled sample."""
    digest = hashlib.sha256(file_digest(encoder_dir / ENCODER_FILE).encode())
    for text, label in zip(texts, labels, strict=True):
        digest.update(f"{label}\t{text}\n".encode())
    return digest.hexdigest()[:32]


def shuffled(train: pd.DataFrame, settings: TrainingSettings) -> pd.DataFrame:
    """The generic training split in one seeded order. The direction's sample is its head and
    the head's generic rows follow, so the two never overlap (on its own fitting rows the
    direction would look more telling than it is, and the head would lean on it), and a larger
    generic sample extends a smaller one (the cached embeddings of its start are reused)."""
    return train.sample(frac=1.0, random_state=settings.seed)


def direction_size(train: pd.DataFrame, settings: TrainingSettings) -> int:
    """Rows of the direction's sample: `head_direction_rows`, at most half the split."""
    return min(settings.head_direction_rows, len(train) // 2)


def direction_sample(train: pd.DataFrame, settings: TrainingSettings) -> pd.DataFrame:
    return shuffled(train, settings).iloc[: direction_size(train, settings)]


def head_generic_rows(
    train: pd.DataFrame, settings: TrainingSettings, feedback_rows: int
) -> pd.DataFrame:
    """The generic rows fitted beside `feedback_rows` feedbacks: `head_generic_rows`, or
    `GENERIC_ROWS_PER_FEEDBACK` per feedback when that is more. The generic rows carry half the
    feedback's total weight whatever their number; with more feedback the head moves more
    n-gram and embedding weights, and only more generic tweets keep those moves from
    reordering ordinary ones (more weight instead costs the domain its own evidence)."""
    if settings.head_generic_rows == 0:
        return train.iloc[0:0]
    start = direction_size(train, settings)
    size = max(settings.head_generic_rows, GENERIC_ROWS_PER_FEEDBACK * feedback_rows)
    return shuffled(train, settings).iloc[start : start + size]


def direction_path(rows: pd.DataFrame, encoder_dir: Path) -> Path:
    """Where the direction of the sample `rows` is cached."""
    key = sample_key(encoder_dir, rows["text"].tolist(), [int(v) for v in rows["label"]])
    return encoder_dir / DIRECTIONS_DIR / f"{key}.npz"


def cached_direction(
    train: pd.DataFrame, settings: TrainingSettings, encoder_dir: Path
) -> Direction | None:
    """The direction fitted on `direction_sample` of the generic training split,
    from the cache beside the encoder when this sample was embedded before (None when the
    setting is 0 or the sample has one class: the head then fits it on its own generic rows)."""
    rows = direction_sample(train, settings)
    if rows.empty:
        return None
    texts = rows["text"].tolist()
    path = direction_path(rows, encoder_dir)
    if path.is_file():
        return Direction.load(path)
    logger.info("embedding %d generic tweets for the head's sentiment direction", len(texts))
    encoder = SentenceEncoder.load(encoder_dir, bulk_runtime(cached=False))
    direction = fit_direction(encoder.embed_cleaned(clean_tweets(texts)), rows["label"].to_numpy())
    if direction is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.stem}-{os.getpid()}.npz")
        direction.save(partial)
        partial.replace(path)  # atomic: a concurrent run reads a whole file or none
    return direction
