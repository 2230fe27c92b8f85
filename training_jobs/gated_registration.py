"""Registration through the gate: register a new version, score it and the champion on the
generic gate set (and, in retraining, on held-out feedback), set the alias the decision names,
and record the decision, the model card and the version's description."""

from __future__ import annotations

import logging

import mlflow
import pandas as pd

from airparadis.bundle import SentimentClassifier
from airparadis.settings import PlatformSettings
from training_jobs.data import load_sources
from training_jobs.gate import (
    DomainCheck,
    GateDecision,
    champion_score,
    decide,
    decide_prior,
    decide_with_domain,
    generic_score,
    score,
    served_generic_auc,
    served_generic_metric,
)
from training_jobs.model_card import build_card, log_card
from training_jobs.registry import RegisteredModel, register_version, set_alias
from training_jobs.run_report import describe_version
from training_jobs.settings import TrainingSettings
from training_jobs.split import Split

logger = logging.getLogger(__name__)

GATE_GENERIC_SERVED_ROWS = 2000
"""Generic test tweets the served (calibrated) generic criterion reads: an embedding head
costs milliseconds a tweet, so the full split would dominate a retrain."""


def generic_gate_frame(settings: TrainingSettings, split: Split) -> pd.DataFrame:
    """The generic gate set: the operator's fixed gate files when given, else the test split."""
    return load_sources(settings.gate.data)[0] if settings.gate.data else split.test


def served_generic_frame(test: pd.DataFrame, settings: TrainingSettings) -> pd.DataFrame:
    """The fixed sample of the generic gate set the served generic criterion reads."""
    if len(test) <= GATE_GENERIC_SERVED_ROWS:
        return test
    return test.sample(GATE_GENERIC_SERVED_ROWS, random_state=settings.seed)


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
    `training_jobs.gate`); otherwise the candidate must beat the champion on the gate set.
    `prior_only` (a prior correction with no labels to judge it) is promoted when the raw
    generic score holds: its evidence is the label-shift policy, not labels.
    """
    texts, labels = gate_frame["text"].tolist(), gate_frame["label"].to_numpy()
    domain = None
    if domain_frame is not None and len(domain_frame):
        domain = (
            domain_frame["text"].tolist(), domain_frame["label"].to_numpy(),
            settings.gate.domain_metric,
        )  # fmt: skip
    scorer = generic_score if domain is not None or prior_only else score
    candidate = scorer(served, texts, labels, settings.gate.metric)
    served_generic = None
    if domain is not None:
        sample = served_generic_frame(gate_frame, settings)
        served_generic = (
            sample["text"].tolist(), sample["label"].to_numpy(),
            served_generic_metric(bool(settings.gate.data), settings.gate.metric),
        )  # fmt: skip
    champion, champion_version, champion_domain, champion_served = champion_score(
        platform, texts, labels, settings.gate.metric, tags.get("data.fingerprint"),
        domain=domain, generic_raw=domain is not None or prior_only,
        served_generic=served_generic,
    )  # fmt: skip
    version = register_version(model_uri, platform.model_name, tags)
    if domain is not None:
        assert served_generic is not None
        check = DomainCheck(
            settings.gate.domain_metric, settings.gate.domain_margin,
            settings.gate.generic_max_drop, len(domain[1]), score(served, *domain),
            champion_domain, served_generic_auc(served, *served_generic), champion_served,
            settings.gate.generic_served_max_drop, served_generic[2],
        )  # fmt: skip
        decision = decide_with_domain(
            candidate, champion, check, settings.gate.metric, platform, champion_version
        )
        mlflow.log_metric("gate.domain_candidate_score", check.candidate)
        if check.champion is not None:
            mlflow.log_metric("gate.domain_champion_score", check.champion)
        if check.served_candidate is not None:
            mlflow.log_metric("gate.generic_served_roc_auc_candidate", check.served_candidate)
        if check.served_champion is not None:
            mlflow.log_metric("gate.generic_served_roc_auc_champion", check.served_champion)
        mlflow.log_params({"gate.domain_metric": check.metric, "gate.domain_rows": check.rows,
                           "gate.generic_max_drop": check.generic_max_drop})  # fmt: skip
    elif prior_only:
        decision = decide_prior(
            candidate, champion, settings.gate.generic_max_drop, settings.gate.metric, platform,
            champion_version,
        )  # fmt: skip
    else:
        decision = decide(
            candidate, champion, settings.gate.margin, settings.gate.metric, platform,
            champion_version,
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
