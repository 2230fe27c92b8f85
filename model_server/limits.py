"""Admission control in front of the app: body size, predict requests in progress, a full
model queue, and bodies that are not strict JSON.

Each answers at once with a JSON error, before the body is read or decoded, so a client over
the limit never waits in a queue that only grows, refusing costs far less than serving (under
overload most requests are refused), and the probes keep answering.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_LIMITED_SUFFIXES = (":predict", "/infer", ":explain")
DISABLED_PREFIX = "/v2/repository"
# Routes whose body FastAPI parses with the lenient `json` module (NaN, Infinity, lone
# surrogates); kserve parses v1 bodies with orjson, which refuses them. Checking these with
# orjson first makes every route accept the same JSON, and refuse the rest with a 400.
_LENIENT_JSON_SUFFIXES = ("/infer", "/v1/feedback")
_BINARY_EXTENSION_HEADER = b"inference-header-content-length"


async def _send_error(send: Send, status: int, message: str, retry_after: int | None) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestLimits:
    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        max_in_flight: int,
        retry_after: int,
        queue_full: Callable[[], bool] = lambda: False,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_in_flight = max_in_flight
        self.retry_after = retry_after
        self.queue_full = queue_full
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(DISABLED_PREFIX):
            await _send_error(send, 404, "the model repository API is disabled", None)
            return
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        limited = scope["path"].endswith(_LIMITED_SUFFIXES)
        if limited and self.queue_full():
            await _send_error(
                send, 503, "server overloaded: the model queue is full", self.retry_after
            )
            return
        headers = dict(scope["headers"])
        strict = scope["path"].endswith(_LENIENT_JSON_SUFFIXES)
        if strict and _BINARY_EXTENSION_HEADER in headers:
            await _send_error(send, 400, "the binary tensor extension is not supported", None)
            return
        length = headers.get(b"content-length")
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                await _send_error(send, 400, "invalid Content-Length header", None)
                return
            if size > self.max_body_bytes:
                await _send_error(send, 413, f"request body over {self.max_body_bytes} bytes", None)
                return
        if length is None or strict:
            buffered = await self._read_bounded(receive)
            if buffered is None:
                await _send_error(send, 413, f"request body over {self.max_body_bytes} bytes", None)
                return
            if strict and buffered.strip():
                try:
                    orjson.loads(buffered)
                except orjson.JSONDecodeError as exc:
                    await _send_error(send, 400, f"request body is not valid JSON: {exc}", None)
                    return
            receive = _replay(buffered)

        if not limited:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            await _send_error(
                send, 503, "server overloaded: too many requests in progress", self.retry_after
            )
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _read_bounded(self, receive: Receive) -> bytes | None:
        """The whole body of a request without Content-Length, or None past the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


def overload_handler(retry_after: int) -> Any:
    """Exception handler turning `Overloaded` into 503 with Retry-After."""
    from fastapi import Request
    from fastapi.responses import JSONResponse

    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"error": f"server overloaded: {exc}"},
            status_code=503,
            headers={"Retry-After": str(retry_after)},
        )

    return handle
