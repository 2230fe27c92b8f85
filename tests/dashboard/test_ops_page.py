"""The ops page driven without a browser: real server, real MLflow store, dead server."""

from __future__ import annotations

import asyncio
import functools
import math
from pathlib import Path

import panel as pn
import pytest

from airparadis.settings import PlatformSettings
from dashboard.client import ModelServerClient, Prediction, parse_drift
from dashboard.connection import ServerConnection
from dashboard.ops import OpsPage
from dashboard.ops_data import OpsSnapshot, feedback_bins
from dashboard.ops_health import (
    drift_frame,
    drift_proba_frame,
    drift_state,
    quality_frame,
    quality_state,
    reliability_frame,
)
from dashboard.registry import read_aliases
from tests.conftest import RunningServer
from tests.dashboard.conftest import (
    CHALLENGER_METRICS,
    CHAMPION_METRICS,
    dead_url,
    settings_for,
    skewed_airline_tweets,
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
    before = asyncio.run(page.refresh())
    assert before is not None and not before.notes, before.notes

    send(model_server.url, "wrong")
    send(model_server.url, "correct")
    page.param.trigger("refresh_now")  # the Refresh button
    snap = page.snapshot

    assert snap.feedback_total == before.feedback_total + 2
    assert snap.feedback_wrong == before.feedback_wrong + 1
    assert 0 < snap.wrong_rate < 1
    assert snap.predictions_total >= before.predictions_total + 2
    assert snap.alert_rule == {"threshold": 3, "window_seconds": 300, "min_distinct_clients": 2}
    assert snap.misprediction_rule == {
        "threshold": 0.3, "window_seconds": 3600, "min_feedback": 20, "min_distinct_clients": 2
    }  # fmt: skip
    assert snap.started_at is not None and snap.started_at <= snap.taken_at
    pn.panel(page).get_root()
    kpis = page._kpi
    assert "since the server started (" in kpis["kpi-predictions"].object
    assert "≥ 3 wrong in 5 min from ≥ 2 clients" in kpis["kpi-alerts"].object
    assert "rate ≥ 30 % over 1 h (≥ 20 verdicts, ≥ 2 clients)" in kpis["kpi-alerts"].object
    assert "Wrong-prediction rate" in kpis["kpi-wrong-rate"].object
    assert "Negative" not in "".join(k.object for k in kpis.values())
    # The predict stage comes from the server's own histogram, fine enough for its latency.
    shown = page._latency_table.value.set_index("stage")
    assert shown.loc["predict", "p50"].endswith(" ms") and shown.loc["predict", "p50"] != "< 5 ms"
    assert "predict requests measured since the server started" in page._latency_line.object
    latency = snap.metrics.percentiles()["predict"] if snap.metrics else {}
    assert latency[0.5] <= latency[0.9] <= latency[0.99]
    assert snap.served["family"] == "tfidf_lr"
    assert page.connection.status == "ready" and page.connection.banner == ""


def test_champion_and_challenger_come_from_mlflow(
    model_server: RunningServer, registry_home: Path
) -> None:
    snap = asyncio.run(make_page(model_server.url, registry_home).refresh())
    assert snap is not None and "models" not in snap.notes
    models = snap.models.set_index("alias")
    assert models.loc["champion", "version"] == "1"
    assert models.loc["challenger", "version"] == "2"
    assert models.loc["champion", "accuracy"] == pytest.approx(CHAMPION_METRICS["test_accuracy"])
    assert models.loc["challenger", "roc_auc"] == pytest.approx(CHALLENGER_METRICS["test_roc_auc"])
    assert models.loc["challenger", "family"] == "tfidf_lr"
    assert math.isnan(models.loc["champion", "f1_positive"])  # not logged by that run
    # The imbalanced-domain scores beside accuracy: macro-F1 and complaints caught.
    assert models.loc["champion", "macro_f1"] == pytest.approx(CHAMPION_METRICS["test_macro_f1"])
    assert models.loc["champion", "recall_negative"] == pytest.approx(
        CHAMPION_METRICS["test_recall_negative"]
    )
    assert math.isnan(models.loc["challenger", "macro_f1"])


def test_a_missing_registry_is_a_note(model_server: RunningServer, tmp_path: Path) -> None:
    snap = asyncio.run(make_page(model_server.url, tmp_path).refresh())
    assert snap is not None
    assert "no MLflow store" in snap.notes["models"]
    assert not (tmp_path / "mlflow.db").exists()  # reading never creates a store


def test_dead_server_gives_notes_and_banner_then_recovers(model_server: RunningServer) -> None:
    page = make_page(dead_url())
    snap = asyncio.run(page.refresh())  # never raises
    assert snap is not None
    assert {"feedback", "metrics", "alerts", "drift"} <= set(snap.notes)
    assert snap.feedback_total == 0 and snap.metrics is None and snap.drift is None
    assert math.isnan(snap.misprediction_rate)
    assert page.connection.status == "down" and page.connection.banner
    pn.panel(page).get_root()  # the page still renders, with the notes

    page.connection.server_url = model_server.url
    snap = asyncio.run(page.refresh())
    assert snap is not None and not snap.notes
    assert page.connection.banner == ""


def test_alerts_fired_by_the_predictor_are_listed(alerting_server: RunningServer) -> None:
    page = make_page(alerting_server.url)
    send(alerting_server.url, "wrong", count=2)
    snap = asyncio.run(page.refresh())
    assert snap is not None
    alerts = snap.alerts
    assert len(alerts) == 1
    assert alerts.loc[0, "source"] == "predictor"
    assert alerts.loc[0, "rule"] == "wrong predictions (count)"
    assert alerts.loc[0, "what"] == "2 wrong in 10 min (threshold 2)"
    assert alerts.loc[0, "clients"] == "1 client: ip:127.0.0.1"
    assert snap.metrics is not None and snap.metrics.alerts_total == 1
    pn.panel(page).get_root()


def test_input_drift_compares_live_tweets_with_the_training_reference(
    model_server: RunningServer,
) -> None:
    page = make_page(model_server.url)
    before = asyncio.run(page.refresh())
    assert before is not None and before.drift is not None and before.drift.live is not None
    ModelServerClient(settings_for(model_server.url)).predict(["great flight", "lost bag", "ok"])
    snap = asyncio.run(page.refresh())

    assert snap is not None and "drift" not in snap.notes
    drift = snap.drift
    assert drift is not None and drift.tracked and drift.live and drift.reference
    assert drift.live.count == min(before.drift.live.count + 3, drift.window)
    assert drift.reference.count > 0 and drift.min_tweets == 200 and drift.psi_threshold == 0.25
    table = drift_frame(drift).set_index("signal")
    assert table.loc["Mean tokens per tweet", "reference"] == f"{drift.reference.mean_tokens:.1f}"
    assert table.loc["Predicted positive (%)", "live"] == f"{100 * drift.live.positive_share:.1f}"
    assert table.loc["PSI of P(positive)", "reference"] == "stable ≤ 0.25"
    shares = drift_proba_frame(drift).groupby("source")["share"].sum()
    assert shares.to_dict() == pytest.approx({"live": 100.0, "training reference": 100.0})
    state, sentence = drift_state(drift)
    if not drift.enough_tweets:  # the whole suite sends fewer than 200 tweets to this server
        assert state == "collecting"
        assert f"{drift.live.count:,} of 200 tweets" in sentence
        assert table.loc["PSI of length (tokens)", "live"] == "–"
    pn.panel(page).get_root()
    assert sentence in page.health.drift_status.object
    assert page.health.drift_table.value.equals(drift_frame(drift))


def test_drift_and_misprediction_rate_as_they_cross_their_thresholds(
    rules_server: RunningServer,
) -> None:
    # That server judges drift on the last 10 tweets and the wrong share from 4 verdicts.
    page = make_page(rules_server.url)
    snap = asyncio.run(page.refresh())
    assert snap is not None and snap.drift is not None
    assert drift_state(snap.drift)[0] == "collecting"
    assert math.isnan(snap.misprediction_rate)
    assert "no verdict in the window" in page._kpi["kpi-wrong-rate"].object
    assert not page._actions.visible

    client = ModelServerClient(settings_for(rules_server.url))
    [prediction] = client.predict(["ok"])
    client.predict(["ok"] * 9)  # ten one-word tweets: far shorter than the training tweets
    for verdict in ("wrong", "correct", "wrong"):
        client.feedback(prediction, verdict=verdict)
    snap = asyncio.run(page.refresh())
    assert snap is not None and snap.drift is not None
    state, sentence = drift_state(snap.drift)
    assert state == "drifting" and "a PSI is above 0.25" in sentence
    assert snap.drift.psi_length > 0.25
    assert drift_frame(snap.drift).set_index("signal").loc["Mean tokens per tweet", "live"] == "1.0"
    assert math.isnan(snap.misprediction_rate)  # 3 verdicts, the rule needs 4
    kpi = page._kpi["kpi-wrong-rate"].object
    assert "67 %" in kpi and "2 wrong of 3 verdicts" in kpi and "bad" not in kpi
    assert "alerts at rate ≥ 50 % over 1 h (≥ 4 verdicts)" in kpi
    assert "ap-action-drift" in page._actions.object  # drifting: what to do
    assert "#check-the-upstream-input" in page._actions.object

    client.feedback(prediction, verdict="wrong")
    snap = asyncio.run(page.refresh())
    assert snap is not None
    assert snap.misprediction_rate == pytest.approx(0.75)
    kpi = page._kpi["kpi-wrong-rate"].object
    assert "ap-kpi bad" in kpi and "75 %" in kpi and "3 wrong of 4 verdicts" in kpi
    fired = snap.alerts.set_index("rule_id")
    assert fired.loc["misprediction_rate", "what"] == (
        "wrong-prediction rate 75 % (threshold 50 %) over 4 verdicts in 1 h"
    )
    assert fired.loc["misprediction_rate", "clients"] == "1 client: ip:127.0.0.1"
    actions = page._actions.object
    assert "ap-action-misprediction_rate" in actions and "#retrain" in actions
    assert "#roll-back-to-the-previous-champion" in actions
    pn.panel(page).get_root()


def test_a_bundle_without_a_drift_reference_is_not_tracked(
    unreferenced_server: RunningServer,
) -> None:
    page = make_page(unreferenced_server.url)
    snap = asyncio.run(page.refresh())
    assert snap is not None and "drift" not in snap.notes
    assert snap.drift is not None and not snap.drift.tracked
    state, sentence = drift_state(snap.drift)
    assert state == "untracked" and "has no drift reference" in sentence
    assert drift_frame(snap.drift).empty and drift_proba_frame(snap.drift).empty
    pn.panel(page).get_root()
    cards = page.health
    assert (
        not any(o.visible for o in cards.drift_body.objects)
        and "ap-drift-untracked" in cards.drift_status.object
    )


def test_a_stable_window_says_so() -> None:
    stats = {"count": 500, "mean_tokens": 12.0, "oov_share": 0.1, "positive_share": 0.5,
             "length_shares": [0.1] * 10, "proba_shares": [0.1] * 10}  # fmt: skip
    drift = parse_drift(
        {"tracked": True, "window": 2000, "min_tweets": 200, "psi_threshold": 0.25,
         "enough_tweets": True, "drifting": False, "psi_probability": 0.031, "psi_length": 0.0,
         "live": stats, "reference": stats, "proba_edges": [i / 10 for i in range(11)],
         "length_edges": [0, 3]}
    )  # fmt: skip
    assert drift_state(drift) == (
        "stable",
        "Stable: both PSI ≤ 0.25 (P(positive) 0.031, length 0.000) over the last 500 tweets.",
    )
    assert drift_frame(drift).set_index("signal").loc["PSI of P(positive)", "live"] == "0.031"


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
    assert frame.loc["11:58", "wrong_rate"] == 50.0
    assert frame.loc["11:59", "wrong_rate"] == 100.0
    assert math.isnan(frame.loc["11:50", "wrong_rate"])


def test_prediction_model_version_flows_to_feedback() -> None:
    p = Prediction("x", "negative", 0.2, "7")
    assert p.confidence == pytest.approx(0.8)


def test_quality_card_of_a_calibrated_model(
    calibrated_server: RunningServer, calibrated_bundle: Path, shared_dir: Path
) -> None:
    from airparadis.bundle import read_info

    calibration = read_info(calibrated_bundle).calibration
    assert calibration is not None
    page = make_page(calibrated_server.url)
    snap = asyncio.run(page.refresh())
    assert snap is not None and snap.labels == {"negative": 0, "positive": 0}
    assert snap.calibration == calibration  # as /v1/info serves it
    assert math.isnan(snap.drift.estimated_prior if snap.drift else 0.0)  # no traffic yet

    # Live traffic, mostly complaints (10 % positive), and a few verdicts.
    client = ModelServerClient(settings_for(calibrated_server.url))
    tweets = skewed_airline_tweets(shared_dir, 100, positives=10)
    predictions = client.predict(tweets)
    for prediction, truth in zip(
        predictions[:12], ["positive"] * 4 + ["negative"] * 8, strict=True
    ):
        client.feedback(prediction, correct_label=truth)
    snap = asyncio.run(page.refresh())
    assert snap is not None and not snap.notes, snap.notes
    assert snap.labels == {"negative": 8, "positive": 4} and snap.labels_total == 12

    heldout = calibration["heldout"]
    table = quality_frame(snap.calibration).set_index("metric")
    assert table.loc["Macro-F1", "raw"] == pytest.approx(heldout["raw"]["macro_f1"])
    assert table.loc["Macro-F1", "calibrated"] == pytest.approx(heldout["calibrated"]["macro_f1"])
    caught = table.loc["Complaints caught", "calibrated"]
    assert caught == pytest.approx(heldout["calibrated"]["recall_negative"])
    curve = reliability_frame(snap.calibration)
    filled = [b for b in calibration["reliability"] if b["count"]]
    assert curve["count"].tolist() == [b["count"] for b in filled]
    assert curve["frac_positive"].tolist() == pytest.approx([b["frac_positive"] for b in filled])

    drift = client.drift()
    assert snap.drift is not None and drift.estimated_prior == pytest.approx(
        snap.drift.estimated_prior
    )
    assert snap.drift.estimated_prior < snap.drift.training_prior  # mostly complaints
    assert snap.drift.training_prior == pytest.approx(calibration["prior"])

    pn.panel(page).get_root()
    kpis = page.health.quality_kpis.object
    assert "Labels collected" in kpis and "8 negative · 4 positive" in kpis
    raw_f1, calibrated_f1 = heldout["raw"]["macro_f1"], heldout["calibrated"]["macro_f1"]
    assert f"{raw_f1:.3f} → {calibrated_f1:.3f}" in kpis
    assert f"{100 * snap.drift.estimated_prior:.0f} %" in kpis
    assert f"model assumes {100 * calibration['prior']:.0f} %" in kpis
    state = quality_state(snap)
    assert state.startswith(f"Calibrated ({calibration['method']}) on 400 labelled feedbacks")
    assert state in page.health.quality_status.object
    assert all(
        o.visible for o in page.health.quality_body.objects
    ) and page.health.quality_table.value.equals(quality_frame(calibration))
    estimated = drift_frame(snap.drift).set_index("signal").loc["Positive tweets, EM estimate (%)"]
    assert estimated["live"] == f"{100 * snap.drift.estimated_prior:.1f}"


def test_quality_card_of_an_uncalibrated_model(model_server: RunningServer) -> None:
    page = make_page(model_server.url)
    snap = asyncio.run(page.refresh())
    assert snap is not None and snap.calibration is None and snap.labels is not None
    assert quality_frame(None).empty and reliability_frame(None).empty
    pn.panel(page).get_root()
    assert "Not calibrated" in page.health.quality_status.object
    assert not any(o.visible for o in page.health.quality_body.objects)
    assert "no calibration yet" in page.health.quality_kpis.object


def test_quality_tables_tolerate_partial_calibrations() -> None:
    """A calibration written by another version: missing or null scores are blanks, empty
    reliability bins are left out, nothing raises."""
    from datetime import UTC, datetime

    calibration = {
        "method": "temperature",
        "labels": 120,
        "heldout": {"raw": {"macro_f1": 0.61, "brier": None}, "calibrated": {"macro_f1": 0.7}},
        "reliability": [
            {"p_mean": 0.1, "frac_positive": 0.05, "count": 40},
            {"p_mean": None, "frac_positive": None, "count": 0},
            "garbage",
        ],
    }
    table = quality_frame(calibration).set_index("metric")
    assert list(table.index) == ["Macro-F1", "Brier score ↓"]
    assert math.isnan(table.loc["Brier score ↓", "raw"])
    assert reliability_frame(calibration).to_dict("records") == [
        {"p_mean": 0.1, "frac_positive": 0.05, "count": 40}
    ]
    snap = OpsSnapshot(datetime.now(UTC), 3600, served={"calibration": calibration})
    assert quality_state(snap) == "Calibrated (temperature) on 120 labelled feedbacks."
    tuned = {**calibration, "labels": 192, "heldout": {"calibrated": {"macro_f1": 0.8, "n": 19}}}
    snap = OpsSnapshot(datetime.now(UTC), 3600, served={"calibration": tuned})
    assert quality_state(snap) == (
        "Calibrated (temperature) on 192 labelled feedbacks (held-out figures on the latest 19, "
        "unseen by its encoder)."
    )


def test_a_plot_is_rebuilt_only_when_its_data_changes() -> None:
    """A periodic refresh that reads the same numbers leaves the plot as it is (no new Bokeh
    models); new numbers draw a new plot."""
    import holoviews as hv
    import pandas as pd

    from dashboard import theme

    pane = pn.pane.HoloViews(None)
    builds: list[int] = []

    def build(frame: pd.DataFrame) -> hv.Bars:
        builds.append(len(frame))
        return hv.Bars(frame, "label", "n")

    first = pd.DataFrame({"label": ["negative", "positive"], "n": [1, 2]})
    theme.draw_if_changed(pane, first, lambda: build(first))
    drawn = pane.object
    same = first.copy()
    theme.draw_if_changed(pane, same, lambda: build(same))
    assert pane.object is drawn and builds == [2]
    changed = pd.DataFrame({"label": ["negative", "positive"], "n": [1, 3]})
    theme.draw_if_changed(pane, changed, lambda: build(changed))
    assert pane.object is not drawn and builds == [2, 2]
