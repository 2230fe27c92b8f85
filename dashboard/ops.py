"""The ops page: feedback over time, prediction volume, latency, input drift, alerts, champion
and challenger."""

from __future__ import annotations

import asyncio
import html
import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import hvplot.pandas  # noqa: F401 - registers DataFrame.hvplot
import pandas as pd
import panel as pn
import param

from dashboard import theme
from dashboard.azure_monitor import AzureMonitorUnavailable, query_alerts
from dashboard.client import Health
from dashboard.connection import ServerConnection
from dashboard.model_card_view import ModelCardView
from dashboard.ops_data import (
    ALERT_COLUMNS,
    DRIFT_COLUMNS,
    QUALITY_COLUMNS,
    OpsSnapshot,
    collect,
    drift_frame,
    drift_proba_frame,
    drift_state,
    duration,
    feedback_bins,
    latency_frame,
    predictions_frame,
    quality_frame,
    quality_state,
    reliability_frame,
)
from dashboard.settings import DashboardSettings
from dashboard.theme import BLUE, GREEN, GREY, RED

logger = logging.getLogger(__name__)

WINDOWS = {
    "Last 15 minutes": 900,
    "Last hour": 3600,
    "Last 6 hours": 6 * 3600,
    "Last 24 hours": 86400,
    "Last 7 days": 7 * 86400,
}
MODEL_TITLES = {
    "alias": "Alias",
    "version": "Version",
    "family": "Family",
    "registered": "Registered",
    "served": "Served",
    "accuracy": "Accuracy",
    "macro_f1": "Macro-F1",
    "recall_negative": "Complaints caught",
    "roc_auc": "ROC AUC",
    "f1_negative": "F1 negative",
    "f1_positive": "F1 positive",
}
SCORE_COLUMNS = ("accuracy", "macro_f1", "recall_negative", "roc_auc", "f1_negative", "f1_positive")
QUALITY_TITLES = {"metric": "On held-out feedback", "raw": "Raw model", "calibrated": "Calibrated"}
QUALITY_NOTE = (
    '<span class="ap-muted">Scored out of fold: each labelled feedback by a calibration fitted '
    "without it (↓: lower is better). Complaints caught: recall of negative tweets. "
    "Reliability: of the tweets given P(positive) ≈ x, the share really positive; on the "
    "diagonal, probabilities mean what they say. Estimated positive share: the EM method "
    "(Saerens et al., 2002) on the server's drift window, without labels.</span>"
)
SCORE_FORMAT = {"type": "money", "precision": 4, "symbol": ""}
MS_FORMAT = {"type": "money", "precision": 2, "symbol": ""}
LATENCY_TITLES = {
    "stage": "Stage",
    "p50": "p50 (ms)",
    "p90": "p90 (ms)",
    "p99": "p99 (ms)",
    "requests": "Requests",
}
ALERT_TITLES = {
    "fired_at": "Fired at",
    "source": "Source",
    "rule": "Rule",
    "count": "Wrong",
    "threshold": "Threshold",
    "window": "Window",
    "model_version": "Model version",
}
DRIFT_TITLES = {"signal": "Signal", "live": "Live", "reference": "Training reference"}
DRIFT_NOTE = (
    '<span class="ap-muted">Live: the latest tweets the server classified (since it started or '
    "loaded this model). PSI (population stability index): below 0.1 stable, 0.1 to 0.25 a "
    "moderate shift, above 0.25 a major one.</span>"
)
PLOT_OPTS: dict[str, Any] = {
    "responsive": True,
    "height": 250,
    "fontscale": 0.95,
    "toolbar": None,
    "tools": ["hover"],
}


