"""How the server answers and logs an error: kserve's handlers, replaced at the same place.

kserve logs every error it handles with a full traceback, a client's mistake included, so a
stream of small bad requests grows the log by kilobytes each, and the request's own text (a
model name, a tweet quoted in a message) reaches the log as it came. Here a client error
(4xx, and the 503 of a model not yet loaded) is logged once, on one line, with request-derived
text escaped and cut short; a server error keeps its traceback, its message escaped the same
way. Error bodies are made JSON-safe too: a body echoing back a NaN or a lone surrogate from
the request must not turn a 422 into a 500.
"""

from __future__ import annotations

import logging
import math
import traceback
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kserve.errors import (
    InferenceError,
    InvalidInput,
    ModelNotFound,
    ModelNotReady,
    ServerNotLive,
    ServerNotReady,
    UnsupportedProtocol,
)

logger = logging.getLogger("airparadis.errors")
MAX_LOGGED_CHARS = 200

Handler = Callable[[Request, Exception], Awaitable[JSONResponse]]


def escape(text: object, limit: int = MAX_LOGGED_CHARS) -> str:
    """`text` on one line, every unprintable character (line breaks, controls, lone
    surrogates, bidi overrides) as a backslash escape, cut at `limit` characters."""
    raw = str(text)
    cut = raw[:limit]
    out = "".join(c if c.isprintable() else _escape_char(c) for c in cut)
    return out + (f"...(+{len(raw) - limit} chars)" if len(raw) > limit else "")


def _escape_char(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def json_safe(value: Any) -> Any:
    """`value` with strings valid UTF-8 and floats finite, so any JSON encoder takes it."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {json_safe(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _where(request: Request) -> str:
    return f"{request.method} {escape(request.url.path, 120)}"


def client_error(status: int) -> Handler:
    """Answer `status` with {"error": message}; one INFO line, no traceback."""

    async def handle(request: Request, exc: Exception) -> JSONResponse:
        message = str(exc) or HTTPStatus(status).phrase
        logger.info("answered %d to %s: %s", status, _where(request), escape(message))
        return JSONResponse({"error": json_safe(message)}, status_code=status)

    return handle


async def server_error(request: Request, exc: Exception) -> JSONResponse:
    """500 with the traceback's frames; the exception's own message escaped like the rest."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    logger.error(
        "server error on %s: %s: %s\nTraceback (most recent call last):\n%s",
        _where(request),
        type(exc).__name__,
        escape(exc, 1000),
        frames.rstrip(),
    )
    return JSONResponse({"error": json_safe(f"{type(exc).__name__}: {exc}")}, status_code=500)


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422, without echoing the input back (it may not be encodable) and logged
    on one line."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {k: v for k, v in error.items() if k not in ("input", "ctx", "url")}
        for error in exc.errors()
    ]
    logger.info(
        "answered 422 to %s: %s", _where(request), escape(errors[0]["msg"] if errors else "")
    )
    return JSONResponse({"detail": json_safe(jsonable_encoder(errors))}, status_code=422)


class _AlreadyLogged(logging.Filter):
    """Starlette re-raises an exception after its 500 handler ran, and uvicorn then logs it
    again, message unescaped: `server_error` has already logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Exception in ASGI application")


def install(app: FastAPI) -> None:
    """Replace kserve's handlers (registered by its REST server) with these."""
    logging.getLogger("uvicorn.error").addFilter(_AlreadyLogged())
    app.add_exception_handler(InvalidInput, client_error(400))
    app.add_exception_handler(ModelNotFound, client_error(404))
    # kserve answers 501 to a model_version it cannot address: the client's error here.
    app.add_exception_handler(NotImplementedError, client_error(400))
    app.add_exception_handler(UnsupportedProtocol, client_error(400))
    app.add_exception_handler(ModelNotReady, client_error(503))
    app.add_exception_handler(ServerNotReady, client_error(503))
    app.add_exception_handler(ServerNotLive, client_error(503))
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(InferenceError, server_error)
    app.add_exception_handler(Exception, server_error)
