"""Feedback durability and idempotency on SQLite and a real PostgreSQL; alerting; export."""

import asyncio
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from model_server.alerting import ALERT_EVENT, MispredictionRateRule, NegativeFeedbackRule
from model_server.api import _evaluate_rules
from model_server.feedback import (
    FeedbackConflict,
    FeedbackStore,
    FeedbackUnavailable,
    RollingCounts,
    content_hash,
    default_sqlite_url,
    feedback_table,
    window_start,
)
from tests.conftest import RunningServer, free_port, server_env, start_server

POSTGRES_URL = os.environ.get(
    "AIRPARADIS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _record(verdict: str = "wrong", feedback_id: str | None = None) -> dict[str, object]:
    return {
        "id": feedback_id,
        "tweet": "my bag is lost",
        "predicted_label": "positive",
        "probability": 0.8,
        "verdict": verdict,
        "correct_label": None,
        "model_name": "m",
        "model_version": "3",
        "request_id": "r-1",
    }


@pytest.fixture
def postgres_store() -> Iterator[FeedbackStore]:
    """A FeedbackStore in a fresh schema of the real PostgreSQL server."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"create schema {schema}"))
    url = sa.engine.make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    store = FeedbackStore(url.render_as_string(hide_password=False))
    yield store
    store.engine.dispose()
    with admin.begin() as conn:
        conn.execute(sa.text(f"drop schema {schema} cascade"))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> FeedbackStore:
    if request.param == "sqlite":
        return FeedbackStore(default_sqlite_url(tmp_path))
    return request.getfixturevalue("postgres_store")  # type: ignore[no-any-return]


def test_store_is_idempotent_on_client_ids(store: FeedbackStore) -> None:
    first = store.add(_record(feedback_id="abc"))
    again = store.add(_record(feedback_id="abc"))
    other = store.add(_record())
    assert not first.duplicate and again.duplicate
    assert again.created_at == first.created_at
    assert len(other.id) == 32
    rows = store.export_rows()
    assert [r["id"] for r in rows].count("abc") == 1
    assert len(rows) == 2
    assert rows[0]["model_version"] == "3"


def test_alert_fires_at_threshold_once_per_window(
    store: FeedbackStore, caplog: pytest.LogCaptureFixture
) -> None:
    rule = NegativeFeedbackRule(store, threshold=3, window_seconds=300)
    store.add(_record("correct"))
    fired = []
    with caplog.at_level(logging.WARNING, logger="airparadis.alerts"):
        for _ in range(5):
            store.add(_record("wrong"))
            fired.append(rule.evaluate("3"))
    assert [a is not None for a in fired] == [False, False, True, False, False]
    assert fired[2] is not None and fired[2]["count"] == 3
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [ALERT_EVENT]
    assert caplog.records[0].levelname == "WARNING"
    assert len(store.alerts()) == 1


def test_unreachable_store_raises_instead_of_dropping() -> None:
    port = free_port()  # nothing listens there
    store = FeedbackStore(f"postgresql+psycopg://postgres@127.0.0.1:{port}/test?connect_timeout=2")
    with pytest.raises(FeedbackUnavailable):
        store.add(_record())


def test_server_answers_503_when_the_store_is_down(tmp_path: Path, tiny_bundle: Path) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test?connect_timeout=2"
    server = start_server(tmp_path, str(tiny_bundle), AIRPARADIS_SERVER_FEEDBACK_DB_URL=url)
    try:
        body = {"tweet": "x", "predicted_label": "positive", "verdict": "wrong"}
        response = httpx.post(f"{server.url}/v1/feedback", json=body, timeout=30)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert "unavailable" in response.json()["detail"]
        # Predictions do not depend on the feedback store.
        assert httpx.post(server.predict_url, json={"instances": ["hi"]}).status_code == 200
    finally:
        server.stop()


def test_server_alerts_through_the_route(model_server: RunningServer) -> None:
    before = len(httpx.get(f"{model_server.url}/v1/alerts").json()["alerts"])
    answers = [
        httpx.post(
            f"{model_server.url}/v1/feedback",
            json={"tweet": f"delayed {i}", "predicted_label": "positive", "verdict": "wrong"},
        ).json()
        for i in range(3)
    ]
    alerts = httpx.get(f"{model_server.url}/v1/alerts").json()
    assert alerts["threshold"] == 3 and alerts["window_seconds"] == 300
    # One peer (this test's) is one client: by default two must report before it fires
    # (tests/server/test_alert_clients.py sends the second).
    if before == 0:
        assert all(a["alert"] is None for a in answers)
        assert alerts["alerts"] == []
    assert "airparadis_alerts_total" in httpx.get(f"{model_server.url}/metrics").text


def test_feedback_export_cli_writes_parquet(model_server: RunningServer, tmp_path: Path) -> None:
    httpx.post(
        f"{model_server.url}/v1/feedback",
        json={"tweet": "to export", "predicted_label": "negative", "correct_label": "negative"},
    )
    result = subprocess.run(
        [sys.executable, "-m", "airparadis", "feedback", "export", "--out", str(tmp_path / "out")],
        cwd=model_server.home, env=server_env(model_server.home), capture_output=True, text=True, check=True,
    )  # fmt: skip
    table = pq.read_table(tmp_path / "out" / "feedback.parquet")
    rows = table.to_pylist()
    assert any(r["tweet"] == "to export" and r["verdict"] == "correct" for r in rows)
    assert f"{len(rows)} feedback rows" in result.stdout
    assert table.schema.field("created_at").type.tz == "UTC"


async def _post_feedback(url: str, ids: list[str], acked: list[str], workers: int) -> None:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for feedback_id in ids:
        queue.put_nowait(feedback_id)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            feedback_id = queue.get_nowait()
            body = {
                "tweet": "t",
                "predicted_label": "positive",
                "verdict": "wrong",
                "feedback_id": feedback_id,
            }
            try:
                response = await client.post(url, json=body)
            except httpx.HTTPError:
                continue  # the server died mid-request: not acknowledged
            if response.status_code == 201:
                acked.append(feedback_id)

    async with httpx.AsyncClient(timeout=10) as client:
        await asyncio.gather(*(worker(client) for _ in range(workers)))


def test_acknowledged_feedback_survives_kill_9(tmp_path: Path, tiny_bundle: Path) -> None:
    unlimited = {"AIRPARADIS_SERVER_FEEDBACK_PER_MINUTE": "1000000"}
    server = start_server(tmp_path, str(tiny_bundle), **unlimited)
    ids = [f"k9-{i}" for i in range(2000)]
    acked: list[str] = []

    async def run_and_kill() -> None:
        task = asyncio.create_task(_post_feedback(f"{server.url}/v1/feedback", ids, acked, 16))
        while len(acked) < 600 and not task.done():
            await asyncio.sleep(0.01)
        os.kill(server.process.pid, signal.SIGKILL)
        await task

    asyncio.run(run_and_kill())
    server.process.wait()
    assert 600 <= len(acked) < 2000
    restarted = start_server(tmp_path, str(tiny_bundle), **unlimited)
    after_crash = [
        r["feedback_id"] for r in FeedbackStore(default_sqlite_url(tmp_path)).export_rows()
    ]
    assert set(acked) <= set(after_crash)
    assert len(after_crash) == len(set(after_crash))
    try:
        # Retrying every id after the restart stores each unacknowledged one once, too.
        retried: list[str] = []
        asyncio.run(_post_feedback(f"{restarted.url}/v1/feedback", ids, retried, 8))
        assert len(retried) == 2000
    finally:
        restarted.stop()
    stored = [r["feedback_id"] for r in FeedbackStore(default_sqlite_url(tmp_path)).export_rows()]
    assert len(stored) == len(set(stored)) == 2000


def test_misprediction_rate_rule(store: FeedbackStore) -> None:
    from model_server.alerting import MISPREDICTION_RULE, MispredictionRateRule

    rule = MispredictionRateRule(store, threshold=0.5, window_seconds=600, min_feedback=4)
    assert math.isnan(rule.scraped_rate())  # no verdict yet: no rate, not 0 %
    fired = []
    for verdict in ["wrong", "correct", "correct", "correct", "wrong", "wrong", "wrong", "wrong"]:
        store.add(_record(verdict))
        fired.append(rule.evaluate("3"))
    # 4 feedbacks: 25 % wrong; then 40 %, 50 % (fires), 57 %, 62 % (once per window).
    assert [a is not None for a in fired] == [False, False, False, False, False, True, False, False]
    assert rule.scraped_rate() == pytest.approx(5 / 8)
    assert [a["rule"] for a in store.alerts()] == [MISPREDICTION_RULE]


def _with_content(record: dict[str, object]) -> dict[str, object]:
    content = {k: record[k] for k in ("tweet", "predicted_label", "probability", "verdict")}
    return {**record, "content_hash": content_hash(content)}


def test_feedback_ids_are_scoped_per_client_and_conflicts_refused(store: FeedbackStore) -> None:
    first = _with_content({**_record(), "id": None, "feedback_id": "f-1"})
    stored = store.add(first, client_id="key:a")
    retry = store.add(dict(first), client_id="key:a")
    assert not stored.duplicate and retry.duplicate and retry.id == stored.id
    changed = _with_content({**first, "tweet": "something else entirely"})
    with pytest.raises(FeedbackConflict) as conflict:
        store.add(changed, client_id="key:a")
    assert conflict.value.stored_id == stored.id
    other_client = store.add(changed, client_id="key:b")
    assert not other_client.duplicate and other_client.id != stored.id
    rows = {r["id"]: r for r in store.export_rows()}
    assert rows[stored.id]["tweet"] == "my bag is lost"  # the first content is kept
    assert rows[other_client.id]["tweet"] == "something else entirely"
    assert {r["feedback_id"] for r in rows.values()} == {"f-1"}


def _counted_store(store: FeedbackStore, windows: tuple[int, ...]) -> FeedbackStore:
    """A second store (another replica) on the same database, keeping rolling counts."""
    return FeedbackStore(store.engine.url.render_as_string(hide_password=False), windows)


def test_rules_read_rolling_counts_not_the_table(store: FeedbackStore) -> None:
    """A feedback costs one INSERT, whatever the rows already in the window."""
    counted = _counted_store(store, (300, 3600))
    rule = NegativeFeedbackRule(counted, threshold=1000, window_seconds=300)
    statements: list[str] = []

    def record(*args: object) -> None:
        statements.append(str(args[2]))

    sa.event.listen(counted.engine, "before_cursor_execute", record)
    for _ in range(5):
        counted.add(_record("wrong"))
        assert rule.evaluate("3") is None
    sa.event.remove(counted.engine, "before_cursor_execute", record)
    assert counted.window_counts(300) == (5, 5)
    assert [s.split()[0].upper() for s in statements] == ["INSERT"] * 5


def test_rolling_counts_are_seeded_and_take_in_other_replicas(store: FeedbackStore) -> None:
    store.add(_record("wrong"))  # before the replicas start
    one, two = _counted_store(store, (300,)), _counted_store(store, (300,))
    assert one.window_counts(300) == two.window_counts(300) == (1, 1)  # seeded
    one.add(_record("wrong"))
    one.add(_record("correct"))
    assert one.window_counts(300) == (2, 3)
    assert two.window_counts(300) == (1, 1)
    assert two.sync() == 2 and one.sync() == 0  # nothing counted twice
    assert two.window_counts(300) == (2, 3)
    assert two.window_counts(300) == store.verdict_counts_since(window_start(300))


def test_rolling_counts_forget_what_leaves_the_window() -> None:
    counts = RollingCounts((2, 60))
    now = datetime.now(UTC)
    assert counts.add("old", now - timedelta(seconds=61), True) is False  # already out
    assert counts.add("a", now - timedelta(seconds=1), True)
    assert counts.add("b", now, False)
    assert counts.add("b", now, False) is False  # counted once
    assert counts.counts(2) == (1, 2) and counts.counts(60) == (1, 2)
    time.sleep(3.1)
    assert counts.counts(2) == (0, 0) and counts.counts(60) == (1, 2)


def test_rolling_counts_hold_constant_memory_and_seed_older_rows() -> None:
    counts = RollingCounts((300, 3600), remember_seconds=10)
    now = datetime.now(UTC)
    for i in range(20_000):
        counts.add(f"r{i}", now - timedelta(seconds=i % 3000), i % 2 == 0, seeding=True)
    assert counts.counts(3600) == (10_000, 20_000)
    assert len(counts._seen) <= 20_000 * 11 // 3000 + 10  # only the last 10 s of ids
    # Outside the remembered span a row may already be counted: only seeding takes it.
    assert counts.add("late", now - timedelta(seconds=100), True) is False
    assert counts.add("late", now - timedelta(seconds=100), True, seeding=True) is True


def test_concurrent_posts_fire_one_alert(store: FeedbackStore) -> None:
    """De-duplication reads and records in one transaction: of racing callers, one fires."""
    counted = _counted_store(store, (300,))
    for _ in range(3):
        counted.add(_record("wrong"))
    rules = [NegativeFeedbackRule(counted, threshold=3, window_seconds=300) for _ in range(12)]
    start = threading.Barrier(len(rules))

    def evaluate(rule: NegativeFeedbackRule) -> object:
        start.wait()
        return rule.evaluate("3", "key:racer")

    with ThreadPoolExecutor(len(rules)) as pool:
        fired = [a for a in pool.map(evaluate, rules) if a is not None]
    assert len(fired) == 1
    alerts = store.alerts()
    assert len(alerts) == 1 and alerts[0]["client_id"] == "key:racer"


def test_a_store_created_before_gains_the_new_columns(tmp_path: Path) -> None:
    import sqlite3

    with sqlite3.connect(tmp_path / "feedback.db") as db:
        db.execute(
            "create table feedback (id varchar(64) primary key, created_at timestamp not null, "
            "tweet text not null, predicted_label varchar(16) not null, probability float, "
            "verdict varchar(16) not null, correct_label varchar(16), model_name varchar(200), "
            "model_version varchar(64), request_id varchar(200))"
        )
        db.execute(
            "insert into feedback values ('old', '2026-01-01 00:00:00', 't', 'positive', 0.5, "
            "'wrong', null, 'm', '1', null)"
        )
    store = FeedbackStore(default_sqlite_url(tmp_path))
    store.add(_record(), client_id="ip:10.0.0.1")
    rows = store.export_rows()
    assert rows[0]["id"] == "old" and rows[1]["client_id"] == "ip:10.0.0.1"


def test_alerts_recorded_before_the_state_table_still_count(store: FeedbackStore) -> None:
    """A store upgraded in the middle of a window does not alert twice in it."""
    store.add_alert(
        {"fired_at": datetime.now(UTC), "rule": "negative_feedback", "count": 3,
         "threshold": 3, "window_seconds": 300, "model_version": "3"}
    )  # fmt: skip
    counted = _counted_store(store, (300,))
    for _ in range(3):
        counted.add(_record("wrong"))
    assert NegativeFeedbackRule(counted, threshold=3, window_seconds=300).evaluate("3") is None
    assert len(store.alerts()) == 1


def test_once_fired_a_rule_costs_no_query_until_its_window_ends(store: FeedbackStore) -> None:
    """During a bad buzz every feedback is over the threshold: still one INSERT each."""
    counted = _counted_store(store, (300,))
    rule = NegativeFeedbackRule(counted, threshold=1, window_seconds=300)
    counted.add(_record("wrong"))
    assert rule.evaluate("3") is not None
    statements: list[str] = []

    def record(*args: object) -> None:
        statements.append(str(args[2]))

    sa.event.listen(counted.engine, "before_cursor_execute", record)
    for _ in range(5):
        counted.add(_record("wrong"))
        assert rule.evaluate("3") is None
    sa.event.remove(counted.engine, "before_cursor_execute", record)
    assert [s.split()[0].upper() for s in statements] == ["INSERT"] * 5


class DatabaseWork:
    """The work the database does for an engine's statements while attached, as the database
    itself counts it, so that a query over the whole window shows whatever its result size: a
    COUNT returns one row but touches every row it counts.

    SQLite: the virtual machine's steps (a progress handler). PostgreSQL: afterwards, each read
    is run again under EXPLAIN ANALYZE and its plan's rows, produced or filtered out, summed;
    each write is planned (EXPLAIN) and the rows its plan expects to scan are summed.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self.steps = 0
        self.statements: list[tuple[str, object]] = []
        self._handled: list[object] = []

    def __enter__(self) -> "DatabaseWork":
        sa.event.listen(self.engine, "before_cursor_execute", self._before)
        return self

    def __exit__(self, *exc: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._before)
        for connection in self._handled:
            connection.set_progress_handler(None, 1)  # type: ignore[attr-defined]

    def _before(
        self, _conn: object, cursor: object, statement: str, parameters: object, *_: object
    ) -> None:
        self.statements.append((statement, parameters))
        if self.sqlite:
            connection = cursor.connection  # type: ignore[attr-defined]
            if connection not in self._handled:
                self._handled.append(connection)
                connection.set_progress_handler(self._step, 1)

    def _step(self) -> int:
        self.steps += 1
        return 0

    def total(self) -> int:
        if self.sqlite:
            return self.steps
        rows = 0
        with self.engine.connect() as conn:
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            for statement, parameters in self.statements:
                read = statement.lstrip().upper().startswith("SELECT")
                options = "ANALYZE, FORMAT JSON" if read else "FORMAT JSON"
                cursor.execute(f"EXPLAIN ({options}) {statement}", parameters)
                rows += _plan_rows(cursor.fetchone()[0][0]["Plan"], analyzed=read)
            conn.rollback()
        return rows


def _plan_rows(node: dict[str, object], analyzed: bool) -> int:
    """Rows a plan node and those under it produced or filtered out (planned rows of its
    scans when not analyzed)."""
    if analyzed:
        own = float(node.get("Actual Rows", 0)) * float(node.get("Actual Loops", 1))  # type: ignore[arg-type]
        own += float(node.get("Rows Removed by Filter", 0))  # type: ignore[arg-type]
        own += float(node.get("Rows Removed by Index Recheck", 0))  # type: ignore[arg-type]
    else:
        scans = "Scan" in str(node.get("Node Type", ""))
        own = float(node.get("Plan Rows", 0)) if scans else 0.0  # type: ignore[arg-type]
    children = node.get("Plans", [])
    return int(own) + sum(_plan_rows(child, analyzed) for child in children)  # type: ignore[union-attr]


def _work_of_posts(store: FeedbackStore, posts: int) -> int:
    """The database work of `posts` feedbacks (each followed by the alert rules, as the route
    runs them) and one sync, on a new replica past its warm-up (both rules have fired)."""
    replica = _counted_store(store, (300, 3600))
    rules = (
        NegativeFeedbackRule(replica, threshold=3, window_seconds=300),
        MispredictionRateRule(replica, threshold=0.3, window_seconds=3600, min_feedback=20),
    )
    for _ in range(25):
        replica.add(_record("wrong"), client_id="ip:10.0.0.1")
        _evaluate_rules(rules, "3", "ip:10.0.0.1")
    with DatabaseWork(replica.engine) as work:
        for i in range(posts):
            replica.add(_record("wrong" if i % 2 else "correct"), client_id="ip:10.0.0.2")
            _evaluate_rules(rules, "3", "ip:10.0.0.2")
        replica.sync()
    replica.engine.dispose()
    return work.total()


def test_a_feedback_costs_the_same_work_with_a_full_window(store: FeedbackStore) -> None:
    """Per feedback, no read over the rows already in the window: the database's own count
    of work for 20 posts and a sync is the same on an empty store and with 3,000 rows in both
    alert windows (a count over the window would be 60,000 rows more)."""
    empty = _work_of_posts(store, 20)
    with store.engine.begin() as conn:
        # Out of the next replica's sync margin, still inside both windows.
        conn.execute(
            feedback_table.update().values(
                created_at=feedback_table.c.created_at - timedelta(seconds=90)
            )
        )
        now = datetime.now(UTC)
        conn.execute(
            feedback_table.insert(),
            [
                {"id": uuid.uuid4().hex, "created_at": now - timedelta(seconds=60 + i * 0.06),
                 "tweet": f"earlier feedback {i}", "predicted_label": "positive",
                 "verdict": "wrong" if i % 2 else "correct"}
                for i in range(3000)
            ],
        )  # fmt: skip
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE feedback")  # the planner knows the window's rows
    full = _work_of_posts(store, 20)
    assert empty > 0
    assert full <= 1.2 * empty + 50, (empty, full)


def test_concurrent_feedback_reuses_the_pooled_connections(store: FeedbackStore) -> None:
    """More posts at once than the pool holds: they wait for a connection, none is opened
    beyond the pool (a new PostgreSQL backend per few requests under load, before)."""
    url = store.engine.url.render_as_string(hide_password=False)
    pooled = FeedbackStore(url, pool_size=3)
    opened: list[object] = []
    sa.event.listen(pooled.engine, "connect", lambda *_: opened.append(1))

    def post(i: int) -> bool:
        return pooled.add(_record(), client_id=f"ip:10.0.0.{i % 7}").duplicate

    with ThreadPoolExecutor(12) as threads:
        assert not any(threads.map(post, range(120)))
    pooled.engine.dispose()
    assert len(opened) <= 3
    assert len(store.export_rows()) == 120
