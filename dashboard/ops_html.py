"""The ops page's words in HTML: table titles, notes, KPI tiles, action lines, the served
model's line. Shared by `dashboard.ops` and `dashboard.ops_health_view`."""

from __future__ import annotations

import html
import math
from typing import Any

import panel as pn

from dashboard import theme
from dashboard.ops_data import OpsSnapshot
from dashboard.ops_text import WRONG_RATE, Action, percent, rate_rule_text

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
LATENCY_NOTE = (
    "<span class=\"ap-muted\">Estimated from the server's histogram buckets, as Prometheus' "
    "histogram_quantile does: predict from the server's own histogram (buckets from 0.05 ms), "
    "the other stages from kserve's, whose first bucket is 5 ms; an estimate inside a first "
    "bucket shows as “&lt; its bound”.</span>"
)
LATENCY_TITLES = {
    "stage": "Stage",
    "p50": "p50",
    "p90": "p90",
    "p99": "p99",
    "requests": "Requests",
}
ALERT_TITLES = {
    "fired_at": "Fired at",
    "source": "Source",
    "rule": "Rule",
    "what": "What it saw",
    "clients": "Clients",
    "model_version": "Model version",
}
DRIFT_TITLES = {"signal": "Signal", "live": "Live", "reference": "Training reference"}
DRIFT_NOTE = (
    '<span class="ap-muted">Live: the latest tweets the server classified (since it started or '
    "loaded this model). PSI (population stability index): below 0.1 stable, 0.1 to 0.25 a "
    "moderate shift, above 0.25 a major one.</span>"
)
ACTION_STYLE = (
    "background:#fff1e5;border:1px solid #fb8f44;border-left:4px solid #bc4c00;"
    "border-radius:6px;padding:8px 12px;margin:4px 0;color:#3b1c00"
)


def card(title: str, body: list[Any], css: str) -> pn.Column:
    return theme.card(theme.heading(title, level=3), *body, css_class=css)


def kpi_html(title: str, value: str, detail: str, bad: bool = False) -> str:
    return (
        f'<div class="ap-kpi{" bad" if bad else ""}">'
        f'<div class="ap-kpi-title">{html.escape(title)}</div>'
        f'<div class="ap-kpi-value">{html.escape(value)}</div>'
        f'<div class="ap-kpi-detail">{html.escape(detail)}</div></div>'
    )


def wrong_rate_kpi(snap: OpsSnapshot) -> str:
    """The wrong-prediction rate over the selected window, with the rate rule it is judged by."""
    rate = snap.wrong_rate
    rule = rate_rule_text(snap.misprediction_rule)
    if math.isnan(rate):
        detail = (
            snap.notes.get("feedback") and "feedback unavailable"
        ) or "no verdict in the window"
        return kpi_html(WRONG_RATE, "–", f"{detail} · alerts at {rule}")
    detail = f"{snap.feedback_wrong:,} wrong of {snap.feedback_total:,} verdicts · alerts at {rule}"
    return kpi_html(WRONG_RATE, percent(rate), detail, bad=snap.rate_over_threshold)


def action_html(action: Action, runbook_url: str) -> str:
    links = " · ".join(
        f'<a href="{html.escape(runbook_url)}#{anchor}" target="_blank" rel="noopener">'
        f"{html.escape(text)} →</a>"
        for text, anchor in action.links
    )
    return (
        f'<div class="ap-action ap-action-{action.state}" style="{ACTION_STYLE}">'
        f"<b>What to do:</b> {html.escape(action.text)} {links}</div>"
    )


def fmt(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.3f}"


def empty_html(text: str) -> str:
    return f'<div class="ap-empty">{html.escape(text)}</div>'


def _short_uri(info: dict[str, Any]) -> str:
    uri = str(info.get("model_uri") or "?")
    parts = uri.rstrip("/").split("/")
    return uri if len(uri) <= 48 or len(parts) < 3 else "…/" + "/".join(parts[-2:])


def served_line(info: dict[str, Any]) -> str:
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


def alert_notes_html(notes: list[str], azure_enabled: bool) -> str:
    """Why some alerts may be missing: Azure Monitor not configured, sources not read."""
    text = (
        ""
        if azure_enabled
        else '<span class="ap-muted">Azure Monitor: not configured '
        "(AIRPARADIS_DASHBOARD_AZURE_MONITOR_WORKSPACE_ID).</span>"
    )
    return text + "".join(f'<div class="ap-warn">{html.escape(n)}</div>' for n in notes)
