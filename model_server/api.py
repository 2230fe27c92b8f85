"""Routes the predictor adds beside kserve's protocol: feedback, alerts, model info, readiness."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.exc import SQLAlchemyError

from airparadis.schemas import (
    AlertsAnswer,
    DriftSummary,
    FeedbackReceipt,
    MispredictionRule,
    ModelInfo,
)
from airparadis.text import is_blank
from model_server.alerting import MispredictionRateRule, NegativeFeedbackRule
from model_server.errors import escape
from model_server.feedback import (
    FeedbackConflict,
    FeedbackStore,
    FeedbackUnavailable,
    content_hash,
    window_start,
)
from model_server.metrics import FEEDBACK
from model_server.model import SentimentModel, is_valid_unicode
from model_server.security import Authenticator, feedback_guard
from model_server.settings import ServerSettings
from model_server.telemetry import Telemetry

logger = logging.getLogger(__name__)
Label = Literal["negative", "positive"]


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tweet: str = Field(
        min_length=1, description="The tweet that was classified; not empty or only spaces."
    )
    predicted_label: Label
    probability: float | None = Field(
        default=None, ge=0.0, le=1.0, allow_inf_nan=False, description="P(positive)."
    )
    verdict: Literal["correct", "wrong"] | None = Field(
        default=None, description="Whether the prediction was right; implied by correct_label."
    )
    correct_label: Label | None = Field(default=None, description="The label the user chose.")
    feedback_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Client-chosen id, scoped to the client: retrying with it never stores "
        "twice; reusing it with other content is a 409.",
    )
    model_version: str | None = Field(default=None, max_length=64)
    request_id: str | None = Field(default=None, max_length=200)

    @field_validator("tweet", "model_version", "request_id")
    @classmethod
    def _valid_unicode(cls, value: str | None) -> str | None:
        if value is not None and not is_valid_unicode(value):
            raise ValueError("not valid Unicode (a lone surrogate)")
        return value

    @field_validator("tweet")
    @classmethod
    def _has_text(cls, value: str) -> str:
        if is_blank(value):
            raise ValueError("the tweet has no text: it is empty or only spaces")
        return value

    @model_validator(mode="after")
    def _verdict_given(self) -> FeedbackIn:
        if self.verdict is None and self.correct_label is None:
            raise ValueError("give a verdict ('correct' or 'wrong') or the correct_label")
        implied = None
        if self.correct_label is not None:
            implied = "correct" if self.correct_label == self.predicted_label else "wrong"
        if self.verdict is not None and implied is not None and self.verdict != implied:
            raise ValueError("verdict contradicts correct_label")
        if self.verdict is None:
            self.verdict = implied  # type: ignore[assignment]
        return self


def build_health_router(model: SentimentModel) -> APIRouter:
    """Routes that must win over kserve's own: the app includes this router before them."""
    router = APIRouter()

    # An operation id of its own: kserve's shadowed route of the same path would share it.
    @router.get("/v2/health/ready", tags=["health"], operation_id="model_aware_ready")
    def ready(response: Response) -> dict[str, bool]:
        """Server readiness that, unlike kserve's, waits for the model (Kubernetes probes it)."""
        if not model.ready:
            response.status_code = 503
        return {"ready": model.ready}

    return router


