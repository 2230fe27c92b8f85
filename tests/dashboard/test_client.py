"""The client against an InferenceService-like endpoint: headers, errors, odd answers."""

from __future__ import annotations

import json
import math

import httpx
import pytest

from dashboard.client import (
    DriftStatus,
    Explanation,
    ModelServerClient,
    Prediction,
    RequestRejected,
    ServerUnavailable,
    TokenContribution,
    parse_drift,
)
from tests.dashboard.conftest import settings_for

ISVC = "https://air-paradis-sentiment.models.example.com"
LIMITS = {"max_tweet_chars": 280, "max_instances": 100, "max_explain_instances": 32}


def info(name: str = "air-paradis-sentiment") -> dict[str, object]:
    """What `/v1/info` answers: the served name and the request limits."""
    return {"name": name, "ready": True, "model_uri": "models:/m@champion", "limits": LIMITS}


def client_with(handler: object, **settings: object) -> ModelServerClient:
    """A client whose server answers `/v1/info` as a server does, and the rest by `handler`."""

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/info":
            return httpx.Response(200, json=info())
        return handler(request)  # type: ignore[operator,no-any-return]

    return ModelServerClient(settings_for(ISVC, **settings), transport=httpx.MockTransport(route))


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


def test_the_routes_and_limits_are_the_servers_asked_once() -> None:
    """The model's name and the limits are declared once, in the server: the client reads
    them from /v1/info before its first model call, and only then."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/v1/info":
            return httpx.Response(200, json=info("sentiment"))
        body = {"predictions": [{"label": "positive", "probability": 0.9}]}
        return httpx.Response(200, json=body)

    client = ModelServerClient(settings_for(ISVC), transport=httpx.MockTransport(handler))
    assert client.served_name is None and client.limits is None
    client.predict(["fine"])
    client.predict(["fine again"])
    assert seen == ["/v1/info", "/v1/models/sentiment:predict", "/v1/models/sentiment:predict"]
    assert client.served_name == "sentiment"
    assert client.limits is not None and client.limits.max_tweet_chars == 280


def test_no_model_call_while_the_server_cannot_say_its_name() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(503, json={"error": "starting"})

    client = ModelServerClient(settings_for(ISVC), transport=httpx.MockTransport(handler))
    with pytest.raises(ServerUnavailable, match="starting"):
        client.predict(["x"])
    assert seen == ["/v1/info"] and client.served_name is None


@pytest.mark.parametrize(
    ("status", "body", "error", "match"),
    [
        (400, {"error": "instance 0 is too long"}, RequestRejected, "too long"),
        (422, {"detail": [{"msg": "give a verdict"}]}, RequestRejected, "give a verdict"),
        (401, {"error": "no token"}, ServerUnavailable, "auth header"),
        (503, {"error": "model not loaded"}, ServerUnavailable, "model not loaded"),
        (200, ["not", "an", "object"], ServerUnavailable, "unexpected answer"),
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


def test_explain_posts_the_tweets_and_types_the_answer() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        token = {"token": "xxsad", "contribution": -0.25}
        body = {
            "label": "negative",
            "probability": 0.2,
            "method": "occlusion",
            "unit": "probability",
            "tokens": [token],
        }
        return httpx.Response(200, json={"explanations": [body]})

    [explanation] = client_with(handler).explain([":("])
    assert seen[0].url == f"{ISVC}/v1/models/air-paradis-sentiment:explain"
    assert json.loads(seen[0].content) == {"instances": [":("]}
    assert explanation == Explanation(
        ":(", "negative", 0.2, "occlusion", "probability", (TokenContribution("xxsad", -0.25),)
    )


@pytest.mark.parametrize(
    ("status", "body", "error", "match"),
    [
        (400, {"error": "explain takes at most 32 tweets"}, RequestRejected, "at most 32"),
        (404, {"detail": "Not Found"}, RequestRejected, "Not Found"),
        (200, {"explanations": [{"label": "positive"}]}, ServerUnavailable, "explain answer"),
        (200, {"explanations": []}, ServerUnavailable, "explain answer"),  # one per tweet
    ],
)
def test_explain_errors_are_typed(
    status: int, body: object, error: type[Exception], match: str
) -> None:
    client = client_with(lambda request: httpx.Response(status, json=body))
    with pytest.raises(error, match=match):
        client.explain(["x"])


def test_drift_nulls_become_nan_and_an_untracked_bundle_keeps_its_reason() -> None:
    # What the server answers before any tweet: no PSI and no live means (JSON has no NaN).
    empty = {"count": 0, "mean_tokens": None, "oov_share": None, "positive_share": None,
             "length_shares": [0.0] * 10, "proba_shares": [0.0] * 10}  # fmt: skip
    body = {
        "tracked": True, "window": 2000, "min_tweets": 200, "psi_threshold": 0.25,
        "enough_tweets": False, "drifting": False, "psi_probability": None, "psi_length": None,
        "live": empty, "reference": {**empty, "count": 600, "mean_tokens": 13.2},
        "proba_edges": [i / 10 for i in range(11)], "length_edges": [0, 3, 6],
    }  # fmt: skip
    drift = client_with(lambda request: httpx.Response(200, json=body)).drift()
    assert drift.tracked and not drift.enough_tweets and not drift.drifting
    assert math.isnan(drift.psi_probability) and math.isnan(drift.psi_length)
    assert drift.live is not None and math.isnan(drift.live.mean_tokens)
    assert drift.reference is not None and drift.reference.mean_tokens == 13.2
    assert drift.length_edges == (0.0, 3.0, 6.0) and len(drift.proba_edges) == 11

    untracked = parse_drift(
        {"tracked": False, "reason": "no reference", "window": 10, "min_tweets": 5,
         "psi_threshold": 0.2}
    )  # fmt: skip
    assert untracked == DriftStatus(False, 10, 5, 0.2, reason="no reference")
    with pytest.raises(ServerUnavailable, match="unexpected answer from /v1/drift"):
        client_with(lambda request: httpx.Response(200, json={"tracked": True})).drift()
