"""Alerts fired as seen by Azure Monitor, when a workspace or App Insights resource is set.

The predictor logs each negative-feedback alert as the custom event
``airparadis_negative_feedback_alert`` (see ``model_server.alerting``), which the Azure Monitor
exporter sends to Application Insights. This module runs a KQL query over it with
``azure-monitor-query`` and ``DefaultAzureCredential`` (workload identity, managed identity,
environment or Azure CLI). Both packages are imported lazily: without them, or without a
target in the settings, the ops page says so and shows the predictor's own alerts only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pandas as pd

from dashboard.settings import DashboardSettings

ALERT_EVENT = "airparadis_negative_feedback_alert"

# Workspace-based Application Insights keeps custom events in AppEvents ...
WORKSPACE_QUERY = f"""AppEvents
| where Name == "{ALERT_EVENT}"
| project fired_at = TimeGenerated, count = toint(Properties["count"]), role = AppRoleName
| order by fired_at desc
| take 50"""
# ... and a query scoped to the Application Insights resource sees the classic schema.
RESOURCE_QUERY = f"""customEvents
| where name == "{ALERT_EVENT}"
| project fired_at = timestamp, count = toint(customDimensions["count"]), role = cloud_RoleName
| order by fired_at desc
| take 50"""


class AzureMonitorUnavailable(RuntimeError):
    """Not configured, not installed, or the query failed: shown as a note on the ops page."""


@dataclass(frozen=True)
class AzureAlerts:
    frame: pd.DataFrame
    partial_error: str | None = None


def query_alerts(
    settings: DashboardSettings, credential: Any = None, **client_options: Any
) -> AzureAlerts:
    """Rows of the alert query, as a DataFrame with the query's columns.

    `client_options` go to ``LogsQueryClient`` (endpoint, transport, retry settings).
    """
    if not settings.azure_monitor.enabled:
        raise AzureMonitorUnavailable("Azure Monitor is not configured")
    try:
        from azure.monitor.query import LogsQueryClient, LogsQueryStatus
    except ImportError as exc:
        raise AzureMonitorUnavailable(
            "azure-monitor-query is not installed (pip install azure-monitor-query)"
        ) from exc
    if credential is None:
        try:
            from azure.identity import DefaultAzureCredential
        except ImportError as exc:
            raise AzureMonitorUnavailable("azure-identity is not installed") from exc
        credential = DefaultAzureCredential()

    client = LogsQueryClient(credential, **client_options)
    timespan = timedelta(hours=settings.azure_monitor.timespan_hours)
    try:
        if settings.azure_monitor.workspace_id:
            query = settings.azure_monitor.query or WORKSPACE_QUERY
            result = client.query_workspace(
                settings.azure_monitor.workspace_id, query, timespan=timespan
            )
        else:
            query = settings.azure_monitor.query or RESOURCE_QUERY
            result = client.query_resource(
                str(settings.azure_monitor.resource_id), query, timespan=timespan
            )
    except Exception as exc:
        raise AzureMonitorUnavailable(f"Azure Monitor query failed: {_first_line(exc)}") from exc
    finally:
        client.close()

    if result.status == LogsQueryStatus.SUCCESS:
        tables, error = result.tables, None
    else:  # partial result: some rows and an error
        tables, error = result.partial_data, _first_line(result.partial_error)
    if not tables:
        return AzureAlerts(pd.DataFrame(), error)
    table = tables[0]
    return AzureAlerts(pd.DataFrame([list(r) for r in table.rows], columns=table.columns), error)


def _first_line(exc: object) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else exc.__class__.__name__
