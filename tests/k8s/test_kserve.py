"""The InferenceService as KServe >= 0.16 admits and mutates it (tests/k8s/kserve_rules.py).

Every render the suite knows (chart profiles, kustomize overlays) goes through KServe's
validating webhook on create and on upgrade, and through its pod mutator's metrics rules.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from . import kserve_rules as kserve
from .conftest import CHART, RENDER_CASES, Renderer, by_kind

SOURCES = [
    *[(f"chart:{label}", values, extra) for label, values, extra in RENDER_CASES],
    ("chart:knative-cpu-legacy", None, ("--set", "modelServer.deploymentMode=Serverless")),
    (
        "chart:standard-legacy",
        "minimal-values.yaml",
        ("--set", "modelServer.deploymentMode=RawDeployment"),
    ),
    ("chart:metrics-off", "minimal-values.yaml", ("--set", "modelServer.metrics.enabled=false")),
    ("kustomize:base", "base", ()),
    ("kustomize:dev", "overlays/dev", ()),
    ("kustomize:aks", "overlays/aks", ()),
]


@pytest.fixture(params=SOURCES, ids=[s[0] for s in SOURCES])
def rendered(request: pytest.FixtureRequest, renderer: Renderer, kustomize: Any) -> list[Any]:
    source, ref, extra = request.param
    if source.startswith("kustomize:"):
        return list(kustomize(ref))
    return renderer.docs(ref, extra=extra)


def _isvc(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (isvc,) = by_kind(docs, "InferenceService").values()
    return isvc


def test_the_webhook_admits_every_profile_on_install_and_upgrade(
    rendered: list[dict[str, Any]],
) -> None:
    isvc = _isvc(rendered)
    annotations = isvc["metadata"]["annotations"]
    assert annotations[kserve.DEPLOYMENT_MODE] in {"Standard", "Knative"}, "current names only"
    kserve.validate_create(isvc)
    # `helm upgrade` of the same release: the status holds the normalised mode.
    kserve.validate_update(kserve.status_mode(isvc), isvc)
    if annotations[kserve.DEPLOYMENT_MODE] == "Standard":
        # The cpu/memory metric reaches KServe's HPA validator only with the hpa class.
        assert annotations[kserve.AUTOSCALER_CLASS] == "hpa"
        assert isvc["spec"]["predictor"]["scaleMetric"] in kserve.HPA_METRICS


def test_an_upgrade_from_a_release_installed_with_the_legacy_names_is_admitted(
    renderer: Renderer,
) -> None:
    """Installed as "Serverless"/"RawDeployment" by an older chart: KServe >= 0.16 recorded
    "Knative"/"Standard", and the new render carries exactly that."""
    for values, legacy in ((None, "Serverless"), ("minimal-values.yaml", "RawDeployment")):
        new = _isvc(renderer.docs(values))
        kserve.validate_update(legacy, new)


def test_the_rules_refuse_what_the_old_chart_rendered() -> None:
    """The transcribed webhook is strict enough to catch D1 as the audit found it."""
    raw = {
        "metadata": {"annotations": {kserve.DEPLOYMENT_MODE: "RawDeployment"}},
        "spec": {"predictor": {"scaleMetric": "cpu", "scaleTarget": 70, "containers": []}},
    }
    with pytest.raises(kserve.Refused, match=r"\[cpu\] is not a supported metric"):
        kserve.validate_create(raw)
    serverless = {
        "metadata": {"annotations": {kserve.DEPLOYMENT_MODE: "Serverless"}},
        "spec": {"predictor": {"scaleMetric": "concurrency", "containers": []}},
    }
    with pytest.raises(kserve.Refused, match="cannot be changed from 'Knative' to 'Serverless'"):
        kserve.validate_update("Knative", serverless)


def test_legacy_mode_names_are_rendered_under_their_current_names(renderer: Renderer) -> None:
    knative = _isvc(renderer.docs(extra=("--set", "modelServer.deploymentMode=Serverless")))
    assert knative["metadata"]["annotations"][kserve.DEPLOYMENT_MODE] == "Knative"
    standard = _isvc(
        renderer.docs(
            "minimal-values.yaml", extra=("--set", "modelServer.deploymentMode=RawDeployment")
        )
    )
    assert standard["metadata"]["annotations"][kserve.DEPLOYMENT_MODE] == "Standard"
    assert standard["metadata"]["annotations"][kserve.AUTOSCALER_CLASS] == "hpa"


def test_annotations_from_values_appear_once(renderer: Renderer) -> None:
    """Every render is parsed with a loader that refuses duplicate keys (conftest.parse_docs)."""
    docs = renderer.docs(
        extra=("--set", "modelServer.annotations.example\\.com/team=ml")
    )  # fmt: skip
    assert _isvc(docs)["metadata"]["annotations"]["example.com/team"] == "ml"
    for key in (kserve.DEPLOYMENT_MODE, kserve.AUTOSCALER_CLASS):
        escaped = key.replace(".", "\\.")
        message = renderer.fails("--set", f"modelServer.annotations.{escaped}=Standard")
        assert "use modelServer.deploymentMode" in message


def test_the_duplicate_key_loader_catches_duplicates() -> None:
    from .conftest import parse_docs

    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate key"):
        parse_docs("metadata:\n  annotations:\n    a: '1'\n    a: '2'\n")


@pytest.mark.parametrize(("aggregation", "scraping"), [("false", "false"), ("true", "true")])
def test_prometheus_scrapes_a_port_where_the_metrics_are(
    rendered: list[dict[str, Any]], aggregation: str, scraping: str
) -> None:
    """After KServe's pod mutator (whatever the cluster's metricsAggregator defaults), the
    prometheus.io/port annotation, the PodMonitor and the NetworkPolicy all name a port where
    the server's metrics are served."""
    isvc = _isvc(rendered)
    ports = kserve.listening_ports(isvc)
    pod = kserve.mutate_pod_annotations(isvc, aggregation, scraping)
    predictor_policy = next(
        p for p in by_kind(rendered, "NetworkPolicy").values()
        if p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component") == "predictor"
    )  # fmt: skip
    metrics_ports = {
        port["port"]
        for rule in predictor_policy["spec"]["ingress"]
        if any("namespaceSelector" in peer for peer in rule.get("from", []))
        for port in rule.get("ports", [])
    }
    if pod.get("prometheus.io/scrape") != "true":
        assert kserve.PROMETHEUS_PORT not in pod
        return
    port = int(pod[kserve.PROMETHEUS_PORT])
    assert port in ports, f"prometheus.io/port {port}: nothing listens there ({ports})"
    if kserve.status_mode(isvc) == "Standard":
        assert port == 8080  # the server itself: no queue-proxy
    else:
        # The queue-proxy's aggregation port carries the server's metrics too.
        assert pod[kserve.ENABLE_AGGREGATION] == "true" and port == kserve.AGGREGATE_PORT
        assert pod["prometheus.kserve.io/port"] == "8080"
    assert metrics_ports == {port}
    for monitor in by_kind(rendered, "PodMonitor").values():
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        assert ports[port] == endpoint["port"]
        assert monitor["spec"]["selector"]["matchLabels"].items() <= (
            isvc["spec"]["predictor"]["labels"].items()
        )