class OpsPage(pn.viewable.Viewer):  # type: ignore[misc]
    """Health of the served model, refreshed periodically without reloading the page."""

    window: param.Selector[int] = param.Selector(
        default=3600, objects=WINDOWS, label="Feedback window"
    )
    auto_refresh = param.Boolean(default=True, label="Auto refresh")
    refresh_now = param.Event(label="↻ Refresh")
    snapshot = param.ClassSelector(class_=OpsSnapshot, default=None, allow_None=True)

    def __init__(
        self,
        connection: ServerConnection,
        settings: DashboardSettings,
        read_registry: Callable[[], Any] | None = None,
        **params: Any,
    ) -> None:
        window = params.pop("window", settings.feedback_window_seconds)
        super().__init__(**params)
        self.connection = connection
        self.settings = settings
        self.read_registry = read_registry
        self._azure_cache: tuple[float, Any] | None = None
        self._refreshing = True  # no refresh while the page is being built
        self._build()
        if window not in WINDOWS.values():
            self.param.window.objects = {**WINDOWS, f"Last {_seconds(window)}": window}
        self.window = window
        self._refreshing = False

    # -- data -------------------------------------------------------------------------------
    def _read_azure(self) -> tuple[pd.DataFrame, str | None]:
        """Azure Monitor alerts, queried at most once a minute per page."""
        now = time.monotonic()
        if self._azure_cache and now - self._azure_cache[0] < max(
            60, self.settings.refresh_seconds
        ):
            cached = self._azure_cache[1]
            if isinstance(cached, Exception):
                raise cached
            return cached  # type: ignore[no-any-return]
        try:
            result = query_alerts(self.settings)
            value: Any = (result.frame, result.partial_error)
        except AzureMonitorUnavailable as exc:
            value = exc
        self._azure_cache = (now, value)
        if isinstance(value, Exception):
            raise value
        return value  # type: ignore[no-any-return]

    def _gather(self, window: int) -> tuple[Health, dict[str, Any] | None, OpsSnapshot]:
        """Every source read once (blocking); the server's only when it answers."""
        health, info = self.connection.probe()
        snap = collect(
            self.connection.client if health.reachable else None,
            window,
            read_registry=self.read_registry,
            read_azure=self._read_azure if self.settings.azure_monitor_enabled else None,
            unreachable=health.detail,
        )
        return health, info, snap

    def _show(self, gathered: tuple[Health, dict[str, Any] | None, OpsSnapshot]) -> None:
        health, info, snap = gathered
        self.connection.apply(health, info)
        self.snapshot = snap

    def refresh(self) -> OpsSnapshot | None:
        """Read every source once and show the result; never raises."""
        if self._refreshing:
            return self.snapshot  # type: ignore[no-any-return]
        self._refreshing = True
        try:
            self._show(self._gather(int(self.window)))
        except Exception:
            logger.exception("ops refresh failed")
        finally:
            self._refreshing = False
        return self.snapshot  # type: ignore[no-any-return]

    @param.depends("refresh_now", "window", watch=True)
    async def refresh_async(self) -> None:
        """`refresh` for the page's callbacks: the reading runs off the event loop."""
        if self._refreshing:
            return
        self._refreshing = True
        try:
            self._show(await asyncio.to_thread(self._gather, int(self.window)))
        except Exception:
            logger.exception("ops refresh failed")
        finally:
            self._refreshing = False

    async def tick(self) -> None:
        """Periodic callback: refresh unless the user paused it."""
        if self.auto_refresh:
            await self.refresh_async()

    # -- views ------------------------------------------------------------------------------
    def _placeholder(self) -> OpsSnapshot:
        return OpsSnapshot(
            taken_at=datetime.now(UTC),
            window_seconds=int(self.window),
            feedback=feedback_bins([], int(self.window)),
        )

    def _build(self) -> None:
        """The panes, made once: a refresh only changes what they show, so nothing flickers."""
        self._kpi = {
            key: theme.html_pane("", sizing_mode="stretch_width", margin=(5, 5), css_classes=[key])
            for key in (
                "kpi-predictions", "kpi-feedback", "kpi-negative", "kpi-misprediction",
                "kpi-alerts",
            )
        }  # fmt: skip
        wide: dict[str, Any] = {"sizing_mode": "stretch_width"}
        self._feedback_empty = theme.empty("")
        self._volume_plot = pn.pane.HoloViews(None, **wide)
        self._share_plot = pn.pane.HoloViews(None, **wide)
        self._feedback_plots = pn.Row(self._volume_plot, self._share_plot, **wide)
        self._labels_empty = theme.empty("")
        self._labels_plot = pn.pane.HoloViews(None, **wide)
        self._labels_table = pn.widgets.Tabulator(
            pd.DataFrame(columns=["label", "predictions", "share (%)"]),
            disabled=True, show_index=False, layout="fit_columns",
            css_classes=["ap-volume-table"], **wide,
        )  # fmt: skip
        self._labels_line = theme.html_pane("", **wide)
        self._latency_empty = theme.empty("")
        self._latency_plot = pn.pane.HoloViews(None, **wide)
        self._latency_table = pn.widgets.Tabulator(
            pd.DataFrame(columns=list(LATENCY_TITLES)),
            disabled=True, show_index=False, layout="fit_columns", titles=LATENCY_TITLES,
            formatters={c: MS_FORMAT for c in ("p50", "p90", "p99")},
            css_classes=["ap-latency-table"], **wide,
        )  # fmt: skip
        self._drift_empty = theme.empty("")
        self._drift_status = theme.html_pane("", css_classes=["ap-drift-status"], **wide)
        self._drift_table = pn.widgets.Tabulator(
            pd.DataFrame(columns=DRIFT_COLUMNS),
            disabled=True, show_index=False, layout="fit_columns", titles=DRIFT_TITLES,
            css_classes=["ap-drift-table"], **wide,
        )  # fmt: skip
        # Unlinked: Panel would otherwise share the x range with the feedback plots' bins.
        self._drift_plot = pn.pane.HoloViews(None, linked_axes=False, **wide)
        self._drift_body = pn.Row(
            pn.Column(self._drift_table, theme.html_pane(DRIFT_NOTE, **wide), **wide),
            self._drift_plot,
            **wide,
        )
        self._quality_kpis = theme.html_pane("", css_classes=["ap-quality-kpis"], **wide)
        self._quality_status = theme.html_pane("", css_classes=["ap-quality-status"], **wide)
        self._quality_table = pn.widgets.Tabulator(
            pd.DataFrame(columns=QUALITY_COLUMNS),
            disabled=True, show_index=False, layout="fit_columns", titles=QUALITY_TITLES,
            formatters={c: SCORE_FORMAT for c in ("raw", "calibrated")},
            css_classes=["ap-quality-table"], **wide,
        )  # fmt: skip
        self._reliability_plot = pn.pane.HoloViews(None, linked_axes=False, **wide)
        self._shown_calibration: dict[str, Any] | None = None
        self._quality_body = pn.Row(
            pn.Column(self._quality_table, theme.html_pane(QUALITY_NOTE, **wide), **wide),
            self._reliability_plot,
            **wide,
        )
        self._alerts_empty = theme.empty("No alert fired. ✓")
        self._alerts_table = pn.widgets.Tabulator(
            pd.DataFrame(columns=ALERT_COLUMNS),
            disabled=True, show_index=False, layout="fit_data_stretch", pagination="local",
            page_size=8, titles=ALERT_TITLES, css_classes=["ap-alerts-table"], **wide,
        )  # fmt: skip
        self._alerts_notes = theme.html_pane("", **wide)
        self._served = theme.html_pane("", **wide)
        self._models_table = pn.widgets.Tabulator(
            pd.DataFrame(columns=list(MODEL_TITLES)),
            disabled=True, show_index=False, layout="fit_data_stretch", titles=MODEL_TITLES,
            formatters={c: SCORE_FORMAT for c in SCORE_COLUMNS},
            css_classes=["ap-models-table"], **wide,
        )  # fmt: skip
        self._models_note = theme.html_pane("", **wide)
        self._model_cards = ModelCardView()
        self._updated = theme.html_pane("", margin=(14, 10))
        self._render()

    @param.depends("snapshot", watch=True)
    def _render(self) -> None:
        snap: OpsSnapshot = self.snapshot or self._placeholder()
        self._render_kpis(snap)
        self._render_feedback(snap)
        self._render_volume(snap)
        self._render_latency(snap)
        self._render_drift(snap)
        self._render_quality(snap)
        self._render_alerts(snap)
        self._render_models(snap)
        when = snap.taken_at.strftime("%H:%M:%S UTC") if self.snapshot else "never"
        self._updated.object = (
            f'<span class="ap-muted ap-updated">Updated {when} · '
            f"refreshes every {self.settings.refresh_seconds:g} s</span>"
        )

    def _render_kpis(self, snap: OpsSnapshot) -> None:
        share = snap.negative_share
        metrics = snap.metrics
        since_start = int(sum(metrics.feedback_by_verdict.values())) if metrics else 0
        alerts = len(snap.alerts)
        self._kpi["kpi-predictions"].object = _kpi_html(
            "Predictions", f"{snap.predictions_total:,}", "since the server started"
        )
        self._kpi["kpi-feedback"].object = _kpi_html(
            "Feedback",
            f"{snap.feedback_total:,}",
            f"{_window_name(snap.window_seconds)} · {since_start:,} since start",
        )
        self._kpi["kpi-negative"].object = _kpi_html(
            "Negative feedback",
            "–" if math.isnan(share) else f"{share:.0f} %",
            f"{snap.feedback_wrong:,} marked wrong",
            bad=not math.isnan(share) and share >= 50,
        )
        self._kpi["kpi-misprediction"].object = _misprediction_kpi(snap)
        self._kpi["kpi-alerts"].object = _kpi_html(
            "Alerts fired", f"{alerts:,}", _rule_text(snap.alert_rule), bad=alerts > 0
        )

    def _render_feedback(self, snap: OpsSnapshot) -> None:
        frame = snap.feedback
        has_data = bool(frame["total"].sum())
        self._feedback_empty.visible = not has_data
        self._feedback_plots.visible = has_data
        if not has_data:
            text = snap.notes.get("feedback") or (
                f"No feedback — {_window_name(snap.window_seconds).lower()}."
            )
            self._feedback_empty.object = _empty_html(text)
            return
        rot = 45 if len(frame) > 8 else 0
        self._volume_plot.object = frame.hvplot.bar(
            x="bin", y=["correct", "wrong"], stacked=True, color=[GREEN, RED], xlabel="",
            ylabel="feedback", title="Feedback received", legend="top_left", rot=rot,
            **PLOT_OPTS,
        )  # fmt: skip
        self._share_plot.object = frame.hvplot.line(
            x="bin", y="negative_share", color=RED, xlabel="", ylabel="% wrong",
            ylim=(0, 105), title="Negative share (verdict “wrong”)", rot=rot, **PLOT_OPTS,
        ) * frame.hvplot.scatter(
            x="bin", y="negative_share", color=RED, size=40, **PLOT_OPTS
        )  # fmt: skip

    def _render_volume(self, snap: OpsSnapshot) -> None:
        frame = predictions_frame(snap.metrics)
        total = int(frame["predictions"].sum())
        self._labels_empty.visible = not total
        for pane in (self._labels_plot, self._labels_table, self._labels_line):
            pane.visible = bool(total)
        if not total:
            text = snap.notes.get("metrics") or "No prediction since the server started."
            self._labels_empty.object = _empty_html(text)
            return
        colors = {"negative": RED, "positive": GREEN}
        frame["color"] = [colors.get(label, GREY) for label in frame["label"]]
        self._labels_plot.object = frame.hvplot.bar(
            x="label", y="predictions", color="color", xlabel="", ylabel="predictions",
            title="Predictions by label (since server start)", hover_cols=["predictions"],
            **PLOT_OPTS,
        )  # fmt: skip
        self._labels_table.value = pd.DataFrame(
            {
                "label": frame["label"],
                "predictions": frame["predictions"],
                "share (%)": (100.0 * frame["predictions"] / total).round(1),
            }
        )
        feedback = snap.metrics.feedback_by_verdict if snap.metrics else {}
        line = (
            f"{total:,} tweets classified; feedback on {int(sum(feedback.values())):,} of them "
            f"({int(feedback.get('wrong', 0)):,} marked wrong) since the server started."
        )
        self._labels_line.object = f'<span class="ap-muted">{html.escape(line)}</span>'

    def _render_latency(self, snap: OpsSnapshot) -> None:
        frame = latency_frame(snap.metrics)
        has_data = not frame.empty
        self._latency_empty.visible = not has_data
        self._latency_plot.visible = self._latency_table.visible = has_data
        if not has_data:
            text = snap.notes.get("metrics") or "No request measured yet."
            self._latency_empty.object = _empty_html(text)
            return
        long = frame.melt(
            id_vars="stage", value_vars=["p50", "p90", "p99"], var_name="quantile", value_name="ms"
        )
        self._latency_plot.object = long.hvplot.bar(
            x="stage", y="ms", by="quantile", xlabel="", ylabel="milliseconds",
            title="Latency percentiles by stage", color=["#54aeff", "#0969da", "#0a3069"],
            legend="top_right", **PLOT_OPTS,
        )  # fmt: skip
        self._latency_table.value = frame

    def _render_drift(self, snap: OpsSnapshot) -> None:
        drift = snap.drift
        state, sentence = drift_state(drift) if drift else ("", "")
        tracked = drift is not None and drift.tracked
        self._drift_empty.visible = drift is None
        self._drift_status.visible = drift is not None
        self._drift_body.visible = tracked
        if drift is None:
            text = snap.notes.get("drift") or "Reading the drift monitor…"
            self._drift_empty.object = _empty_html(text)
            return
        self._drift_status.object = (
            f'<div class="ap-drift-state ap-drift-{state}">{html.escape(sentence)}</div>'
        )
        if not tracked:
            return
        self._drift_table.value = drift_frame(drift)
        self._drift_plot.object = drift_proba_frame(drift).hvplot.bar(
            x="p_positive", y="share", by="source", xlabel="P(positive)", ylabel="% of tweets",
            title="P(positive) distribution: live vs training", color=[BLUE, GREY],
            legend="top_left", rot=45, **PLOT_OPTS,
        ).opts(multi_level=False)  # fmt: skip

    def _render_quality(self, snap: OpsSnapshot) -> None:
        """Labels collected, what the calibration learned from them, the live prior."""
        labels = snap.labels or {}
        if snap.labels is None:
            collected = _kpi_html("Labels collected", "–", snap.notes.get("labels", "unknown"))
        else:
            collected = _kpi_html(
                "Labels collected",
                f"{snap.labels_total:,}",
                f"{labels.get('negative', 0):,} negative · {labels.get('positive', 0):,} positive",
            )
        frame = quality_frame(snap.calibration)
        by_metric = frame.set_index("metric") if len(frame) else None
        macro = "Macro-F1"
        if by_metric is not None and macro in by_metric.index:
            raw, calibrated = by_metric.loc[macro, "raw"], by_metric.loc[macro, "calibrated"]
            f1 = _kpi_html(
                "Macro-F1 on held-out feedback",
                f"{_fmt(raw)} → {_fmt(calibrated)}",
                "raw model → calibrated",
                bad=not math.isnan(raw) and not math.isnan(calibrated) and calibrated < raw,
            )
        else:
            f1 = _kpi_html("Macro-F1 on held-out feedback", "–", "no calibration yet")
        drift = snap.drift
        estimated = drift.estimated_prior if drift else math.nan
        training = drift.training_prior if drift else math.nan
        if drift is None:
            detail = snap.notes.get("drift", "unknown")
        elif math.isnan(estimated):
            detail = f"needs {drift.min_tweets:,} live tweets"
        else:
            detail = f"model assumes {_pct(training)} · last {drift.window:,} tweets at most"
        prior = _kpi_html("Positive share, live (estimated)", _pct(estimated), detail)
        self._quality_kpis.object = f'<div class="ap-quality-row">{collected}{f1}{prior}</div>'
        self._quality_status.object = (
            f'<div class="ap-quality-state">{html.escape(quality_state(snap))}</div>'
        )
        self._quality_body.visible = not frame.empty
        if frame.empty or snap.calibration == self._shown_calibration:
            return  # the calibration only changes with the served model: nothing to redraw
        self._shown_calibration = snap.calibration
        self._quality_table.value = frame
        curve = reliability_frame(snap.calibration)
        diagonal = pd.DataFrame({"p_mean": [0.0, 1.0], "frac_positive": [0.0, 1.0]})
        plot = diagonal.hvplot.line(
            x="p_mean", y="frac_positive", color=GREY, line_dash="dashed", label="perfect",
            **PLOT_OPTS,
        )  # fmt: skip
        if not curve.empty:
            plot = plot * curve.hvplot.line(
                x="p_mean", y="frac_positive", color=BLUE, label="calibrated", **PLOT_OPTS
            ) * curve.hvplot.scatter(
                x="p_mean", y="frac_positive", color=BLUE, size=40, hover_cols=["count"],
                **PLOT_OPTS,
            )  # fmt: skip
        self._reliability_plot.object = plot.opts(
            title="Reliability on held-out feedback", xlabel="predicted P(positive)",
            ylabel="observed positive share", xlim=(0, 1), ylim=(0, 1), legend_position="top_left",
        )  # fmt: skip

    def _render_alerts(self, snap: OpsSnapshot) -> None:
        has_alerts = not snap.alerts.empty
        self._alerts_empty.visible = not has_alerts
        self._alerts_table.visible = has_alerts
        if has_alerts:
            frame = snap.alerts.copy()
            frame["fired_at"] = frame["fired_at"].dt.strftime("%Y-%m-%d %H:%M:%S UTC")
            self._alerts_table.value = frame.astype(object).where(frame.notna(), None)
        notes = [snap.notes[k] for k in ("alerts", "azure") if k in snap.notes]
        if not self.settings.azure_monitor_enabled:
            notes_html = (
                '<span class="ap-muted">Azure Monitor: not configured '
                "(AIRPARADIS_DASHBOARD_AZURE_MONITOR_WORKSPACE_ID).</span>"
            )
        else:
            notes_html = ""
        notes_html += "".join(f'<div class="ap-warn">{html.escape(n)}</div>' for n in notes)
        self._alerts_notes.object = notes_html

    def _render_models(self, snap: OpsSnapshot) -> None:
        served = html.escape(_served_line(snap.served))
        self._served.object = f'<div class="ap-served"><b>Served now:</b> {served}</div>'
        if self.read_registry is None:
            note = "Registry disabled (AIRPARADIS_DASHBOARD_REGISTRY_ENABLED=false)."
        elif "models" in snap.notes:
            note = f"MLflow registry not available: {snap.notes['models']}"
        elif self.snapshot is None:
            note = "Reading the registry…"
        else:
            note = ""
        has_models = not note and not snap.models.empty
        self._models_table.visible = has_models
        if has_models:
            self._models_table.value = snap.models.astype(object).where(snap.models.notna(), None)
        self._models_note.object = f'<div class="ap-warn">{html.escape(note)}</div>' if note else ""
        self._models_note.visible = bool(note)
        self._model_cards.update(snap.cards if has_models else {})

    def controls(self) -> pn.viewable.Viewable:
        return pn.Row(
            pn.widgets.Select.from_param(self.param.window, name="", width=170, description=None),
            pn.widgets.Checkbox.from_param(self.param.auto_refresh, margin=(18, 10)),
            pn.widgets.Button.from_param(
                self.param.refresh_now,
                **theme.button_look("primary", "outline"),
                width=110,
                description=None,
                css_classes=["ap-refresh"],
            ),
            self._updated,
            align="center",
        )

    def __panel__(self) -> pn.viewable.Viewable:
        wide: dict[str, Any] = {"sizing_mode": "stretch_width"}
        latency_note = theme.html_pane(
            '<span class="ap-muted">Estimated from the server\'s histogram buckets '
            "(as Prometheus' histogram_quantile), since the server started.</span>"
        )
        return pn.Column(
            self.connection.banner_view(),
            pn.Row(theme.heading("Operations"), pn.layout.HSpacer(), self.controls(), **wide),
            pn.Row(*self._kpi.values(), css_classes=["ap-kpis"], **wide),
            _card("Feedback over time", [self._feedback_empty, self._feedback_plots],
                  "ap-feedback"),
            pn.Row(
                _card(
                    "Prediction volume",
                    [self._labels_empty, self._labels_plot, self._labels_table, self._labels_line],
                    "ap-volume",
                ),
                _card(
                    "Latency",
                    [self._latency_empty, self._latency_plot, self._latency_table, latency_note],
                    "ap-latency",
                ),
                **wide,
            ),
            _card(
                "Input drift",
                [self._drift_empty, self._drift_status, self._drift_body],
                "ap-drift",
            ),
            _card(
                "In-domain quality (feedback)",
                [self._quality_kpis, self._quality_status, self._quality_body],
                "ap-quality",
            ),
            _card("Alerts fired", [self._alerts_empty, self._alerts_table, self._alerts_notes],
                  "ap-alerts"),
            _card("Champion and challenger (MLflow)",
                  [self._served, self._models_note, self._models_table, self._model_cards],
                  "ap-models"),
            css_classes=["ap-page"],
            **wide,
        )  # fmt: skip


