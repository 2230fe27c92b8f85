"""What the ops page shows, gathered from the server and the registry into plain DataFrames.

Everything here is free of Panel so it can be tested and reused on its own; every source is
read independently and its failure becomes a note, so one broken source never hides the others.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from airparadis.model_card import ModelCard
from dashboard.client import DriftStatus, ModelServerClient, RequestRejected, ServerUnavailable
from dashboard.metrics import LATENCY_STAGES, QUANTILES, ServerMetrics, parse_metrics
from dashboard.ops_text import COUNT_RULE, RULE_NAMES, alert_line, clients_line, latency_text
from dashboard.ops_text import duration as duration
from dashboard.registry import SHOWN_METRICS, AliasedVersion

logger = logging.getLogger(__name__)

# (window seconds, bin seconds, label format) — a dozen to a few dozen bins per window.
BINS = (
    (900, 60, "%H:%M"),
    (3600, 300, "%H:%M"),
    (6 * 3600, 1800, "%H:%M"),
    (86400, 3600, "%H:%M"),
    (7 * 86400, 6 * 3600, "%a %H:%M"),
    (30 * 86400, 86400, "%d %b"),
)
FEEDBACK_COLUMNS = ["start", "bin", "correct", "wrong", "total", "wrong_rate"]
ALERT_COLUMNS = ["fired_at", "source", "rule", "what", "clients", "model_version"]
ALERT_FRAME_COLUMNS = [*ALERT_COLUMNS, "rule_id"]
"""The alerts' frame: the columns shown, and the rule's id (to choose the action lines)."""
LATENCY_COLUMNS = ["stage", *(f"p{round(q * 100)}" for q in QUANTILES), "requests"]


@dataclass
class OpsSnapshot:
    """One refresh of the ops page; a `notes` entry per source that could not be read."""

    taken_at: datetime
    window_seconds: int
    feedback: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FEEDBACK_COLUMNS))
    metrics: ServerMetrics | None = None
    alerts: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ALERT_FRAME_COLUMNS))
    alert_rule: dict[str, Any] = field(default_factory=dict)
    misprediction_rule: dict[str, Any] = field(default_factory=dict)
    drift: DriftStatus | None = None
    served: dict[str, Any] = field(default_factory=dict)
    models: pd.DataFrame = field(default_factory=pd.DataFrame)
    cards: dict[str, ModelCard] = field(default_factory=dict)
    """Model card of each aliased version that has one, by alias."""
    labels: dict[str, int] | None = None
    """Labelled feedback collected, by label; None when the server could not say."""
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def calibration(self) -> dict[str, Any] | None:
        """The served bundle's calibration (learned from feedback), as /v1/info gives it."""
        calibration = self.served.get("calibration")
        return calibration if isinstance(calibration, dict) else None

    @property
    def labels_total(self) -> int:
        return sum(self.labels.values()) if self.labels else 0

    @property
    def feedback_total(self) -> int:
        return int(self.feedback["total"].sum()) if len(self.feedback) else 0

    @property
    def feedback_wrong(self) -> int:
        return int(self.feedback["wrong"].sum()) if len(self.feedback) else 0

    @property
    def wrong_rate(self) -> float:
        """The wrong-prediction rate over the selected window (0 to 1; NaN without verdicts)."""
        total = self.feedback_total
        return self.feedback_wrong / total if total else math.nan

    @property
    def started_at(self) -> datetime | None:
        """When the server process started (its counters count from then), when it says."""
        value = self.served.get("started_at")
        started = pd.to_datetime(value, utc=True, errors="coerce") if value else pd.NaT
        return None if pd.isna(started) else started.to_pydatetime()

    def alerts_within(self, seconds: int) -> pd.DataFrame:
        """The alerts fired within the last `seconds` of this snapshot."""
        since = pd.Timestamp(self.taken_at) - pd.Timedelta(seconds=seconds)
        return self.alerts[self.alerts["fired_at"] >= since]

    @property
    def rate_over_threshold(self) -> bool:
        """The window's wrong-prediction rate is at the rate rule's threshold, on at least
        as many verdicts as that rule needs."""
        threshold = self.misprediction_rule.get("threshold")
        needed = self.misprediction_rule.get("min_feedback", 1)
        rate = self.wrong_rate
        return (
            isinstance(threshold, int | float)
            and not math.isnan(rate)
            and self.feedback_total >= needed
            and rate >= threshold
        )

    @property
    def predictions_total(self) -> int:
        return int(sum(self.metrics.predictions_by_label.values())) if self.metrics else 0

    @property
    def verdicts_since_start(self) -> int:
        """Feedback stored since the server process started (its counters reset with it)."""
        return int(sum(self.metrics.feedback_by_verdict.values())) if self.metrics else 0

    @property
    def misprediction_rate(self) -> float:
        """The server's rolling share of 'wrong' verdicts (0 to 1); NaN until its window
        holds enough verdicts (the server computes it at each scrape)."""
        return self.metrics.misprediction_rate if self.metrics else math.nan


