"""The ops page's read-only card on the training data: the latest `airparadis data report`.

The numbers are the metrics of the newest MLflow run tagged ``stage=data-report`` in the
platform's experiment, so the card works wherever the dashboard reads MLflow (the embedded
home or a tracking server); the full report is that run's ``data_report/`` artifacts.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import panel as pn
from panel.viewable import Viewer

from airparadis.settings import PlatformSettings
from airparadis.tracking import DATA_REPORT_STAGE
from dashboard import theme


@dataclass
class DataReportSummary:
    run_id: str
    created: datetime | None
    source: str
    against: str | None
    metrics: dict[str, float] = field(default_factory=dict)


class DataReportUnavailable(RuntimeError):
    """MLflow could not be read."""


def read_latest_data_report(platform: PlatformSettings) -> DataReportSummary | None:
    """The newest data report's numbers, None when no report was logged yet.

    The embedded SQLite store is only read, never created (as the registry card does).
    """
    if platform.embedded and not Path(platform.home, "mlflow.db").is_file():
        return None
    from mlflow import MlflowClient

    try:
        client = MlflowClient(tracking_uri=platform.resolved_tracking_uri)
        experiment = client.get_experiment_by_name(platform.experiment)
        if experiment is None:
            return None
        runs = client.search_runs(
            [experiment.experiment_id],
            filter_string=f"tags.stage = '{DATA_REPORT_STAGE}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
    except Exception as exc:
        raise DataReportUnavailable(f"MLflow: {str(exc).splitlines()[0][:200]}") from exc
    if not runs:
        return None
    run = runs[0]
    started = run.info.start_time
    against = run.data.params.get("data.against")
    return DataReportSummary(
        run_id=run.info.run_id,
        created=datetime.fromtimestamp(started / 1000, UTC) if started else None,
        source=run.data.params.get("data.source", "?"),
        against=None if against in (None, "None") else against,
        metrics=dict(run.data.metrics),
    )


def summary_html(summary: DataReportSummary | None) -> str:
    """The card's body: a few lines, or how to produce a report."""
    if summary is None:
        return (
            '<div class="ap-muted">No data report yet: run <code>airparadis data report '
            "DATA [--against OTHER]</code>.</div>"
        )
    m = summary.metrics
    when = summary.created.strftime("%Y-%m-%d %H:%M UTC") if summary.created else "?"
    lines = [
        f"<b>{html.escape(summary.source)}</b> ({when}, run {html.escape(summary.run_id[:8])})",
        f"{m.get('rows', 0):,.0f} labelled tweets, {_pct(m.get('positive_share'))} positive",
        f"duplicates {m.get('duplicate_rows', 0):,.0f} rows; "
        f"conflicting labels on {m.get('conflicting_texts', 0):,.0f} texts",
        f"non-ASCII {_pct(m.get('non_ascii_share'))}, mojibake {_pct(m.get('mojibake_share'))}",
    ]
    if summary.against is not None and "overlap_oov_rate" in m:
        lines.append(
            f"against {html.escape(summary.against)}: its tokens covered "
            f"{_pct(m['overlap_token_coverage'])}, OOV rate {_pct(m['overlap_oov_rate'])}"
        )
    return "<br>".join(lines)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.2f} %"


class DataReportView(Viewer):
    """Read once when the page is built: the data changes with a new report, not per second."""

    def __init__(self, platform: PlatformSettings, **params: Any) -> None:
        super().__init__(**params)
        try:
            body = summary_html(read_latest_data_report(platform))
        except DataReportUnavailable as exc:
            body = f'<div class="ap-warn">{html.escape(str(exc))}</div>'
        self._body = theme.html_pane(body, sizing_mode="stretch_width")

    def __panel__(self) -> pn.viewable.Viewable:
        return theme.card(
            theme.heading("Training data (latest data report)", level=3),
            self._body,
            css_class="ap-data-report",
        )