def _card(title: str, body: list[Any], css: str) -> pn.Column:
    return theme.card(theme.heading(title, level=3), *body, css_class=css)


def _kpi_html(title: str, value: str, detail: str, bad: bool = False) -> str:
    return (
        f'<div class="ap-kpi{" bad" if bad else ""}">'
        f'<div class="ap-kpi-title">{html.escape(title)}</div>'
        f'<div class="ap-kpi-value">{html.escape(value)}</div>'
        f'<div class="ap-kpi-detail">{html.escape(detail)}</div></div>'
    )


def _misprediction_kpi(snap: OpsSnapshot) -> str:
    """The rolling wrong share the server alerts on, with its rule; a dash until it counts."""
    rate = snap.misprediction_rate
    rule = snap.misprediction_rule
    window = _seconds(rule.get("window_seconds"))
    threshold = rule.get("threshold")
    if math.isnan(rate):
        if snap.metrics is not None and not snap.verdicts_since_start:
            detail = "no verdict since the server started"
        elif rule:
            detail = f"needs ≥ {rule.get('min_feedback', '?')} verdicts in {window}"
        else:
            detail = "rule unknown"
        return _kpi_html("Misprediction rate", "–", detail)
    if isinstance(threshold, int | float):
        detail = f"alerts at ≥ {100 * threshold:.0f} % over {window}"
        bad = rate >= threshold
    else:
        detail, bad = "rule unknown", False
    return _kpi_html("Misprediction rate", f"{100 * rate:.0f} %", detail, bad=bad)


