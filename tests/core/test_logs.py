"""JSON logs: one object a line, with the request id and the OpenTelemetry trace id."""

from __future__ import annotations

import json
import logging

import pytest

from airparadis.logs import REQUEST_ID, JsonFormatter, configure


def _record(message: str, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("airparadis.test", logging.WARNING, __file__, 1, message, (), exc_info)


def test_a_record_is_one_json_line_whatever_its_message() -> None:
    line = JsonFormatter().format(_record("two\nlines, a \ud800 surrogate and é"))
    assert "\n" not in line and line.isascii()
    entry = json.loads(line)
    assert entry["message"] == "two\nlines, a \ud800 surrogate and é"
    assert entry["level"] == "WARNING" and entry["logger"] == "airparadis.test"
    assert entry["time"].endswith("+00:00")
    assert "request_id" not in entry and "trace_id" not in entry


def test_the_request_id_and_the_trace_id_are_fields() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("test")
    token = REQUEST_ID.set("req-42")
    try:
        with tracer.start_as_current_span("predict") as span:
            entry = json.loads(JsonFormatter().format(_record("answered")))
    finally:
        REQUEST_ID.reset(token)
    assert entry["request_id"] == "req-42"
    assert entry["trace_id"] == f"{span.get_span_context().trace_id:032x}"
    assert entry["span_id"] == f"{span.get_span_context().span_id:016x}"


def test_an_exception_stays_in_the_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError as exc:
        entry = json.loads(JsonFormatter().format(_record("failed", exc)))
    assert "ValueError: boom" in entry["exception"] and "Traceback" in entry["exception"]


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_configure_sets_the_root_handler(
    log_format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure(log_format)  # type: ignore[arg-type]
        logging.getLogger("kserve").info("hello")
        err = capsys.readouterr().err.strip()
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
        logging.captureWarnings(False)
    if log_format == "json":
        assert json.loads(err)["message"] == "hello"
    else:
        assert err.endswith("INFO kserve: hello")
