"""AIRPARADIS_LOG_FORMAT=json on a real server: every line is JSON and names its request."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.conftest import start_server


def test_server_logs_one_json_object_a_line(tmp_path: Path, tiny_bundle: Path) -> None:
    server = start_server(tmp_path, str(tiny_bundle), AIRPARADIS_LOG_FORMAT="json")
    try:
        refused = httpx.post(
            server.predict_url,
            json={"instances": ["x" * 1001]},
            headers={"X-Request-ID": "req-4711"},
        )
        assert refused.status_code == 400
        assert refused.headers["x-request-id"] == "req-4711"
        answered = httpx.post(server.predict_url, json={"instances": ["fine"]})
        assert len(answered.headers["x-request-id"]) == 32  # made by the server
    finally:
        server.stop()
    lines = [line for line in server.log.read_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
    (refusal,) = [e for e in entries if e["message"].startswith("answered 400")]
    assert refusal["request_id"] == "req-4711" and refusal["logger"] == "airparadis.errors"
    assert any(e["logger"].startswith("uvicorn") for e in entries)  # kserve's stack too
