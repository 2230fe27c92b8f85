"""A small Python client of the model server: predict, feedback, and what the server reports.

    from airparadis.client import SentimentClient

    with SentimentClient("http://127.0.0.1:8080") as client:
        prediction = client.predict(["my bag is lost again"])[0]
        client.feedback("my bag is lost again", prediction.label, verdict="correct")

It speaks the v1 routes with httpx and answers the shared models of `airparadis.schemas`, so
a change of the server's JSON shows up as a validation error here, not as a KeyError in a
caller. The dashboard talks to the server through it.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from airparadis.schemas import (
    AlertsAnswer,
    DriftSummary,
    FeedbackReceipt,
    Label,
    ModelInfo,
    PredictAnswer,
    Prediction,
)

DEFAULT_MODEL_NAME = "air-paradis-sentiment"
Answer = TypeVar("Answer", bound=BaseModel)


class ServerUnavailable(RuntimeError):
    """The server cannot be reached, failed (5xx), refused access or answered nonsense."""


class RequestRejected(ValueError):
    """The server refused the request (4xx) and said why."""


class SentimentClient:
    """Calls of one model server, local process or KServe InferenceService.

    `api_key` goes in X-API-Key; `headers` may carry an Authorization header or the Host
    header an ingress routes by; `refused_hint` ends the message of a 401 or 403.
    """

    def __init__(
        self,
        base_url: str,
        model_name: str = DEFAULT_MODEL_NAME,
        *,
        api_key: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        refused_hint: str = "check the API key or token",
    ) -> None:
        sent = dict(headers or {})
        self.refused_hint = refused_hint
        if api_key is not None:
            sent["X-API-Key"] = api_key
        self.model_name = model_name
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(
            base_url=self.base_url, headers=sent, timeout=timeout, transport=transport
        )

    def __enter__(self) -> SentimentClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # -- the calls ---------------------------------------------------------------------------
    def predict(self, texts: list[str]) -> list[Prediction]:
        """One prediction per tweet, in order."""
        answer = self.call(
            PredictAnswer,
            "POST",
            f"/v1/models/{self.model_name}:predict",
            json={"instances": texts},
        )
        if len(answer.predictions) != len(texts):
            raise ServerUnavailable(
                f"{len(answer.predictions)} predictions for {len(texts)} tweets"
            )
        return answer.predictions

    def feedback(
        self,
        tweet: str,
        predicted_label: Label,
        *,
        verdict: str | None = None,
        correct_label: Label | None = None,
        probability: float | None = None,
        model_version: str | None = None,
        feedback_id: str | None = None,
    ) -> FeedbackReceipt:
        """Store one verdict ("correct"/"wrong", or the correct label); the same
        `feedback_id` sent twice is stored once, so a retry after a timeout is safe."""
        payload: dict[str, Any] = {"tweet": tweet, "predicted_label": predicted_label}
        optional = {
            "verdict": verdict,
            "correct_label": correct_label,
            "probability": probability,
            "model_version": model_version,
            "feedback_id": feedback_id,
        }
        payload.update({k: v for k, v in optional.items() if v is not None})
        return self.call(FeedbackReceipt, "POST", "/v1/feedback", json=payload)

    def info(self) -> ModelInfo:
        return self.call(ModelInfo, "GET", "/v1/info")

    def drift(self) -> DriftSummary:
        return self.call(DriftSummary, "GET", "/v1/drift")

    def alerts(self, limit: int = 50) -> AlertsAnswer:
        return self.call(AlertsAnswer, "GET", "/v1/alerts", params={"limit": limit})

    # -- plumbing ----------------------------------------------------------------------------
    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The response of a 2xx or 3xx; the errors above otherwise."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServerUnavailable(f"cannot reach {self.base_url} ({exc})") from exc
        if response.status_code >= 500:
            raise ServerUnavailable(f"server answered {response.status_code}: {detail(response)}")
        if response.status_code in (401, 403):
            raise ServerUnavailable(
                f"server refused access ({response.status_code}); {self.refused_hint}"
            )
        if response.status_code >= 400:
            raise RequestRejected(detail(response))
        return response

    def call(self, model: type[Answer], method: str, path: str, **kwargs: Any) -> Answer:
        """`send`, then the answer validated as `model`."""
        response = self.send(method, path, **kwargs)
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise ServerUnavailable(f"unexpected answer from {path}: {exc}") from exc


def detail(response: httpx.Response) -> str:
    """What a refusal says: kserve's `error`, FastAPI's `detail` (its validation errors
    joined), or the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    said = body.get("error") or body.get("detail") or body if isinstance(body, dict) else body
    if isinstance(said, list):  # FastAPI validation errors
        return "; ".join(str(e.get("msg", e)) if isinstance(e, dict) else str(e) for e in said)
    return str(said)
