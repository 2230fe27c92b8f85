"""Model families: each trains on the same split and writes the same bundle interface.

Every family offers one interface: ``fit`` (train in memory, reporting a validation score per
epoch or step so Optuna can prune), ``save`` (export the *served* artifact: a scikit-learn
pipeline, a TFLite flatbuffer, an ONNX graph), and ``search_space`` (its Optuna space). Its
parameters, defaults and bounds are one pydantic model in `training_jobs.families.params`.
Serving loads the saved bundle with `airparadis.bundle.load_bundle`, whatever the family.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from airparadis.bundle import SentimentClassifier

if TYPE_CHECKING:
    import optuna

Reporter = Callable[[int, float], None]
"""Called as ``report(step, validation_accuracy)`` after each epoch or step; it may raise
``optuna.TrialPruned`` to stop an unpromising trial early."""

FAMILY_NAMES = ("tfidf_lr", "rnn", "transformer")


class Family(Protocol):
    name: str
    format: str

    def search_space(self, trial: optuna.trial.BaseTrial) -> dict[str, Any]:
        """Parameters suggested for one Optuna trial (a subset of the family's parameters)."""
        ...

    def fit(
        self,
        train: pd.DataFrame,
        validation: pd.DataFrame,
        params: dict[str, Any],
        seed: int,
        report: Reporter | None = None,
    ) -> SentimentClassifier: ...

    def save(self, model: SentimentClassifier, directory: Path) -> None:
        """Export the served artifact and bundle.json into `directory`."""
        ...


def get_family(name: str) -> Family:
    """The family called `name`; each module is imported only when asked for (TF, torch)."""
    if name == "tfidf_lr":
        from training_jobs.families.tfidf_lr import TfidfLogisticRegression

        return TfidfLogisticRegression()
    if name == "rnn":
        from training_jobs.families.rnn import RecurrentNetwork

        return RecurrentNetwork()
    if name == "transformer":
        from training_jobs.families.transformer import MiniLMClassifier

        return MiniLMClassifier()
    raise ValueError(f"unknown family {name!r}; choose one of {sorted(FAMILY_NAMES)}")


def report_validation(report: Reporter | None, step: int, score: float) -> None:
    """Forward an intermediate score when someone listens (Optuna's trial, in tuning)."""
    if report is not None:
        report(step, score)
