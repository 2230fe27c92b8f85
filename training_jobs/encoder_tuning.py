"""The domain head's encoder fine-tuned on feedback: MiniLM learns the airline's customers.

The frozen encoder places tweets by Sentiment140-era sentiment, and a linear head on its
embeddings can only reweight what it already separates. With enough labels, fine-tuning the
whole encoder on the feedback (plus the head's generic rows, two per feedback, so ordinary
sentiment stays in place) moves the embedding itself; the head is then fitted on the tuned
encoder's embeddings as usual and the bundle carries the tuned graph (`airparadis.domain_head`
copies it and records its digest). It is the transformer family's fine-tuning loop
(`train_network`); on a CPU it takes minutes, so it is opt-in
(`head_encoder_tuning_min_labels`).

Only the earlier feedback trains the encoder: the latest share (`HOLDOUT_SHARE`) picks the
kept state, and the gate's slice (`split_feedback`) is never seen by either. The head's stored
held-out figures are then read on that latest share (`fit_calibration`'s `encoder_seen`): on
the rows the encoder was fitted to, its embeddings separate the classes better than they will
on new tweets.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd

from airparadis.embedding import export_encoder
from training_jobs.families.params import TransformerParams
from training_jobs.families.transformer_training import train_network
from training_jobs.settings import TrainingSettings

logger = logging.getLogger(__name__)

HOLDOUT_SHARE = 0.1
"""Latest share of the fitting feedback that picks the state kept, not trained on."""
LEARNING_RATE = 3e-5
BATCH_SIZE = 32


def holdout_size(feedbacks: int) -> int:
    """How many of the latest fitting feedbacks the encoder is not trained on."""
    return max(1, int(feedbacks * HOLDOUT_SHARE))


def tuning_frames(
    fitting: pd.DataFrame, generic: pd.DataFrame, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, holdout): the earlier feedback plus the head's generic rows, shuffled; the
    latest feedback apart."""
    size = holdout_size(len(fitting))
    earlier, holdout = fitting.iloc[:-size], fitting.iloc[-size:]
    columns = ["text", "label"]
    train = pd.concat([earlier[columns], generic[columns]], ignore_index=True)
    return train.sample(frac=1.0, random_state=seed).reset_index(drop=True), holdout[columns]


def tune_encoder(
    fitting: pd.DataFrame, generic: pd.DataFrame, settings: TrainingSettings, target: Path
) -> int:
    """MiniLM fine-tuned on `fitting` (time-ordered labelled feedback) and `generic` tweets,
    exported to the new folder `target` as the head's encoder files; returns how many of the
    first `fitting` rows it was trained on."""
    train, holdout = tuning_frames(fitting, generic, settings.seed)
    params = TransformerParams(
        mode="finetune", epochs=settings.head_encoder_tuning_epochs,
        learning_rate=LEARNING_RATE, batch_size=BATCH_SIZE, evals_per_epoch=1, device="cpu",
    ).model_dump(mode="json")  # fmt: skip
    started = time.perf_counter()
    module, tokenizer, _, found = train_network(train, holdout, params, settings.seed)
    logger.info(
        "head encoder fine-tuned on %d tweets (%d feedbacks) in %.0fs: epoch %.2f kept, "
        "held-out feedback accuracy %.4f",
        len(train), len(fitting) - len(holdout), time.perf_counter() - started,
        found.get("best_epoch", 0.0), found.get("best_validation_accuracy", float("nan")),
    )  # fmt: skip
    checkpoint = target.parent / f".{target.name}-checkpoint"
    shutil.rmtree(checkpoint, ignore_errors=True)
    try:
        encoder: Any = module.encoder
        encoder.save_pretrained(str(checkpoint))
        shutil.copyfile(tokenizer, checkpoint / tokenizer.name)
        export_encoder(checkpoint, target)
    finally:
        shutil.rmtree(checkpoint, ignore_errors=True)
    return len(fitting) - len(holdout)
