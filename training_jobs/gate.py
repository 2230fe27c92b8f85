"""The registry gate: a new model version becomes ``champion`` only if it earns it.

Both the candidate and the current champion are scored on the same fixed evaluation set (the
test split of the configured data, identical every run for a given seed, or the files of
``AIRPARADIS_TRAIN_GATE_DATA``). The candidate is promoted when its score beats the
champion's by more than the margin; otherwise it gets the ``challenger`` alias. The first
model ever registered, or one facing a champion that can no longer be loaded, is promoted.

With labelled feedback the gate has two criteria: the candidate must improve on the latest,
time-ordered slice of feedback that nothing was fitted on (in-domain macro-F1, served
probabilities and threshold) **and** must not lose more than a margin on the generic test
split. Generic quality is read on the raw score at its raw threshold: a calibration moves the
decision to the airline's prior on purpose, which is no generic regression.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from airparadis.bundle import BundleError, SentimentClassifier, load_bundle
from airparadis.calibration import raw_proba, raw_threshold
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
    domain_metric: str | None = None
    domain_margin: float | None = None
    domain_rows: int = 0
    domain_candidate: float | None = None
    domain_champion: float | None = None
    generic_max_drop: float | None = None

    def summary(self) -> str:
        champion = (
            f"champion v{self.champion_version} {self.champion_score:.4f}"
            if self.champion_score is not None
            else "no scorable champion"
        )
        if self.domain_metric is not None and self.domain_candidate is not None:
            versus = f"{self.domain_champion:.4f}" if self.domain_champion is not None else "n/a"
            return (
                f"gate: in-domain {self.domain_metric} on the latest {self.domain_rows} "
                f"feedbacks {self.domain_candidate:.4f} vs {versus} (must gain > "
                f"{self.domain_margin}); generic {self.metric} candidate "
                f"{self.candidate_score:.4f} vs {champion} (may drop <= {self.generic_max_drop})"
                f" -> @{self.alias} ({self.reason})"
            )
        return (
            f"gate ({self.metric}, margin {self.margin}): candidate {self.candidate_score:.4f} vs "
            f"{champion} -> @{self.alias} ({self.reason})"
        )

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def score(model: SentimentClassifier, texts: list[str], labels: np.ndarray, metric: str) -> float:
    """`metric` of the served output: calibrated probabilities at the served threshold."""
    return binary_metrics(labels, model.predict_proba(texts), model.info.threshold)[metric]


def generic_score(
    model: SentimentClassifier, texts: list[str], labels: np.ndarray, metric: str
) -> float:
    """`metric` of the raw (uncalibrated) score at its raw threshold: generic quality."""
    return binary_metrics(labels, raw_proba(model, texts), raw_threshold(model.info))[metric]


@dataclass(frozen=True)
class DomainCheck:
    """The in-domain criterion: scores on the gate slice of feedback."""

    metric: str
    margin: float
    generic_max_drop: float
    rows: int
    candidate: float
    champion: float | None


def decide_with_domain(
    generic_candidate: float,
    generic_champion: float | None,
    domain: DomainCheck,
    generic_metric: str,
    platform: PlatformSettings,
    champion_version: str | None = None,
) -> GateDecision:
    """Promote when the candidate gains in-domain AND holds on the generic split."""
    if generic_champion is None or domain.champion is None:
        promoted = True
        reason = "no current champion" if champion_version is None else "champion cannot be scored"
    else:
        gain = domain.candidate - domain.champion
        drop = generic_champion - generic_candidate
        gains = gain > domain.margin
        holds = drop <= domain.generic_max_drop
        promoted = gains and holds
        reasons = [
            f"in-domain {gain:+.4f} {'>' if gains else '<='} {domain.margin}",
            f"generic {-drop:+.4f} ({'within' if holds else 'beyond'} -{domain.generic_max_drop})",
        ]
        reason = ("improves in-domain and holds generic: " if promoted else "refused: ") + (
            ", ".join(reasons)
        )
    alias = platform.champion_alias if promoted else platform.challenger_alias
    return GateDecision(
        alias, promoted, generic_metric, domain.generic_max_drop, generic_candidate,
        generic_champion, champion_version, reason, domain.metric, domain.margin, domain.rows,
        domain.candidate, domain.champion, domain.generic_max_drop,
    )  # fmt: skip


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
    domain: tuple[list[str], np.ndarray, str] | None = None,
    generic_raw: bool = False,
) -> tuple[float | None, str | None, float | None]:
    """(score, version, in-domain score) of the current champion; Nones when there is none.

    `domain` (texts, labels, metric) also scores the served champion on the feedback slice;
    `generic_raw` reads the generic score on the raw output (see `generic_score`).

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
        return None, None, None
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
            scorer = generic_score if generic_raw else score
            in_domain = score(champion, *domain) if domain is not None else None
            return scorer(champion, texts, labels, metric), str(version.version), in_domain
    except (BundleError, MlflowException, OSError) as exc:
        logger.warning("champion v%s cannot be scored: %s", version.version, exc)
        return None, str(version.version), None
