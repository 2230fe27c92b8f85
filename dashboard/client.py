"""Thin client of the model server API, the only place the dashboard talks HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

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
        return self.probability if self.label == "positive" else 1.0 - self.probability


class ModelServerClient:
    def __init__(self, settings: DashboardSettings, transport: httpx.BaseTransport | None = None):
        headers = {}
        if settings.auth_header is not None:
            headers["Authorization"] = settings.auth_header.get_secret_value()
        self.model_name = settings.model_name
        self._http = httpx.Client(
            base_url=settings.server_url.rstrip("/"),
            headers=headers,
            timeout=settings.timeout_seconds,
            transport=transport,
        )

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServerUnavailable(f"model server unreachable: {exc}") from exc
        if response.status_code >= 500:
            raise ServerUnavailable(f"model server answered {response.status_code}: {_detail(response)}")
        if response.status_code >= 400:
            raise RequestRejected(_detail(response))
        return response.json()

    def predict(self, texts: list[str]) -> list[Prediction]:
        body = self._request(
            "POST", f"/v1/models/{self.model_name}:predict", json={"instances": texts}
        )
        return [
            Prediction(t, p["label"], float(p["probability"]), p.get("model_version"))
            for t, p in zip(texts, body["predictions"], strict=True)
        ]

    def feedback(self, prediction: Prediction, verdict: str | None = None, correct_label: str | None = None, feedback_id: str | None = None) -> dict[str, Any]:
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
        result: dict[str, Any] = self._request("POST", "/v1/feedback", json=payload)
        return result

    def info(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/v1/info")
        return result

    def ready(self) -> bool:
        try:
            response = self._http.get("/v2/health/ready")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def alerts(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/v1/alerts")
        return result


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        return str(body.get("error") or body.get("detail") or body)
    return str(body)
