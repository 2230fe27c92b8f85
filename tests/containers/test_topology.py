"""The release's topology in containers, each one started from the rendered chart.

PostgreSQL (StatefulSet) and the feedback-database hook Job; the MLflow server with the chart's
command and arguments (PostgreSQL backend, --serve-artifacts, artifacts on a claim); the
training Job registering @champion from a slice of the shared data; the predictor loading
models:/...@champion from that server; the dashboard posting feedback with the credential the
chart wires in; the chart's `helm test` Pod; the retraining CronJob reading the shared feedback database and promoting
through the gate; the predictor picking up the new version. Traffic stays on a network the
test creates, published to 127.0.0.1 only.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.containers.conftest import NAMESPACE, render, start_postgresql
from tests.containers.kube import Cluster, Container, docker, pod_of

CLIENT_KEY = "topology-client-key"
SECRETS = {"predictor-api-keys": {"api-keys": CLIENT_KEY}}
TWEETS = ["I love this airline, great crew and a smooth flight", "Lost my bag again, awful service"]
# The first model learns from a small slice; the upgrade retrains on a larger one, so that the
# gate has a real improvement to promote (the same values knob an operator would turn).
FIRST_ROWS, RETRAIN_ROWS = "3000", "20000"


def _rows(rows: str) -> tuple[str, ...]:
    return (
        "--set", "jobs.extraEnv[0].name=AIRPARADIS_TRAIN_MAX_ROWS",
        "--set-string", f"jobs.extraEnv[0].value={rows}",
    )  # fmt: skip


def _served_version(predictor: Container) -> str | None:
    info = httpx.get(f"{predictor.url(8080)}/v1/info", timeout=10).json()
    version = info.get("version") or (info.get("model") or {}).get("version")
    return str(version) if version is not None else None


def _mlflow(mlflow: Container, path: str, **params: str) -> dict[str, Any]:
    response = httpx.get(f"{mlflow.url(5000)}/api/2.0/mlflow/{path}", params=params, timeout=10)
    response.raise_for_status()
    return dict(response.json())


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_release_topology_trains_serves_collects_feedback_and_retrains(
    project_images: None, stand_in_images: None, sentiment140_dir: Path
) -> None:
    docs = render(*_rows(FIRST_ROWS))
    with Cluster(docs=docs, namespace=NAMESPACE, secrets=SECRETS) as cluster:
        cluster.claims["sentiment140"] = ("host", str(sentiment140_dir))
        start_postgresql(cluster)

        mlflow_doc = cluster.find("Deployment", component="mlflow")
        mlflow_pod, _ = pod_of(mlflow_doc)
        spec = mlflow_pod["containers"][0]
        assert spec["command"] == ["mlflow", "server"] and "--serve-artifacts" in spec["args"]
        for volume in mlflow_pod["volumes"]:
            if "persistentVolumeClaim" in volume:
                cluster.bind_volume(
                    volume["persistentVolumeClaim"]["claimName"],
                    mlflow_pod["securityContext"].get("fsGroup"),
                )
        mlflow = cluster.start(mlflow_doc)
        mlflow.wait_ready(timeout=300)

        # The chart's training Job registers the first model, which the gate makes champion.
        code, logs = cluster.run_to_completion(cluster.find("Job", component="train"), 900)
        assert code == 0, logs[-6000:]
        isvc = cluster.find("InferenceService")
        isvc_env = {e["name"]: e.get("value") for e in pod_of(isvc)[0]["containers"][0]["env"]}
        name = isvc_env["AIRPARADIS_MODEL_NAME"]
        alias = isvc_env["AIRPARADIS_CHAMPION_ALIAS"]
        assert isvc_env["AIRPARADIS_SERVER_MODEL_URI"] == f"models:/{name}@{alias}"
        champion = _mlflow(mlflow, "registered-models/alias", name=name, alias=alias)
        first_version = str(champion["model_version"]["version"])

        # The predictor loads models:/<name>@champion from the tracking server.
        predictor = cluster.start(isvc)
        predictor.wait_ready(timeout=240)
        assert _served_version(predictor) == first_version
        v1 = httpx.post(
            f"{predictor.url(8080)}/v1/models/{name}:predict",
            json={"instances": TWEETS},
            timeout=30,
        )
        assert v1.status_code == 200, v1.text
        assert [p["label"] for p in v1.json()["predictions"]] == ["positive", "negative"]

        # `helm test`: the chart's test Pod, against the running predictor.
        code, logs = cluster.run_to_completion(cluster.find("Pod", component="test"), 180)
        assert code == 0 and "v1 predict answered" in logs, logs[-3000:]

        # The dashboard posts feedback with the credential the chart gives it; a client
        # without one is refused.
        dashboard = cluster.start(cluster.find("Deployment", component="dashboard"))
        dashboard.wait_ready(timeout=180)
        send = (
            "import sys\n"
            "from dashboard.client import ModelServerClient\n"
            "from dashboard.settings import DashboardSettings\n"
            "client = ModelServerClient(DashboardSettings())\n"
            "texts = sys.argv[1:]\n"
            "for i, prediction in enumerate(client.predict(texts)):\n"
            "    wrong = 'negative' if prediction.label == 'positive' else 'positive'\n"
            "    print(client.feedback(prediction, correct_label=wrong, feedback_id=f'dash-{i}'))\n"
        )
        sent = docker("exec", dashboard.name, "python", "-c", send, *TWEETS, check=False)
        assert sent.returncode == 0, sent.stderr + dashboard.logs()[-3000:]
        assert sent.stdout.count("'duplicate': False") == len(TWEETS), sent.stdout
        anonymous = httpx.post(
            f"{predictor.url(8080)}/v1/feedback",
            json={"tweet": TWEETS[0], "predicted_label": "positive", "verdict": "correct"},
            timeout=10,
        )
        assert anonymous.status_code == 401

        # An upgrade with a larger slice; its retraining CronJob reads the shared feedback
        # database, trains, and the gate promotes the better model.
        upgraded = render(*_rows(RETRAIN_ROWS))
        cluster.docs = upgraded
        retrain = cluster.find("CronJob", component="retrain")
        retrain_env = {e["name"] for e in pod_of(retrain)[0]["containers"][0]["env"]}
        assert "AIRPARADIS_SERVER_FEEDBACK_DB_URL" in retrain_env, retrain_env
        # The Secrets stay those of the install (the chart keeps generated ones on upgrade).
        code, logs = cluster.run_to_completion(retrain, 1200)
        assert code == 0, logs[-6000:]
        assert f"{len(TWEETS)} feedback rows" in logs, logs[-4000:]
        champion = _mlflow(mlflow, "registered-models/alias", name=name, alias=alias)
        second_version = str(champion["model_version"]["version"])
        assert second_version != first_version, logs[-4000:]

        # The predictor notices the alias moved and serves the new version, without a restart.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _served_version(predictor) != second_version:
            time.sleep(2)
        assert _served_version(predictor) == second_version, predictor.logs()[-4000:]
        assert predictor.running()
