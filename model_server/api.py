"""Routes the predictor adds beside kserve's protocol: feedback, alerts, model info, readiness."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.exc import SQLAlchemyError

from model_server.alerting import MispredictionRateRule, NegativeFeedbackRule
from model_server.feedback import FeedbackStore, FeedbackUnavailable, window_start
from model_server.metrics import FEEDBACK
from model_server.model import SentimentModel
from model_server.security import feedback_guard
from model_server.settings import ServerSettings
from model_server.telemetry import Telemetry

Label = Literal["negative", "positive"]


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tweet: str = Field(min_length=1, description="The tweet that was classified.")
    predicted_label: Label
    probability: float | None = Field(default=None, ge=0.0, le=1.0, description="P(positive).")
    verdict: Literal["correct", "wrong"] | None = Field(
        default=None, description="Whether the prediction was right; implied by correct_label."
    )
    correct_label: Label | None = Field(default=None, description="The label the user chose.")
    feedback_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Client-chosen id; retrying with it never stores twice.",
    )
    model_version: str | None = Field(default=None, max_length=64)
    request_id: str | None = Field(default=None, max_length=200)

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


class FeedbackOut(BaseModel):
    id: str
    created_at: str
    duplicate: bool
    alert: dict[str, Any] | None = None


def build_health_router(model: SentimentModel) -> APIRouter:
    """Routes that must win over kserve's own: the app includes this router before them."""
    router = APIRouter()

    @router.get("/v2/health/ready", tags=["health"])
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
) -> APIRouter:
    """Our other routes. The app includes them after kserve's, so that a predict request
    is matched without first being tried against each of these."""
    max_tweet_chars = settings.max_tweet_chars
    router = APIRouter()

    @router.get("/v1/info", tags=["model"])
    def info() -> dict[str, Any]:
        """Which model is served: registry version, aliases, family, test metrics."""
        return model.describe()

    @router.get("/v1/drift", tags=["model"])
    def drift() -> dict[str, Any]:
        """Live inputs against the served model's training reference: PSI, OOV, lengths."""
        return model.drift.summary()

    guard = feedback_guard(settings)

    @router.post(
        "/v1/feedback",
        status_code=201,
        tags=["feedback"],
        dependencies=[Depends(guard)],
        responses={401: {"description": "Not authenticated"}, 429: {"description": "Too many"}},
    )
    def post_feedback(feedback: FeedbackIn) -> FeedbackOut:
        """Store one verdict durably, then acknowledge it with its id."""
        if len(feedback.tweet) > max_tweet_chars:
            raise HTTPException(422, f"tweet is longer than {max_tweet_chars} characters")
        record = feedback.model_dump(exclude={"feedback_id"})
        record["id"] = feedback.feedback_id
        record["model_name"] = model.ref.name if model.ref else model.name
        record["model_version"] = feedback.model_version or (
            model.ref.version if model.ref else None
        )
        try:
            stored = store.add(record)
            alert = None
            if not stored.duplicate:
                alert = rule.evaluate(record["model_version"])
                misprediction = misprediction_rule.evaluate(record["model_version"])
                alert = alert or misprediction
        except FeedbackUnavailable as exc:
            raise HTTPException(503, str(exc), headers={"Retry-After": "5"}) from exc
        if not stored.duplicate:
            FEEDBACK.labels(verdict=record["verdict"]).inc()
            telemetry.feedback(
                record["verdict"], record["predicted_label"], record["model_version"]
            )
        return FeedbackOut(
            id=stored.id,
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

    @router.get("/v1/alerts", tags=["feedback"])
    def alerts(limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
        """Alerts fired by the negative-feedback rule, newest first."""
        try:
            rows = store.alerts(limit)
        except SQLAlchemyError as exc:
            raise HTTPException(
                503, f"feedback store unavailable: {exc.__class__.__name__}"
            ) from exc
        return {
            "threshold": rule.threshold,
            "window_seconds": rule.window_seconds,
            "misprediction": {
                "threshold": misprediction_rule.threshold,
                "window_seconds": misprediction_rule.window_seconds,
                "min_feedback": misprediction_rule.min_feedback,
            },
            "alerts": [_jsonable(r) for r in rows],
        }

    return router


def _jsonable(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}
