"""The whole MLOps loop on real components: the CLI trains, the server serves and takes
feedback, `airparadis retrain` learns from it, the gate decides, and the running server
follows the champion alias without a restart.

The systematic error: airline slang where "sick" means great ("the new lounge is sick").
Sentiment140 reads "sick" as negative, so the first model gets these tweets wrong. The fixed
gate set holds held-out Sentiment140 rows plus slang tweets the feedback never contained.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from tests.conftest import MODEL_NAME, RunningServer, server_env, start_server
from training_jobs.data import load_sources
from training_jobs.split import stratified_sample

RELOAD_SECONDS = 1
PLACES = ("lounge", "landing", "new seat", "crew", "upgrade", "cabin", "playlist", "meal")


def slang(start: int, count: int) -> list[str]:
    return [
        f"the {PLACES[i % len(PLACES)]} on flight {i} was sick" for i in range(start, start + count)
    ]


def _cli(env: dict[str, str], cwd: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "airparadis", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


def _predict(server: RunningServer, tweets: list[str]) -> list[dict[str, object]]:
    response = httpx.post(server.predict_url, json={"instances": tweets}, timeout=30)
    assert response.status_code == 200, response.text
    predictions: list[dict[str, object]] = response.json()["predictions"]
    return predictions


def _post_feedback(server: RunningServer, tweets: list[str], truth: str) -> None:
    """What users do: confirm right predictions and correct wrong ones."""
    for tweet, prediction in zip(tweets, _predict(server, tweets), strict=True):
        body = {
            "tweet": tweet,
            "predicted_label": prediction["label"],
            "probability": prediction["probability"],
            "correct_label": truth,
        }
        response = httpx.post(f"{server.url}/v1/feedback", json=body, timeout=30)
        assert response.status_code == 201, response.text


def _metric(server: RunningServer, line_start: str) -> float:
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{line_start} is not on /metrics")


def _served_version(server: RunningServer, expected: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    version = ""
    while time.monotonic() < deadline:
        version = str(httpx.get(f"{server.url}/v1/info").json()["version"])
        if version == expected:
            break
        time.sleep(0.25)
    return version


@pytest.fixture
def gate_file(tmp_path: Path, sentiment140_dir: Path) -> Path:
    frame, _ = load_sources([sentiment140_dir])
    heldout = stratified_sample(frame, 200, seed=1234)[["text", "label"]]
    heldout["label"] = heldout["label"].map({0: "negative", 1: "positive"})
    tweets = slang(1000, 60)
    gate = pd.concat(
        [heldout, pd.DataFrame({"text": tweets, "label": "positive"})], ignore_index=True
    )
    path = tmp_path / "gate.parquet"
    gate.to_parquet(path, index=False)
    return path


def test_feedback_retrain_gate_and_hot_reload(
    tmp_path: Path, sentiment140_dir: Path, gate_file: Path
) -> None:
    env = server_env(
        tmp_path,
        AIRPARADIS_TRAIN_DATA=str(sentiment140_dir),
        AIRPARADIS_TRAIN_MAX_ROWS="4000",
        AIRPARADIS_TRAIN_GATE_DATA=str(gate_file),
        AIRPARADIS_TRAIN_FEEDBACK_WEIGHT="5",
    )
    # 1. Train on a slice: version 1 becomes champion (there is none yet).
    _cli(env, tmp_path, "train", "--family", "tfidf_lr")

    # 2. Serve the champion alias, polling the registry every second.
    server = start_server(
        tmp_path,
        f"models:/{MODEL_NAME}@champion",
        AIRPARADIS_SERVER_RELOAD_INTERVAL_SECONDS=str(RELOAD_SECONDS),
        AIRPARADIS_SERVER_MISPREDICTION_MIN_FEEDBACK="10",
        AIRPARADIS_SERVER_ALERT_THRESHOLD="1000",  # only the misprediction rule is watched here
        AIRPARADIS_SERVER_FEEDBACK_PER_MINUTE="1000",  # one test client stands for many users
    )
    try:
        assert httpx.get(f"{server.url}/v1/info").json()["version"] == "1"
        probes = slang(5000, 40)  # never in feedback nor in the gate set
        before = [p["label"] for p in _predict(server, probes)]
        assert before.count("negative") > len(probes) / 2, "the error to correct is not there"

        # 3. Users correct the systematic error; the misprediction rate rises with it.
        _post_feedback(server, slang(0, 80), truth="positive")
        assert _metric(server, "airparadis_misprediction_rate") > 0.5

        # 4-5. Retrain from the feedback: better on the gate set, so promoted, and the running
        # server switches to it within the reload interval.
        out = _cli(env, tmp_path, "retrain", "--family", "tfidf_lr")
        assert "-> @champion" in out, out
        started = time.monotonic()
        assert _served_version(server, "2", timeout=30) == "2"
        switch_seconds = time.monotonic() - started
        after = [p["label"] for p in _predict(server, probes)]
        assert after.count("positive") > before.count("positive") + len(probes) / 4
        assert switch_seconds < 10 * RELOAD_SECONDS + 5

        # Feedback that teaches the opposite makes the gate score worse: the new version
        # only becomes challenger, and the server keeps serving version 2.
        _post_feedback(server, slang(2000, 240), truth="negative")
        out = _cli(env, tmp_path, "retrain", "--family", "tfidf_lr")
        assert "-> @challenger" in out, out
        time.sleep(3 * RELOAD_SECONDS)
        info = httpx.get(f"{server.url}/v1/info").json()
        assert info["version"] == "2"
        assert "champion" in info["aliases"]
    finally:
        server.stop()
