"""Durable feedback store: SQLite (WAL, synchronous=FULL) embedded, PostgreSQL in a cluster.

A feedback is committed before it is acknowledged. A client's feedback id is scoped to that
client: a retry with the same content is stored once, the same id with other content is a
conflict, and two clients never collide. The alert rules read rolling counts that the store
keeps as feedback arrives (seeded from the table at start, and taking in other replicas'
rows every few seconds), so a feedback costs the same with 50 or 50,000 rows in the window;
an alert is recorded at most once per window, decided inside one transaction.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from airparadis.feedback_export import default_sqlite_url as default_sqlite_url
from model_server.feedback_engine import POOL_SIZE, make_engine
from model_server.rolling_counts import ANONYMOUS
from model_server.rolling_counts import RollingCounts as RollingCounts

logger = logging.getLogger(__name__)

metadata = sa.MetaData()
feedback_table = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("tweet", sa.Text, nullable=False),
    sa.Column("predicted_label", sa.String(16), nullable=False),
    sa.Column("probability", sa.Float, nullable=True),
    sa.Column("verdict", sa.String(16), nullable=False),
    sa.Column("correct_label", sa.String(16), nullable=True),
    sa.Column("model_name", sa.String(200), nullable=True),
    sa.Column("model_version", sa.String(64), nullable=True),
    sa.Column("request_id", sa.String(200), nullable=True),
    sa.Column("client_id", sa.String(200), nullable=True),
    sa.Column("feedback_id", sa.String(64), nullable=True),
    sa.Column("content_hash", sa.String(64), nullable=True),
)
alerts_table = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("threshold", sa.Integer, nullable=False),
    sa.Column("window_seconds", sa.Integer, nullable=False),
    sa.Column("model_version", sa.String(64), nullable=True),
    sa.Column("client_id", sa.String(200), nullable=True),
    sa.Column("verdicts", sa.Integer, nullable=True),
    sa.Column("clients", sa.Text, nullable=True),
)
alert_state_table = sa.Table(
    "alert_state",
    metadata,
    sa.Column("rule", sa.String(64), primary_key=True),
    sa.Column("last_fired_at", sa.DateTime(timezone=True), nullable=True),
)
SYNC_MARGIN = timedelta(seconds=30)
"""Rows committed up to this long after their timestamp are still taken in by `sync`."""
REMEMBER = timedelta(seconds=300)
"""How long counted ids are remembered: longer than any sync interval plus `SYNC_MARGIN`."""


class FeedbackUnavailable(RuntimeError):
    """The store cannot be reached or written: the caller must not acknowledge."""


class FeedbackConflict(ValueError):
    """The client's feedback id is already stored with other content."""

    def __init__(self, stored_id: str) -> None:
        super().__init__(f"feedback id already used with other content (stored as {stored_id})")
        self.stored_id = stored_id


@dataclass(frozen=True)
class StoredFeedback:
    id: str
    created_at: datetime
    duplicate: bool


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def scoped_id(client_id: str, feedback_id: str) -> str:
    """The stored id of a client's feedback id: the same for its retries, distinct per client."""
    return hashlib.sha256(f"{client_id}\n{feedback_id}".encode()).hexdigest()[:32]


def content_hash(content: dict[str, Any]) -> str:
    """What a retry must repeat for it to be the same feedback."""
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


