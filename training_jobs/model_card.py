"""Writing the model card of a version at registration (the card itself: `airparadis.model_card`).

The card is built from what the run already logged (data fingerprint and sizes, the served
metrics on the test split and on the held-out feedback slice), the gate's decision (which
scored the in-domain slice), the bundle's calibration, and the behavioural checks run here on
the served artifact. It is logged as `model_card.md` and `model_card.json` beside the model.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import mlflow
from mlflow import MlflowClient

from airparadis.behaviour import run_checks
from airparadis.bundle_format import SentimentClassifier
from airparadis.model_card import (
    CARD_JSON,
    CARD_MARKDOWN,
    GENERIC,
    IN_DOMAIN,
    METRIC_TITLES,
    BehaviourCheck,
    CalibrationSummary,
    ModelCard,
    TrainingData,
)
from training_jobs.gate import GateDecision


def _prefixed(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    return {k: metrics[prefix + k] for k in METRIC_TITLES if prefix + k in metrics}


def _int(metrics: dict[str, float], key: str) -> int | None:
    return int(metrics[key]) if key in metrics else None


def card_metrics(metrics: dict[str, float], decision: GateDecision) -> dict[str, dict[str, float]]:
    """Served metrics on the generic test split and, when there is some, on the held-out
    feedback slice (as logged by the run, else as the gate scored it)."""
    out = {GENERIC: _prefixed(metrics, "test_")}
    in_domain = _prefixed(metrics, "feedback_gate_")
    if not in_domain and decision.domain_metric and decision.domain_candidate is not None:
        in_domain = {"n": float(decision.domain_rows),
                     decision.domain_metric: decision.domain_candidate}  # fmt: skip
    if in_domain:
        out[IN_DOMAIN] = in_domain
    return {name: values for name, values in out.items() if values}


def calibration_summary(
    served: SentimentClassifier, metrics: dict[str, float]
) -> CalibrationSummary:
    """The bundle's calibrator and threshold; Brier and ECE held out on feedback when it
    was calibrated there, else on the test split."""
    raw: dict[str, Any] | None = served.info.calibration
    if not raw:
        return CalibrationSummary(
            kind="none", threshold=served.info.threshold,
            brier=metrics.get("test_brier"), ece=metrics.get("test_ece"),
        )  # fmt: skip
    heldout = (raw.get("heldout") or {}).get("calibrated") or {}
    on_feedback = heldout.get("brier") is not None
    return CalibrationSummary(
        kind=str(raw.get("method")), threshold=served.info.threshold,
        raw_threshold=raw.get("raw_threshold"), labels=raw.get("labels"),
        brier=heldout.get("brier") if on_feedback else metrics.get("test_brier"),
        ece=heldout.get("ece") if on_feedback else metrics.get("test_ece"),
        measured_on="feedback, out of fold" if on_feedback else GENERIC,
    )  # fmt: skip


def build_card(
    name: str,
    version: str,
    served: SentimentClassifier,
    decision: GateDecision,
    tags: dict[str, str],
    run_id: str,
) -> ModelCard:
    run = MlflowClient().get_run(run_id)
    metrics, params = dict(run.data.metrics), dict(run.data.params)
    return ModelCard(
        model_name=name, version=version, alias=decision.alias, family=served.info.family,
        format=served.info.format, stage=tags.get("stage"), run_id=run_id,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        data=TrainingData(
            sources=params.get("data.sources"),
            fingerprint=tags.get("data.fingerprint") or params.get("data.fingerprint"),
            rows_train=_int(metrics, "data.rows_train"),
            rows_validation=_int(metrics, "data.rows_validation"),
            rows_test=_int(metrics, "data.rows_test"),
        ),
        metrics=card_metrics(metrics, decision),
        calibration=calibration_summary(served, metrics),
        behaviour=[
            BehaviourCheck(name=c.name, kind=c.kind, cases=c.cases, failures=c.failures)
            for c in run_checks(served)
        ],
        gate=decision.summary(),
    )  # fmt: skip


def log_card(card: ModelCard) -> str:
    """Log the card to the active run; returns the Markdown card's artifact URI."""
    mlflow.log_text(card.to_markdown(), CARD_MARKDOWN)
    mlflow.log_dict(card.model_dump(mode="json"), CARD_JSON)
    return f"runs:/{card.run_id}/{CARD_MARKDOWN}"
