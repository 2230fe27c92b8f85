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
from itertools import pairwise
from typing import Any

import pandas as pd

from airparadis.model_card import ModelCard
from dashboard.client import DriftStatus, ModelServerClient, RequestRejected, ServerUnavailable
from dashboard.metrics import LATENCY_STAGES, QUANTILES, ServerMetrics, parse_metrics
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
FEEDBACK_COLUMNS = ["start", "bin", "correct", "wrong", "total", "negative_share"]
ALERT_COLUMNS = ["fired_at", "source", "rule", "count", "threshold", "window", "model_version"]
DRIFT_COLUMNS = ["signal", "live", "reference"]
DRIFT_PROBA_COLUMNS = ["p_positive", "source", "share"]
QUALITY_COLUMNS = ["metric", "raw", "calibrated"]
QUALITY_METRICS = (
    ("macro_f1", "Macro-F1"),
    ("balanced_accuracy", "Balanced accuracy"),
    ("recall_negative", "Complaints caught"),
    ("precision_positive", "Positive precision"),
    ("brier", "Brier score ↓"),
    ("ece", "Calibration error (ECE) ↓"),
)
RELIABILITY_COLUMNS = ["p_mean", "frac_positive", "count"]
LIVE, REFERENCE = "live", "training reference"


@dataclass
class OpsSnapshot:
    """One refresh of the ops page; a `notes` entry per source that could not be read."""

    taken_at: datetime
    window_seconds: int
    feedback: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FEEDBACK_COLUMNS))
    metrics: ServerMetrics | None = None
    alerts: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ALERT_COLUMNS))
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
    def negative_share(self) -> float:
        """Share of 'wrong' verdicts over the window, in percent (NaN without feedback)."""
        total = self.feedback_total
        return 100.0 * self.feedback_wrong / total if total else math.nan

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
    """Feedback per time bin over the window: correct, wrong, total and the wrong share (%)."""
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
        binned = times[keep].dt.floor(f"{step}s")
        counts = pd.crosstab(binned, verdicts[keep]).reindex(columns=["correct", "wrong"])
        counts = counts.fillna(0).astype(int)
        frame = frame.add(counts.reindex(index, fill_value=0), fill_value=0).astype(int)
    frame["total"] = frame["correct"] + frame["wrong"]
    share = 100.0 * frame["wrong"] / frame["total"].where(frame["total"] > 0)
    frame["negative_share"] = share.astype(float)
    frame.index.name = "start"
    frame = frame.reset_index()
    frame["bin"] = frame["start"].dt.strftime(fmt)
    return frame[FEEDBACK_COLUMNS]


def latency_frame(metrics: ServerMetrics | None) -> pd.DataFrame:
    """Estimated p50/p90/p99 latency in milliseconds by stage, from the server's histograms."""
    columns = ["stage", *(f"p{round(q * 100)}" for q in QUANTILES), "requests"]
    if metrics is None:
        return pd.DataFrame(columns=columns)
    rows = []
    percentiles = metrics.percentiles()
    for stage in sorted(percentiles, key=lambda s: list(LATENCY_STAGES).index(s)):
        by_q = percentiles[stage]
        count = metrics.latency[stage].count
        if not count:
            continue
        rows.append([stage, *(by_q[q] * 1000 for q in QUANTILES), int(count)])
    return pd.DataFrame(rows, columns=columns)


def predictions_frame(metrics: ServerMetrics | None) -> pd.DataFrame:
    counts = metrics.predictions_by_label if metrics else {}
    labels = sorted(set(counts) | {"negative", "positive"})
    return pd.DataFrame({"label": labels, "predictions": [int(counts.get(x, 0)) for x in labels]})


