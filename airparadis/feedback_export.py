"""Stored feedback as Parquet: the contract between the server that stores feedback and the
training that learns from it.

The core owns it so that retraining reads the feedback store without importing the server:
the columns below are the part of the server's ``feedback`` table that retraining relies on
(a test holds `model_server.feedback` to them). SQLAlchemy and pyarrow are imported here
only, by the components that export (training and the full install).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

FEEDBACK_TABLE = "feedback"
EXPORT_FILE = "feedback.parquet"
# (column, Parquet type): the types are named, so that the SQL side can be typed alike.
EXPORT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "string"),
    ("created_at", "timestamp"),
    ("tweet", "string"),
    ("predicted_label", "string"),
    ("probability", "float64"),
    ("verdict", "string"),
    ("correct_label", "string"),
    ("model_name", "string"),
    ("model_version", "string"),
    ("request_id", "string"),
)


def default_sqlite_url(home: Path) -> str:
    """The embedded feedback store: SQLite under the state directory."""
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(home / 'feedback.db').resolve()}"


def export_schema() -> pa.Schema:
    import pyarrow as pa

    kinds = {
        "string": pa.string(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "float64": pa.float64(),
    }
    return pa.schema([(name, kinds[kind]) for name, kind in EXPORT_COLUMNS])


def read_feedback(url: str) -> list[dict[str, Any]]:
    """Every stored feedback, oldest first; none when the store has no table yet."""
    import sqlalchemy as sa

    kinds: dict[str, sa.types.TypeEngine[Any]] = {
        "string": sa.String(),
        "timestamp": sa.DateTime(timezone=True),
        "float64": sa.Float(),
    }
    table = sa.table(FEEDBACK_TABLE, *(sa.column(n, kinds[k]) for n, k in EXPORT_COLUMNS))
    engine = sa.create_engine(url)
    try:
        if not sa.inspect(engine).has_table(FEEDBACK_TABLE):
            return []
        with engine.connect() as conn:
            query = sa.select(*table.columns).order_by(table.c.created_at)
            return [dict(row) for row in conn.execute(query).mappings()]
    finally:
        engine.dispose()


def export_feedback(url: str, out: Path) -> tuple[Path, int]:
    """Write every stored feedback to ``out/feedback.parquet``: (path, rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = read_feedback(url)
    out.mkdir(parents=True, exist_ok=True)
    path = out / EXPORT_FILE
    pq.write_table(pa.Table.from_pylist(rows, schema=export_schema()), path)
    return path, len(rows)
