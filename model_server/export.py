"""Export stored feedback to Parquet, the input of retraining."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from airparadis.settings import PlatformSettings
from model_server.feedback import FeedbackStore, default_sqlite_url
from model_server.settings import ServerSettings

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("tweet", pa.string()),
        ("predicted_label", pa.string()),
        ("probability", pa.float64()),
        ("verdict", pa.string()),
        ("correct_label", pa.string()),
        ("model_name", pa.string()),
        ("model_version", pa.string()),
        ("request_id", pa.string()),
    ]
)


def export_feedback(
    settings: ServerSettings, platform: PlatformSettings, out: Path
) -> tuple[Path, int]:
    store = FeedbackStore(settings.feedback_db_url or default_sqlite_url(platform.home))
    rows = store.export_rows()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "feedback.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), path)
    return path, len(rows)