def bin_spec(window_seconds: int) -> tuple[int, str]:
    for window, step, fmt in BINS:
        if window_seconds <= window:
            return step, fmt
    return BINS[-1][1], BINS[-1][2]


def feedback_bins(
    rows: list[dict[str, Any]], window_seconds: int, now: datetime | None = None
) -> pd.DataFrame:
    """Feedback per time bin over the window: correct, wrong, total and the wrong-prediction
    rate (%)."""
    now = now or datetime.now(UTC)
    step, fmt = bin_spec(window_seconds)
    end = pd.Timestamp(now).floor(f"{step}s") + pd.Timedelta(seconds=step)
    start = end - pd.Timedelta(seconds=step * math.ceil(window_seconds / step))
    index = pd.date_range(start, end, freq=f"{step}s", inclusive="left")
    frame = pd.DataFrame(index=index, data={"correct": 0, "wrong": 0})
    if rows:
        events = pd.DataFrame(rows)
        times = pd.to_datetime(events["created_at"], utc=True, errors="coerce", format="ISO8601")
        verdicts = events["verdict"].astype(str)
        keep = times.notna() & (times >= start) & verdicts.isin(["correct", "wrong"])
        if keep.any():  # pandas' crosstab fails on an empty selection of aware times
            binned = times[keep].dt.floor(f"{step}s")
            counts = pd.crosstab(binned, verdicts[keep]).reindex(columns=["correct", "wrong"])
            counts = counts.fillna(0).astype(int)
            frame = frame.add(counts.reindex(index, fill_value=0), fill_value=0).astype(int)
    frame["total"] = frame["correct"] + frame["wrong"]
    share = 100.0 * frame["wrong"] / frame["total"].where(frame["total"] > 0)
    frame["wrong_rate"] = share.astype(float)
    frame.index.name = "start"
    frame = frame.reset_index()
    frame["bin"] = frame["start"].dt.strftime(fmt)
    return frame[FEEDBACK_COLUMNS]


def latency_frame(metrics: ServerMetrics | None) -> pd.DataFrame:
    """Estimated p50/p90/p99 latency in milliseconds by stage, from the server's histograms,
    and the requests measured. A percentile inside the histogram's first bucket is None: the
    estimate would only interpolate between 0 and that bucket's bound (`first_bucket_ms`)."""
    if metrics is None:
        return pd.DataFrame(columns=LATENCY_COLUMNS)
    rows = []
    percentiles = metrics.percentiles()
    for stage in sorted(percentiles, key=lambda s: list(LATENCY_STAGES).index(s)):
        histogram = metrics.latency[stage]
        if not histogram.count:
            continue
        by_q = percentiles[stage]
        rows.append(
            [
                stage,
                *(None if histogram.in_first_bucket(q) else by_q[q] * 1000 for q in QUANTILES),
                int(histogram.count),
            ]
        )
    return pd.DataFrame(rows, columns=LATENCY_COLUMNS, dtype=object)


