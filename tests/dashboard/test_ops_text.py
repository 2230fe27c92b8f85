"""The ops page's words and window logic, without a server: units on every number, one line
per rule, an action per red state that links to a section the runbook really has."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

import pytest

from dashboard.metrics import Histogram, parse_metrics
from dashboard.ops_data import (
    OpsSnapshot,
    alerts_frame,
    feedback_bins,
    latency_frame,
    latency_shown,
)
from dashboard.ops_text import (
    COUNT_RULE,
    RATE_RULE,
    RUNBOOK_ANCHORS,
    actions,
    alert_line,
    clients_line,
    count_rule_text,
    duration,
    rate_rule_text,
    started_text,
    window_name,
)
from tests.conftest import REPO_ROOT

NOW = datetime(2026, 1, 7, 12, 0, 30, tzinfo=UTC)


def test_one_line_per_rule_with_units() -> None:
    assert count_rule_text({"threshold": 3, "window_seconds": 300, "min_distinct_clients": 2}) == (
        "≥ 3 wrong in 5 min from ≥ 2 clients"
    )
    assert count_rule_text({"threshold": 3, "window_seconds": 300, "min_distinct_clients": 1}) == (
        "≥ 3 wrong in 5 min"
    )
    rule = {"threshold": 0.3, "window_seconds": 3600, "min_feedback": 20, "min_distinct_clients": 2}
    assert rate_rule_text(rule) == "rate ≥ 30 % over 1 h (≥ 20 verdicts, ≥ 2 clients)"
    assert count_rule_text({}) == "count rule unknown" and rate_rule_text({}) == "rate rule unknown"


def test_an_alert_says_what_it_saw_against_its_threshold() -> None:
    count = {"rule": COUNT_RULE, "count": 3, "threshold": 3, "window_seconds": 300}
    assert alert_line(count) == "3 wrong in 5 min (threshold 3)"
    # A rate alert's threshold is a percentage: never "Wrong 15 | Threshold 30" again.
    rate = {"rule": RATE_RULE, "count": 15, "threshold": 30, "window_seconds": 3600,
            "verdicts": 40}  # fmt: skip
    assert alert_line(rate) == "wrong-prediction rate 38 % (threshold 30 %) over 40 verdicts in 1 h"
    older = {"rule": RATE_RULE, "count": 15, "threshold": 30, "window_seconds": 3600}
    assert alert_line(older) == "15 wrong in 1 h (threshold: a rate of 30 %)"
    assert clients_line(["ip:10.0.0.2", "key:abc"]) == "2 clients: ip:10.0.0.2, key:abc"
    assert clients_line([]) == ""


def test_alerts_frame_names_rules_and_clients() -> None:
    fired = NOW.isoformat()
    frame = alerts_frame(
        [{"fired_at": fired, "rule": RATE_RULE, "count": 9, "threshold": 30,
          "window_seconds": 3600, "verdicts": 20, "clients": ["ip:1.2.3.4", "key:k"]}]
    )  # fmt: skip
    row = frame.iloc[0]
    assert row["rule"] == "wrong-prediction rate" and row["rule_id"] == RATE_RULE
    assert row["what"] == "wrong-prediction rate 45 % (threshold 30 %) over 20 verdicts in 1 h"
    assert row["clients"] == "2 clients: ip:1.2.3.4, key:k"


@pytest.mark.parametrize(
    ("drifting", "fired", "over", "states"),
    [
        (False, set(), False, []),
        (True, set(), False, ["drift"]),
        (False, {COUNT_RULE}, False, [COUNT_RULE]),
        (False, set(), True, [RATE_RULE]),
        (True, {COUNT_RULE, RATE_RULE}, False, ["drift", COUNT_RULE, RATE_RULE]),
    ],
)
def test_an_action_per_red_state(
    drifting: bool, fired: set[str], over: bool, states: list[str]
) -> None:
    found = actions(drifting, fired, over)
    assert [a.state for a in found] == states
    assert all(a.links for a in found)


def test_every_action_links_to_a_section_of_the_runbook() -> None:
    """GitHub's anchor of each heading of docs/operations.md: lower case, spaces as dashes."""
    text = (REPO_ROOT / "docs" / "operations.md").read_text()
    anchors = {
        re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in text.splitlines()
        if line.startswith("#")
    }
    used = {anchor for a in actions(True, {COUNT_RULE, RATE_RULE}, True) for _, anchor in a.links}
    assert used == set(RUNBOOK_ANCHORS.values())
    assert used <= anchors, used - anchors


