"""The ops page driven without a browser: real server, real MLflow store, dead server."""

from __future__ import annotations

import asyncio
import functools
import math
from pathlib import Path

import panel as pn
import pytest

from airparadis.settings import PlatformSettings
from dashboard.client import ModelServerClient, Prediction
from dashboard.connection import ServerConnection
from dashboard.ops import OpsPage
from dashboard.ops_data import feedback_bins
from dashboard.registry import read_aliases
from tests.conftest import RunningServer
from tests.dashboard.conftest import (
    CHALLENGER_METRICS,
    CHAMPION_METRICS,
    dead_url,
    settings_for,
)


def make_page(url: str, registry_home: Path | None = None) -> OpsPage:
    settings = settings_for(url)
    reader = None
    if registry_home is not None:
        platform = PlatformSettings(home=registry_home, tracking_uri=None, registry_uri=None)
        reader = functools.partial(read_aliases, platform)
    return OpsPage(ServerConnection(settings), settings, read_registry=reader)


def send(url: str, verdict: str, count: int = 1) -> None:
    client = ModelServerClient(settings_for(url))
    prediction = client.predict(["the crew lost my bag"])[0]
    for _ in range(count):
        client.feedback(prediction, verdict=verdict)


def test_refresh_counts_feedback_predictions_and_latency(
    model_server: RunningServer, registry_home: Path
) -> None:
    page = make_page(model_server.url, registry_home)
    before = page.refresh()
    assert before is not None and not before.notes, before.notes

    send(model_server.url, "wrong")
    send(model_server.url, "correct")
    page.param.trigger("refresh_now")  # the Refresh button
    snap = page.snapshot

    assert snap.feedback_total == before.feedback_total + 2
    assert snap.feedback_wrong == before.feedback_wrong + 1
    assert 0 < snap.negative_share < 100
    assert snap.predictions_total >= before.predictions_total + 2
    assert snap.alert_rule == {"threshold": 3, "window_seconds": 300}
    latency = snap.metrics.percentiles()["predict"] if snap.metrics else {}
    assert latency[0.5] <= latency[0.9] <= latency[0.99]
    assert snap.served["family"] == "tfidf_lr"
    assert page.connection.status == "ready" and page.connection.banner == ""


def test_champion_and_challenger_come_from_mlflow(
    model_server: RunningServer, registry_home: Path
) -> None:
    snap = make_page(model_server.url, registry_home).refresh()
    assert snap is not None and "models" not in snap.notes
    models = snap.models.set_index("alias")
    assert models.loc["champion", "version"] == "1"
    assert models.loc["challenger", "version"] == "2"
    assert models.loc["champion", "accuracy"] == pytest.approx(CHAMPION_METRICS["test_accuracy"])
    assert models.loc["challenger", "roc_auc"] == pytest.approx(CHALLENGER_METRICS["test_roc_auc"])
    assert models.loc["challenger", "family"] == "tfidf_lr"
    assert math.isnan(models.loc["champion", "f1_positive"])  # not logged by that run


def test_a_missing_registry_is_a_note(model_server: RunningServer, tmp_path: Path) -> None:
    snap = make_page(model_server.url, tmp_path).refresh()
    assert snap is not None
    assert "no MLflow store" in snap.notes["models"]
    assert not (tmp_path / "mlflow.db").exists()  # reading never creates a store


def test_dead_server_gives_notes_and_banner_then_recovers(model_server: RunningServer) -> None:
    page = make_page(dead_url())
    snap = page.refresh()  # never raises
    assert snap is not None
    assert {"feedback", "metrics", "alerts"} <= set(snap.notes)
    assert snap.feedback_total == 0 and snap.metrics is None
    assert page.connection.status == "down" and page.connection.banner
    pn.panel(page).get_root()  # the page still renders, with the notes

    page.connection.server_url = model_server.url
    snap = page.refresh()
    assert snap is not None and not snap.notes
    assert page.connection.banner == ""


def test_alerts_fired_by_the_predictor_are_listed(alerting_server: RunningServer) -> None:
    page = make_page(alerting_server.url)
    send(alerting_server.url, "wrong", count=2)
    snap = page.refresh()
    assert snap is not None
    alerts = snap.alerts
    assert len(alerts) == 1
    assert alerts.loc[0, "source"] == "predictor"
    assert alerts.loc[0, "count"] == 2 and alerts.loc[0, "threshold"] == 2
    assert alerts.loc[0, "window"] == "10 min"
    assert snap.metrics is not None and snap.metrics.alerts_total == 1
    pn.panel(page).get_root()


def test_changing_the_window_refreshes(model_server: RunningServer) -> None:
    page = make_page(model_server.url)
    page.window = 900
    assert page.snapshot is not None and page.snapshot.window_seconds == 900
    assert len(page.snapshot.feedback) == 15  # one bin a minute
    taken = page.snapshot.taken_at
    page.auto_refresh = False
    asyncio.run(page.tick())  # paused: the periodic callback does nothing
    assert page.snapshot.taken_at == taken
    page.auto_refresh = True
    asyncio.run(page.tick())  # what the periodic callback does: a refresh off the event loop
    assert page.snapshot.taken_at > taken


def test_feedback_bins_share_and_naive_timestamps() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)
    rows = [
        {"created_at": "2026-01-01T11:58:10", "verdict": "wrong"},  # SQLite: naive UTC
        {"created_at": "2026-01-01T11:58:50+00:00", "verdict": "correct"},  # PostgreSQL
        {"created_at": "2026-01-01T11:59:59.5+00:00", "verdict": "wrong"},
        {"created_at": "2025-12-31T00:00:00+00:00", "verdict": "wrong"},  # out of the window
        {"created_at": "garbage", "verdict": "wrong"},
    ]
    frame = feedback_bins(rows, 900, now).set_index("bin")
    assert frame["total"].sum() == 3
    assert frame.loc["11:58", "negative_share"] == 50.0
    assert frame.loc["11:59", "negative_share"] == 100.0
    assert math.isnan(frame.loc["11:50", "negative_share"])


def test_prediction_model_version_flows_to_feedback() -> None:
    p = Prediction("x", "negative", 0.2, "7")
    assert p.confidence == pytest.approx(0.8)