def latency_shown(frame: pd.DataFrame, metrics: ServerMetrics | None) -> pd.DataFrame:
    """`latency_frame` as the table shows it: ``0.42 ms``, or ``< 5 ms`` inside a first bucket."""
    shown = frame.copy()
    for column in ("p50", "p90", "p99"):
        shown[column] = [
            latency_text(ms, first_bucket_ms(metrics, stage))
            for stage, ms in zip(frame["stage"], frame[column], strict=True)
        ]
    return shown


def first_bucket_ms(metrics: ServerMetrics | None, stage: str) -> float:
    """The upper bound of a stage's first histogram bucket, in milliseconds."""
    histogram = metrics.latency.get(stage) if metrics else None
    return 1000 * histogram.buckets[0][0] if histogram and histogram.buckets else math.nan


def predictions_frame(metrics: ServerMetrics | None) -> pd.DataFrame:
    counts = metrics.predictions_by_label if metrics else {}
    labels = sorted(set(counts) | {"negative", "positive"})
    return pd.DataFrame({"label": labels, "predictions": [int(counts.get(x, 0)) for x in labels]})


def predictions_shown(frame: pd.DataFrame) -> pd.DataFrame:
    """`predictions_frame` as the table shows it, with each label's share of all predictions."""
    total = int(frame["predictions"].sum())
    return frame.assign(**{"share (%)": (100.0 * frame["predictions"] / total).round(1)})


def alerts_shown(alerts: pd.DataFrame) -> pd.DataFrame:
    """`alerts_frame` as the table shows it: its columns, UTC times as text, blanks as None."""
    frame = alerts[ALERT_COLUMNS].copy()
    frame["fired_at"] = frame["fired_at"].dt.strftime("%Y-%m-%d %H:%M:%S UTC")
    return frame.astype(object).where(frame.notna(), None)


def alerts_frame(server: list[dict[str, Any]], azure: pd.DataFrame | None = None) -> pd.DataFrame:
    """The predictor's alerts and, when given, those Azure Monitor recorded; newest first.
    One line per alert says what it saw, with its unit and threshold."""
    rows = [
        {
            "fired_at": pd.to_datetime(a.get("fired_at"), utc=True, errors="coerce"),
            "source": "predictor",
            "rule": RULE_NAMES.get(str(a.get("rule")), str(a.get("rule", ""))),
            "what": alert_line(a),
            "clients": clients_line(a.get("clients")),
            "model_version": a.get("model_version") or "",
            "rule_id": a.get("rule", ""),
        }
        for a in server
    ]
    if azure is not None and len(azure):
        time_column = next(
            (c for c in ("fired_at", "TimeGenerated", "timestamp") if c in azure), None
        )
        for record in azure.to_dict("records"):
            count = record.get("count")
            rows.append(
                {
                    "fired_at": pd.to_datetime(record.get(time_column), utc=True, errors="coerce")
                    if time_column
                    else pd.NaT,
                    "source": "Azure Monitor",
                    "rule": str(record.get("name") or record.get("Name") or RULE_NAMES[COUNT_RULE]),
                    "what": f"{count} wrong" if count is not None else "",
                    "clients": "",
                    "model_version": str(record.get("role") or ""),
                    "rule_id": "",
                }
            )
    frame = pd.DataFrame(rows, columns=ALERT_FRAME_COLUMNS)
    if len(frame):
        frame = frame.sort_values("fired_at", ascending=False, na_position="last")
    return frame.reset_index(drop=True)


