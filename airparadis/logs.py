"""One log format for every component: plain text for a terminal, or one JSON object a line.

`AIRPARADIS_LOG_FORMAT=json` (PlatformSettings.log_format) switches the server, the dashboard
and the Jobs alike, since they all log through the root handler the CLI sets up here. A JSON
line holds time (UTC), level, logger and message, the request id of the request being answered
(the server sets it from X-Request-ID, or makes one), and the trace and span ids when an
OpenTelemetry span is current. Lines are ASCII: a newline, control character or lone surrogate
in a message is escaped by the JSON encoder, so one record is always one line.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REQUEST_ID: ContextVar[str | None] = ContextVar("airparadis_request_id", default=None)
"""The id of the request being answered, for the log lines written while answering it."""


class JsonFormatter(logging.Formatter):
    """A record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        entry.update(trace_ids())
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=True, default=str)


def trace_ids() -> dict[str, str]:
    """The current OpenTelemetry span's trace and span ids; empty without a span (or OTel)."""
    try:
        from opentelemetry import trace
    except ImportError:  # OTel comes with the serving extra; the rest logs without trace ids
        return {}
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


def configure(log_format: LogFormat = "text", level: int = logging.INFO) -> None:
    """The root handler every component's loggers reach (kserve and uvicorn included: kserve
    leaves logging alone once the root logger has a handler). In JSON, Python warnings become
    records too, so nothing reaches the terminal in another format."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(log_format == "json")
