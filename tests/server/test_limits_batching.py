"""Limits, overload shedding and micro-batching on the real server."""

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from airparadis.bundle import load_bundle
from tests.conftest import RunningServer, start_server

TWEETS = [f"flight number {i} was {'great' if i % 2 else 'awful'}" for i in range(2000)]


@pytest.fixture(scope="module")
def strict_server(
    tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path
) -> Iterator[RunningServer]:
    """Small limits, so that each one can be crossed cheaply; every model call goes through the
    micro-batcher (no inline budget: the compiled LR scorer would take 40 tweets inline)."""
    server = start_server(
        tmp_path_factory.mktemp("strict"),
        str(tiny_bundle),
        AIRPARADIS_SERVER_INLINE_BUDGET_US="0",
        AIRPARADIS_SERVER_MAX_INSTANCES="500",
        AIRPARADIS_SERVER_MAX_BODY_BYTES="60000",
        AIRPARADIS_SERVER_MAX_PENDING_TWEETS="600",
        AIRPARADIS_SERVER_MAX_BATCH_WAIT_MS="20",
    )
    yield server
    server.stop()


def test_too_many_instances_is_400(strict_server: RunningServer) -> None:
    response = httpx.post(strict_server.predict_url, json={"instances": TWEETS[:501]})
    assert response.status_code == 400
    assert "too many instances: 501 > 500" in response.json()["error"]


def test_body_over_limit_is_413_also_when_chunked(strict_server: RunningServer) -> None:
    big = {"instances": ["x" * 900] * 80}
    response = httpx.post(strict_server.predict_url, json=big)
    assert response.status_code == 413
    assert "over 60000 bytes" in response.json()["error"]

    def chunks() -> Iterator[bytes]:
        yield b'{"instances": ['
        for _ in range(80):
            yield b'"' + b"x" * 900 + b'",'
        yield b'"x"]}'

    chunked = httpx.post(
        strict_server.predict_url, content=chunks(), headers={"content-type": "application/json"}
    )
    assert chunked.status_code == 413


async def _post_many(url: str, bodies: list[dict[str, list[str]]]) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=60) as client:
        return await asyncio.gather(*(client.post(url, json=b) for b in bodies))


def _histogram_count(metrics: str) -> float:
    match = re.search(r"^airparadis_model_batch_tweets_count (\S+)$", metrics, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_concurrent_requests_share_model_calls(
    strict_server: RunningServer, tiny_bundle: Path
) -> None:
    before = _histogram_count(httpx.get(f"{strict_server.url}/metrics").text)
    bodies = [{"instances": TWEETS[i * 40 : (i + 1) * 40]} for i in range(12)]
    responses = asyncio.run(_post_many(strict_server.predict_url, bodies))
    assert [r.status_code for r in responses] == [200] * 12
    calls = _histogram_count(httpx.get(f"{strict_server.url}/metrics").text) - before
    assert 1 <= calls < 12  # requests were combined
    expected = load_bundle(tiny_bundle).predict_proba(TWEETS[: 12 * 40])
    got = [p["probability"] for r in responses for p in r.json()["predictions"]]
    assert got == pytest.approx(list(expected), abs=1e-9)  # each request gets its own slice


def test_waiting_work_is_bounded_with_503_and_retry_after(strict_server: RunningServer) -> None:
    bodies = [{"instances": TWEETS[:400]} for _ in range(6)]  # 2,400 tweets > 600 pending
    responses = asyncio.run(_post_many(strict_server.predict_url, bodies))
    codes = sorted(r.status_code for r in responses)
    assert 200 in codes and 503 in codes
    shed = next(r for r in responses if r.status_code == 503)
    assert shed.headers["retry-after"] == "1"
    assert "overloaded" in shed.json()["error"]
    # Nothing stays stuck: the server answers normally afterwards.
    assert httpx.post(strict_server.predict_url, json={"instances": TWEETS[:3]}).status_code == 200


async def _live_during_big_requests(server: RunningServer) -> tuple[int, int]:
    async with httpx.AsyncClient(timeout=120) as client:
        big = [
            asyncio.create_task(client.post(server.predict_url, json={"instances": TWEETS}))
            for _ in range(24)
        ]
        await asyncio.sleep(0.05)
        live = await client.get(f"{server.url}/v2/health/live")
        still_running = sum(not task.done() for task in big)
        await asyncio.gather(*big)
        return still_running, live.status_code


def test_probes_answer_while_the_model_works(model_server: RunningServer) -> None:
    """48,000 tweets of model work queue in the model thread; the probe does not wait for them."""
    still_running, live_status = asyncio.run(_live_during_big_requests(model_server))
    assert live_status == 200
    assert still_running >= 1


def test_in_flight_limit_sheds_at_once(tmp_path: Path, tiny_bundle: Path) -> None:
    server = start_server(
        tmp_path,
        str(tiny_bundle),
        AIRPARADIS_SERVER_MAX_IN_FLIGHT_REQUESTS="2",
        AIRPARADIS_SERVER_BATCHING="false",
    )
    try:
        bodies = [{"instances": TWEETS[:1500]} for _ in range(8)]
        responses = asyncio.run(_post_many(server.predict_url, bodies))
        codes = [r.status_code for r in responses]
        assert codes.count(200) >= 2 and 503 in codes
        assert all(r.headers["retry-after"] == "1" for r in responses if r.status_code == 503)
    finally:
        server.stop()


def test_batcher_adds_no_wait_when_idle_and_gathers_under_load() -> None:
    """A lone request is not held for `max_wait_s` (a minute here); concurrent ones share."""
    import asyncio

    import numpy as np

    from model_server.batching import MicroBatcher

    calls: list[int] = []

    def predict(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return np.full(len(texts), 0.5)

    async def scenario() -> None:
        batcher = MicroBatcher(predict, 64, max_wait_s=60.0, max_pending=1000)
        await asyncio.wait_for(batcher.submit(["alone"]), timeout=10)
        results = await asyncio.wait_for(
            asyncio.gather(*(batcher.submit([f"t{i}"]) for i in range(20))), timeout=10
        )
        assert [list(r) for r in results] == [[0.5]] * 20
        assert batcher.pending == 0  # released as soon as the model scored them

    asyncio.run(scenario())
    assert calls[0] == 1
    assert sum(calls) == 21 and len(calls) < 21
