"""Who the client is, which routes need them to say so, and how often they may post feedback.

Authentication is off in the embedded mode and on in the chart. A bearer token must be signed
by a key of the configured issuer's JWKS, for the configured audience. With authentication on,
the routes not named in `open_routes` need an API key or a token (ops data and recent
feedback by default; predictions stay open). Rate limiting is a moving window per client
(`ClientRateLimiter`), keyed on the authenticated client, else on the peer address: an IPv6
peer by its /64, which one host can rotate through. The peer is the TCP peer unless it is a
configured proxy (`trusted_proxies`, read by uvicorn): no request header changes who the client
is otherwise.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from typing import Any, get_args

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from model_server.settings import RouteName, ServerSettings

_EXACT_ROUTES = {
    "/v1/feedback": "feedback",
    "/v1/feedback/recent": "recent_feedback",
    "/v1/feedback/labels": "recent_feedback",  # the same store, counted: the same protection
    "/v1/alerts": "alerts",
    "/v1/drift": "drift",
    "/v1/info": "info",
    "/metrics": "metrics",
    "/openapi.json": "openapi",
    "/docs": "openapi",
    "/docs/oauth2-redirect": "openapi",
    "/redoc": "openapi",
}
_MODEL_PREFIXES = ("/v1/models", "/v2/models")
CHALLENGE = "Bearer, ApiKey"


class Unauthorized(Exception):
    """The request's credentials are missing where required, or invalid."""


def route_name(path: str) -> str | None:
    """The name `open_routes` uses for `path`; None for what is always open (health, /)."""
    name = _EXACT_ROUTES.get(path)
    if name is None and path.startswith(_MODEL_PREFIXES):
        return "predict"
    return name


def peer_identity(host: str | None) -> str:
    """The rate-limit key of an unauthenticated peer."""
    if host is None:
        return "ip:unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "ip:" + host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"ip:{address.ipv4_mapped}"
        return "ip:" + str(ipaddress.ip_network(f"{address}/64", strict=False))
    return f"ip:{address}"


class Authenticator:
    def __init__(self, settings: ServerSettings) -> None:
        self.required = settings.auth_required
        self._keys = [k.get_secret_value().encode() for k in settings.api_keys]
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self._jwks: Any = None
        if settings.jwks_url:
            from jwt import PyJWKClient

            self._jwks = PyJWKClient(settings.jwks_url, cache_keys=True, lifespan=3600)

    def identify(self, headers: Mapping[str, str], peer: str | None, required: bool) -> str:
        """The authenticated client, or the peer when credentials are not required and none
        were sent. Credentials that were sent must be valid either way."""
        authorization = headers.get("authorization", "")
        key = headers.get("x-api-key")
        if key is None and authorization.lower().startswith("apikey "):
            key = authorization[7:].strip()
        if key is not None:
            for known in self._keys:
                if hmac.compare_digest(key.encode(), known):
                    return "key:" + hashlib.sha256(known).hexdigest()[:12]
            raise Unauthorized("unknown API key")
        if authorization.lower().startswith("bearer "):
            return "sub:" + self._verify(authorization[7:].strip())
        if required:
            raise Unauthorized("send an X-API-Key header or an Authorization: Bearer token")
        return peer_identity(peer)

    def client_id(self, request: Request) -> str:
        """The client of `request`, as `identify` says under `auth_required`; 401 otherwise."""
        peer = request.client.host if request.client else None
        try:
            return self.identify(request.headers, peer, self.required)
        except Unauthorized as exc:
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": CHALLENGE}) from exc

    def _verify(self, token: str) -> str:
        if self._jwks is None:
            raise Unauthorized("bearer tokens are not configured on this server")
        import jwt

        try:
            signing_key = self._jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                signing_key.key,
                algorithms=["RS256", "ES256"],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp", "iss", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid bearer token: {exc}") from exc
        return str(claims["sub"])


class AccessControl:
    """ASGI middleware: a protected route answers 401 without valid credentials, before
    anything else runs; the client it identified is left in `request.state.client_id`."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator, protected: set[str]) -> None:
        self.app = app
        self.authenticator = authenticator
        self.protected = frozenset(protected)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and self.authenticator.required
            and route_name(scope["path"]) in self.protected
        ):
            client = scope.get("client")
            headers = Headers(scope=scope)
            peer = client[0] if client else None
            try:
                if headers.get("authorization", "").lower().startswith("bearer "):
                    # The issuer's keys may have to be fetched: off the event loop.
                    identity = await run_in_threadpool(
                        self.authenticator.identify, headers, peer, True
                    )
                else:
                    identity = self.authenticator.identify(headers, peer, True)
            except Unauthorized as exc:
                await _send_unauthorized(send, str(exc))
                return
            scope.setdefault("state", {})["client_id"] = identity
        await self.app(scope, receive, send)


async def _send_unauthorized(send: Send, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", CHALLENGE.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def protected_routes(settings: ServerSettings) -> set[str]:
    """Every route name not listed in `open_routes`."""
    return set(get_args(RouteName)) - set(settings.open_routes)


def feedback_guard(
    settings: ServerSettings, authenticator: Authenticator | None = None
) -> Callable[[Request], str]:
    """A FastAPI dependency: the client (as AccessControl identified it, or from the request
    when the route is open), counted against its feedback limit."""
    authenticator = authenticator or Authenticator(settings)
    required = settings.auth_required and "feedback" in protected_routes(settings)
    limiter = ClientRateLimiter(settings.feedback_per_minute, window_seconds=60.0)

    def guard(request: Request) -> str:
        client: str | None = getattr(request.state, "client_id", None)
        if client is None:
            try:
                client = authenticator.identify(
                    request.headers, request.client.host if request.client else None, required
                )
            except Unauthorized as exc:
                raise HTTPException(401, str(exc), headers={"WWW-Authenticate": CHALLENGE}) from exc
        if not limiter.hit(client):
            raise HTTPException(
                429,
                f"more than {settings.feedback_per_minute} feedbacks a minute from this client",
                headers={"Retry-After": "60"},
            )
        return client

    return guard


class ClientRateLimiter:
    """At most `limit` hits per client within any `window_seconds` (a moving window).

    Written here rather than taken from the `limits` library: its in-memory storage keeps an
    entry for every key it has ever seen and walks all of them every 10 ms, so clients that
    keep changing identity (new addresses, new token subjects) grow the server's memory and
    the CPU it spends on the limiter without end. Here a client's hits are at most `limit`
    times, and a client whose last hit has left the window is forgotten as others arrive
    (clients are kept in the order of their last hit), so memory and time follow the clients
    active within one window.
    """

    def __init__(
        self,
        limit: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._clock = clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, client: str) -> bool:
        """Count a hit for `client`; False (not counted) when it already has `limit` hits
        within the window."""
        now = self._clock()
        with self._lock:
            self._forget(now - self.window_seconds)
            hits = self._hits.get(client)
            if hits is None:
                hits = self._hits[client] = deque(maxlen=self.limit)
            else:
                self._hits.move_to_end(client)
            if len(hits) == self.limit and hits[0] > now - self.window_seconds:
                return False
            hits.append(now)
            return True

    def clients(self) -> int:
        """Clients remembered: those with a hit inside the window, and a few just out of it."""
        return len(self._hits)

    def _forget(self, before: float) -> None:
        while self._hits:
            client, hits = next(iter(self._hits.items()))
            if hits and hits[-1] > before:
                return
            del self._hits[client]
