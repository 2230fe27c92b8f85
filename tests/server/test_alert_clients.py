"""The wrong-prediction rules need wrong verdicts from several clients: one user clicking
"Wrong" cannot page ops alone (`alert_min_distinct_clients`, 2 by default)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from model_server.alerting import (
    MISPREDICTION_RULE,
    RULE,
    MispredictionRateRule,
    NegativeFeedbackRule,
)
from model_server.feedback import FeedbackStore, default_sqlite_url
from model_server.settings import ServerSettings
from tests.conftest import RunningServer, start_server


def _wrong(n: int) -> dict[str, object]:
    return {"tweet": f"my bag is lost {n}", "predicted_label": "positive", "verdict": "wrong"}


@pytest.fixture(params=["counted", "table"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> FeedbackStore:
    """A store keeping the window's counts in memory, and one reading them from its table."""
    windows = (300, 3600) if request.param == "counted" else ()
    return FeedbackStore(default_sqlite_url(tmp_path), windows)


def test_the_default_needs_two_clients() -> None:
    assert ServerSettings().alert.min_distinct_clients == 2


def test_three_wrongs_from_one_client_do_not_fire_three_from_two_do(store: FeedbackStore) -> None:
    rule = NegativeFeedbackRule(store, threshold=3, window_seconds=300, min_distinct_clients=2)
    for n in range(3):
        store.add(_wrong(n), client_id="ip:10.0.0.1")
        assert rule.evaluate("3", "ip:10.0.0.1") is None
    assert store.alerts() == []

    store.add(_wrong(3), client_id="key:abc")
    alert = rule.evaluate("3", "key:abc")
    assert alert is not None and alert["count"] == 4
    assert alert["clients"] == ["key:abc", "ip:10.0.0.1"]  # latest first
    stored = store.alerts()
    assert len(stored) == 1 and stored[0]["rule"] == RULE
    assert stored[0]["clients"] == ["key:abc", "ip:10.0.0.1"] and stored[0]["verdicts"] == 4


def test_two_wrongs_from_each_of_two_clients_reach_a_threshold_of_three(
    store: FeedbackStore,
) -> None:
    rule = NegativeFeedbackRule(store, threshold=3, window_seconds=300, min_distinct_clients=2)
    store.add(_wrong(0), client_id="ip:10.0.0.1")
    store.add(_wrong(1), client_id="ip:10.0.0.2")
    assert rule.evaluate("3") is None  # two clients, but two wrongs
    store.add(_wrong(2), client_id="ip:10.0.0.1")
    assert rule.evaluate("3") is not None


def test_one_client_restores_the_plain_count(store: FeedbackStore) -> None:
    rule = NegativeFeedbackRule(store, threshold=3, window_seconds=300, min_distinct_clients=1)
    fired = []
    for n in range(3):
        store.add(_wrong(n), client_id="ip:10.0.0.1")
        fired.append(rule.evaluate("3", "ip:10.0.0.1"))
    assert [a is not None for a in fired] == [False, False, True]
    assert store.alerts()[0]["clients"] == ["ip:10.0.0.1"]


def test_the_rate_rule_needs_two_clients_too(store: FeedbackStore) -> None:
    rule = MispredictionRateRule(
        store, threshold=0.5, window_seconds=3600, min_feedback=4, min_distinct_clients=2
    )
    for n in range(4):
        store.add(_wrong(n), client_id="ip:10.0.0.1")
        assert rule.evaluate("3") is None  # 100 % wrong, from one client
    store.add({**_wrong(9), "verdict": "correct"}, client_id="ip:10.0.0.2")
    assert rule.evaluate("3") is None  # the second client said "correct"
    store.add(_wrong(10), client_id="ip:10.0.0.2")
    alert = rule.evaluate("3")
    assert alert is not None and alert["rule"] == MISPREDICTION_RULE
    assert (alert["count"], alert["verdicts"], alert["threshold"]) == (5, 6, 50)


def test_the_route_needs_two_peers_by_default(model_server: RunningServer) -> None:
    """Through the real server with its default settings: three wrongs from 127.0.0.1 do not
    fire; one more from 127.0.0.2 (another loopback address) does, naming both."""
    answer = httpx.get(f"{model_server.url}/v1/alerts").json()
    assert answer["min_distinct_clients"] == 2
    assert answer["misprediction"]["min_distinct_clients"] == 2
    before = len(answer["alerts"])
    with httpx.Client() as one:
        receipts = [
            one.post(f"{model_server.url}/v1/feedback", json=_wrong(n)).json() for n in range(3)
        ]
    assert all(r["alert"] is None for r in receipts)
    assert len(httpx.get(f"{model_server.url}/v1/alerts").json()["alerts"]) == before
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=transport) as two:
        receipt = two.post(f"{model_server.url}/v1/feedback", json=_wrong(3)).json()
    if before == 0:  # a rule that already fired in this window stays quiet
        assert receipt["alert"] is not None
        assert receipt["alert"]["clients"][0] == "ip:127.0.0.2"
        assert "ip:127.0.0.1" in receipt["alert"]["clients"]
        stored = httpx.get(f"{model_server.url}/v1/alerts").json()["alerts"][0]
        assert stored["clients"] == receipt["alert"]["clients"]


def test_the_setting_at_one_fires_on_one_peer(tmp_path: Path, tiny_bundle: Path) -> None:
    server = start_server(
        tmp_path, str(tiny_bundle), AIRPARADIS_SERVER_ALERT_MIN_DISTINCT_CLIENTS="1"
    )
    try:
        url = f"{server.url}/v1/feedback"
        receipts = [httpx.post(url, json=_wrong(n), timeout=30).json() for n in range(3)]
        assert [r["alert"] is not None for r in receipts] == [False, False, True]
        assert receipts[2]["alert"]["clients"] == ["ip:127.0.0.1"]
        assert httpx.get(f"{server.url}/v1/alerts").json()["min_distinct_clients"] == 1
    finally:
        server.stop()
