"""Durable feedback store: SQLite (WAL, synchronous=FULL) embedded, PostgreSQL in a cluster.

A feedback is committed before it is acknowledged, and a retried feedback id is stored once.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

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
)


class FeedbackUnavailable(RuntimeError):
    """The store cannot be reached or written: the caller must not acknowledge."""


@dataclass(frozen=True)
class StoredFeedback:
    id: str
    created_at: datetime
    duplicate: bool


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _durable_sqlite(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def default_sqlite_url(home: Path) -> str:
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(home / 'feedback.db').resolve()}"


class FeedbackStore:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        try:
            metadata.create_all(self.engine)
        except SQLAlchemyError as exc:
            logger.error("feedback store %s unavailable: %s", self.engine.url, exc)

    def add(self, record: dict[str, Any]) -> StoredFeedback:
        """Commit one feedback; a known id returns the stored one marked as duplicate."""
        row = dict(record)
        row["id"] = row.get("id") or uuid.uuid4().hex
        row["created_at"] = datetime.now(UTC)
        try:
            with self.engine.begin() as conn:
                conn.execute(feedback_table.insert().values(**row))
            return StoredFeedback(row["id"], row["created_at"], duplicate=False)
        except IntegrityError:
            existing = self.get(row["id"])
            if existing is None:
                raise FeedbackUnavailable("feedback id conflict could not be resolved") from None
            return StoredFeedback(row["id"], _utc(existing["created_at"]), duplicate=True)
        except SQLAlchemyError as exc:
            raise FeedbackUnavailable(
                f"feedback store unavailable: {exc.__class__.__name__}"
            ) from exc

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

    def alerts(self, limit: int = 50) -> list[dict[str, Any]]:
        query = alerts_table.select().order_by(alerts_table.c.fired_at.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def recent(self, since: datetime) -> list[dict[str, Any]]:
        query = (
            sa.select(feedback_table.c.created_at, feedback_table.c.verdict)
            .where(feedback_table.c.created_at >= since)
            .order_by(feedback_table.c.created_at)
        )
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

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
