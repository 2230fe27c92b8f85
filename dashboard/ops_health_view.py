"""The ops page's input-drift and in-domain quality cards: panes made once, then redrawn
from each snapshot (the drift against the training reference; the labels collected, what the
calibration learned from them and the live positive share)."""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd
import panel as pn

from dashboard import theme
from dashboard.ops_data import OpsSnapshot
from dashboard.ops_health import (
    DRIFT_COLUMNS,
    QUALITY_COLUMNS,
    drift_frame,
    drift_proba_frame,
    drift_state,
    quality_frame,
    quality_state,
)
from dashboard.ops_html import (
    DRIFT_NOTE,
    DRIFT_TITLES,
    QUALITY_NOTE,
    QUALITY_TITLES,
    SCORE_FORMAT,
    card,
    empty_html,
    fmt,
    kpi_html,
)
from dashboard.ops_plots import drift_plot, reliability_plot
from dashboard.ops_text import percent

ALL_ROWS = {"renderVertical": "basic"}
"""Tabulator draws every row (a few here): its virtual rendering can draw none when the
table is first laid out inside a card that was hidden until the first refresh."""


class HealthCards:
    """The drift and quality cards; `render` shows a snapshot, `cards` lays them out."""

    def __init__(self) -> None:
        wide: dict[str, Any] = {"sizing_mode": "stretch_width"}
        self.drift_empty = theme.empty("")
        self.drift_status = theme.html_pane("", css_classes=["ap-drift-status"], **wide)
        self.drift_table = pn.widgets.Tabulator(
            pd.DataFrame(columns=DRIFT_COLUMNS),
            disabled=True, show_index=False, layout="fit_data_fill", titles=DRIFT_TITLES,
            css_classes=["ap-drift-table"], configuration=ALL_ROWS, **wide,
        )  # fmt: skip
        # Unlinked: Panel would otherwise share the x range with the feedback plots' bins.
        self.drift_plot = pn.pane.HoloViews(None, linked_axes=False, **wide)
        self.drift_body = theme.wrapping_row(
            pn.Column(self.drift_table, theme.html_pane(DRIFT_NOTE, **wide), **wide),
            self.drift_plot,
            **wide,
        )
        self.quality_kpis = theme.html_pane("", css_classes=["ap-quality-kpis"], **wide)
        self.quality_status = theme.html_pane("", css_classes=["ap-quality-status"], **wide)
        self.quality_table = pn.widgets.Tabulator(
            pd.DataFrame(columns=QUALITY_COLUMNS),
            disabled=True, show_index=False, layout="fit_data_fill", titles=QUALITY_TITLES,
            formatters={c: SCORE_FORMAT for c in ("raw", "calibrated")},
            css_classes=["ap-quality-table"], configuration=ALL_ROWS, **wide,
        )  # fmt: skip
        self.reliability_plot = pn.pane.HoloViews(None, linked_axes=False, **wide)
        self.quality_body = theme.wrapping_row(
            pn.Column(self.quality_table, theme.html_pane(QUALITY_NOTE, **wide), **wide),
            self.reliability_plot,
            **wide,
        )

    def render(self, snap: OpsSnapshot) -> None:
        self.render_drift(snap)
        self.render_quality(snap)

    def cards(self) -> list[pn.Column]:
        return [
            card("Input drift", [self.drift_empty, self.drift_status, self.drift_body], "ap-drift"),
            card(
                "In-domain quality (feedback)",
                [self.quality_kpis, self.quality_status, self.quality_body],
                "ap-quality",
            ),
        ]

    def render_drift(self, snap: OpsSnapshot) -> None:
        drift = snap.drift
        state, sentence = drift_state(drift) if drift else ("", "")
        tracked = drift is not None and drift.tracked
        self.drift_empty.visible = drift is None
        self.drift_status.visible = drift is not None
        theme.show_items(self.drift_body, tracked)
        if drift is None:
            text = snap.notes.get("drift") or "Reading the drift monitor…"
            self.drift_empty.object = empty_html(text)
            return
        self.drift_status.object = (
            f'<div class="ap-drift-state ap-drift-{state}">{html.escape(sentence)}</div>'
        )
        if not tracked:
            return
        self.drift_table.value = drift_frame(drift)
        shares = drift_proba_frame(drift)
        theme.draw_if_changed(self.drift_plot, shares, lambda: drift_plot(shares))

    def render_quality(self, snap: OpsSnapshot) -> None:
        """Labels collected, what the calibration learned from them, the live prior."""
        labels = snap.labels or {}
        if snap.labels is None:
            collected = kpi_html("Labels collected", "–", snap.notes.get("labels", "unknown"))
        else:
            collected = kpi_html(
                "Labels collected",
                f"{snap.labels_total:,}",
                f"{labels.get('negative', 0):,} negative · {labels.get('positive', 0):,} positive",
            )
        frame = quality_frame(snap.calibration)
        by_metric = frame.set_index("metric") if len(frame) else None
        macro = "Macro-F1"
        if by_metric is not None and macro in by_metric.index:
            raw, calibrated = by_metric.loc[macro, "raw"], by_metric.loc[macro, "calibrated"]
            f1 = kpi_html(
                "Macro-F1 on held-out feedback",
                f"{fmt(raw)} → {fmt(calibrated)}",
                "raw model → calibrated",
                bad=not math.isnan(raw) and not math.isnan(calibrated) and calibrated < raw,
            )
        else:
            f1 = kpi_html("Macro-F1 on held-out feedback", "–", "no calibration yet")
        drift = snap.drift
        estimated = drift.estimated_prior if drift else math.nan
        training = drift.training_prior if drift else math.nan
        if drift is None:
            detail = snap.notes.get("drift", "unknown")
        elif math.isnan(estimated):
            detail = f"needs {drift.min_tweets:,} live tweets"
        else:
            detail = f"model assumes {percent(training)} · last {drift.window:,} tweets at most"
        prior = kpi_html("Positive share, live (estimated)", percent(estimated), detail)
        self.quality_kpis.object = f'<div class="ap-quality-row">{collected}{f1}{prior}</div>'
        self.quality_status.object = (
            f'<div class="ap-quality-state">{html.escape(quality_state(snap))}</div>'
        )
        theme.show_items(self.quality_body, not frame.empty)
        if frame.empty or not theme.data_changed(self.reliability_plot, snap.calibration):
            return  # the calibration only changes with the served model: nothing to redraw
        self.quality_table.value = frame
        self.reliability_plot.object = reliability_plot(snap.calibration)
