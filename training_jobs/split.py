"""Deterministic, stratified train/validation/test split with a fingerprint for lineage."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pandas as pd
from sklearn.model_selection import train_test_split


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    fingerprint: str


def data_fingerprint(frame: pd.DataFrame, **settings: object) -> str:
    """Hash of the rows in order plus the split settings: equal fingerprints mean equal splits."""
    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(frame[["text", "label"]], index=False).values)
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def stratified_sample(frame: pd.DataFrame, max_rows: int | None, seed: int) -> pd.DataFrame:
    if max_rows is None or len(frame) <= max_rows:
        return frame
    sample, _ = train_test_split(
        frame, train_size=max_rows, stratify=frame["label"], random_state=seed
    )
    return sample.sort_index().reset_index(drop=True)


def split_data(frame: pd.DataFrame, test_size: float, val_size: float, seed: int) -> Split:
    rest, test = train_test_split(
        frame, test_size=test_size, stratify=frame["label"], random_state=seed
    )
    train, validation = train_test_split(
        rest, test_size=val_size / (1 - test_size), stratify=rest["label"], random_state=seed
    )
    fingerprint = data_fingerprint(frame, test_size=test_size, val_size=val_size, seed=seed)
    return Split(
        train=train.reset_index(drop=True),
        validation=validation.reset_index(drop=True),
        test=test.reset_index(drop=True),
        fingerprint=fingerprint,
    )
