"""The ops page: feedback over time, prediction volume, latency, input drift, alerts, champion
and challenger, and what to do when something is red."""

from __future__ import annotations

import asyncio
import html
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

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
    LATENCY_COLUMNS,
    OpsSnapshot,
    alerts_shown,
    collect,
    feedback_bins,
    latency_frame,
    latency_shown,
    predictions_frame,
    predictions_shown,
)
from dashboard.ops_health import drift_state
from dashboard.ops_health_view import HealthCards
from dashboard.ops_html import (
    ALERT_TITLES,
    LATENCY_NOTE,
    LATENCY_TITLES,
    MODEL_TITLES,
    SCORE_COLUMNS,
    SCORE_FORMAT,
    action_html,
    alert_notes_html,
    card,
    empty_html,
    kpi_html,
    served_line,
    wrong_rate_kpi,
)
from dashboard.ops_plots import feedback_plots, labels_plot, latency_plot
from dashboard.ops_text import (
    WINDOWS,
    actions,
    count_rule_text,
    rate_rule_text,
    started_text,
    window_name,
)
from dashboard.settings import DashboardSettings

logger = logging.getLogger(__name__)


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
            self.param.window.objects = {**WINDOWS, window_name(window): window}
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
            read_azure=self._read_azure if self.settings.azure_monitor.enabled else None,
            unreachable=health.detail,
        )
        return health, info, snap

    def _show(self, gathered: tuple[Health, dict[str, Any] | None, OpsSnapshot]) -> None:
        health, info, snap = gathered
        self.connection.apply(health, info)
        self.snapshot = snap

    @param.depends("refresh_now", "window", watch=True)
    async def refresh(self) -> OpsSnapshot | None:
        """Read every source once, off the event loop, and show the result; never raises.

        The one refresh path: the page's load, the Refresh button, a new window and the
        periodic tick all await it, and so do the tests."""
        if self._refreshing:
            return self.snapshot  # type: ignore[no-any-return]
        self._refreshing = True
        try:
            self._show(await asyncio.to_thread(self._gather, int(self.window)))
        except Exception:
            logger.exception("ops refresh failed")
        finally:
            self._refreshing = False
        return self.snapshot  # type: ignore[no-any-return]

    async def tick(self) -> None:
        """Periodic callback: refresh unless the user paused it."""
        if self.auto_refresh:
            await self.refresh()

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
            for key in ("kpi-predictions", "kpi-feedback", "kpi-wrong-rate", "kpi-alerts")
        }
        self._actions = theme.html_pane("", css_classes=["ap-actions"], sizing_mode="stretch_width")
        wide: dict[str, Any] = {"sizing_mode": "stretch_width"}
        self._feedback_empty = theme.empty("")
        self._volume_plot = pn.pane.HoloViews(None, **wide)
        self._share_plot = pn.pane.HoloViews(None, **wide)
        self._feedback_plots = theme.wrapping_row(self._volume_plot, self._share_plot)
        self._labels_empty = theme.empty("")
        self._labels_plot = pn.pane.HoloViews(None, **wide)
        self._labels_table = pn.widgets.Tabulator(
            pd.DataFrame(columns=["label", "predictions", "share (%)"]),
            disabled=True, show_index=False, layout="fit_data_fill",
            css_classes=["ap-volume-table"], **wide,
        )  # fmt: skip
        self._labels_line = theme.html_pane("", **wide)
        self._latency_empty = theme.empty("")
        self._latency_plot = pn.pane.HoloViews(None, **wide)
        self._latency_table = pn.widgets.Tabulator(
            pd.DataFrame(columns=LATENCY_COLUMNS),
            disabled=True, show_index=False, layout="fit_data_fill", titles=LATENCY_TITLES,
            css_classes=["ap-latency-table"], **wide,
        )  # fmt: skip
        self._latency_line = theme.html_pane("", **wide)
        self.health = HealthCards()
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
        self.health.render(snap)
        self._render_alerts(snap)
        self._render_models(snap)
        self._render_actions(snap)
        when = snap.taken_at.strftime("%H:%M:%S UTC") if self.snapshot else "never"
        self._updated.object = (
            f'<span class="ap-muted ap-updated">Updated {when} · '
            f"refreshes every {self.settings.refresh_seconds:g} s</span>"
        )

    def _render_kpis(self, snap: OpsSnapshot) -> None:
        window = window_name(snap.window_seconds)
        alerts = len(snap.alerts_within(snap.window_seconds))
        self._kpi["kpi-predictions"].object = kpi_html(
            "Predictions", f"{snap.predictions_total:,}", started_text(snap.started_at)
        )
        self._kpi["kpi-feedback"].object = kpi_html(
            "Feedback",
            f"{snap.feedback_total:,}",
            f"{window} · {snap.verdicts_since_start:,} since the server started",
        )
        self._kpi["kpi-wrong-rate"].object = wrong_rate_kpi(snap)
        rules = f"{count_rule_text(snap.alert_rule)} · {rate_rule_text(snap.misprediction_rule)}"
        self._kpi["kpi-alerts"].object = kpi_html(
            "Alerts fired", f"{alerts:,}", f"{window} · rules: {rules}", bad=alerts > 0
        )

    def _render_actions(self, snap: OpsSnapshot) -> None:
        """An action line per red state, linking to the runbook section that says how."""
        fired = set(snap.alerts_within(snap.window_seconds)["rule_id"].astype(str))
        drifting = snap.drift is not None and drift_state(snap.drift)[0] == "drifting"
        found = actions(drifting, fired, snap.rate_over_threshold)
        self._actions.visible = bool(found)
        self._actions.object = "".join(action_html(a, self.settings.runbook_url) for a in found)

    def _render_feedback(self, snap: OpsSnapshot) -> None:
        frame = snap.feedback
        has_data = bool(frame["total"].sum())
        self._feedback_empty.visible = not has_data
        theme.show_items(self._feedback_plots, has_data)
        if not has_data:
            text = (
                snap.notes.get("feedback")
                or f"No feedback — {window_name(snap.window_seconds).lower()}."
            )
            self._feedback_empty.object = empty_html(text)
            return
        if not theme.data_changed(self._volume_plot, frame):
            return  # the same bins: redrawing them would only keep the event loop busy
        volume, rate = feedback_plots(frame)
        self._volume_plot.object = volume
        self._share_plot.object = rate

    def _render_volume(self, snap: OpsSnapshot) -> None:
        frame = predictions_frame(snap.metrics)
        total = int(frame["predictions"].sum())
        self._labels_empty.visible = not total
        for pane in (self._labels_plot, self._labels_table, self._labels_line):
            pane.visible = bool(total)
        if not total:
            text = snap.notes.get("metrics") or "No prediction since the server started."
            self._labels_empty.object = empty_html(text)
            return
        since = started_text(snap.started_at)
        theme.draw_if_changed(self._labels_plot, frame, lambda: labels_plot(frame))
        self._labels_table.value = predictions_shown(frame)
        feedback = snap.metrics.feedback_by_verdict if snap.metrics else {}
        line = (
            f"{total:,} tweets classified; feedback on {int(sum(feedback.values())):,} of them "
            f"({int(feedback.get('wrong', 0)):,} marked wrong) {since}."
        )
        self._labels_line.object = f'<span class="ap-muted">{html.escape(line)}</span>'

    def _render_latency(self, snap: OpsSnapshot) -> None:
        frame = latency_frame(snap.metrics)
        has_data = not frame.empty
        self._latency_empty.visible = not has_data
        for pane in (self._latency_plot, self._latency_table, self._latency_line):
            pane.visible = has_data
        if not has_data:
            text = snap.notes.get("metrics") or "No request measured yet."
            self._latency_empty.object = empty_html(text)
            return
        theme.draw_if_changed(self._latency_plot, frame, lambda: latency_plot(frame))
        self._latency_table.value = latency_shown(frame, snap.metrics)
        requests = int(frame.loc[frame["stage"] == "predict", "requests"].sum())
        line = f"{requests:,} predict requests measured {started_text(snap.started_at)}."
        self._latency_line.object = f'<span class="ap-muted">{html.escape(line)}</span>'

    def _render_alerts(self, snap: OpsSnapshot) -> None:
        has_alerts = not snap.alerts.empty
        self._alerts_empty.visible = not has_alerts
        self._alerts_table.visible = has_alerts
        if has_alerts:
            self._alerts_table.value = alerts_shown(snap.alerts)
        notes = [snap.notes[k] for k in ("alerts", "azure") if k in snap.notes]
        self._alerts_notes.object = alert_notes_html(notes, self.settings.azure_monitor.enabled)

    def _render_models(self, snap: OpsSnapshot) -> None:
        served = html.escape(served_line(snap.served))
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
            stylesheets=[theme.WRAP_CSS],
        )

    def __panel__(self) -> pn.viewable.Viewable:
        wide: dict[str, Any] = {"sizing_mode": "stretch_width"}
        latency_note = theme.html_pane(LATENCY_NOTE)
        return pn.Column(
            self.connection.banner_view(),
            pn.Row(theme.heading("Operations"), pn.layout.HSpacer(), self.controls(),
                   stylesheets=[theme.WRAP_CSS], **wide),
            theme.wrapping_row(*self._kpi.values(), narrowest=200, css_classes=["ap-kpis"]),
            self._actions,
            card("Feedback over time", [self._feedback_empty, self._feedback_plots],
                  "ap-feedback"),
            theme.wrapping_row(
                card(
                    "Prediction volume",
                    [self._labels_empty, self._labels_plot, self._labels_table, self._labels_line],
                    "ap-volume",
                ),
                card(
                    "Latency",
                    [self._latency_empty, self._latency_plot, self._latency_table,
                     self._latency_line, latency_note],
                    "ap-latency",
                ),
            ),
            *self.health.cards(),
            card("Alerts fired", [self._alerts_empty, self._alerts_table, self._alerts_notes],
                  "ap-alerts"),
            card("Champion and challenger (MLflow)",
                 [self._served, self._models_note, self._models_table, self._model_cards],
                 "ap-models"),
            css_classes=["ap-page"],
            **wide,
        )  # fmt: skip