def build_router(
    model: SentimentModel,
    store: FeedbackStore,
    rule: NegativeFeedbackRule,
    misprediction_rule: MispredictionRateRule,
    settings: ServerSettings,
    telemetry: Telemetry,
    authenticator: Authenticator | None = None,
    started_at: datetime | None = None,
) -> APIRouter:
    """Our other routes. The app includes them after kserve's, so that a predict request
    is matched without first being tried against each of these. `started_at`: when the
    server started (its counters count from then), now when not given."""
    started = started_at or datetime.now(UTC)
    max_tweet_chars = settings.max_tweet_chars
    router = APIRouter()

    @router.get("/v1/info", tags=["model"])
    def info() -> ModelInfo:
        """Which model is served: registry version, aliases, family, test metrics."""
        return ModelInfo.model_validate({**model.describe(), "started_at": started})

    @router.get("/v1/drift", tags=["model"])
    def drift() -> DriftSummary:
        """Live inputs against the served model's training reference: PSI, OOV, lengths."""
        return DriftSummary.model_validate(model.drift.summary())

    guard = feedback_guard(settings, authenticator)

    @router.post(
        "/v1/feedback",
        status_code=201,
        tags=["feedback"],
        responses={
            401: {"description": "Not authenticated"},
            409: {"description": "The feedback_id is stored with other content"},
            429: {"description": "Too many"},
        },
    )
    def post_feedback(feedback: FeedbackIn, client: str = Depends(guard)) -> FeedbackReceipt:
        """Store one verdict durably, then acknowledge it with its id."""
        if len(feedback.tweet) > max_tweet_chars:
            raise HTTPException(422, f"tweet is longer than {max_tweet_chars} characters")
        record = feedback.model_dump()
        record["content_hash"] = content_hash(_canonical(feedback))
        record["model_name"] = model.ref.name if model.ref else model.name
        record["model_version"] = feedback.model_version or (
            model.ref.version if model.ref else None
        )
        try:
            stored = store.add(record, client_id=client)
        except FeedbackUnavailable as exc:
            raise HTTPException(503, str(exc), headers={"Retry-After": "5"}) from exc
        except FeedbackConflict as exc:
            raise HTTPException(409, {"error": str(exc), "id": exc.stored_id}) from exc
        alert = None
        if not stored.duplicate:
            FEEDBACK.labels(verdict=record["verdict"]).inc()
            telemetry.feedback(
                record["verdict"], record["predicted_label"], record["model_version"]
            )
            alert = _evaluate_rules((rule, misprediction_rule), record["model_version"], client)
        return FeedbackReceipt(
            id=stored.id,
            feedback_id=feedback.feedback_id,
            created_at=stored.created_at.isoformat(),
            duplicate=stored.duplicate,
            alert=_jsonable(alert),
        )

    @router.get("/v1/feedback/recent", tags=["feedback"])
    def recent_feedback(
        since_seconds: Annotated[int, Query(ge=1, le=30 * 86400)] = 3600,
    ) -> dict[str, Any]:
        """Time and verdict of the feedback of the last `since_seconds`, for the ops view."""
        try:
            rows = store.recent(window_start(since_seconds))
        except SQLAlchemyError as exc:
            raise HTTPException(
                503, f"feedback store unavailable: {exc.__class__.__name__}"
            ) from exc
        return {"since_seconds": since_seconds, "feedback": [_jsonable(r) for r in rows]}

    @router.get("/v1/feedback/labels", tags=["feedback"])
    def feedback_labels() -> dict[str, Any]:
        """Labels collected so far, by label: what calibration and retraining can learn from."""
        try:
            counts = store.label_counts()
        except SQLAlchemyError as exc:
            raise HTTPException(
                503, f"feedback store unavailable: {exc.__class__.__name__}"
            ) from exc
        labels = {label: counts.get(label, 0) for label in ("negative", "positive")}
        return {"total": sum(labels.values()), "labels": labels}

    @router.get("/v1/alerts", tags=["feedback"])
    def alerts(limit: Annotated[int, Query(ge=1, le=500)] = 50) -> AlertsAnswer:
        """Alerts fired by the feedback rules, newest first, with the rules themselves."""
        try:
            rows = store.alerts(limit)
        except SQLAlchemyError as exc:
            raise HTTPException(
                503, f"feedback store unavailable: {exc.__class__.__name__}"
            ) from exc
        return AlertsAnswer.model_validate(
            {
                "threshold": rule.threshold,
                "window_seconds": rule.window_seconds,
                "min_distinct_clients": rule.min_distinct_clients,
                "misprediction": MispredictionRule(
                    threshold=misprediction_rule.threshold,
                    window_seconds=misprediction_rule.window_seconds,
                    min_feedback=misprediction_rule.min_feedback,
                    min_distinct_clients=misprediction_rule.min_distinct_clients,
                ),
                "alerts": rows,
            }
        )

    return router


def _canonical(feedback: FeedbackIn) -> dict[str, Any]:
    """The feedback's content, one form per meaning: with two labels, a verdict implies the
    correct label, so "wrong" and "wrong, it was negative" are the same feedback."""
    content = feedback.model_dump(exclude={"feedback_id"})
    if content["correct_label"] is None:
        other = "negative" if feedback.predicted_label == "positive" else "positive"
        content["correct_label"] = (
            feedback.predicted_label if feedback.verdict == "correct" else other
        )
    return content


def _evaluate_rules(
    rules: tuple[NegativeFeedbackRule, MispredictionRateRule], version: str | None, client: str
) -> dict[str, Any] | None:
    """The alert this feedback fired, if any. The feedback is already committed: a failing
    rule is logged and the feedback still acknowledged, never answered with a 500."""
    fired = None
    for rule in rules:
        try:
            fired = rule.evaluate(version, client) or fired
        except (SQLAlchemyError, FeedbackUnavailable) as exc:
            logger.error("alert rule %s not evaluated: %s", type(rule).__name__, escape(exc))
    return fired


def _jsonable(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}
