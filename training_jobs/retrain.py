"""`airparadis retrain`: turn stored feedback into examples, train, and let the gate decide.

Rule for feedback: a confirmed prediction keeps its label; a corrected one takes the label the
user chose (for a bare "wrong", the other class). Several verdicts on the same tweet are
resolved by majority; a tie is a contradiction and the tweet is left out.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pandas as pd

from airparadis import LABELS
from airparadis.settings import PlatformSettings
from model_server.export import export_feedback
from model_server.settings import ServerSettings
from training_jobs.settings import TrainingSettings
from training_jobs.train import TrainResult, train

logger = logging.getLogger(__name__)


def feedback_examples(rows: list[dict[str, object]]) -> tuple[pd.DataFrame, int]:
    """(text, label) examples from feedback rows, and how many tweets were contradictory."""
    votes: dict[str, Counter[int]] = {}
    for row in rows:
        predicted = LABELS.index(str(row["predicted_label"]))
        if row.get("correct_label"):
            label = LABELS.index(str(row["correct_label"]))
        elif row["verdict"] == "correct":
            label = predicted
        else:
            label = 1 - predicted
        votes.setdefault(str(row["tweet"]), Counter())[label] += 1
    examples, contradictions = [], 0
    for text, counter in votes.items():
        (label, top), *rest = counter.most_common()
        if rest and rest[0][1] == top:
            contradictions += 1
            continue
        examples.append((text, label))
    frame = pd.DataFrame(examples, columns=["text", "label"])
    frame["label"] = frame["label"].astype("int8")
    return frame, contradictions


def retrain(
    family: str, settings: TrainingSettings, platform: PlatformSettings, workdir: Path
) -> TrainResult:
    path, count = export_feedback(ServerSettings(), platform, workdir)
    rows = pd.read_parquet(path).to_dict("records")
    examples, contradictions = feedback_examples(rows)
    if settings.feedback_cap is not None:
        examples = examples.tail(settings.feedback_cap)
    logger.info(
        "%d feedback rows -> %d examples (%d contradictory tweets left out), weight %d",
        count, len(examples), contradictions, settings.feedback_weight,
    )  # fmt: skip
    extra = pd.concat([examples] * settings.feedback_weight, ignore_index=True)
    return train(
        family,
        settings,
        platform,
        extra_train=extra,
        extra_metrics={
            "feedback.rows": count,
            "feedback.examples": len(examples),
            "feedback.contradictions": contradictions,
        },
    )
