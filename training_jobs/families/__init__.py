"""Model families: each trains on the same split and writes the same bundle interface."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Protocol

import pandas as pd

from airparadis.bundle import SentimentClassifier


class Family(Protocol):
    name: str
    format: str
    default_params: ClassVar[dict[str, Any]]

    def fit(
        self, train: pd.DataFrame, validation: pd.DataFrame, params: dict[str, Any], seed: int
    ) -> SentimentClassifier: ...

    def save(self, model: SentimentClassifier, directory: Path) -> None:
        """Write the bundle files (bundle.json included) into `directory`."""
        ...


def get_family(name: str) -> Family:
    from training_jobs.families.tfidf_lr import TfidfLogisticRegression

    families: dict[str, Family] = {TfidfLogisticRegression.name: TfidfLogisticRegression()}
    try:
        return families[name]
    except KeyError:
        raise ValueError(f"unknown family {name!r}; choose one of {sorted(families)}") from None


FAMILY_NAMES = ("tfidf_lr",)