def models_frame(versions: list[AliasedVersion], served: dict[str, Any]) -> pd.DataFrame:
    """Champion and challenger side by side, with their test metrics and which one is served."""
    served_version = str(served.get("version")) if served.get("version") is not None else None
    rows = []
    for v in versions:
        row: dict[str, Any] = {
            "alias": v.alias,
            "version": v.version or "— not set —",
            "family": v.family or "",
            "registered": v.created.strftime("%Y-%m-%d %H:%M") if v.created else "",
            "served": "yes" if v.version and v.version == served_version else "",
        }
        for key in SHOWN_METRICS:
            row[key.removeprefix("test_")] = v.metrics.get(key, math.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def collect(
    client: ModelServerClient | None,
    window_seconds: int,
    read_registry: Callable[[], list[AliasedVersion]] | None = None,
    read_azure: Callable[[], tuple[pd.DataFrame, str | None]] | None = None,
    unreachable: str = "",
) -> OpsSnapshot:
    """Read every source once; without a client (server unreachable) only the others."""
    snap = OpsSnapshot(taken_at=datetime.now(UTC), window_seconds=window_seconds)
    snap.feedback = feedback_bins([], window_seconds, snap.taken_at)
    server_alerts: list[dict[str, Any]] = []
    if client is None:
        reason = f"model server unavailable ({unreachable or 'unreachable'})"
        for key in ("feedback", "metrics", "alerts", "drift", "labels"):
            snap.notes[key] = f"No {key}: {reason}"
    else:
        server_alerts = _read_server(client, snap)
    azure = None
    if read_azure is not None:
        try:
            azure, partial = read_azure()
            if partial:
                snap.notes["azure"] = f"Azure Monitor answered in part: {partial}"
        except Exception as exc:  # noqa: BLE001 - shown as a note, never raised
            snap.notes["azure"] = str(exc)
    snap.alerts = alerts_frame(server_alerts, azure)
    if read_registry is not None:
        try:
            versions = read_registry()
            snap.models = models_frame(versions, snap.served)
            snap.cards = {v.alias: v.card for v in versions if v.card is not None}
        except Exception as exc:  # noqa: BLE001 - shown as a note, never raised
            snap.notes["models"] = str(exc)
    return snap


def _read_server(client: ModelServerClient, snap: OpsSnapshot) -> list[dict[str, Any]]:
    """Model info, feedback, metrics, alerts and drift into `snap`; returns the predictor's
    alerts."""
    # First: it names the served model, whose latency series /metrics is filtered to.
    try:
        snap.served = client.info().model_dump(mode="json")
    except (ServerUnavailable, RequestRejected) as exc:
        logger.debug("info: %s", exc)
    try:
        rows = client.recent_feedback(snap.window_seconds)
        snap.feedback = feedback_bins(rows, snap.window_seconds, snap.taken_at)
    except (ServerUnavailable, RequestRejected) as exc:
        snap.notes["feedback"] = f"Feedback not available: {exc}"
    try:
        snap.metrics = parse_metrics(client.metrics_text(), client.served_name)
    except (ServerUnavailable, RequestRejected, ValueError) as exc:
        snap.notes["metrics"] = f"/metrics not available: {exc}"
    server_alerts: list[dict[str, Any]] = []
    try:
        answer = client.alerts()
        server_alerts = [a.model_dump(mode="json") for a in answer.alerts]
        snap.alert_rule = {
            "threshold": answer.threshold,
            "window_seconds": answer.window_seconds,
            "min_distinct_clients": answer.min_distinct_clients,
        }
        snap.misprediction_rule = answer.misprediction.model_dump()
    except (ServerUnavailable, RequestRejected) as exc:
        snap.notes["alerts"] = f"Predictor alerts not available: {exc}"
    try:
        snap.drift = client.drift()
    except (ServerUnavailable, RequestRejected) as exc:
        snap.notes["drift"] = f"Input drift not available: {exc}"
    try:
        snap.labels = client.feedback_labels()
    except (ServerUnavailable, RequestRejected) as exc:
        snap.notes["labels"] = f"Labels collected not available: {exc}"
    return server_alerts
