"""The feedback store's database engine: every connection kept in its pool, SQLite durable."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

POOL_SIZE = 10
"""Connections a store keeps open: more than the feedback requests one replica serves at once."""
POOL_TIMEOUT_S = 10.0


def make_engine(url: str, pool_size: int = POOL_SIZE) -> Engine:
    """An engine whose connections are all kept in its pool.

    A pool with overflow closes each overflow connection as it is returned while the pool is
    full: under steady concurrency beyond the pool's size, feedback posts then open a new
    connection every few requests (a new PostgreSQL backend process, or a cold SQLite page
    cache), a cost that grows with the database. Without overflow, a request beyond
    `pool_size` waits for a connection, and one not given within `POOL_TIMEOUT_S` is a 503;
    the connections one replica holds stay bounded, which the shared database's limit needs.
    """
    pooling: dict[str, Any] = {
        "pool_size": pool_size,
        "max_overflow": 0,
        "pool_timeout": POOL_TIMEOUT_S,
        "pool_pre_ping": True,
    }
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **pooling
        )

        @sa.event.listens_for(engine, "connect")
        def _durable_sqlite(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

        return engine
    return sa.create_engine(url, **pooling)
