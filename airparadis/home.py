"""Moving the embedded home: MLflow's SQLite store records absolute artifact locations
(experiments, runs, logged models, model versions), so a copied or moved home would still
point at the old place. Relocating rewrites those locations to the home's new path.

Every text column of every table is rewritten where it starts with the old artifact root, so
the rewrite follows MLflow's schema as it changes instead of naming its tables.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

ARTIFACTS = "mlartifacts"
STORE = "mlflow.db"


class HomeError(ValueError):
    """The home cannot be moved or relocated as asked."""


def recorded_home(store: Path) -> Path | None:
    """The home the store's experiments were created in (None when it records none)."""
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT artifact_location FROM experiments").fetchall()
    for (location,) in rows:
        path = str(location or "").removeprefix("file://")
        if path.endswith(f"/{ARTIFACTS}"):
            return Path(path).parent
    return None


def _text_columns(db: sqlite3.Connection) -> list[tuple[str, str]]:
    tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    columns = []
    for table in tables:
        for _cid, name, kind, *_ in db.execute(f'PRAGMA table_info("{table}")'):
            if any(word in str(kind).upper() for word in ("CHAR", "TEXT", "CLOB")):
                columns.append((table, name))
    return columns


def relocate(home: Path) -> int:
    """Point the store under `home` at `home`'s own artifacts; returns the cells rewritten."""
    home = home.resolve()
    store = home / STORE
    if not store.is_file():
        raise HomeError(f"{home}: no MLflow store ({STORE}) to relocate")
    old = recorded_home(store)
    if old is None or old == home:
        return 0
    rewritten = 0
    with sqlite3.connect(store) as db:
        for table, column in _text_columns(db):
            for before, after in (
                (f"file://{old}/{ARTIFACTS}", f"file://{home}/{ARTIFACTS}"),
                (f"{old}/{ARTIFACTS}", f"{home}/{ARTIFACTS}"),
            ):
                # Names come from the store's own schema (sqlite_master), values are bound.
                cursor = db.execute(
                    f'UPDATE "{table}" SET "{column}" = ? || substr("{column}", ?) '  # noqa: S608
                    f'WHERE substr("{column}", 1, ?) = ?',
                    (after, len(before) + 1, len(before), before),
                )
                rewritten += cursor.rowcount
    return rewritten


def move(source: Path, destination: Path) -> int:
    """Move a home (store, artifacts, feedback, caches) and relocate its store."""
    if not (source / STORE).is_file():
        raise HomeError(f"{source}: not a home (no {STORE})")
    if destination.exists():
        raise HomeError(f"{destination}: already exists; move into a new path")
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(source), str(destination))
    return relocate(destination)
