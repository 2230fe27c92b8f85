"""The client against an InferenceService-like endpoint: headers, errors, odd answers."""

from __future__ import annotations

import httpx
import pytest

from dashboard.client import ModelServerClient, Prediction, RequestRejected, ServerUnavailable
from tests.dashboard.conftest import settings_for

ISVC = "https://air-paradis-sentiment.models.example.com"


def client_with(handler: object, **settings: object) -> ModelServerClient:
    return ModelServerClient(
        settings_for(ISVC, **settings),
        transport=httpx.MockTransport(handler),  # type: ignore[arg-type]
    )


def test_auth_and_host_headers_reach_the_inference_service() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = {"predictions": [{"label": "negative", "probability": 0.1, "model_version": 4}]}
        return httpx.Response(200, json=body)

    client = client_with(
        handler, auth_header="Bearer abc", host_header="sentiment.airparadis.svc.example"
    )
    [prediction] = client.predict(["late again"])
    assert prediction == Prediction("late again", "negative", 0.1, "4")
    assert prediction.confidence == pytest.approx(0.9)
    request = seen[0]
    assert request.url == f"{ISVC}/v1/models/air-paradis-sentiment:predict"
    assert request.headers["Authorization"] == "Bearer abc"
    assert request.headers["Host"] == "sentiment.airparadis.svc.example"


@pytest.mark.parametrize(
    ("status", "body", "error", "match"),
    [
        (400, {"error": "instance 0 is too long"}, RequestRejected, "too long"),
        (422, {"detail": [{"msg": "give a verdict"}]}, RequestRejected, "give a verdict"),
        (401, {"error": "no token"}, ServerUnavailable, "auth header"),
        (503, {"error": "model not loaded"}, ServerUnavailable, "model not loaded"),
        (200, ["not", "an", "object"], ServerUnavailable, "unexpected list"),
        (200, {"predictions": [{"label": "positive"}]}, ServerUnavailable, "unexpected"),
    ],
)
def test_errors_are_typed_for_the_pages(
    status: int, body: object, error: type[Exception], match: str
) -> None:
    client = client_with(lambda request: httpx.Response(status, json=body))
    with pytest.raises(error, match=match):
        client.predict(["x"])


def test_health_tells_unreachable_from_not_ready() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    down = client_with(refuse).health()
    assert not down.reachable and not down.ready
    loading = client_with(lambda r: httpx.Response(503, json={"ready": False})).health()
    assert loading.reachable and not loading.ready
    assert client_with(lambda r: httpx.Response(200, json={"ready": True})).ready()
    refused = client_with(lambda r: httpx.Response(401, json={"error": "no token"})).health()
    assert refused.reachable and refused.refused and not refused.ready
