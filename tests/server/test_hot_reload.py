"""The server follows the champion alias: a promotion is served without a restart."""

import subprocess
import sys
import time
from pathlib import Path

import httpx
from mlflow import MlflowClient

from airparadis.settings import PlatformSettings
from airparadis.tracking import connect
from tests.conftest import MODEL_NAME, server_env, start_server


def test_server_switches_to_the_new_champion(
    tmp_path: Path, sentiment140_dir: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    env = server_env(
        tmp_path, AIRPARADIS_TRAIN_DATA=str(sentiment140_dir), AIRPARADIS_TRAIN_MAX_ROWS="3000"
    )
    train = [sys.executable, "-m", "airparadis", "train", "--family", "tfidf_lr"]
    subprocess.run(train, cwd=tmp_path, env=env, check=True, capture_output=True)
    server = start_server(
        tmp_path, f"models:/{MODEL_NAME}@champion", AIRPARADIS_SERVER_RELOAD_INTERVAL_SECONDS="1"
    )
    try:
        assert httpx.get(f"{server.url}/v1/info").json()["version"] == "1"
        env["AIRPARADIS_TRAIN_SEED"] = "5"
        subprocess.run(train, cwd=tmp_path, env=env, check=True, capture_output=True)
        monkeypatch.setenv("AIRPARADIS_HOME", str(tmp_path))
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        connect(PlatformSettings())
        MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", "2")  # a promotion
        deadline = time.monotonic() + 60
        version = "1"
        while version != "2" and time.monotonic() < deadline:
            time.sleep(0.5)
            version = httpx.get(f"{server.url}/v1/info").json()["version"]
        assert version == "2"
        prediction = httpx.post(server.predict_url, json={"instances": ["great crew"]}).json()
        assert prediction["predictions"][0]["model_version"] == "2"
        assert server.process.poll() is None  # same process, no restart
    finally:
        server.stop()
