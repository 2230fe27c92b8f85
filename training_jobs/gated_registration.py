"""Registration through the gate: register a new version, score it and the champion on the
generic gate set (and, in retraining, on held-out feedback), set the alias the decision names,
and record the decision, the model card and the version's description."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mlflow
import pandas as pd

from airparadis.bundle import SentimentClassifier
from airparadis.settings import PlatformSettings
from training_jobs.data import load_sources
from training_jobs.gate import (
    DomainCheck,
    GateDecision,
    GenericReading,
    champion_score,
    decide,
    decide_prior,
    decide_with_domain,
    generic_score,
    read_generic,
    score,
    served_generic_metric,
)
from training_jobs.model_card import build_card, log_card
from training_jobs.registry import RegisteredModel, register_version, set_alias
from training_jobs.run_report import describe_version
from training_jobs.settings import TrainingSettings
from training_jobs.split import Split

logger = logging.getLogger(__name__)

GATE_GENERIC_ROWS = 5000
"""Generic gate-set tweets the generic criteria of the two-criteria gate read (at the generic
prior and as served): a fixed sample, since an embedding head costs milliseconds a tweet and
the full split would dominate a retrain, yet enough rows that a half-point accuracy margin is
not mostly sampling noise."""


def generic_gate_frame(settings: TrainingSettings, split: Split) -> pd.DataFrame:
    """The generic gate set: the operator's fixed gate files when given, else the test split."""
    return load_sources(settings.gate.data)[0] if settings.gate.data else split.test


def gate_generic_sample(test: pd.DataFrame, settings: TrainingSettings) -> pd.DataFrame:
    """The fixed sample of the generic gate set the generic criteria read."""
    if len(test) <= GATE_GENERIC_ROWS:
        return test
    return test.sample(GATE_GENERIC_ROWS, random_state=settings.seed)


@dataclass(frozen=True)
class DomainScores:
    """A model on the two-criteria gate's sets: served in-domain score, generic reading."""

    domain: float
    generic: GenericReading


def gate_and_register(
    model_uri: str,
    served: SentimentClassifier,
    gate_frame: pd.DataFrame,
    settings: TrainingSettings,
    platform: PlatformSettings,
    tags: dict[str, str],
    domain_frame: pd.DataFrame | None = None,
    description: str = "",
    prior_only: bool = False,
) -> tuple[RegisteredModel, GateDecision]:
    """Register a new version, score it and the champion on the gate set(s), set the alias.

    With `domain_frame` (the latest feedback) the two-criteria rule applies (see
    `training_jobs.gate`): in-domain on that slice, generic on `gate_generic_sample`, at the
    generic prior and as served. Otherwise the candidate must beat the champion on the gate set.
    `prior_only` (a prior correction with no labels to judge it) is promoted when the generic
    score (the raw one, for a prior correction) holds: its evidence is the label-shift policy,
    not labels.
    """
    fingerprint = tags.get("data.fingerprint")
    if domain_frame is not None and len(domain_frame):
        decision = _domain_decision(served, gate_frame, domain_frame, settings, platform,
                                    fingerprint)  # fmt: skip
        version = register_version(model_uri, platform.model_name, tags)
    else:
        texts, labels = gate_frame["text"].tolist(), gate_frame["label"].to_numpy()
        scorer = generic_score if prior_only else score

        def evaluate(model: SentimentClassifier) -> float:
            return scorer(model, texts, labels, settings.gate.metric)

        candidate = evaluate(served)
        champion_version, champion = champion_score(platform, evaluate, fingerprint)
        version = register_version(model_uri, platform.model_name, tags)
        decision = (
            decide_prior(candidate, champion, settings.gate.generic_max_drop,
                         settings.gate.metric, platform, champion_version)
            if prior_only else
            decide(candidate, champion, settings.gate.margin, settings.gate.metric, platform,
                   champion_version)
        )  # fmt: skip
    registered = set_alias(platform.model_name, version, decision.alias, model_uri)
    mlflow.log_params(
        {"gate.metric": decision.metric, "gate.margin": decision.margin,
         "gate.decision": decision.alias, "gate.rows": len(gate_frame)}
    )  # fmt: skip
    mlflow.log_metric("gate.candidate_score", decision.candidate_score)
    if decision.champion_score is not None:
        mlflow.log_metric("gate.champion_score", decision.champion_score)
    mlflow.log_dict(decision.as_dict(), "gate_decision.json")
    from mlflow import MlflowClient

    MlflowClient().set_model_version_tag(platform.model_name, version, "gate", decision.summary())
    run = mlflow.active_run()
    assert run is not None, "gate_and_register logs into the active run"
    card = build_card(platform.model_name, version, served, decision, tags, run.info.run_id)
    card_uri = log_card(card)
    describe_version(platform.model_name, version, description, decision.summary(), card_uri)
    logger.info("%s", decision.summary())
    return registered, decision


def _domain_decision(
    served: SentimentClassifier,
    gate_frame: pd.DataFrame,
    domain_frame: pd.DataFrame,
    settings: TrainingSettings,
    platform: PlatformSettings,
    fingerprint: str | None,
) -> GateDecision:
    """The two-criteria decision, its figures logged to the active run."""
    domain = (
        domain_frame["text"].tolist(), domain_frame["label"].to_numpy(),
        settings.gate.domain_metric,
    )  # fmt: skip
    sample = gate_generic_sample(gate_frame, settings)
    texts, labels = sample["text"].tolist(), sample["label"].to_numpy()
    served_metric = served_generic_metric(bool(settings.gate.data), settings.gate.metric)

    def evaluate(model: SentimentClassifier) -> DomainScores:
        return DomainScores(
            score(model, *domain),
            read_generic(model, texts, labels, settings.gate.metric, served_metric),
        )

    candidate = evaluate(served)
    champion_version, champion = champion_score(platform, evaluate, fingerprint)
    check = DomainCheck(
        settings.gate.domain_metric, settings.gate.domain_margin,
        settings.gate.generic_max_drop, len(domain[1]), candidate.domain,
        champion.domain if champion else None, candidate.generic.served,
        champion.generic.served if champion else None, settings.gate.generic_served_max_drop,
        served_metric, candidate.generic.served_gate_metric,
    )  # fmt: skip
    decision = decide_with_domain(
        candidate.generic.at_generic_prior,
        champion.generic.at_generic_prior if champion else None, check, settings.gate.metric,
        platform, champion_version,
    )  # fmt: skip
    figures = {
        "gate.domain_candidate_score": check.candidate,
        "gate.domain_champion_score": check.champion,
        "gate.generic_prior_candidate": decision.candidate_score,
        "gate.generic_prior_champion": decision.champion_score,
        f"gate.generic_served_{served_metric}_candidate": check.served_candidate,
        f"gate.generic_served_{served_metric}_champion": check.served_champion,
        f"gate.generic_served_{settings.gate.metric}_candidate": check.served_score,
    }
    mlflow.log_metrics({k: v for k, v in figures.items() if v is not None})
    mlflow.log_params({"gate.domain_metric": check.metric, "gate.domain_rows": check.rows,
                       "gate.generic_max_drop": check.generic_max_drop,
                       "gate.generic_rows": len(sample)})  # fmt: skip
    return decision