def _fmt(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.3f}"


def _pct(share: float) -> str:
    return "–" if math.isnan(share) else f"{100 * share:.0f} %"


def _empty_html(text: str) -> str:
    return f'<div class="ap-empty">{html.escape(text)}</div>'


def _window_name(seconds: int) -> str:
    for name, value in WINDOWS.items():
        if value == seconds:
            return name
    return f"Last {_seconds(seconds)}"


def _seconds(value: Any) -> str:
    return duration(value) or "?"


def _short_uri(info: dict[str, Any]) -> str:
    uri = str(info.get("model_uri") or "?")
    parts = uri.rstrip("/").split("/")
    return uri if len(uri) <= 48 or len(parts) < 3 else "…/" + "/".join(parts[-2:])


def _rule_text(rule: dict[str, Any]) -> str:
    if not rule:
        return "rule unknown"
    window = _seconds(rule.get("window_seconds"))
    return f"rule: ≥ {rule.get('threshold', '?')} wrong within {window}"


def _served_line(info: dict[str, Any]) -> str:
    if not info:
        return "unknown (server unavailable)"
    version = info.get("version")
    name = info.get("registered_name") or info.get("name") or "?"
    text = f"{name} version {version}" if version else f"{name} from {_short_uri(info)}"
    if info.get("aliases"):
        text += " (" + ", ".join(f"@{a}" for a in info["aliases"]) + ")"
    if info.get("family"):
        text += f" · {info['family']}"
    return text
