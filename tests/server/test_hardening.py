"""What a hostile client tries against the real server: a borrowed identity, a log grown or
forged with bad requests, JSON that only a lenient parser takes, empty tweets, a reused
feedback id, and a database error after the feedback is stored."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from model_server.errors import install
from tests.conftest import MODEL_NAME, RunningServer, start_server

KEYS = [f"key-{i}" for i in range(8)]
WRONG = {"tweet": "my bag is lost", "predicted_label": "positive", "verdict": "wrong"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path) -> Iterator[RunningServer]:
    """Auth off (the embedded default), API keys known, five feedbacks a minute per client."""
    running = start_server(
        tmp_path_factory.mktemp("hardened"),
        str(tiny_bundle),
        AIRPARADIS_SERVER_API_KEYS=",".join(KEYS),
        AIRPARADIS_SERVER_FEEDBACK_PER_MINUTE="5",
    )
    yield running
    running.stop()


def _key(index: int) -> dict[str, str]:
    return {"X-API-Key": KEYS[index]}


# -- 1. client-controlled headers do not change who the client is ---------------------------
SPOOFING_HEADERS = ("X-Forwarded-For", "X-Real-IP", "Forwarded", "True-Client-IP")


@pytest.mark.parametrize("header", SPOOFING_HEADERS)
def test_rotating_forwarding_headers_does_not_escape_the_limit(
    tmp_path: Path, tiny_bundle: Path, header: str
) -> None:
    running = start_server(tmp_path, str(tiny_bundle), AIRPARADIS_SERVER_FEEDBACK_PER_MINUTE="5")
    try:
        codes = []
        for i in range(8):
            value = f"for=10.1.{i}.9" if header == "Forwarded" else f"10.1.{i}.9"
            response = httpx.post(f"{running.url}/v1/feedback", json=WRONG, headers={header: value})
            codes.append(response.status_code)
    finally:
        running.stop()
    assert codes == [201] * 5 + [429] * 3


def test_forwarded_for_is_read_only_from_a_configured_proxy(
    tmp_path: Path, tiny_bundle: Path
) -> None:
    running = start_server(
        tmp_path,
        str(tiny_bundle),
        AIRPARADIS_SERVER_FEEDBACK_PER_MINUTE="2",
        AIRPARADIS_SERVER_TRUSTED_PROXIES="127.0.0.1",
    )
    try:
        url = f"{running.url}/v1/feedback"
        # Behind the proxy, each forwarded client has its own allowance.
        codes = [
            httpx.post(url, json=WRONG, headers={"X-Forwarded-For": f"10.2.{i // 3}.1"}).status_code
            for i in range(6)
        ]
        assert codes == [201, 201, 429] * 2
        alerts = httpx.get(f"{running.url}/v1/alerts").json()["alerts"]
    finally:
        running.stop()
    assert alerts and alerts[0]["client_id"] == "ip:10.2.1.1"  # who tipped it over


def test_the_limit_follows_the_authenticated_client(server: RunningServer) -> None:
    url = f"{server.url}/v1/feedback"
    same_key = [
        httpx.post(
            url, json=WRONG, headers={**_key(7), "X-Forwarded-For": f"10.3.0.{i}"}
        ).status_code
        for i in range(6)
    ]
    assert same_key == [201] * 5 + [429]
    assert httpx.post(url, json=WRONG, headers=_key(6)).status_code == 201


# -- 2. a client error costs one short line, never a traceback ------------------------------
def test_client_errors_are_one_escaped_line_without_traceback(server: RunningServer) -> None:
    before = server.log.stat().st_size
    v1 = f"{server.url}/v1/models/{MODEL_NAME}"
    bad = [
        ("POST", f"{v1}:predict", b'{"instances": [42]}'),
        ("POST", f"{v1}:predict", b'{"instances": ["x"'),
        ("POST", f"{v1}:explain", b'{"instances": []}'),
        ("POST", f"{server.url}/v1/models/evil%0aINJECTED%20line:predict", b'{"instances":["x"]}'),
        ("POST", f"{server.url}/v2/models/evil%0d%0aFORGED/infer", b'{"inputs": []}'),
        ("POST", f"{server.url}/v2/models/{MODEL_NAME}/infer", b'{"inputs": [{"name": "a\\nB"}]}'),
        ("GET", f"{server.url}/v2/models/{MODEL_NAME}/ready?model_version=9", b""),
    ]
    rounds = 40
    for _ in range(rounds):
        for method, url, body in bad:
            response = httpx.request(
                method, url, content=body, headers={"content-type": "application/json"}
            )
            assert 400 <= response.status_code < 500, (url, response.text)
    grown = server.log.read_text(errors="replace")[before:]
    assert "Traceback" not in grown
    lines = grown.splitlines()
    assert len(lines) <= rounds * len(bad)  # at most one line a request
    assert max(len(line) for line in lines) < 600
    assert not [line for line in lines if line.startswith(("INJECTED", "FORGED", "B"))]
    assert "evil\\x0aINJECTED line" in grown


def test_server_errors_keep_their_traceback_with_the_message_escaped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = FastAPI()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("failed on\nFORGED ERROR line")

    install(app)
    with caplog.at_level(logging.INFO, logger="airparadis.errors"):
        response = TestClient(app, raise_server_exceptions=False).get("/boom")
    assert response.status_code == 500
    # One ERROR record of ours (the test client's own request log may sit beside it).
    (record,) = [r for r in caplog.records if r.name == "airparadis.errors"]
    assert record.levelname == "ERROR"
    message = record.getMessage()
    assert "Traceback (most recent call last)" in message and "in boom" in message
    assert "failed on\\x0aFORGED ERROR line" in message
    assert "\nFORGED" not in message


# -- 3. any JSON the parser accepts gets a 4xx ----------------------------------------------
V2 = '{"inputs": [{"name": "%s", "shape": [1], "datatype": "BYTES", "data": [%s]}]%s}'
FEEDBACK = '{"tweet": %s, "predicted_label": "positive", "verdict": "wrong"%s}'
LENIENT_BODIES = {
    "v1 NaN": ("predict", '{"instances": [NaN]}'),
    "v1 Infinity": ("predict", '{"instances": ["x"], "parameters": {"t": Infinity}}'),
    "v1 surrogate": ("predict", '{"instances": ["bad \\ud800 tweet"]}'),
    "v1 surrogate key": ("predict", '{"instances": [{"text": "x", "\\udfff": 1}]}'),
    "explain surrogate": ("explain", '{"instances": ["\\udbff"]}'),
    "explain NaN": ("explain", '{"instances": ["x"], "k": -Infinity}'),
    "v2 NaN": ("infer", V2 % ("t", '"x"', ', "parameters": {"p": NaN}')),
    "v2 surrogate data": ("infer", V2 % ("t", '"\\ud83d"', "")),
    "v2 surrogate name": ("infer", V2 % ("\\ud83d", '"x"', "")),
    "v2 surrogate id": ("infer", V2 % ("t", '"x"', ', "id": "\\udc00"')),
    "feedback NaN": ("feedback", FEEDBACK % ('"x"', ', "probability": NaN')),
    "feedback Infinity": ("feedback", FEEDBACK % ('"x"', ', "probability": Infinity')),
    "feedback surrogate tweet": ("feedback", FEEDBACK % ('"\\ud800"', "")),
    "feedback surrogate id": ("feedback", FEEDBACK % ('"x"', ', "request_id": "\\udfff"')),
    "feedback surrogate key": ("feedback", FEEDBACK % ('"x"', ', "\\ud800": 1')),
}


def _route_url(server: RunningServer, route: str) -> str:
    return {
        "predict": f"{server.url}/v1/models/{MODEL_NAME}:predict",
        "explain": f"{server.url}/v1/models/{MODEL_NAME}:explain",
        "infer": f"{server.url}/v2/models/{MODEL_NAME}/infer",
        "feedback": f"{server.url}/v1/feedback",
    }[route]


@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
@pytest.mark.parametrize("case", sorted(LENIENT_BODIES))
def test_lenient_json_is_a_client_error_on_every_route(
    server: RunningServer, case: str, content_type: str
) -> None:
    route, body = LENIENT_BODIES[case]
    response = httpx.post(
        _route_url(server, route),
        content=body.encode(),
        headers={"content-type": content_type, **_key(0)},
    )
    assert 400 <= response.status_code < 500 and response.status_code != 429, response.text
    assert response.json()


@pytest.mark.parametrize(
    ("shape", "data", "message"),
    [
        ([3], ["a", "b"], "does not match its 2 elements"),
        ([1], ["a", "b"], "does not match"),
        ([-2], ["a", "b"], "non-negative"),
        ([2, 2], ["a", "b", "c", "d"], "[n] or [n, 1]"),
        ([1, 1, 2], ["a", "b"], "[n] or [n, 1]"),
    ],
)
def test_v2_shape_must_agree_with_the_data(
    server: RunningServer, shape: list[int], data: list[str], message: str
) -> None:
    body = {"inputs": [{"name": "t", "shape": shape, "datatype": "BYTES", "data": data}]}
    response = httpx.post(_route_url(server, "infer"), json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_v2_column_shape_is_accepted(server: RunningServer) -> None:
    body = {"inputs": [{"name": "t", "shape": [2, 1], "datatype": "BYTES", "data": ["a", "b"]}]}
    assert httpx.post(_route_url(server, "infer"), json=body).status_code == 200


# -- 4. a tweet without text is refused, and says so ----------------------------------------
BLANK = ["", " ", "\n\t ", "\u200b", "\u00a0\u3000", "\ufeff "]


@pytest.mark.parametrize("text", BLANK)
def test_blank_tweets_are_refused_everywhere(server: RunningServer, text: str) -> None:
    for route, body in (
        ("predict", {"instances": ["a real tweet", text]}),
        ("predict", {"instances": [{"text": text}]}),
        ("explain", {"instances": [text]}),
        (
            "infer",
            {"inputs": [{"name": "t", "shape": [1], "datatype": "BYTES", "data": [text]}]},
        ),
    ):
        response = httpx.post(_route_url(server, route), json=body)
        assert response.status_code == 400, (route, response.text)
        assert "has no text" in response.json()["error"]
    key = _key(1 if BLANK.index(text) < 3 else 4)  # validation counts against the limit
    feedback = httpx.post(
        _route_url(server, "feedback"), json={**WRONG, "tweet": text}, headers=key
    )
    assert feedback.status_code == 422
    assert "no text" in str(feedback.json()["detail"]) or "at least 1" in str(
        feedback.json()["detail"]
    )


# -- 5. a retry is idempotent, a conflict is not a retry ------------------------------------
def test_reused_feedback_id_with_other_content_is_a_conflict(server: RunningServer) -> None:
    url = f"{server.url}/v1/feedback"
    body = {**WRONG, "feedback_id": "shared-id-1"}
    first = httpx.post(url, json=body, headers=_key(2))
    assert first.status_code == 201 and first.json()["duplicate"] is False
    retry = httpx.post(url, json=body, headers=_key(2))
    assert retry.status_code == 201 and retry.json()["duplicate"] is True
    assert retry.json()["id"] == first.json()["id"]
    # With two labels, "wrong" already says the right one: the same feedback, not a conflict.
    explicit = httpx.post(url, json={**body, "correct_label": "negative"}, headers=_key(2))
    assert explicit.status_code == 201 and explicit.json()["duplicate"] is True
    changed = httpx.post(url, json={**body, "verdict": "correct"}, headers=_key(2))
    assert changed.status_code == 409
    assert changed.json()["detail"]["id"] == first.json()["id"]
    # Another client's id is its own: no collision with the first client's record.
    other = httpx.post(url, json={**body, "verdict": "correct"}, headers=_key(3))
    assert other.status_code == 201 and other.json()["duplicate"] is False
    assert other.json()["id"] != first.json()["id"]
    with sqlite3.connect(server.home / "feedback.db") as db:
        stored = db.execute(
            "select verdict from feedback where feedback_id = 'shared-id-1' order by verdict"
        ).fetchall()
    assert stored == [("correct",), ("wrong",)]


# -- issue 15: a database error in the alert rule does not fail stored feedback -------------
def test_alert_store_failure_still_acknowledges_the_feedback(
    tmp_path: Path, tiny_bundle: Path
) -> None:
    # One client (this test) may fire the rule: it must reach the store to fail there.
    running = start_server(
        tmp_path, str(tiny_bundle), AIRPARADIS_SERVER_ALERT_MIN_DISTINCT_CLIENTS="1"
    )
    try:
        with sqlite3.connect(tmp_path / "feedback.db") as db:
            db.execute("drop table alerts")
            db.execute("drop table alert_state")
        codes = [httpx.post(f"{running.url}/v1/feedback", json=WRONG).status_code for _ in range(4)]
    finally:
        running.stop()
    assert codes == [201] * 4
    with sqlite3.connect(tmp_path / "feedback.db") as db:
        assert db.execute("select count(*) from feedback").fetchone() == (4,)
    log = running.log.read_text()
    assert "alert rule NegativeFeedbackRule not evaluated" in log
