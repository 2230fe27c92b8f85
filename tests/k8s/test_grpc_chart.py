"""The chart's gRPC port: off by default, a second container port in Standard mode, refused in
Knative mode (one port per container), opened in the predictor's NetworkPolicy."""

from __future__ import annotations

from typing import Any

import pytest

from . import kserve_rules as kserve
from .conftest import Renderer, by_kind, env_of

STANDARD = ("--set", "modelServer.deploymentMode=Standard", "--set", "modelServer.scaleMetric=cpu",
            "--set", "modelServer.scaleTarget=70")  # fmt: skip


def _predictor(docs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    (isvc,) = by_kind(docs, "InferenceService").values()
    (policy,) = (
        p for p in by_kind(docs, "NetworkPolicy").values()
        if p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component") == "predictor"
    )  # fmt: skip
    return isvc, policy


def _container(isvc: dict[str, Any]) -> dict[str, Any]:
    (container,) = isvc["spec"]["predictor"]["containers"]
    return container


def test_grpc_is_off_by_default(renderer: Renderer) -> None:
    isvc, _ = _predictor(renderer.docs())
    container = _container(isvc)
    assert env_of(container)["AIRPARADIS_SERVER_GRPC_PORT"]["value"] == "0"
    assert [p["containerPort"] for p in container["ports"]] == [8080]


def test_standard_mode_serves_grpc_on_a_second_port(renderer: Renderer) -> None:
    docs = renderer.docs(extra=(*STANDARD, "--set", "modelServer.grpc.enabled=true"))
    isvc, policy = _predictor(docs)
    kserve.validate_create(isvc)
    container = _container(isvc)
    assert env_of(container)["AIRPARADIS_SERVER_GRPC_PORT"]["value"] == "8081"
    assert kserve.listening_ports(isvc) == {8080: "http", 8081: "grpc"}
    in_cluster = next(
        rule for rule in policy["spec"]["ingress"]
        if any("podSelector" in peer for peer in rule.get("from", []))
    )  # fmt: skip
    assert {p["port"] for p in in_cluster["ports"]} == {8080, 8081}


def test_grpc_clients_of_other_namespaces_reach_the_grpc_port_only(renderer: Renderer) -> None:
    docs = renderer.docs(
        extra=(*STANDARD, "--set", "modelServer.grpc.enabled=true",
               "--set", "modelServer.grpc.clientNamespaces={scoring}")
    )  # fmt: skip
    _, policy = _predictor(docs)
    rules = [
        rule for rule in policy["spec"]["ingress"]
        if any(
            "scoring" in expression.get("values", [])
            for peer in rule.get("from", [])
            for expression in peer.get("namespaceSelector", {}).get("matchExpressions", [])
        )
    ]  # fmt: skip
    assert [[p["port"] for p in rule["ports"]] for rule in rules] == [[8081]]


def test_knative_mode_refuses_grpc(renderer: Renderer) -> None:
    error = renderer.fails("--set", "modelServer.grpc.enabled=true")
    assert "needs deploymentMode=Standard" in error


def test_the_knative_rule_refuses_two_ports(renderer: Renderer) -> None:
    """What the chart's refusal stands for: Knative admits one container port."""
    isvc, _ = _predictor(renderer.docs(extra=(*STANDARD, "--set", "modelServer.grpc.enabled=true")))
    isvc["metadata"]["annotations"][kserve.DEPLOYMENT_MODE] = "Knative"
    with pytest.raises(kserve.Refused, match="More than one container port"):
        kserve.validate_knative_ports(isvc)


@pytest.mark.parametrize("port", ["8080", "80", "9088"])
def test_the_grpc_port_cannot_take_a_port_in_use(renderer: Renderer, port: str) -> None:
    renderer.fails(*STANDARD, "--set", "modelServer.grpc.enabled=true",
                   "--set", f"modelServer.grpc.port={port}")  # fmt: skip
