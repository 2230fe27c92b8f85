"""Feedback needs an API key or a bearer token of the configured issuer, and is rate-limited."""

import http.server
import json
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from model_server.feedback import FeedbackStore, default_sqlite_url
from model_server.security import ClientRateLimiter
from tests.conftest import RunningServer, start_server

ISSUER = "https://login.example.test/tenant/v2.0"
AUDIENCE = "api://airparadis"
BODY = {"tweet": "lost bag", "predicted_label": "positive", "verdict": "wrong"}


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_url(
    tmp_path_factory: pytest.TempPathFactory, signing_key: rsa.RSAPrivateKey
) -> Iterator[str]:
    root = tmp_path_factory.mktemp("jwks")
    jwk = json.loads(RSAAlgorithm.to_jwk(signing_key.public_key()))
    jwk.update(kid="k1", use="sig", alg="RS256")
    (root / "keys.json").write_text(json.dumps({"keys": [jwk]}))
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/keys.json"
    server.shutdown()


def _secured_server(home: Path, bundle: Path, jwks_url: str) -> RunningServer:
    return start_server(
        home,
        str(bundle),
        AIRPARADIS_SERVER_AUTH_REQUIRED="true",
        AIRPARADIS_SERVER_API_KEYS="key-one,key-two",
        AIRPARADIS_SERVER_JWKS_URL=jwks_url,
        AIRPARADIS_SERVER_JWT_ISSUER=ISSUER,
        AIRPARADIS_SERVER_JWT_AUDIENCE=AUDIENCE,
        AIRPARADIS_SERVER_FEEDBACK_PER_MINUTE="3",
    )


@pytest.fixture(scope="module")
def secured(
    tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path, jwks_url: str
) -> Iterator[RunningServer]:
    server = _secured_server(tmp_path_factory.mktemp("secured"), tiny_bundle, jwks_url)
    yield server
    server.stop()


def _token(key: rsa.RSAPrivateKey, **claims: object) -> str:
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "exp": int(time.time()) + 300}
    payload.update(claims)
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": "k1"})


def _stored(server: RunningServer) -> int:
    return len(FeedbackStore(default_sqlite_url(server.home)).export_rows())