def test_the_rate_and_the_alerts_follow_the_selected_window() -> None:
    rows = [
        {"created_at": (NOW - timedelta(minutes=5)).isoformat(), "verdict": "wrong"},
        {"created_at": (NOW - timedelta(hours=3)).isoformat(), "verdict": "correct"},
        {"created_at": (NOW - timedelta(hours=3)).isoformat(), "verdict": "correct"},
        {"created_at": (NOW - timedelta(hours=3)).isoformat(), "verdict": "correct"},
    ]
    rule = {"threshold": 0.3, "window_seconds": 3600, "min_feedback": 1}
    alerts = alerts_frame(
        [{"fired_at": (NOW - timedelta(hours=2)).isoformat(), "rule": COUNT_RULE, "count": 3,
          "threshold": 3, "window_seconds": 300}]
    )  # fmt: skip
    hour = OpsSnapshot(NOW, 3600, feedback_bins(rows, 3600, NOW), alerts=alerts,
                       misprediction_rule=rule)  # fmt: skip
    six = OpsSnapshot(NOW, 6 * 3600, feedback_bins(rows, 6 * 3600, NOW), alerts=alerts,
                      misprediction_rule=rule)  # fmt: skip
    assert hour.wrong_rate == 1.0 and six.wrong_rate == 0.25
    assert hour.rate_over_threshold and not six.rate_over_threshold
    assert hour.alerts_within(hour.window_seconds).empty
    assert len(six.alerts_within(six.window_seconds)) == 1


def test_the_feedback_charts_have_a_time_axis() -> None:
    """A time axis whatever the window: Bokeh picks readable ticks (days over 7 days), where
    a label per bin crammed 28 of them on the axis."""
    import holoviews as hv

    from dashboard.ops_plots import feedback_plots

    rows = [{"created_at": (NOW - timedelta(days=2)).isoformat(), "verdict": "wrong"}]
    for window in (900, 86400, 7 * 86400):
        volume, rate = feedback_plots(feedback_bins(rows, window, NOW))
        for plot in (volume, rate):
            assert type(hv.render(plot).xaxis[0]).__name__ == "DatetimeAxis"


def test_windows_and_start_time_in_words() -> None:
    assert window_name(7 * 86400) == "Last 7 days" and window_name(1800) == "Last 30 min"
    assert duration(86400) == "1 d" and duration(300) == "5 min" and duration("x") == ""
    assert started_text(None) == "since the server started"
    assert started_text(NOW) == "since the server started (Wed 7 Jan 12:00 UTC)"


def _histogram_text(name: str, bounds: list[float], counts: list[int]) -> str:
    lines = [f"# TYPE {name} histogram"]
    for bound, count in zip([*bounds, math.inf], counts, strict=True):
        le = "+Inf" if math.isinf(bound) else repr(bound)
        lines.append(f'{name}_bucket{{le="{le}",model_name="m"}} {count}')
    lines += [f'{name}_count{{model_name="m"}} {counts[-1]}', f'{name}_sum{{model_name="m"}} 0.1']
    return "\n".join(lines) + "\n"


def test_latency_inside_kserves_first_bucket_reads_below_it() -> None:
    """kserve's first bucket is 5 ms: every fast call lands in it, and interpolating there
    would print 2.50 / 4.50 / 4.95 ms whatever the real latency."""
    text = _histogram_text("request_preprocess_seconds", [0.005, 0.01], [100, 100, 100])
    text += (
        _histogram_text("airparadis_predict_seconds", [0.00005, 0.0001, 0.00025], [0, 60, 100, 100])
        .replace(',model_name="m"', "")
        .replace('{model_name="m"}', "")
    )
    metrics = parse_metrics(text, "m")
    assert metrics.latency["preprocess"].in_first_bucket(0.99)
    frame = latency_frame(metrics).set_index("stage")
    assert frame.loc["preprocess", "p50"] is None and frame.loc["preprocess", "requests"] == 100
    assert frame.loc["predict", "p50"] == pytest.approx(0.0917, abs=1e-3)  # own histogram
    shown = latency_shown(latency_frame(metrics), metrics).set_index("stage")
    assert shown.loc["preprocess", "p99"] == "< 5 ms"
    assert shown.loc["predict", "p50"] == "0.09 ms"
    assert not Histogram().in_first_bucket(0.5)
