"""Thin client of the model server API, the only place the dashboard talks HTTP to it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import httpx

from airparadis.drift import InputStats
from dashboard.settings import DashboardSettings


class ServerUnavailable(RuntimeError):
    """The server cannot be reached or is not ready; the dashboard shows a banner."""


class RequestRejected(ValueError):
    """The server refused the request (4xx) and said why."""


@dataclass(frozen=True)
class Prediction:
    text: str
    label: str
    probability: float
    model_version: str | None

    @property
    def confidence(self) -> float:
        """Probability of the predicted label."""
        return self.probability if self.label == "positive" else 1.0 - self.probability


MAX_EXPLAIN_TWEETS = 32
"""The server's limit on tweets per ``:explain`` call."""


@dataclass(frozen=True)
class TokenContribution:
    """One cleaned token and how far it pushed the tweet toward positive (negative: away)."""

    token: str
    contribution: float


@dataclass(frozen=True)
class Explanation:
    """What ``:explain`` said about one tweet; `unit` is ``logit`` or ``probability``."""

    text: str
    label: str
    probability: float
    method: str
    unit: str
    tokens: tuple[TokenContribution, ...]


@dataclass(frozen=True)
class DriftStatus:
    """What ``/v1/drift`` said; the PSIs are NaN until the window holds `min_tweets`."""

    tracked: bool
    window: int
    min_tweets: int
    psi_threshold: float
    reason: str = ""
    enough_tweets: bool = False
    drifting: bool = False
    psi_probability: float = math.nan
    psi_length: float = math.nan
    live: InputStats | None = None
    reference: InputStats | None = None
    proba_edges: tuple[float, ...] = ()
    length_edges: tuple[float, ...] = ()
    training_prior: float = math.nan
    """Positive share the served model's probabilities assume."""
    estimated_prior: float = math.nan
    """Positive share of the live window, estimated by EM (NaN until enough tweets)."""


@dataclass(frozen=True)
class Health:
    """What ``/v2/health/ready`` said: ready, up but not ready, or unreachable."""

    ready: bool
    reachable: bool
    detail: str = ""
    refused: bool = False  # 401/403: the auth header is missing or wrong