def test_unauthenticated_feedback_is_401_and_nothing_is_stored(
    secured: RunningServer, signing_key: rsa.RSAPrivateKey
) -> None:
    url = f"{secured.url}/v1/feedback"
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    attempts = [
        {},
        {"X-API-Key": "wrong"},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": f"Bearer {_token(signing_key, iss='https://evil.test')}"},
        {"Authorization": f"Bearer {_token(signing_key, exp=int(time.time()) - 10)}"},
        {"Authorization": f"Bearer {_token(other_key)}"},
    ]
    for headers in attempts:
        response = httpx.post(url, json=BODY, headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["detail"]
    assert _stored(secured) == 0
    # Predictions stay open; only feedback is guarded.
    assert httpx.post(secured.predict_url, json={"instances": ["hi"]}).status_code == 200


def test_api_key_and_bearer_token_are_accepted_then_rate_limited(
    secured: RunningServer, signing_key: rsa.RSAPrivateKey
) -> None:
    url = f"{secured.url}/v1/feedback"
    key = {"Authorization": "ApiKey key-two"}
    codes = [httpx.post(url, json=BODY, headers=key).status_code for _ in range(5)]
    assert codes == [201, 201, 201, 429, 429]
    limited = httpx.post(url, json=BODY, headers=key)
    assert limited.headers["retry-after"] == "60"
    # Another client has its own allowance.
    bearer = {"Authorization": f"Bearer {_token(signing_key)}"}
    assert httpx.post(url, json=BODY, headers=bearer).status_code == 201
    assert _stored(secured) == 4  # every acknowledged feedback, and only those


OPS_ROUTES = ["/v1/drift", "/v1/alerts", "/v1/feedback/recent", "/metrics"]
OPEN_ROUTES = ["/v1/info", "/openapi.json", "/v2/health/ready", "/v2/health/live", "/v2"]


def test_ops_data_and_recent_feedback_need_credentials(
    secured: RunningServer, signing_key: rsa.RSAPrivateKey
) -> None:
    for path in OPS_ROUTES:
        refused = httpx.get(f"{secured.url}{path}")
        assert refused.status_code == 401, path
        assert refused.headers["www-authenticate"] == "Bearer, ApiKey"
        assert httpx.get(f"{secured.url}{path}", headers={"X-API-Key": "wrong"}).status_code == 401
        assert (
            httpx.get(f"{secured.url}{path}", headers={"X-API-Key": "key-one"}).status_code == 200
        )
        bearer = {"Authorization": f"Bearer {_token(signing_key, sub='ops-viewer')}"}
        assert httpx.get(f"{secured.url}{path}", headers=bearer).status_code == 200
    for path in OPEN_ROUTES:
        assert httpx.get(f"{secured.url}{path}").status_code == 200, path


def test_open_routes_is_a_setting(tmp_path: Path, tiny_bundle: Path) -> None:
    server = start_server(
        tmp_path,
        str(tiny_bundle),
        AIRPARADIS_SERVER_AUTH_REQUIRED="true",
        AIRPARADIS_SERVER_API_KEYS="key-one",
        AIRPARADIS_SERVER_OPEN_ROUTES="metrics,info",
    )
    try:
        assert httpx.get(f"{server.url}/metrics").status_code == 200
        assert httpx.get(f"{server.url}/v1/drift").status_code == 401
        assert httpx.get(f"{server.url}/openapi.json").status_code == 401
        predict = httpx.post(server.predict_url, json={"instances": ["hi"]})
        assert predict.status_code == 401
        keyed = {"X-API-Key": "key-one"}
        assert httpx.post(server.predict_url, json={"instances": ["hi"]}, headers=keyed).is_success
    finally:
        server.stop()


def test_an_alert_names_the_client_that_fired_it(
    tmp_path: Path, tiny_bundle: Path, jwks_url: str, signing_key: rsa.RSAPrivateKey
) -> None:
    # A server of its own: the rule fires once per window, and the module's server has
    # taken wrong verdicts from the other tests' clients.
    server = _secured_server(tmp_path, tiny_bundle, jwks_url)
    try:
        bearer = {"Authorization": f"Bearer {_token(signing_key, sub='noisy-client')}"}
        for _ in range(3):
            httpx.post(f"{server.url}/v1/feedback", json=BODY, headers=bearer)
        alerts = httpx.get(f"{server.url}/v1/alerts", headers={"X-API-Key": "key-one"}).json()
        assert alerts["alerts"] == []  # one client alone does not page ops (2 needed)
        second = {"Authorization": f"Bearer {_token(signing_key, sub='second-client')}"}
        httpx.post(f"{server.url}/v1/feedback", json=BODY, headers=second)
        alerts = httpx.get(f"{server.url}/v1/alerts", headers={"X-API-Key": "key-one"}).json()
        (alert,) = alerts["alerts"]
        assert alert["client_id"] == "sub:second-client"
        assert set(alert["clients"]) == {"sub:noisy-client", "sub:second-client"}
    finally:
        server.stop()


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_limit_is_a_moving_window_per_client() -> None:
    clock = _Clock()
    limiter = ClientRateLimiter(3, window_seconds=60, clock=clock)
    assert [limiter.hit("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.hit("b")  # another client has its own window
    clock.now += 59
    assert not limiter.hit("a")  # its first three hits are still within 60 s
    clock.now += 2
    assert limiter.hit("a") and limiter.hit("a") and limiter.hit("a") and not limiter.hit("a")


def test_clients_that_rotate_identities_are_forgotten_once_out_of_the_window() -> None:
    """Memory follows the clients of the last window, not every identity ever seen."""
    clock = _Clock()
    limiter = ClientRateLimiter(120, window_seconds=60, clock=clock)
    for i in range(20_000):
        clock.now += 0.01  # 100 new clients a second
        assert limiter.hit(f"ip:10.0.{i // 256}.{i % 256}")
    assert limiter.clients() <= 60 * 100 + 1
    clock.now += 61
    assert limiter.hit("ip:10.1.0.1")
    assert limiter.clients() == 1
