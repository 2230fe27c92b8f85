"""What KServe's webhooks do to an InferenceService and its pods, transcribed from its sources.

No cluster here, so the tests run the chart's renders through these rules. Each function names
the Go code it follows (github.com/kserve/kserve, the same in releases 0.16.0 to 0.20.0, the range
Chart.yaml declares):

- pkg/constants/constants.go: deployment modes (ParseDeploymentMode), autoscaler classes and
  metrics, the prometheus/metrics-aggregation annotation keys and ports;
- pkg/apis/serving/v1beta1/inference_service_validation.go: validateInferenceServiceAutoscaler,
  validateAutoScalingCompExtension, validateScalingHPACompExtension,
  validateScalingKPACompExtension, validateDeploymentMode;
- pkg/webhook/admission/pod/metrics_aggregate_injector.go: InjectMetricsAggregator.
"""

from __future__ import annotations

from typing import Any

DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"
AUTOSCALER_CLASS = "serving.kserve.io/autoscalerClass"
KNATIVE_CLASS = "autoscaling.knative.dev/class"
ENABLE_AGGREGATION = "serving.kserve.io/enable-metric-aggregation"
ENABLE_SCRAPING = "serving.kserve.io/enable-prometheus-scraping"
PROMETHEUS_PORT = "prometheus.io/port"
PROMETHEUS_PATH = "prometheus.io/path"
AGGREGATE_PORT = 9088  # QueueProxyAggregatePrometheusMetricsPort, queue-proxy port "aggr-metric"
QUEUE_PROXY_METRICS_PORT = 9091  # DefaultPodPrometheusPort
ALLOWED_CLASSES = {"hpa", "external", "keda", "none"}
HPA_METRICS = {"cpu", "memory"}
KPA_METRICS = {"concurrency", "rps"}


class Refused(Exception):
    """The admission webhook's answer."""


def parse_deployment_mode(mode: str) -> str:
    """constants.ParseDeploymentMode: empty is Standard, legacy names are normalised."""
    if not mode:
        return "Standard"
    return {"RawDeployment": "Standard", "Serverless": "Knative"}.get(mode, mode)


def validate_create(isvc: dict[str, Any]) -> None:
    annotations = isvc["metadata"].get("annotations", {})
    if AUTOSCALER_CLASS in annotations and annotations[AUTOSCALER_CLASS] not in ALLOWED_CLASSES:
        raise Refused(f"[{annotations[AUTOSCALER_CLASS]}] is not a supported autoscaler class type")
    predictor = isvc["spec"]["predictor"]
    mode = annotations.get(DEPLOYMENT_MODE, "")
    # validateAutoScalingCompExtension switches on the raw annotation, not the parsed mode.
    if mode == "Standard":
        if annotations.get(AUTOSCALER_CLASS) == "hpa":
            _validate_hpa(predictor)
    elif annotations.get(KNATIVE_CLASS) == "hpa.autoscaling.knative.dev":
        _validate_hpa(predictor)
    else:
        _validate_kpa(predictor)
    validate_knative_ports(isvc)


def validate_knative_ports(isvc: dict[str, Any]) -> None:
    """Knative Serving's validateContainerPorts (pkg/apis/serving/k8s_validation.go), run on
    the Knative Service KServe creates in Knative mode: one port at most, named h2c or http1."""
    if status_mode(isvc) != "Knative":
        return
    for container in isvc["spec"]["predictor"].get("containers", []):
        ports = container.get("ports", [])
        if len(ports) > 1:
            raise Refused("More than one container port is set")
        for port in ports:
            if port.get("name", "") not in ("", "h2c", "http1"):
                raise Refused(f"Port name {port['name']} is not allowed: h2c or http1")


def _validate_hpa(predictor: dict[str, Any]) -> None:
    metric = predictor.get("scaleMetric", "cpu")
    if metric not in HPA_METRICS:
        raise Refused(f"[{metric}] is not a supported metric")
    target = predictor.get("scaleTarget")
    if target is not None and ((metric == "cpu" and target < 1) or target > 100):
        raise Refused("the target utilization percentage should be a [1-100] integer")
    if target is not None and metric == "memory" and target < 1:
        raise Refused("the target memory should be greater than 1 MiB")


def _validate_kpa(predictor: dict[str, Any]) -> None:
    metric = predictor.get("scaleMetric", "concurrency")
    if metric not in KPA_METRICS:
        raise Refused(f"[{metric}] is not a supported metric")
    target = predictor.get("scaleTarget")
    if target is not None and metric == "rps" and target < 1:
        raise Refused("the target for rps should be greater than 1")


def status_mode(isvc: dict[str, Any]) -> str:
    """The mode the controller records in status.deploymentMode once it has reconciled."""
    return parse_deployment_mode(isvc["metadata"].get("annotations", {}).get(DEPLOYMENT_MODE, ""))


def validate_update(old_status_mode: str, new: dict[str, Any]) -> None:
    """validateDeploymentMode, then the create-time checks."""
    if old_status_mode:
        recorded = parse_deployment_mode(old_status_mode)
        annotation = new["metadata"].get("annotations", {}).get(DEPLOYMENT_MODE)
        if annotation is not None and annotation != recorded:
            raise Refused(
                f"update rejected: deploymentMode cannot be changed from '{recorded}' "
                f"to '{annotation}'"
            )
    validate_create(new)


def mutate_pod_annotations(
    isvc: dict[str, Any], aggregation_default: str = "false", scraping_default: str = "false"
) -> dict[str, str]:
    """InjectMetricsAggregator on a predictor pod: its prometheus.io/* annotations afterwards.

    The defaults stand for the cluster's inferenceservice-config `metricsAggregator`
    (enableMetricAggregation, enablePrometheusScraping); pod annotations override them.
    """
    pod = {
        **isvc["metadata"].get("annotations", {}),
        **isvc["spec"]["predictor"].get("annotations", {}),
    }
    aggregation = pod.setdefault(ENABLE_AGGREGATION, aggregation_default)
    scraping = pod.setdefault(ENABLE_SCRAPING, scraping_default)
    if scraping == "true":
        pod[PROMETHEUS_PORT] = str(
            AGGREGATE_PORT if aggregation == "true" else QUEUE_PROXY_METRICS_PORT
        )
        pod[PROMETHEUS_PATH] = "/metrics"
    return pod


def listening_ports(isvc: dict[str, Any]) -> dict[int, str]:
    """Ports something listens on in a predictor pod, by number: the containers' own, plus
    Knative's queue-proxy (9091 metrics, and 9088 when KServe injected aggregation)."""
    ports = {
        p["containerPort"]: p.get("name", "")
        for c in isvc["spec"]["predictor"]["containers"]
        for p in c.get("ports", [])
    }
    if status_mode(isvc) == "Knative":
        ports[QUEUE_PROXY_METRICS_PORT] = "http-usermetric"
        if mutate_pod_annotations(isvc).get(ENABLE_AGGREGATION) == "true":
            ports[AGGREGATE_PORT] = "aggr-metric"
    return ports
