"""Custom events reach an OpenTelemetry exporter (in memory here, Azure Monitor in production)."""

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from model_server.telemetry import (
    EVENT_NAME_KEY,
    FEEDBACK_EVENT,
    PREDICTION_EVENT,
    Telemetry,
    configure,
)


@pytest.fixture
def exporter() -> Iterator[InMemoryLogRecordExporter]:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    handler = LoggingHandler(logger_provider=provider)
    logger = logging.getLogger("airparadis")
    logger.addHandler(handler)
    yield exporter
    logger.removeHandler(handler)
    provider.shutdown()


def test_prediction_and_feedback_events(exporter: InMemoryLogRecordExporter) -> None:
    telemetry = Telemetry(enabled=True)
    telemetry.predictions(
        ["positive", "negative"], np.array([0.9, 0.2]), 0.004, "7", {"x-request-id": "r1"}
    )
    telemetry.feedback("wrong", "positive", "7")
    records = [r.log_record for r in exporter.get_finished_logs()]
    events = [dict(r.attributes or {}) for r in records]
    assert [e[EVENT_NAME_KEY] for e in events] == [
        PREDICTION_EVENT,
        PREDICTION_EVENT,
        FEEDBACK_EVENT,
    ]
    assert events[0]["label"] == "positive"
    assert events[0]["probability"] == pytest.approx(0.9)
    assert events[0]["latency_ms"] == pytest.approx(4.0)
    assert events[0]["model_version"] == "7" and events[0]["request_id"] == "r1"
    assert events[2]["verdict"] == "wrong"


def test_no_connection_string_means_no_exporter(exporter: InMemoryLogRecordExporter) -> None:
    telemetry = configure(None)
    assert telemetry.enabled is False
    telemetry.feedback("wrong", "positive", "7")
    assert exporter.get_finished_logs() == ()


def test_drift_and_misprediction_gauges_reach_an_otel_reader(tiny_bundle: Path) -> None:
    """What Azure Monitor receives as customMetrics: nothing before the signals exist, then
    the PSI per signal and the rate, read at export time."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from airparadis.bundle import load_bundle
    from airparadis.drift import load_reference
    from model_server.drift import DriftMonitor
    from model_server.telemetry import observe_health_gauges

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    drift = DriftMonitor(window=50, min_tweets=20, psi_threshold=0.25)
    drift.use_reference(load_reference(tiny_bundle))
    rate = [float("nan")]
    observe_health_gauges(drift, lambda: rate[0], provider)

    def exported() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        data = reader.get_metrics_data()
        points = {}
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        labels = tuple(sorted((point.attributes or {}).items()))
                        points[(metric.name, labels)] = point.value
        return points

    # No window yet, no verdicts yet: only the prior the model assumes is sent, never a NaN.
    assert exported() == {("airparadis_positive_prior", (("source", "training"),)): 0.5}
    tweets = ["vol annulé encore une fois, bagages perdus et service client injoignable"] * 30
    drift.record(tweets, load_bundle(tiny_bundle).predict_proba(tweets))
    rate[0] = 0.4
    points = exported()
    report = drift.report()
    assert report is not None
    assert points[("airparadis_drift_psi", (("signal", "length"),))] == report.psi_length
    assert points[("airparadis_drift_psi", (("signal", "probability"),))] == pytest.approx(
        report.psi_probability
    )
    assert points[("airparadis_misprediction_rate", ())] == 0.4
    estimate = drift.prior()
    assert estimate is not None
    assert points[("airparadis_positive_prior", (("source", "estimated"),))] == estimate.prior
    provider.shutdown()
