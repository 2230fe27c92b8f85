"""Custom events for Azure Monitor, sent through OpenTelemetry's logging bridge.

`configure_azure_monitor` attaches an OpenTelemetry handler to the ``airparadis`` logger; a
record carrying ``microsoft.custom_event.name`` becomes a row of Application Insights'
``customEvents`` table, which the alert rule (deploy/azure) queries. Without a connection
string nothing is exported and the hot path pays one attribute check.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

    from model_server.drift import DriftMonitor

PREDICTION_EVENT = "airparadis_prediction"
FEEDBACK_EVENT = "airparadis_feedback"
EVENT_NAME_KEY = "microsoft.custom_event.name"
events = logging.getLogger("airparadis.events")


class Telemetry:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        if enabled:
            events.setLevel(logging.INFO)

    def predictions(
        self,
        labels: Sequence[str],
        proba: Sequence[float],
        latency_s: float,
        model_version: str | None,
        headers: dict[str, str] | None,
    ) -> None:
        request_id = (headers or {}).get("x-request-id")
        for label, p in zip(labels, proba, strict=True):
            events.info(
                PREDICTION_EVENT,
                extra={
                    EVENT_NAME_KEY: PREDICTION_EVENT,
                    "label": label,
                    "probability": p,
                    "latency_ms": 1e3 * latency_s,
                    "model_version": model_version or "",
                    "request_id": request_id or "",
                },
            )

    def feedback(self, verdict: str, predicted_label: str, model_version: str | None) -> None:
        if not self.enabled:
            return
        events.info(
            FEEDBACK_EVENT,
            extra={
                EVENT_NAME_KEY: FEEDBACK_EVENT,
                "verdict": verdict,
                "predicted_label": predicted_label,
                "model_version": model_version or "",
            },
        )


def observe_health_gauges(
    drift: DriftMonitor,
    misprediction_rate: Callable[[], float],
    meter_provider: MeterProvider | None = None,
) -> None:
    """Drift PSI, the positive-share estimate (label shift) and the misprediction rate as
    OpenTelemetry gauges, read at each export, so Azure Monitor (``customMetrics``) sees what
    Prometheus scrapes from ``/metrics``. A value that cannot be computed yet (NaN) is left
    out rather than sent."""
    from opentelemetry import metrics
    from opentelemetry.metrics import Observation

    from model_server.drift import PRIOR_METRIC, PSI_METRIC

    meter = (meter_provider or metrics.get_meter_provider()).get_meter("airparadis")

    def psi(_options: CallbackOptions) -> Iterable[Observation]:
        report = drift.report()
        values = drift.psi(report) if report is not None else {}
        return [Observation(v, {"signal": k}) for k, v in values.items() if math.isfinite(v)]

    def prior(_options: CallbackOptions) -> Iterable[Observation]:
        estimate = drift.prior()
        observations = [Observation(drift.training_prior, {"source": "training"})]
        if estimate is not None:
            observations.append(Observation(estimate.prior, {"source": "estimated"}))
        return observations

    def rate(_options: CallbackOptions) -> Iterable[Observation]:
        value = misprediction_rate()
        return [Observation(value)] if math.isfinite(value) else []

    meter.create_observable_gauge(
        PSI_METRIC, [psi], description="PSI of live input against training."
    )
    meter.create_observable_gauge(
        PRIOR_METRIC, [prior], description="Share of positive tweets: live estimate, training."
    )
    meter.create_observable_gauge(
        "airparadis_misprediction_rate", [rate], description="Share of 'wrong' verdicts."
    )


def configure(connection_string: str | None) -> Telemetry:
    """Azure Monitor when a connection string is set; otherwise telemetry stays off."""
    if not connection_string:
        return Telemetry(enabled=False)
    from azure.monitor.opentelemetry import configure_azure_monitor

    configure_azure_monitor(connection_string=connection_string, logger_name="airparadis")
    logging.getLogger(__name__).info("Azure Monitor telemetry enabled")
    return Telemetry(enabled=True)
