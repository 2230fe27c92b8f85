"""The registry gate: a new model version becomes ``champion`` only if it earns it.

Both the candidate and the current champion are scored on the same fixed evaluation set (the
test split of the configured data, identical every run for a given seed, or the files of
``AIRPARADIS_TRAIN_GATE_DATA``). The candidate is promoted when its score beats the
champion's by more than the margin; otherwise it gets the ``challenger`` alias. The first
model ever registered, or one facing a champion that can no longer be loaded, is promoted.

With labelled feedback the gate has two criteria: the candidate must improve on the latest,
time-ordered slice of feedback that nothing was fitted on (in-domain macro-F1, served
probabilities and threshold) **and** must not lose more than a margin on generic tweets (a
fixed sample of the generic gate set). Generic quality is read **at the generic prior**
(`airparadis.calibration.generic_prior_proba`): a domain head at its generic intercept (the
head without its domain indicator) deciding at 0.5, any other model as its raw score at the
raw threshold. The served intercept carries the airline's prior on purpose, which is no
generic regression; the head's words, embedding weights and slope, which do reorder ordinary
tweets, are all in the generic view, so a head that damages generic decisions is refused.

A third criterion reads the served (calibrated) generic output: ROC-AUC on the test split,
the gate metric at the served threshold on fixed gate files. ROC-AUC is threshold-free and the
served logit differs from the generic-prior one by a constant, so on the test split it reads
the same ranking as the generic criterion, but everywhere, not only at the decision boundary:
a head that scrambles the confident half of generic tweets (served probabilities clients read)
while keeping decisions is still refused. On fixed gate files, the operator's labels at the
served threshold are the contract. The served accuracy on the generic sample is reported, not
judged: the domain's prior lowers it by design.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from airparadis.bundle import BundleError, SentimentClassifier, load_bundle
from airparadis.calibration import generic_prior_proba
from airparadis.embedding import bulk_runtime
from airparadis.settings import PlatformSettings
from training_jobs.metrics import binary_metrics

logger = logging.getLogger(__name__)
T = TypeVar("T")


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
    generic_served_candidate: float | None = None
    generic_served_champion: float | None = None
    generic_served_max_drop: float | None = None
    generic_served_metric: str = "roc_auc"
    generic_served_score: float | None = None
    """The candidate's gate metric on the generic sample as served (reported, not judged)."""

    def summary(self) -> str:
        champion = (
            f"champion v{self.champion_version} {self.champion_score:.4f}"
            if self.champion_score is not None
            else "no scorable champion"
        )
        if self.domain_metric is not None and self.domain_candidate is not None:
            versus = f"{self.domain_champion:.4f}" if self.domain_champion is not None else "n/a"
            served = ""
            if self.generic_served_candidate is not None:
                versus_served = (
                    f"{self.generic_served_champion:.4f}"
                    if self.generic_served_champion is not None
                    else "n/a"
                )
                served = (
                    f"; served generic {self.generic_served_metric} "
                    f"{self.generic_served_candidate:.4f} vs "
                    f"{versus_served} (may drop <= {self.generic_served_max_drop})"
                )
            if self.generic_served_score is not None:
                served += (
                    f"; served generic {self.metric} {self.generic_served_score:.4f} "
                    "(the domain's prior, not judged)"
                )
            return (
                f"gate: in-domain {self.domain_metric} on the latest {self.domain_rows} "
                f"feedbacks {self.domain_candidate:.4f} vs {versus} (must gain > "
                f"{self.domain_margin}); generic {self.metric} at the generic prior candidate "
                f"{self.candidate_score:.4f} vs {champion} (may drop <= {self.generic_max_drop})"
                f"{served} -> @{self.alias} ({self.reason})"
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


@dataclass(frozen=True)
class GenericReading:
    """One model on the generic sample: the gate metric at the generic prior (judged), the
    served criterion's metric, and the gate metric as served (reported)."""

    at_generic_prior: float
    served: float
    served_gate_metric: float


def read_generic(
    model: SentimentClassifier, texts: list[str], labels: np.ndarray, metric: str,
    served_metric: str,
) -> GenericReading:  # fmt: skip
    """`model` on generic tweets, its head run once (the generic view is the served logit
    shifted by a constant, `generic_prior_proba`)."""
    served = model.predict_proba(texts)
    p_generic, threshold = generic_prior_proba(model, texts, served)
    served_metrics = binary_metrics(labels, served, model.info.threshold)
    return GenericReading(
        binary_metrics(labels, p_generic, threshold)[metric], served_metrics[served_metric],
        served_metrics[metric],
    )  # fmt: skip


def served_generic_metric(fixed_gate_set: bool, gate_metric: str) -> str:
    """ROC-AUC on the generic test split (the domain's prior moves the threshold on purpose);
    the gate metric on fixed gate files, whose labels the served model must keep answering."""
    return gate_metric if fixed_gate_set else "roc_auc"


def generic_score(
    model: SentimentClassifier, texts: list[str], labels: np.ndarray, metric: str
) -> float:
    """`metric` at the generic prior (`generic_prior_proba`): generic quality."""
    p, threshold = generic_prior_proba(model, texts)
    return binary_metrics(labels, p, threshold)[metric]


@dataclass(frozen=True)
class DomainCheck:
    """The in-domain criterion: scores on the gate slice of feedback."""

    metric: str
    margin: float
    generic_max_drop: float
    rows: int
    candidate: float
    champion: float | None
    served_candidate: float | None = None
    """Served generic ROC-AUC of the candidate (None: the criterion is not read)."""
    served_champion: float | None = None
    served_max_drop: float = 0.01
    served_metric: str = "roc_auc"
    served_score: float | None = None
    """The candidate's gate metric on the generic sample as served (reported, not judged)."""


def decide_with_domain(
    generic_candidate: float,
    generic_champion: float | None,
    domain: DomainCheck,
    generic_metric: str,
    platform: PlatformSettings,
    champion_version: str | None = None,
) -> GateDecision:
    """Promote when the candidate gains in-domain AND holds generic quality: the `generic_*`
    scores are read at the generic prior (`generic_score`), the served ones as served."""
    if generic_champion is None or domain.champion is None:
        promoted = True
        reason = "no current champion" if champion_version is None else "champion cannot be scored"
    else:
        gain = domain.candidate - domain.champion
        drop = generic_champion - generic_candidate
        gains = gain > domain.margin
        holds = drop <= domain.generic_max_drop
        reasons = [
            f"in-domain {gain:+.4f} {'>' if gains else '<='} {domain.margin}",
            f"generic at the generic prior {-drop:+.4f} "
            f"({'within' if holds else 'beyond'} -{domain.generic_max_drop})",
        ]
        if domain.served_candidate is not None and domain.served_champion is not None:
            served_drop = domain.served_champion - domain.served_candidate
            served_holds = served_drop <= domain.served_max_drop
            holds = holds and served_holds
            reasons.append(
                f"served generic {domain.served_metric} {-served_drop:+.4f} "
                f"({'within' if served_holds else 'beyond'} -{domain.served_max_drop})"
            )
        promoted = gains and holds
        reason = ("improves in-domain and holds generic: " if promoted else "refused: ") + (
            ", ".join(reasons)
        )
    alias = platform.champion_alias if promoted else platform.challenger_alias
    return GateDecision(
        alias, promoted, generic_metric, domain.generic_max_drop, generic_candidate,
        generic_champion, champion_version, reason, domain.metric, domain.margin, domain.rows,
        domain.candidate, domain.champion, domain.generic_max_drop, domain.served_candidate,
        domain.served_champion,
        domain.served_max_drop if domain.served_candidate is not None else None,
        domain.served_metric, domain.served_score,
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


def decide_prior(
    candidate: float,
    champion: float | None,
    max_drop: float,
    metric: str,
    platform: PlatformSettings,
    champion_version: str | None = None,
) -> GateDecision:
    """A prior correction with no labels to judge it: promoted when the raw generic score
    holds (the label-shift policy already required a confident, distant estimate)."""
    if champion is None:
        return decide(candidate, None, max_drop, metric, platform, champion_version)
    drop = champion - candidate
    promoted = drop <= max_drop
    reason = (
        f"prior correction, no labels to judge it: generic {-drop:+.4f} "
        f"({'within' if promoted else 'beyond'} -{max_drop})"
    )
    alias = platform.champion_alias if promoted else platform.challenger_alias
    return GateDecision(
        alias, promoted, metric, max_drop, candidate, champion, champion_version, reason
    )


def champion_score(
    platform: PlatformSettings,
    evaluate: Callable[[SentimentClassifier], T],
    fingerprint: str | None = None,
) -> tuple[str | None, T | None]:
    """(version, `evaluate` of it) of the current champion: (None, None) without one, (its
    version, None) when it cannot be scored. The candidate goes through the same `evaluate`.

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
            champion = load_bundle(download_model(platform.champion_uri, Path(tmp)), bulk_runtime())
            return str(version.version), evaluate(champion)
    except (BundleError, MlflowException, OSError) as exc:
        logger.warning("champion v%s cannot be scored: %s", version.version, exc)
        return str(version.version), None