def test_the_mutator_rules_catch_the_old_standard_mode_annotations() -> None:
    """The audit's D4: scraping enabled in RawDeployment sent Prometheus to 9091, where no
    queue-proxy listens."""
    old = {
        "metadata": {
            "annotations": {
                kserve.DEPLOYMENT_MODE: "Standard",
                kserve.ENABLE_SCRAPING: "true",
            }
        },
        "spec": {
            "predictor": {
                "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8080"},
                "containers": [{"ports": [{"name": "http", "containerPort": 8080}]}],
            }
        },
    }
    port = int(kserve.mutate_pod_annotations(old)[kserve.PROMETHEUS_PORT])
    assert port not in kserve.listening_ports(old)


def test_pod_monitor_is_optional_and_follows_the_mode(renderer: Renderer) -> None:
    assert not by_kind(renderer.docs(), "PodMonitor")
    (knative,) = by_kind(renderer.docs("full-values.yaml"), "PodMonitor").values()
    assert knative["apiVersion"] == "monitoring.coreos.com/v1"
    assert knative["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert knative["spec"]["podMetricsEndpoints"][0]["port"] == "aggr-metric"
    (standard,) = by_kind(renderer.docs("aks-values.yaml"), "PodMonitor").values()
    assert standard["apiVersion"] == "azmonitoring.coreos.com/v1"  # AKS managed Prometheus
    assert standard["spec"]["podMetricsEndpoints"][0]["port"] == "http"


def test_a_knative_revision_waits_for_a_champion(renderer: Renderer) -> None:
    """A revision whose first pod is not ready within Knative's progress deadline (10 min by
    default) fails for good; the pod becomes ready once a champion exists, so the chart gives
    the revision the configured deadline (a pod annotation: the revision template's)."""
    pod = _isvc(renderer.docs())["spec"]["predictor"]["annotations"]
    assert pod["serving.knative.dev/progress-deadline"] == "24h"
    full = _isvc(renderer.docs("full-values.yaml"))["spec"]["predictor"]["annotations"]
    assert full["serving.knative.dev/progress-deadline"] == "12h"
    standard = _isvc(renderer.docs("minimal-values.yaml"))["spec"]["predictor"]["annotations"]
    assert "serving.knative.dev/progress-deadline" not in standard


def test_supported_kserve_versions_are_pinned_and_documented() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    versions = chart["annotations"]["airparadis.io/kserve-versions"]
    assert versions == ">=0.16.0 <0.21.0"
    docs = (CHART.parents[1] / "docs" / "deploy-aks.md").read_text(encoding="utf-8")
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    for text in (docs, readme):
        assert "0.16" in text and "0.20" in text
        assert "RawDeployment" not in text.replace("`RawDeployment`", "")


def test_image_pull_notes_cover_knative_tag_resolution() -> None:
    """Knative resolves tags to digests itself, with pull Secrets only: an attached ACR's kubelet
    identity does not help it. The notes say so, and say how to avoid the resolution."""
    values = (CHART / "values.yaml").read_text(encoding="utf-8")
    docs = (CHART.parents[1] / "docs" / "deploy-aks.md").read_text(encoding="utf-8")
    notes = (CHART / "templates" / "NOTES.txt").read_text(encoding="utf-8")
    assert "(not needed when ACR is attached to AKS)" not in values
    for text in (values, docs, notes):
        assert "registries-skipping-tag-resolving" in text
        assert "digest" in text
