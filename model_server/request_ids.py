"""A request id for each HTTP request, so that JSON log lines name the request they are about."""

from __future__ import annotations

from uuid import uuid4

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from airparadis.logs import REQUEST_ID

HEADER = b"x-request-id"
MAX_CHARS = 128


def _given(scope: Scope) -> str | None:
    """The client's (or the ingress's) X-Request-ID, printable ASCII and bounded; else None."""
    for name, value in scope.get("headers", ()):
        if name == HEADER:
            text = "".join(c for c in value.decode("latin-1")[:MAX_CHARS] if " " < c <= "~")
            return text or None
    return None


class RequestIds:
    """ASGI middleware: X-Request-ID (the caller's, or a new one) is set in
    `airparadis.logs.REQUEST_ID` while the request is answered, and sent back in the answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _given(scope) or uuid4().hex
        token = REQUEST_ID.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != HEADER]
                message["headers"] = [*headers, (HEADER, request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
