"""Custom events reach an OpenTelemetry exporter (in memory here, Azure Monitor in production)."""

import logging
from collections.abc import Iterator

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
