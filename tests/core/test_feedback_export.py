"""The core's feedback export reads what the server's feedback store writes, without
importing the server (retraining runs in the training image, which has no serving code)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from airparadis.feedback_export import EXPORT_COLUMNS, export_feedback
from airparadis.settings import PlatformSettings
from model_server.feedback import FeedbackStore, default_sqlite_url, feedback_table

SQL_TYPES = {"string": (sa.String, sa.Text), "timestamp": (sa.DateTime,), "float64": (sa.Float,)}


def test_every_exported_column_is_in_the_server_table_with_its_type() -> None:
    for name, kind in EXPORT_COLUMNS:
        assert name in feedback_table.c, name
        assert isinstance(feedback_table.c[name].type, SQL_TYPES[kind]), name


def test_stored_feedback_comes_out_oldest_first(tmp_path: Path) -> None:
    store = FeedbackStore(default_sqlite_url(tmp_path))
    for tweet, verdict in (("first", "correct"), ("second", "wrong")):
        store.add({"tweet": tweet, "predicted_label": "negative", "probability": 0.25,
                   "verdict": verdict, "correct_label": None})  # fmt: skip
    path, count = export_feedback(default_sqlite_url(tmp_path), tmp_path / "out")
    frame = pd.read_parquet(path)
    assert count == 2
    assert frame["tweet"].tolist() == ["first", "second"]
    assert frame["verdict"].tolist() == ["correct", "wrong"]
    assert list(frame.columns) == [name for name, _ in EXPORT_COLUMNS]
    assert str(frame["created_at"].dt.tz) == "UTC"


def test_a_store_never_written_exports_no_rows(tmp_path: Path) -> None:
    path, count = export_feedback(default_sqlite_url(tmp_path), tmp_path / "out")
    assert count == 0
    assert pd.read_parquet(path).empty


def test_the_server_and_retraining_name_one_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The variable deployments set for the server also points retraining at the store."""
    monkeypatch.setenv("AIRPARADIS_SERVER_FEEDBACK_DB_URL", "postgresql+psycopg://u@db/feedback")
    assert PlatformSettings().feedback_url == "postgresql+psycopg://u@db/feedback"
    monkeypatch.delenv("AIRPARADIS_SERVER_FEEDBACK_DB_URL")
    monkeypatch.setenv("AIRPARADIS_HOME", str(tmp_path))
    assert PlatformSettings().feedback_url == default_sqlite_url(tmp_path)
