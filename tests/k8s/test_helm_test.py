"""`helm test`: the chart's test pod checks the predictor is ready and answers a v1 prediction.

Its script runs here, as the pod runs it, against the real model server on loopback.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from tests.conftest import RunningServer, free_port

from .conftest import Renderer, by_kind, env_of


def _test_pod(renderer: Renderer) -> dict[str, Any]:
    (pod,) = [
        d
        for d in by_kind(renderer.docs(), "Pod").values()
        if d["metadata"]["annotations"].get("helm.sh/hook") == "test"
    ]
    return pod


def _run(pod: dict[str, Any], url: str) -> subprocess.CompletedProcess[str]:
    (container,) = pod["spec"]["containers"]
    assert container["command"][0] == "python3"
    env = {name: e["value"] for name, e in env_of(container).items()}
    env["PREDICTOR_URL"] = url
    return subprocess.run(
        [sys.executable, *container["command"][1:], *container["args"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_test_pod_passes_against_a_ready_predictor(
    renderer: Renderer, model_server: RunningServer
) -> None:
    pod = _test_pod(renderer)
    assert env_of(pod["spec"]["containers"][0])["PREDICTOR_URL"]["value"] == (
        "http://airparadis-predictor.airparadis.svc.cluster.local"
    )
    result = _run(pod, model_server.url)
    assert result.returncode == 0, result.stderr
    assert "v1 predict answered" in result.stdout


def test_the_test_pod_fails_without_a_predictor(renderer: Renderer) -> None:
    result = _run(_test_pod(renderer), f"http://127.0.0.1:{free_port()}")
    assert result.returncode != 0


def test_the_test_pod_is_a_hook_and_reaches_the_predictor(renderer: Renderer) -> None:
    docs = renderer.docs()
    pod = _test_pod(renderer)
    assert pod["spec"]["restartPolicy"] == "Never"
    policies = by_kind(docs, "NetworkPolicy")
    egress = policies["airparadis-test"]["spec"]["egress"]
    assert any(
        peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component")
        == "predictor"
        for rule in egress
        for peer in rule["to"]
    )
    ingress = policies["airparadis-predictor"]["spec"]["ingress"][0]["from"]
    assert {"app.kubernetes.io/component": "test"}.items() <= (
        ingress[-1]["podSelector"]["matchLabels"].items()
    )
    assert not [
        d for d in renderer.docs(extra=("--set", "helmTest.enabled=false")) if d["kind"] == "Pod"
    ]
