"""Optuna study storage that stays correct when several worker processes share it.

Optuna hands a queued (WAITING) trial to exactly one worker by reading its state and writing
RUNNING in one transaction under ``SELECT … FOR UPDATE``. PostgreSQL honours that lock; SQLite
ignores it, and Python's sqlite3 driver only opens a transaction at the first write, so two
workers on the default SQLite study can both read WAITING and run the same trial, and the
second one's result is then refused ("Cannot tell a COMPLETE trial"). For SQLite every
transaction here therefore starts with ``BEGIN IMMEDIATE``: it takes the database's write lock
before its first read, so the read-then-write is atomic and a concurrent worker waits
(up to ``SQLITE_BUSY_TIMEOUT_S``) instead of racing.
"""

from __future__ import annotations

from typing import Any

import optuna
import sqlalchemy as sa

SQLITE_BUSY_TIMEOUT_S = 60.0
"""How long a worker waits for another one's short transaction before giving up."""


def _disable_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
    """Let SQLAlchemy's ``begin`` event issue BEGIN (sqlite3 would otherwise defer it)."""
    dbapi_connection.isolation_level = None


def _begin_immediate(connection: sa.engine.Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


class StudyStorageError(ValueError):
    """The study storage URL cannot be parsed, has no driver here, or cannot be reached."""


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """The RDB storage at ``url``; SQLite gets serialised transactions (module docstring)."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StudyStorageError(f"study storage: {exc}") from exc
    sqlite = parsed.get_backend_name() == "sqlite"
    connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_S} if sqlite else {}
    try:
        storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": connect_args})
    except (sa.exc.NoSuchModuleError, sa.exc.OperationalError, ImportError) as exc:
        shown = parsed.render_as_string(hide_password=True)
        raise StudyStorageError(f"study storage {shown}: {str(exc).splitlines()[0]}") from exc
    if not sqlite:
        return storage
    sa.event.listen(storage.engine, "connect", _disable_driver_transactions)
    sa.event.listen(storage.engine, "begin", _begin_immediate)
    storage.engine.dispose()  # connections opened while creating the schema lack the hooks
    return storage
