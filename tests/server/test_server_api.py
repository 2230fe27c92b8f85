"""The real model server on a free loopback port: v1, v2, feedback, bad input, readiness."""

import sqlite3
from pathlib import Path

import httpx
import pytest

from airparadis.bundle import load_bundle
from tests.conftest import MODEL_NAME, RunningServer, start_server

TWEETS = ["I love this airline, great crew!", "worst delay ever, my bag is lost"]


def test_v1_predict_matches_the_bundle(model_server: RunningServer, tiny_bundle: Path) -> None:
    response = httpx.post(model_server.predict_url, json={"instances": TWEETS})
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    expected = load_bundle(tiny_bundle).predict_proba(TWEETS)
    assert [p["label"] for p in predictions] == ["positive", "negative"]
    assert [p["probability"] for p in predictions] == pytest.approx(list(expected))


def test_v1_accepts_objects_with_text(model_server: RunningServer) -> None:
    response = httpx.post(model_server.predict_url, json={"instances": [{"text": TWEETS[0]}]})
    assert response.status_code == 200
    assert response.json()["predictions"][0]["label"] == "positive"


def test_v2_open_inference_protocol(model_server: RunningServer) -> None:
    body = {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": TWEETS}]}
    response = httpx.post(f"{model_server.url}/v2/models/{MODEL_NAME}/infer", json=body)
    assert response.status_code == 200
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert outputs["label"]["data"] == ["positive", "negative"]
    assert outputs["probability"]["datatype"] == "FP64"
    assert outputs["probability"]["data"][0] > 0.5 > outputs["probability"]["data"][1]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"instances": []}', "at least one tweet"),
        (b'{"instances": [42]}', "must be a string"),
        (b'{"instances": "not a list"}', "to be a list"),
        (b'{"tweets": ["x"]}', "'instances'"),
        (b'{"instances": ["x"', "Unrecognized request format"),
        (('{"instances": ["' + "a" * 1001 + '"]}').encode(), "the limit is 1000"),
    ],
)
def test_v1_bad_input_gets_400_with_json_error(
    model_server: RunningServer, body: bytes, message: str
) -> None:
    response = httpx.post(
        model_server.predict_url, content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_v2_wrong_datatype_is_400(model_server: RunningServer) -> None:
    body = {"inputs": [{"name": "text", "shape": [1], "datatype": "FP32", "data": [1.0]}]}
    response = httpx.post(f"{model_server.url}/v2/models/{MODEL_NAME}/infer", json=body)
    assert response.status_code == 400
    assert "BYTES" in response.json()["error"]


def test_unknown_model_is_404(model_server: RunningServer) -> None:
    response = httpx.post(f"{model_server.url}/v1/models/nope:predict", json={"instances": ["x"]})
    assert response.status_code == 404


def test_feedback_is_stored_before_ack_and_idempotent(model_server: RunningServer) -> None:
    body = {
        "tweet": TWEETS[1],
        "predicted_label": "positive",
        "probability": 0.7,
        "correct_label": "negative",
        "feedback_id": "client-retry-1",
    }
    first = httpx.post(f"{model_server.url}/v1/feedback", json=body)
    assert first.status_code == 201
    assert first.json()["feedback_id"] == "client-retry-1"
    assert first.json()["duplicate"] is False
    again = httpx.post(f"{model_server.url}/v1/feedback", json=body)
    assert again.status_code == 201 and again.json()["duplicate"] is True
    assert again.json()["id"] == first.json()["id"]
    with sqlite3.connect(model_server.home / "feedback.db") as db:
        rows = db.execute(
            "select verdict, correct_label, tweet, id from feedback "
            "where feedback_id = 'client-retry-1'"
        ).fetchall()
    assert rows == [("wrong", "negative", TWEETS[1], first.json()["id"])]


@pytest.mark.parametrize(
    "body",
    [
        {"tweet": "x", "predicted_label": "happy", "verdict": "wrong"},
        {"tweet": "x", "predicted_label": "positive", "verdict": "maybe"},
        {"tweet": "x", "predicted_label": "positive"},
        {"tweet": "", "predicted_label": "positive", "verdict": "correct"},
        {
            "tweet": "x",
            "predicted_label": "positive",
            "verdict": "correct",
            "correct_label": "negative",
        },
    ],
)
def test_bad_feedback_gets_422(model_server: RunningServer, body: dict[str, str]) -> None:
    response = httpx.post(f"{model_server.url}/v1/feedback", json=body)
    assert response.status_code == 422
    assert response.json()["detail"]


def test_metrics_count_predictions_and_feedback(model_server: RunningServer) -> None:
    httpx.post(model_server.predict_url, json={"instances": TWEETS})
    text = httpx.get(f"{model_server.url}/metrics").text
    assert 'airparadis_predictions_total{label="positive"}' in text
    assert "airparadis_feedback_total" in text
    assert "request_predict_seconds" in text  # kserve's own histograms stay


def test_missing_model_is_live_but_not_ready(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    from tests.conftest import free_port, server_env

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "airparadis", "serve", "--port", str(port), "--model-uri", str(tmp_path / "none")],
        cwd=tmp_path, env=server_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        live = None
        while time.monotonic() < deadline:
            try:
                live = httpx.get(f"http://127.0.0.1:{port}/v2/health/live", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert live is not None and live.status_code == 200
        time.sleep(1)
        ready = httpx.get(f"http://127.0.0.1:{port}/v2/health/ready")
        assert ready.status_code == 503
        info = httpx.get(f"http://127.0.0.1:{port}/v1/info").json()
        assert "does not exist" in info["error"]
        predict = httpx.post(
            f"http://127.0.0.1:{port}/v1/models/{MODEL_NAME}:predict", json={"instances": ["x"]}
        )
        assert predict.status_code == 503
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0].decode()
    assert "cannot load model" in output


def test_serves_registered_champion(tmp_path: Path, sentiment140_dir: Path) -> None:
    """`models:/name@champion` from a real MLflow store, as `make up` does."""
    import subprocess
    import sys

    from tests.conftest import server_env

    env = server_env(
        tmp_path, AIRPARADIS_TRAIN_DATA=str(sentiment140_dir), AIRPARADIS_TRAIN_MAX_ROWS="3000"
    )
    subprocess.run(
        [sys.executable, "-m", "airparadis", "train"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )
    server = start_server(tmp_path, f"models:/{MODEL_NAME}@champion")
    try:
        info = httpx.get(f"{server.url}/v1/info").json()
        assert info["version"] == "1" and info["aliases"] == ["champion"]
        response = httpx.post(server.predict_url, json={"instances": TWEETS})
        assert response.json()["predictions"][0]["model_version"] == "1"
    finally:
        server.stop()


def test_model_repository_api_is_disabled(model_server: RunningServer) -> None:
    for action in ("load", "unload"):
        response = httpx.post(f"{model_server.url}/v2/repository/models/{MODEL_NAME}/{action}")
        assert response.status_code == 404
    assert httpx.get(f"{model_server.url}/v2/health/ready").status_code == 200
    paths = httpx.get(f"{model_server.url}/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/v2/repository")]


def test_explain_gives_exact_linear_contributions(
    model_server: RunningServer, tiny_bundle: Path
) -> None:
    import math

    tweet = "I do not like this delayed flight"
    response = httpx.post(
        f"{model_server.url}/v1/models/{MODEL_NAME}:explain", json={"instances": [tweet]}
    )
    assert response.status_code == 200
    explanation = response.json()["explanations"][0]
    assert explanation["method"] == "exact-linear"
    assert [t["token"] for t in explanation["tokens"]] == [
        "i",
        "do",
        "not",
        "like",
        "this",
        "delayed",
        "flight",
    ]
    model = load_bundle(tiny_bundle)
    intercept = model.scorer.intercept  # type: ignore[attr-defined]
    logit = intercept + sum(t["contribution"] for t in explanation["tokens"])
    assert 1 / (1 + math.exp(-logit)) == pytest.approx(model.predict_proba([tweet])[0], abs=1e-9)


def test_unsupported_model_version_is_a_client_error(model_server: RunningServer) -> None:
    response = httpx.get(f"{model_server.url}/v2/models/{MODEL_NAME}/ready?model_version=3")
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"AIRPARADIS_SERVER_HTTP_PORT": "abc"},
            "AIRPARADIS_SERVER_HTTP_PORT (http_port): Input should be a valid integer",
        ),
        (
            {"AIRPARADIS_SERVER_DRIFT_WINDOW": "10", "AIRPARADIS_SERVER_DRIFT_MIN_TWEETS": "20"},
            "AIRPARADIS_SERVER_DRIFT_MIN_TWEETS (20) exceeds AIRPARADIS_SERVER_DRIFT_WINDOW (10)",
        ),
        (
            {"AIRPARADIS_SERVER_ALERT_WINDOW_SECOND": "60"},  # a misspelt group variable
            "AIRPARADIS_SERVER_ALERT_WINDOW_SECOND (alert.window_second): Extra inputs",
        ),
    ],
)
def test_bad_settings_are_a_usage_error_naming_the_setting(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    import subprocess
    import sys

    from tests.conftest import server_env

    result = subprocess.run(
        [sys.executable, "-m", "airparadis", "serve"],
        cwd=tmp_path, env=server_env(tmp_path, **env), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "error: invalid ServerSettings configuration" in result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_no_log_line_per_request_unless_asked(model_server: RunningServer) -> None:
    """uvicorn's access line and kserve's timing trace are off by default (settings)."""
    marker = "per-request-log-probe"
    assert httpx.post(model_server.predict_url, json={"instances": [marker]}).status_code == 200
    httpx.get(f"{model_server.url}/v2/health/ready")
    log = model_server.log.read_text(errors="replace")
    assert " ready (" in log  # the server's own INFO lines are there
    assert "uvicorn.access" not in log and "kserve.trace" not in log
