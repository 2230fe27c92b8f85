"""The serving image, run as the chart's predictor pod runs it.

Everything comes from the rendered InferenceService: image, command, environment, the pod's and
container's security settings (read-only root, user 10001, no capabilities, no privilege
escalation), tmpfs where the chart mounts emptyDirs, the readiness probe. The test adds only the
model folder (in a cluster: the registry, or a volume), a Secret with a client's API key, and
the chart's PostgreSQL (the shared feedback database).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.containers.conftest import NAMESPACE, render, start_postgresql
from tests.containers.kube import Cluster, Container, docker, pod_of

API_KEY = "container-test-key"
SECRETS = {"predictor-api-keys": {"api-keys": API_KEY}}
MODEL_MOUNT = "/models/bundle"
TWEETS = ["I love this airline, great crew and a smooth flight", "Lost my bag again, awful service"]


def _isvc(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(doc for doc in docs if doc["kind"] == "InferenceService")


def _env(doc: dict[str, Any], name: str) -> str:
    pod, _ = pod_of(doc)
    return str(next(e["value"] for e in pod["containers"][0]["env"] if e["name"] == name))


@pytest.fixture(scope="module")
def served(project_images: None, stand_in_images: None, readable_bundle: Path) -> Any:
    """The predictor container serving the tiny bundle, ready; with its rendered spec."""
    docs = render("--set", f"modelServer.modelUri={MODEL_MOUNT}")
    isvc = _isvc(docs)
    with Cluster(docs=docs, namespace=NAMESPACE, secrets=SECRETS) as cluster:
        start_postgresql(cluster)  # the shared feedback database the chart wires in
        container = cluster.start(isvc, extra_mounts=[f"{readable_bundle}:{MODEL_MOUNT}:ro"])
        container.wait_ready(timeout=180)
        yield cluster, isvc, container


def _inspect(container: Container) -> dict[str, Any]:
    return dict(json.loads(docker("inspect", container.name).stdout)[0])


def test_runs_with_the_pods_security_settings(served: Any) -> None:
    _, isvc, container = served
    pod, _ = pod_of(isvc)
    security = pod["containers"][0]["securityContext"]
    host = _inspect(container)["HostConfig"]
    config = _inspect(container)["Config"]
    assert security["readOnlyRootFilesystem"] is True and host["ReadonlyRootfs"] is True
    assert config["User"] == f"{security['runAsUser']}:{security['runAsGroup']}" == "10001:10001"
    assert security["capabilities"]["drop"] == ["ALL"] and host["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host["SecurityOpt"]
    empty_dirs = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert empty_dirs and empty_dirs == set(host["Tmpfs"])
    # The root filesystem really is read-only for the server's user; the emptyDirs are not.
    assert docker("exec", container.name, "touch", "/opt/venv/x", check=False).returncode != 0
    for path in empty_dirs:
        assert docker("exec", container.name, "touch", f"{path}/x", check=False).returncode == 0
    assert docker("exec", container.name, "id", "-u").stdout.strip() == "10001"


def test_serving_image_holds_only_serving_code(served: Any) -> None:
    _, _, container = served
    probe = (
        "import importlib.util as u; "
        "print([m for m in ('training_jobs', 'dashboard', 'torch', 'tensorflow') if u.find_spec(m)]); "
        "import importlib.metadata as md; print(md.version('mlflow-skinny'))"
    )
    out = docker("exec", container.name, "python", "-c", probe).stdout.splitlines()
    assert out[0] == "[]"
    assert (
        docker(
            "exec", container.name, "python", "-c", "import mlflow.server", check=False
        ).returncode
        != 0
    )


def test_answers_v1_v2_explain_feedback_and_metrics(served: Any) -> None:
    _, isvc, container = served
    url, name = container.url(8080), _env(isvc, "AIRPARADIS_MODEL_NAME")
    v1 = httpx.post(f"{url}/v1/models/{name}:predict", json={"instances": TWEETS}, timeout=30)
    assert v1.status_code == 200, v1.text
    assert [p["label"] for p in v1.json()["predictions"]] == ["positive", "negative"]
    body = {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": TWEETS}]}
    v2 = httpx.post(f"{url}/v2/models/{name}/infer", json=body, timeout=30)
    assert v2.status_code == 200, v2.text
    outputs = {o["name"]: o for o in v2.json()["outputs"]}
    assert outputs["label"]["data"] == ["positive", "negative"]
    explain = httpx.post(
        f"{url}/v1/models/{name}:explain", json={"instances": [TWEETS[1]]}, timeout=30
    )
    assert explain.status_code == 200, explain.text
    assert explain.json()["explanations"][0]["tokens"]
    feedback = {"tweet": TWEETS[1], "predicted_label": "positive", "correct_label": "negative"}
    refused = httpx.post(f"{url}/v1/feedback", json=feedback, timeout=30)
    assert refused.status_code == 401  # the chart requires auth on feedback
    stored = httpx.post(
        f"{url}/v1/feedback", json=feedback, headers={"X-API-Key": API_KEY}, timeout=30
    )
    assert stored.status_code == 201, stored.text
    metrics = httpx.get(f"{url}{isvc['spec']['predictor']['annotations']['prometheus.io/path']}")
    assert metrics.status_code == 200
    assert 'airparadis_predictions_total{label="positive"}' in metrics.text
    assert "airparadis_feedback_total" in metrics.text


def test_drains_on_sigterm(served: Any) -> None:
    """SIGTERM while requests are in flight: each is answered in full, then the server exits 0
    well within the pod's grace period (no SIGKILL). The requests are kept in flight by their
    bodies, sent in two parts either side of the signal."""
    cluster, isvc, container = served
    url, name = container.url(8080), _env(isvc, "AIRPARADIS_MODEL_NAME")
    body = json.dumps({"instances": TWEETS}).encode()
    sent_first_part = threading.Barrier(4)
    results: list[Any] = []

    def slow_body() -> Any:
        yield body[:10]
        sent_first_part.wait(timeout=30)
        time.sleep(3)  # the signal arrives meanwhile
        yield body[10:]

    def client() -> None:
        try:
            response = httpx.post(
                f"{url}/v1/models/{name}:predict",
                content=slow_body(),
                headers={"content-type": "application/json"},
                timeout=60,
            )
            results.append((response.status_code, response.json()))
        except httpx.HTTPError as exc:
            results.append((type(exc).__name__, str(exc)))

    threads = [threading.Thread(target=client) for _ in range(3)]
    for thread in threads:
        thread.start()
    sent_first_part.wait(timeout=30)
    time.sleep(0.5)
    grace = int(pod_of(isvc)[0].get("terminationGracePeriodSeconds", 30))
    started = time.monotonic()
    exit_code = cluster.stop(container, grace=grace)
    elapsed = time.monotonic() - started
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 3, results
    for status, answer in results:
        assert status == 200, (status, answer, container.logs()[-3000:])
        assert [p["label"] for p in answer["predictions"]] == ["positive", "negative"]
    assert exit_code == 0, container.logs()[-3000:]
    assert elapsed < grace, f"took {elapsed:.0f}s of a {grace}s grace period"


def test_not_ready_without_a_model(project_images: None, stand_in_images: None) -> None:
    docs = render("--set", "modelServer.modelUri=/models/missing")
    isvc = _isvc(docs)
    with Cluster(docs=docs, namespace=NAMESPACE, secrets=SECRETS) as cluster:
        container = cluster.start(isvc)
        url = container.url(8080)
        probe = pod_of(isvc)[0]["containers"][0]["readinessProbe"]["httpGet"]["path"]
        deadline, live = time.monotonic() + 90, False
        while time.monotonic() < deadline and not live:
            try:
                live = httpx.get(f"{url}/v2/health/live", timeout=5).status_code == 200
            except httpx.HTTPError:
                time.sleep(1)
        assert live, container.logs()[-3000:]
        for _ in range(10):  # ready never comes: the model cannot load
            assert httpx.get(f"{url}{probe}", timeout=5).status_code == 503
            time.sleep(1)
        assert container.running()
