"""Who may post feedback, and how often: API keys or bearer tokens, and a per-client limit.

Authentication is off in the embedded mode and on in the chart. A bearer token must be signed
by a key of the configured issuer's JWKS, for the configured audience. Rate limiting uses the
`limits` library's moving window, keyed on the authenticated client (or the peer address).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException, Request
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from model_server.settings import ServerSettings


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

    def client_id(self, request: Request) -> str:
        """The authenticated client, or the peer address when authentication is off."""
        authorization = request.headers.get("authorization", "")
        key = request.headers.get("x-api-key")
        if key is None and authorization.lower().startswith("apikey "):
            key = authorization[7:].strip()
        if key is not None:
            for known in self._keys:
                if hmac.compare_digest(key.encode(), known):
                    return "key:" + hashlib.sha256(known).hexdigest()[:12]
            raise _unauthorized("unknown API key")
        if authorization.lower().startswith("bearer "):
            return "sub:" + self._verify(authorization[7:].strip())
        if self.required:
            raise _unauthorized("send an X-API-Key header or an Authorization: Bearer token")
        return "ip:" + (request.client.host if request.client else "unknown")

    def _verify(self, token: str) -> str:
        if self._jwks is None:
            raise _unauthorized("bearer tokens are not configured on this server")
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
            raise _unauthorized(f"invalid bearer token: {exc}") from exc
        return str(claims["sub"])


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer, ApiKey"})


def feedback_guard(settings: ServerSettings) -> Callable[[Request], str]:
    """A FastAPI dependency: authenticate, then count the call against the client's limit."""
    authenticator = Authenticator(settings)
    limiter = MovingWindowRateLimiter(MemoryStorage())
    limit = RateLimitItemPerMinute(settings.feedback_per_minute)

    def guard(request: Request) -> str:
        client = authenticator.client_id(request)
        if not limiter.hit(limit, "feedback", client):
            raise HTTPException(
                429,
                f"more than {settings.feedback_per_minute} feedbacks a minute from this client",
                headers={"Retry-After": "60"},
            )
        return client

    return guard
