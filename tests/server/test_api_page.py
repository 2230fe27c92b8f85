"""The API page, the typed answers in the OpenAPI schema, and `airparadis.client` on a real
server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from airparadis.client import RequestRejected, SentimentClient
from airparadis.schemas import AlertsAnswer, DriftSummary, ModelInfo
from tests.conftest import MODEL_NAME, RunningServer, start_server

TWEETS = ["I love this airline, great crew!", "worst delay ever, my bag is lost"]


def test_swagger_ui_and_redoc_answer(model_server: RunningServer) -> None:
    docs = httpx.get(f"{model_server.url}/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    assert "/openapi.json" in docs.text
    redoc = httpx.get(f"{model_server.url}/redoc")
    assert redoc.status_code == 200 and "redoc" in redoc.text.lower()
    assert "/openapi.json" in redoc.text


def test_the_schema_describes_info_drift_alerts_and_feedback(model_server: RunningServer) -> None:
    document = httpx.get(f"{model_server.url}/openapi.json").json()
    assert document["info"]["title"] == "Air Paradis sentiment model server"
    answers = {
        path: document["paths"][path][method]["responses"][code]["content"]["application/json"][
            "schema"
        ]["$ref"].rsplit("/", 1)[-1]
        for path, method, code in (
            ("/v1/info", "get", "200"),
            ("/v1/drift", "get", "200"),
            ("/v1/alerts", "get", "200"),
            ("/v1/feedback", "post", "201"),
        )
    }
    assert answers == {
        "/v1/info": "ModelInfo",
        "/v1/drift": "DriftSummary",
        "/v1/alerts": "AlertsAnswer",
        "/v1/feedback": "FeedbackReceipt",
    }
    schemas = document["components"]["schemas"]
    assert {"version", "aliases", "metrics", "threshold"} <= set(schemas["ModelInfo"]["properties"])
    assert "psi_probability" in schemas["DriftSummary"]["properties"]
    assert "/docs" not in document["paths"]


def test_answers_validate_against_the_shared_models(model_server: RunningServer) -> None:
    info = ModelInfo.model_validate_json(httpx.get(f"{model_server.url}/v1/info").content)
    assert info.ready and info.family == "tfidf_lr" and info.threshold is not None
    drift = DriftSummary.model_validate_json(httpx.get(f"{model_server.url}/v1/drift").content)
    assert drift.tracked and drift.live is not None
    alerts = AlertsAnswer.model_validate_json(httpx.get(f"{model_server.url}/v1/alerts").content)
    assert alerts.threshold >= 1 and alerts.misprediction.min_feedback >= 1


def test_python_client_predicts_and_stores_feedback(model_server: RunningServer) -> None:
    with SentimentClient(model_server.url, MODEL_NAME) as client:
        predictions = client.predict(TWEETS)
        assert [p.label for p in predictions] == ["positive", "negative"]
        first = client.feedback(
            TWEETS[1],
            predictions[1].label,
            correct_label="negative",
            probability=predictions[1].probability,
            feedback_id="python-client-1",
        )
        again = client.feedback(
            TWEETS[1],
            predictions[1].label,
            correct_label="negative",
            probability=predictions[1].probability,
            feedback_id="python-client-1",
        )
        assert not first.duplicate and again.duplicate and again.id == first.id
        assert client.info().name == MODEL_NAME
        with pytest.raises(RequestRejected, match="give a verdict"):
            client.feedback(TWEETS[0], "positive")
        with pytest.raises(RequestRejected, match="at least one tweet"):
            client.predict([])


def test_no_deprecation_warning_per_request(model_server: RunningServer) -> None:
    """FastAPI warns each time its deprecated ORJSONResponse is built (kserve 0.21 builds one
    per v1 answer); the server never builds it."""
    for _ in range(3):
        assert httpx.post(model_server.predict_url, json={"instances": TWEETS}).status_code == 200
        assert httpx.get(f"{model_server.url}/v1/info").status_code == 200
        assert httpx.post(
            f"{model_server.url}/v1/models/{MODEL_NAME}:explain", json={"instances": TWEETS}
        ).is_success
    log = model_server.log.read_text()
    assert "Warning" not in log, log[-2000:]


def test_the_api_page_can_be_turned_off(tmp_path: Path, tiny_bundle: Path) -> None:
    server = start_server(tmp_path, str(tiny_bundle), AIRPARADIS_SERVER_API_DOCS="false")
    try:
        assert httpx.get(f"{server.url}/docs").status_code == 404
        assert httpx.get(f"{server.url}/redoc").status_code == 404
        assert httpx.get(f"{server.url}/openapi.json").status_code == 200
    finally:
        server.stop()