def alerts_frame(server: list[dict[str, Any]], azure: pd.DataFrame | None = None) -> pd.DataFrame:
    """The predictor's alerts and, when given, those Azure Monitor recorded; newest first."""
    rows = [
        {
            "fired_at": pd.to_datetime(a.get("fired_at"), utc=True, errors="coerce"),
            "source": "predictor",
            "rule": a.get("rule", ""),
            "count": a.get("count"),
            "threshold": a.get("threshold"),
            "window": duration(a.get("window_seconds")),
            "model_version": a.get("model_version") or "",
        }
        for a in server
    ]
    if azure is not None and len(azure):
        time_column = next(
            (c for c in ("fired_at", "TimeGenerated", "timestamp") if c in azure), None
        )
        for record in azure.to_dict("records"):
            rows.append(
                {
                    "fired_at": pd.to_datetime(record.get(time_column), utc=True, errors="coerce")
                    if time_column
                    else pd.NaT,
                    "source": "Azure Monitor",
                    "rule": str(record.get("name") or record.get("Name") or "negative_feedback"),
                    "count": record.get("count"),
                    "threshold": None,
                    "window": "",
                    "model_version": str(record.get("role") or ""),
                }
            )
    frame = pd.DataFrame(rows, columns=ALERT_COLUMNS)
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


def drift_frame(drift: DriftStatus | None) -> pd.DataFrame:
    """The drift signals as display text: live window against the training reference."""
    if drift is None or drift.live is None or drift.reference is None:
        return pd.DataFrame(columns=DRIFT_COLUMNS)
    live, ref = drift.live, drift.reference
    stable = f"stable ≤ {drift.psi_threshold:g}"
    rows = [
        ["Mean tokens per tweet", _fixed(live.mean_tokens, 1), _fixed(ref.mean_tokens, 1)],
        ["Out-of-vocabulary tokens (%)", _percent(live.oov_share), _percent(ref.oov_share)],
        ["Predicted positive (%)", _percent(live.positive_share), _percent(ref.positive_share)],
        ["PSI of P(positive)", _fixed(drift.psi_probability, 3), stable],
        ["PSI of length (tokens)", _fixed(drift.psi_length, 3), stable],
        [
            "Positive tweets, EM estimate (%)",
            _percent(drift.estimated_prior),
            _percent(drift.training_prior),
        ],
    ]
    return pd.DataFrame(rows, columns=DRIFT_COLUMNS)


def drift_proba_frame(drift: DriftStatus | None) -> pd.DataFrame:
    """Share (%) of tweets per P(positive) bin, live and reference, long for a grouped bar."""
    if drift is None or drift.live is None or drift.reference is None:
        return pd.DataFrame(columns=DRIFT_PROBA_COLUMNS)
    edges = drift.proba_edges
    bins = [f"{low:.1f}–{high:.1f}" for low, high in pairwise(edges)]
    rows = [
        [name, source, 100.0 * share]
        for source, stats in ((LIVE, drift.live), (REFERENCE, drift.reference))
        for name, share in zip(bins, stats.proba_shares, strict=False)
    ]
    return pd.DataFrame(rows, columns=DRIFT_PROBA_COLUMNS)


def drift_state(drift: DriftStatus) -> tuple[str, str]:
    """(state, sentence) for the drift card: untracked, collecting, drifting or stable."""
    if not drift.tracked:
        return "untracked", f"Not tracked: {drift.reason or 'no drift reference'}."
    count = drift.live.count if drift.live else 0
    if not drift.enough_tweets:
        return "collecting", (
            f"Collecting: {count:,} of {drift.min_tweets:,} tweets needed before PSI is "
            f"computed (window: the last {drift.window:,} tweets)."
        )
    psi = f"P(positive) {_fixed(drift.psi_probability, 3)}, length {_fixed(drift.psi_length, 3)}"
    if drift.drifting:
        return "drifting", (
            f"Drifting: a PSI is above {drift.psi_threshold:g} ({psi}) "
            f"over the last {count:,} tweets."
        )
    return "stable", (
        f"Stable: both PSI ≤ {drift.psi_threshold:g} ({psi}) over the last {count:,} tweets."
    )