class FeedbackStore:
    """`windows`: the windows, in seconds, whose verdict counts are kept in memory;
    `pool_size`: the connections kept open (see `make_engine`)."""

    def __init__(self, url: str, windows: tuple[int, ...] = (), pool_size: int = POOL_SIZE) -> None:
        self.engine = make_engine(url, pool_size)
        self.counts = (
            RollingCounts(windows, remember_seconds=REMEMBER.total_seconds()) if windows else None
        )
        self._synced_from: datetime | None = None
        self._last_fired: dict[str, datetime] = {}
        self._sync_lock = threading.Lock()
        try:
            metadata.create_all(self.engine)
            _add_missing_columns(self.engine)
        except SQLAlchemyError as exc:
            logger.error("feedback store %s unavailable: %s", self.engine.url, exc)
            return
        if self.counts is not None:
            try:
                self.sync()
            except SQLAlchemyError as exc:
                logger.error("feedback counts not seeded (retried at the next sync): %s", exc)

    def add(self, record: dict[str, Any], client_id: str | None = None) -> StoredFeedback:
        """Commit one feedback; a known id returns the stored one marked as duplicate, or
        raises FeedbackConflict when its content differs."""
        row = dict(record)
        feedback_id = row.get("feedback_id")
        if feedback_id and client_id is not None:
            row["id"] = scoped_id(client_id, feedback_id)
        else:
            row["id"] = row.get("id") or feedback_id or uuid.uuid4().hex
        row["client_id"] = client_id
        row["created_at"] = datetime.now(UTC)
        try:
            with self.engine.begin() as conn:
                conn.execute(feedback_table.insert().values(**row))
        except IntegrityError:
            existing = self.get(row["id"])
            if existing is None:
                raise FeedbackUnavailable("feedback id conflict could not be resolved") from None
            stored_hash = existing.get("content_hash")
            if stored_hash and row.get("content_hash") and stored_hash != row["content_hash"]:
                raise FeedbackConflict(row["id"]) from None
            return StoredFeedback(row["id"], _utc(existing["created_at"]), duplicate=True)
        except SQLAlchemyError as exc:
            raise FeedbackUnavailable(
                f"feedback store unavailable: {exc.__class__.__name__}"
            ) from exc
        if self.counts is not None:
            self.counts.add(
                row["id"], row["created_at"], row["verdict"] == "wrong", client_id=client_id
            )
        return StoredFeedback(row["id"], row["created_at"], duplicate=False)

    def sync(self) -> int:
        """Take in the rows other replicas committed since the last sync (all the window's
        rows, the first time); returns how many were new here."""
        if self.counts is None:
            return 0
        with self._sync_lock:
            started = datetime.now(UTC)
            since = (
                self._synced_from - SYNC_MARGIN
                if self._synced_from is not None
                else started - timedelta(seconds=self.counts.horizon)
            )
            column = feedback_table.c
            query = sa.select(column.id, column.created_at, column.verdict, column.client_id).where(
                column.created_at >= since
            )
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            seeding = self._synced_from is None
            added = sum(
                self.counts.add(i, _utc(at), v == "wrong", seeding, client)
                for i, at, v, client in rows
            )
            self._synced_from = started
            return added

    def start_sync(self, interval_seconds: float) -> threading.Event:
        """Sync every `interval_seconds` in a daemon thread, until the returned event is set."""
        stop = threading.Event()

        def run() -> None:
            while not stop.wait(interval_seconds):
                try:
                    self.sync()
                except SQLAlchemyError as exc:
                    logger.warning("feedback counts not synced: %s", exc.__class__.__name__)

        threading.Thread(target=run, name="feedback-sync", daemon=True).start()
        return stop

    def window_counts(self, window_seconds: int) -> tuple[int, int]:
        """(wrong, total) feedbacks of the last `window_seconds`: kept counts when the store
        keeps that window, else counted in the table."""
        if self.counts is not None and window_seconds in self.counts.windows:
            return self.counts.counts(window_seconds)
        return self.verdict_counts_since(window_start(window_seconds))

    def wrong_clients(self, window_seconds: int) -> list[str]:
        """The distinct clients that sent a wrong verdict in the last `window_seconds`: kept
        in memory when the store keeps that window, else read from the table."""
        if self.counts is not None and window_seconds in self.counts.windows:
            return self.counts.wrong_clients(window_seconds)
        column = feedback_table.c
        client = sa.func.coalesce(column.client_id, ANONYMOUS)
        query = (
            sa.select(client)
            .where(column.verdict == "wrong", column.created_at >= window_start(window_seconds))
            .group_by(client)
            .order_by(sa.func.max(column.created_at).desc())
        )
        with self.engine.connect() as conn:
            return [str(client) for (client,) in conn.execute(query)]

    def get(self, feedback_id: str) -> dict[str, Any] | None:
        try:
            with self.engine.connect() as conn:
                row = (
                    conn.execute(feedback_table.select().where(feedback_table.c.id == feedback_id))
                    .mappings()
                    .first()
                )
        except SQLAlchemyError as exc:
            raise FeedbackUnavailable(
                f"feedback store unavailable: {exc.__class__.__name__}"
            ) from exc
        return dict(row) if row else None

    def count_wrong_since(self, since: datetime) -> int:
        query = (
            sa.select(sa.func.count())
            .select_from(feedback_table)
            .where(feedback_table.c.verdict == "wrong", feedback_table.c.created_at >= since)
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def verdict_counts_since(self, since: datetime) -> tuple[int, int]:
        """(wrong, total) feedbacks since `since`."""
        wrong = sa.func.count().filter(feedback_table.c.verdict == "wrong")
        query = sa.select(wrong, sa.func.count()).where(feedback_table.c.created_at >= since)
        with self.engine.connect() as conn:
            row = conn.execute(query).one()
        return int(row[0]), int(row[1])

    def last_alert_since(self, rule: str, since: datetime) -> bool:
        query = sa.select(alerts_table.c.id).where(
            alerts_table.c.rule == rule, alerts_table.c.fired_at >= since
        )
        with self.engine.connect() as conn:
            return conn.execute(query.limit(1)).first() is not None

    def add_alert(self, alert: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(alerts_table.insert().values(**alert))

    def add_alert_once(self, alert: dict[str, Any], since: datetime) -> bool:
        """Record `alert` unless its rule fired since `since`; True when recorded.

        Decided and recorded in one transaction on the rule's row of `alert_state`, so of
        concurrent callers (threads or replicas) exactly one records it. The last firing this
        store saw is remembered: while it is inside the window, a feedback costs no query.
        """
        rule, fired_at = alert["rule"], alert["fired_at"]
        known = self._last_fired.get(rule)
        if known is not None and known >= since:
            return False
        state = alert_state_table.c
        for _ in range(3):
            try:
                with self.engine.begin() as conn:
                    updated = conn.execute(
                        alert_state_table.update()
                        .where(
                            state.rule == rule,
                            sa.or_(state.last_fired_at.is_(None), state.last_fired_at < since),
                        )
                        .values(last_fired_at=fired_at)
                    ).rowcount
                    if not updated:
                        last = conn.execute(
                            sa.select(state.last_fired_at).where(state.rule == rule)
                        ).first()
                        if last is None:
                            # The rule's first decision here: alerts recorded before this
                            # table existed still count.
                            last = conn.execute(
                                sa.select(sa.func.max(alerts_table.c.fired_at)).where(
                                    alerts_table.c.rule == rule
                                )
                            ).first()
                            previous = last[0] if last is not None else None
                            recent = previous is not None and _utc(previous) >= since
                            conn.execute(
                                alert_state_table.insert().values(
                                    rule=rule, last_fired_at=previous if recent else fired_at
                                )
                            )
                            if not recent:
                                conn.execute(alerts_table.insert().values(**alert))
                                self._last_fired[rule] = fired_at
                                return True
                        if last is not None and last[0] is not None:
                            self._last_fired[rule] = _utc(last[0])
                        return False
                    conn.execute(alerts_table.insert().values(**alert))
                self._last_fired[rule] = fired_at
                return True
            except IntegrityError:
                continue  # another caller created the rule's row first: decide again
        return False

    def alerts(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest alerts, newest first; `clients` as a list (empty for older rows)."""
        query = alerts_table.select().order_by(alerts_table.c.fired_at.desc()).limit(limit)
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        for row in rows:
            row["clients"] = json.loads(row["clients"]) if row.get("clients") else []
        return rows

    def recent(self, since: datetime) -> list[dict[str, Any]]:
        query = (
            sa.select(feedback_table.c.created_at, feedback_table.c.verdict)
            .where(feedback_table.c.created_at >= since)
            .order_by(feedback_table.c.created_at)
        )
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def label_counts(self) -> dict[str, int]:
        """Feedback by the label it gives the tweet: the correct_label, else the confirmed
        prediction, else (a bare 'wrong') the other label; as retraining reads them."""
        column = feedback_table.c
        opposite = sa.case((column.predicted_label == "positive", "negative"), else_="positive")
        label = sa.case(
            (column.correct_label.is_not(None), column.correct_label),
            (column.verdict == "correct", column.predicted_label),
            else_=opposite,
        )
        query = sa.select(label, sa.func.count()).group_by(label)
        with self.engine.connect() as conn:
            return {str(name): int(count) for name, count in conn.execute(query)}

    def export_rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [
                dict(r)
                for r in conn.execute(
                    feedback_table.select().order_by(feedback_table.c.created_at)
                ).mappings()
            ]


def window_start(window_seconds: int) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=window_seconds)


def _add_missing_columns(engine: Engine) -> None:
    """Columns added since a table was created (nullable, so existing rows stay valid)."""
    inspector = sa.inspect(engine)
    with engine.begin() as conn:
        for table in (feedback_table, alerts_table):
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present:
                    kind = column.type.compile(engine.dialect)
                    alter = f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"
                    conn.execute(sa.text(alter))
