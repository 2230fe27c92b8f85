"""The registry gate: a new model version becomes ``champion`` only if it earns it.

Both the candidate and the current champion are scored on the same fixed evaluation set (the
test split of the configured data, identical every run for a given seed, or the files of
``AIRPARADIS_TRAIN_GATE_DATA``). The candidate is promoted when its score beats the
champion's by more than the margin; otherwise it gets the ``challenger`` alias. The first
model ever registered, or one facing a champion that can no longer be loaded, is promoted.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from airparadis.bundle import BundleError, SentimentClassifier, load_bundle
from airparadis.settings import PlatformSettings
from training_jobs.metrics import binary_metrics

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GateDecision:
    alias: str
    promoted: bool
    metric: str
    margin: float
    candidate_score: float
    champion_score: float | None
    champion_version: str | None
    reason: str

    def summary(self) -> str:
        champion = (
            f"champion v{self.champion_version} {self.champion_score:.4f}"
            if self.champion_score is not None
            else "no scorable champion"
        )
        return (
            f"gate ({self.metric}, margin {self.margin}): candidate {self.candidate_score:.4f} vs "
            f"{champion} -> @{self.alias} ({self.reason})"
        )

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def score(model: SentimentClassifier, texts: list[str], labels: np.ndarray, metric: str) -> float:
    return binary_metrics(labels, model.predict_proba(texts), model.info.threshold)[metric]


def decide(
    candidate: float,
    champion: float | None,
    margin: float,
    metric: str,
    platform: PlatformSettings,
    champion_version: str | None = None,
) -> GateDecision:
    """Promote when there is no champion to beat, or when candidate > champion + margin."""
    if champion is None:
        return GateDecision(
            platform.champion_alias, True, metric, margin, candidate, None, champion_version,
            "no current champion" if champion_version is None else "champion cannot be scored",
        )  # fmt: skip
    promoted = candidate > champion + margin
    reason = (
        f"beats the champion by {candidate - champion:+.4f} > {margin}"
        if promoted
        else f"does not beat the champion by more than {margin} ({candidate - champion:+.4f})"
    )
    alias = platform.champion_alias if promoted else platform.challenger_alias
    return GateDecision(
        alias, promoted, metric, margin, candidate, champion, champion_version, reason
    )


def champion_score(
    platform: PlatformSettings,
    texts: list[str],
    labels: np.ndarray,
    metric: str,
    fingerprint: str | None = None,
) -> tuple[float | None, str | None]:
    """(score, version) of the current champion; (None, None) when there is none.

    A champion trained on other data (another fingerprint) may have trained on rows of this
    evaluation set; that is logged as a warning, since its score is then optimistic.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from airparadis.tracking import download_model

    try:
        version = MlflowClient().get_model_version_by_alias(
            platform.model_name, platform.champion_alias
        )
    except MlflowException:
        return None, None
    trained_on = version.tags.get("data.fingerprint")
    if fingerprint and trained_on and trained_on != fingerprint:
        logger.warning(
            "champion v%s was trained on other data (fingerprint %s…): its gate score may be "
            "optimistic",
            version.version,
            trained_on[:12],
        )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            champion = load_bundle(download_model(platform.champion_uri, Path(tmp)))
            return score(champion, texts, labels, metric), str(version.version)
    except (BundleError, MlflowException, OSError) as exc:
        logger.warning("champion v%s cannot be scored: %s", version.version, exc)
        return None, str(version.version)