def quality_frame(calibration: dict[str, Any] | None) -> pd.DataFrame:
    """Raw vs calibrated scores on held-out (out-of-fold) feedback, one row per metric."""
    heldout = calibration.get("heldout") if calibration else None
    if not isinstance(heldout, dict):
        return pd.DataFrame(columns=QUALITY_COLUMNS)
    raw, calibrated = heldout.get("raw") or {}, heldout.get("calibrated") or {}
    rows = [
        [title, _score(raw.get(key)), _score(calibrated.get(key))]
        for key, title in QUALITY_METRICS
        if key in raw or key in calibrated
    ]
    return pd.DataFrame(rows, columns=QUALITY_COLUMNS)


def reliability_frame(calibration: dict[str, Any] | None) -> pd.DataFrame:
    """The calibrated reliability curve: mean predicted P(positive) against the observed
    positive share, per bin that holds feedback."""
    bins = calibration.get("reliability") if calibration else None
    rows = [
        [float(b["p_mean"]), float(b["frac_positive"]), int(b["count"])]
        for b in bins or []
        if isinstance(b, dict)
        and b.get("count")
        and b.get("p_mean") is not None
        and b.get("frac_positive") is not None
    ]
    return pd.DataFrame(rows, columns=RELIABILITY_COLUMNS)


def quality_state(snap: OpsSnapshot) -> str:
    """One sentence on what the served model learned from the feedback so far."""
    calibration = snap.calibration
    if calibration is None:
        if not snap.served:
            return "Unknown: the model server is unavailable."
        return (
            "Not calibrated: the served model still gives its generic (Sentiment140) "
            "probabilities; `airparadis calibrate` fits it on labelled feedback."
        )
    method = str(calibration.get("method", "?"))
    fitted = str(calibration.get("fitted_at") or "")[:16].replace("T", " ")
    threshold = calibration.get("threshold")
    labels = calibration.get("labels")
    text = f"Calibrated ({method}) on {_count(labels)} labelled feedbacks"
    if fitted:
        text += f" at {fitted} UTC"
    if isinstance(threshold, int | float):
        text += f"; positive from P ≥ {threshold:.2f}"
    return text + "."


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "?"


def _score(value: Any) -> float:
    return (
        float(value)
        if isinstance(value, int | float) and not isinstance(value, bool)
        else (math.nan)
    )


def _fixed(value: float, digits: int) -> str:
    return "–" if math.isnan(value) else f"{value:.{digits}f}"


def _percent(share: float) -> str:
    return "–" if math.isnan(share) else f"{100 * share:.1f}"


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
    """Feedback, metrics, alerts, drift and model info into `snap`; returns the predictor's
    alerts."""
    try:
        rows = client.recent_feedback(snap.window_seconds)
        snap.feedback = feedback_bins(rows, snap.window_seconds, snap.taken_at)
    except (ServerUnavailable, RequestRejected) as exc:
        snap.notes["feedback"] = f"Feedback not available: {exc}"
    try:
        snap.metrics = parse_metrics(client.metrics_text(), client.model_name)
    except (ServerUnavailable, RequestRejected, ValueError) as exc:
        snap.notes["metrics"] = f"/metrics not available: {exc}"
    server_alerts: list[dict[str, Any]] = []
    try:
        answer = client.alerts()
        server_alerts = [a.model_dump(mode="json") for a in answer.alerts]
        snap.alert_rule = {"threshold": answer.threshold, "window_seconds": answer.window_seconds}
        snap.misprediction_rule = answer.misprediction.model_dump()
    except (ServerUnavailable, RequestRejected) as exc:
        snap.notes["alerts"] = f"Predictor alerts not available: {exc}"
    try:
        snap.drift = client.drift()
    except (ServerUnavailable, RequestRejected) as exc:
        snap.notes["drift"] = f"Input drift not available: {exc}"
    try:
        snap.served = client.info().model_dump(mode="json")
    except (ServerUnavailable, RequestRejected) as exc:
        logger.debug("info: %s", exc)
    try:
        snap.labels = client.feedback_labels()
    except (ServerUnavailable, RequestRejected) as exc:
        snap.notes["labels"] = f"Labels collected not available: {exc}"
    return server_alerts


def duration(seconds: Any) -> str:
    """``300`` as ``5 min``; empty for anything that is not a number."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return ""
    seconds = int(seconds)
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