class ModelServerClient:
    """Calls of the model server (local process or KServe InferenceService)."""

    def __init__(
        self,
        settings: DashboardSettings,
        server_url: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers: dict[str, str] = {}
        if settings.auth_header is not None:
            headers["Authorization"] = settings.auth_header.get_secret_value()
        if settings.host_header:
            headers["Host"] = settings.host_header
        self.model_name = settings.model_name
        self.base_url = (server_url or settings.server_url).rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=settings.timeout_seconds,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServerUnavailable(f"cannot reach {self.base_url} ({exc})") from exc
        if response.status_code >= 500:
            raise ServerUnavailable(f"server answered {response.status_code}: {_detail(response)}")
        if response.status_code in (401, 403):
            raise ServerUnavailable(
                f"server refused access ({response.status_code}); check the auth header setting"
            )
        if response.status_code >= 400:
            raise RequestRejected(_detail(response))
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._send(method, path, **kwargs)
        try:
            body = response.json()
        except ValueError as exc:
            raise ServerUnavailable(f"{path} did not answer JSON") from exc
        if not isinstance(body, dict):
            raise ServerUnavailable(f"{path} answered an unexpected {type(body).__name__}")
        return body

    def predict(self, texts: list[str]) -> list[Prediction]:
        body = self._json(
            "POST", f"/v1/models/{self.model_name}:predict", json={"instances": texts}
        )
        try:
            return [
                Prediction(t, str(p["label"]), float(p["probability"]), _version(p))
                for t, p in zip(texts, body["predictions"], strict=True)
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise ServerUnavailable(f"unexpected prediction answer: {exc!r}") from exc

    def explain(self, texts: list[str]) -> list[Explanation]:
        """Token contributions of each tweet (at most `MAX_EXPLAIN_TWEETS`, else a 4xx)."""
        body = self._json(
            "POST", f"/v1/models/{self.model_name}:explain", json={"instances": texts}
        )
        try:
            return [_explanation(t, e) for t, e in zip(texts, body["explanations"], strict=True)]
        except (KeyError, TypeError, ValueError) as exc:
            raise ServerUnavailable(f"unexpected explain answer: {exc!r}") from exc

    def drift(self) -> DriftStatus:
        """Live inputs against the served bundle's training reference."""
        body = self._json("GET", "/v1/drift")
        try:
            return parse_drift(body)
        except (KeyError, TypeError, ValueError) as exc:
            raise ServerUnavailable(f"unexpected drift answer: {exc!r}") from exc

    def feedback(
        self,
        prediction: Prediction,
        verdict: str | None = None,
        correct_label: str | None = None,
        feedback_id: str | None = None,
    ) -> dict[str, Any]:
        """Store one verdict; the same `feedback_id` sent twice is stored once."""
        payload: dict[str, Any] = {
            "tweet": prediction.text,
            "predicted_label": prediction.label,
            "probability": prediction.probability,
            "model_version": prediction.model_version,
        }
        if verdict is not None:
            payload["verdict"] = verdict
        if correct_label is not None:
            payload["correct_label"] = correct_label
        if feedback_id is not None:
            payload["feedback_id"] = feedback_id
        return self._json("POST", "/v1/feedback", json=payload)

    def recent_feedback(self, since_seconds: int) -> list[dict[str, Any]]:
        body = self._json("GET", "/v1/feedback/recent", params={"since_seconds": since_seconds})
        rows = body.get("feedback", [])
        return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []

    def info(self) -> dict[str, Any]:
        return self._json("GET", "/v1/info")

    def feedback_labels(self) -> dict[str, int]:
        """Labelled feedback collected so far, by label (negative, positive)."""
        body = self._json("GET", "/v1/feedback/labels")
        labels = body.get("labels")
        if not isinstance(labels, dict):
            raise ServerUnavailable("unexpected /v1/feedback/labels answer")
        return {str(k): int(v) for k, v in labels.items()}

    def alerts(self, limit: int = 50) -> dict[str, Any]:
        return self._json("GET", "/v1/alerts", params={"limit": limit})

    def metrics_text(self) -> str:
        """The Prometheus exposition of ``/metrics``."""
        return self._send("GET", "/metrics").text

    def health(self) -> Health:
        try:
            response = self._http.get("/v2/health/ready")
        except httpx.HTTPError as exc:
            return Health(False, False, f"cannot reach {self.base_url} ({exc.__class__.__name__})")
        if response.status_code == 200:
            return Health(True, True)
        if response.status_code in (401, 403):
            return Health(False, True, f"HTTP {response.status_code}", refused=True)
        return Health(False, True, f"not ready yet ({response.status_code})")

    def ready(self) -> bool:
        return self.health().ready


def parse_drift(body: dict[str, Any]) -> DriftStatus:
    """`DriftStatus` from the JSON of ``/v1/drift``, its nulls as NaN.

    Raises KeyError, TypeError or ValueError when the body is not that shape.
    """
    window, min_tweets = int(body["window"]), int(body["min_tweets"])
    psi_threshold = float(body["psi_threshold"])
    shift = body.get("label_shift") or {}  # servers older than the label-shift monitor
    training = _number(shift.get("training_prior"))
    estimated = _number(shift.get("estimated_prior"))
    if not body["tracked"]:
        reason = str(body.get("reason") or "")
        return DriftStatus(
            False, window, min_tweets, psi_threshold, reason=reason,
            training_prior=training, estimated_prior=estimated,
        )  # fmt: skip
    return DriftStatus(
        True,
        window,
        min_tweets,
        psi_threshold,
        training_prior=training,
        estimated_prior=estimated,
        enough_tweets=bool(body["enough_tweets"]),
        drifting=bool(body["drifting"]),
        psi_probability=_number(body.get("psi_probability")),
        psi_length=_number(body.get("psi_length")),
        live=_stats(body["live"]),
        reference=_stats(body["reference"]),
        proba_edges=tuple(float(e) for e in body["proba_edges"]),
        length_edges=tuple(float(e) for e in body["length_edges"]),
    )


def _stats(body: dict[str, Any]) -> InputStats:
    return InputStats(
        count=int(body["count"]),
        mean_tokens=_number(body.get("mean_tokens")),
        oov_share=_number(body.get("oov_share")),
        positive_share=_number(body.get("positive_share")),
        length_shares=[_number(v) for v in body["length_shares"]],
        proba_shares=[_number(v) for v in body["proba_shares"]],
    )


def _number(value: Any) -> float:
    """JSON has no NaN: the server writes null for a value it cannot compute yet."""
    return math.nan if value is None else float(value)


def _explanation(text: str, body: dict[str, Any]) -> Explanation:
    return Explanation(
        text=text,
        label=str(body["label"]),
        probability=float(body["probability"]),
        method=str(body["method"]),
        unit=str(body["unit"]),
        tokens=tuple(
            TokenContribution(str(t["token"]), float(t["contribution"])) for t in body["tokens"]
        ),
    )


def _version(prediction: dict[str, Any]) -> str | None:
    version = prediction.get("model_version")
    return None if version is None else str(version)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    detail = body.get("error") or body.get("detail") or body if isinstance(body, dict) else body
    if isinstance(detail, list):  # FastAPI validation errors
        return "; ".join(str(e.get("msg", e)) if isinstance(e, dict) else str(e) for e in detail)
    return str(detail)
