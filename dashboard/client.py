"""The dashboard's calls of the model server, on `airparadis.client`: the only place the
dashboard talks HTTP to it. Answers are validated by the shared models of `airparadis.schemas`
and turned into what the pages draw (NaN where the server says null)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

import httpx
from pydantic import ValidationError

from airparadis.client import RequestRejected, SentimentClient, ServerUnavailable
from airparadis.drift import InputStats
from airparadis.schemas import (
    AlertsAnswer,
    DriftSummary,
    InputStatsOut,
    Label,
    Limits,
    ModelInfo,
)
from dashboard.settings import DashboardSettings

__all__ = ["ModelServerClient", "RequestRejected", "ServerUnavailable"]


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
    """Calls of the model server (local process or KServe InferenceService).

    The model's name in the routes and the request limits are the server's own settings
    (`AIRPARADIS_SERVER_SERVED_NAME`, `AIRPARADIS_SERVER_MAX_TWEET_CHARS`): the client reads
    them from ``/v1/info`` before its first model call, so each is declared once, there.
    """

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
        self.api = SentimentClient(
            server_url or settings.server_url,
            headers=headers,
            timeout=settings.timeout_seconds,
            transport=transport,
            refused_hint="check the auth header setting (AIRPARADIS_DASHBOARD_AUTH_HEADER)",
        )
        self.base_url = self.api.base_url
        self.served: ModelInfo | None = None
        """The last ``/v1/info`` answer; None until the server has given one."""

    def close(self) -> None:
        self.api.close()

    @property
    def served_name(self) -> str | None:
        """The model's name in the KServe routes, as the server said; None until it has."""
        return self.served.name if self.served else None

    @property
    def limits(self) -> Limits | None:
        """The server's request limits; None until it has said (or from an older server)."""
        return self.served.limits if self.served else None

    def _learn_name(self) -> None:
        """Ask ``/v1/info`` once, before the first call of a route named after the model."""
        if self.served is None:
            self.info()

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self.api.send(method, path, **kwargs)
        try:
            body = response.json()
        except ValueError as exc:
            raise ServerUnavailable(f"{path} did not answer JSON") from exc
        if not isinstance(body, dict):
            raise ServerUnavailable(f"{path} answered an unexpected {type(body).__name__}")
        return body

    def predict(self, texts: list[str]) -> list[Prediction]:
        self._learn_name()
        return [
            Prediction(text, p.label, p.probability, p.model_version)
            for text, p in zip(texts, self.api.predict(texts), strict=True)
        ]

    def explain(self, texts: list[str]) -> list[Explanation]:
        """Token contributions of each tweet (at most the server's `max_explain_instances`,
        else a 4xx)."""
        self._learn_name()
        body = self._json(
            "POST", f"/v1/models/{self.api.model_name}:explain", json={"instances": texts}
        )
        try:
            return [_explanation(t, e) for t, e in zip(texts, body["explanations"], strict=True)]
        except (KeyError, TypeError, ValueError) as exc:
            raise ServerUnavailable(f"unexpected explain answer: {exc!r}") from exc

    def drift(self) -> DriftStatus:
        """Live inputs against the served bundle's training reference."""
        return drift_status(self.api.drift())

    def feedback(
        self,
        prediction: Prediction,
        verdict: str | None = None,
        correct_label: str | None = None,
        feedback_id: str | None = None,
    ) -> dict[str, Any]:
        """Store one verdict; the same `feedback_id` sent twice is stored once."""
        receipt = self.api.feedback(
            prediction.text,
            cast(Label, prediction.label),
            verdict=verdict,
            correct_label=cast(Label | None, correct_label),
            probability=prediction.probability,
            model_version=prediction.model_version,
            feedback_id=feedback_id,
        )
        return receipt.model_dump()

    def recent_feedback(self, since_seconds: int) -> list[dict[str, Any]]:
        body = self._json("GET", "/v1/feedback/recent", params={"since_seconds": since_seconds})
        rows = body.get("feedback", [])
        return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []

    def info(self) -> ModelInfo:
        """Which model is served; the model routes follow the name it gives."""
        info = self.api.info()
        self.api.model_name, self.served = info.name, info
        return info

    def feedback_labels(self) -> dict[str, int]:
        """Labelled feedback collected so far, by label (negative, positive)."""
        body = self._json("GET", "/v1/feedback/labels")
        labels = body.get("labels")
        if not isinstance(labels, dict):
            raise ServerUnavailable("unexpected /v1/feedback/labels answer")
        return {str(k): int(v) for k, v in labels.items()}

    def alerts(self, limit: int = 50) -> AlertsAnswer:
        return self.api.alerts(limit)

    def metrics_text(self) -> str:
        """The Prometheus exposition of ``/metrics``."""
        return self.api.send("GET", "/metrics").text

    def health(self) -> Health:
        try:
            response = self.api.http.get("/v2/health/ready")
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
    """`DriftStatus` from the JSON of ``/v1/drift``; ServerUnavailable when it is not that."""
    try:
        summary = DriftSummary.model_validate(body)
    except ValidationError as exc:
        raise ServerUnavailable(f"unexpected /v1/drift answer: {exc}") from exc
    return drift_status(summary)


def drift_status(summary: DriftSummary) -> DriftStatus:
    """What the pages draw of a `/v1/drift` answer, its nulls as NaN."""
    shift = summary.label_shift
    training = _number(shift.training_prior if shift else None)
    estimated = _number(shift.estimated_prior if shift else None)
    if not summary.tracked:
        return DriftStatus(
            False, summary.window, summary.min_tweets, summary.psi_threshold,
            reason=summary.reason or "", training_prior=training, estimated_prior=estimated,
        )  # fmt: skip
    if summary.live is None or summary.reference is None:
        raise ServerUnavailable("unexpected /v1/drift answer: tracked without live statistics")
    return DriftStatus(
        True,
        summary.window,
        summary.min_tweets,
        summary.psi_threshold,
        training_prior=training,
        estimated_prior=estimated,
        enough_tweets=summary.enough_tweets,
        drifting=summary.drifting,
        psi_probability=_number(summary.psi_probability),
        psi_length=_number(summary.psi_length),
        live=_stats(summary.live),
        reference=_stats(summary.reference),
        proba_edges=tuple(summary.proba_edges),
        length_edges=tuple(summary.length_edges),
    )


def _stats(stats: InputStatsOut) -> InputStats:
    return InputStats(
        count=stats.count,
        mean_tokens=_number(stats.mean_tokens),
        oov_share=_number(stats.oov_share),
        positive_share=_number(stats.positive_share),
        length_shares=[_number(v) for v in stats.length_shares],
        proba_shares=[_number(v) for v in stats.proba_shares],
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
