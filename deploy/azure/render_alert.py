"""Write the Azure Monitor alerts as ARM templates: wrong predictions, and model health.

The model server sends one custom event per stored feedback through azure-monitor-opentelemetry:
name ``airparadis_feedback``, custom dimension ``verdict`` = ``correct`` | ``wrong``. It lands in
Application Insights' ``customEvents`` table (``AppEvents`` in a Log Analytics workspace).
The rule counts the ``wrong`` ones and fires when there are at least
``ServerSettings().alert.threshold`` of them within ``ServerSettings().alert.window_seconds``,
the same numbers the server uses for its own in-process alert, so both agree.

The Azure rule counts verdicts whoever sent them: the custom event does not carry the client,
so the distinct-client condition of the server's own rule (``alert.min_distinct_clients``)
is not repeated there (docs/operations.md#alerts).

``health-alerts.json`` adds two rules that reuse that template's action group: the server's
wrong-prediction rate alert (its ``airparadis_misprediction_alert`` custom event) and input drift
(the ``airparadis_drift_psi`` gauge in ``customMetrics`` above ``drift.psi_threshold`` for
three 5-minute periods running).

    .venv/bin/python deploy/azure/render_alert.py          # rewrite both templates
    .venv/bin/python deploy/azure/render_alert.py --check  # exit 1 when it is stale
    .venv/bin/python deploy/azure/render_alert.py --from-env \
        --output my-alert.json --health-output my-health-alerts.json

Custom values never land in the committed templates: with ``--from-env`` both outputs must be
named, and neither may be one of the committed files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from model_server.alerting import MISPREDICTION_EVENT  # noqa: E402
from model_server.drift import PSI_METRIC as DRIFT_METRIC  # noqa: E402
from model_server.settings import AlertSettings, DriftSettings, ServerSettings  # noqa: E402

TEMPLATE = Path(__file__).with_name("feedback-alert.json")
HEALTH_TEMPLATE = Path(__file__).with_name("health-alerts.json")
DRIFT_PERIODS = 3
ACTION_GROUP_ID = "[resourceId('Microsoft.Insights/actionGroups', parameters('actionGroupName'))]"
EVENT_NAME = "airparadis_feedback"
VERDICT_DIMENSION = "verdict"
NEGATIVE_VERDICT = "wrong"

# Window sizes a log search alert rule accepts, in seconds.
ALLOWED_WINDOWS = {
    60: "PT1M",
    300: "PT5M",
    600: "PT10M",
    900: "PT15M",
    1800: "PT30M",
    2700: "PT45M",
    3600: "PT1H",
    7200: "PT2H",
    10800: "PT3H",
    14400: "PT4H",
    18000: "PT5H",
    21600: "PT6H",
    86400: "P1D",
    172800: "P2D",
}

APP_INSIGHTS_QUERY = (
    "customEvents\n"
    f'| where name == "{EVENT_NAME}"\n'
    f'| extend verdict = tostring(customDimensions["{VERDICT_DIMENSION}"])\n'
    f'| where verdict == "{NEGATIVE_VERDICT}"\n'
    "| project timestamp, verdict, cloud_RoleInstance"
)
WORKSPACE_QUERY = (
    "AppEvents\n"
    f'| where Name == "{EVENT_NAME}"\n'
    f'| extend verdict = tostring(Properties["{VERDICT_DIMENSION}"])\n'
    f'| where verdict == "{NEGATIVE_VERDICT}"\n'
    "| project TimeGenerated, verdict, AppRoleInstance"
)


def iso_window(seconds: int) -> str:
    """ISO 8601 duration of an alert window; only the sizes Azure accepts."""
    try:
        return ALLOWED_WINDOWS[seconds]
    except KeyError:
        allowed = ", ".join(str(s) for s in sorted(ALLOWED_WINDOWS))
        raise ValueError(
            f"alert window of {seconds}s is not one Azure Monitor accepts ({allowed})"
        ) from None


def iso_to_seconds(duration: str) -> int:
    """Inverse of ``iso_window`` (tests compare the template with the settings)."""
    for seconds, iso in ALLOWED_WINDOWS.items():
        if iso == duration:
            return seconds
    raise ValueError(f"unknown window {duration!r}")


def build_template(threshold: int, window_seconds: int) -> dict[str, Any]:
    window = iso_window(window_seconds)
    frequency = "PT1M" if window_seconds <= 900 else "PT5M"
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "metadata": {
            "description": (
                "Air Paradis: alert when users flag predictions as wrong too often "
                f"(at least {threshold} '{NEGATIVE_VERDICT}' verdicts within {window}, "
                "from any clients)."
            ),
            "generator": "deploy/azure/render_alert.py from model_server.settings.ServerSettings",
            "alertThreshold": threshold,
            "alertWindowSeconds": window_seconds,
        },
        "parameters": {
            "targetResourceId": {
                "type": "string",
                "metadata": {
                    "description": "Resource id of the Application Insights component "
                    "(or of its Log Analytics workspace when targetType is 'workspace')."
                },
            },
            "targetType": {
                "type": "string",
                "defaultValue": "appInsights",
                "allowedValues": ["appInsights", "workspace"],
                "metadata": {
                    "description": "appInsights queries customEvents; workspace, AppEvents."
                },
            },
            "location": {
                "type": "string",
                "defaultValue": "[resourceGroup().location]",
                "metadata": {"description": "Region of the alert rule (that of the target)."},
            },
            "alertName": {"type": "string", "defaultValue": "airparadis-wrong-predictions"},
            "severity": {
                "type": "int",
                "defaultValue": 2,
                "allowedValues": [0, 1, 2, 3, 4],
                "metadata": {"description": "0 critical ... 4 verbose."},
            },
            "actionGroupName": {"type": "string", "defaultValue": "airparadis-ops"},
            "actionGroupShortName": {
                "type": "string",
                "defaultValue": "airparadis",
                "maxLength": 12,
            },
            "emailAddress": {
                "type": "string",
                "metadata": {"description": "Mailbox of the on-call team."},
            },
            "webhookUrl": {
                "type": "securestring",
                "defaultValue": "",
                "metadata": {
                    "description": "Optional webhook (Teams, PagerDuty, ...); empty for none."
                },
            },
        },
        "variables": {
            "appInsightsQuery": APP_INSIGHTS_QUERY,
            "workspaceQuery": WORKSPACE_QUERY,
        },
        "resources": [
            {
                "type": "Microsoft.Insights/actionGroups",
                "apiVersion": "2023-01-01",
                "name": "[parameters('actionGroupName')]",
                "location": "Global",
                "properties": {
                    "groupShortName": "[parameters('actionGroupShortName')]",
                    "enabled": True,
                    "emailReceivers": [
                        {
                            "name": "on-call-email",
                            "emailAddress": "[parameters('emailAddress')]",
                            "useCommonAlertSchema": True,
                        }
                    ],
                    "webhookReceivers": (
                        "[if(empty(parameters('webhookUrl')), createArray(), "
                        "createArray(createObject('name', 'on-call-webhook', 'serviceUri', "
                        "parameters('webhookUrl'), 'useCommonAlertSchema', true())))]"
                    ),
                },
            },
            _log_alert(
                "[parameters('alertName')]",
                "Air Paradis: too many wrong predictions",
                f"{threshold} or more '{NEGATIVE_VERDICT}' verdicts (wrong predictions) on "
                f"the sentiment predictor within {window}, from any clients (the predictor's "
                "own alert also needs several clients). See docs/deploy-aks.md.",
                {
                    "query": _by_target("appInsightsQuery", "workspaceQuery"),
                    "timeAggregation": "Count",
                    "operator": "GreaterThanOrEqual",
                    "threshold": threshold,
                    "failingPeriods": {
                        "numberOfEvaluationPeriods": 1,
                        "minFailingPeriodsToAlert": 1,
                    },
                },
                window,
                "docs/deploy-aks.md#8-the-wrong-predictions-alert",
                frequency=frequency,
                depends_on=True,
            ),
        ],
        "outputs": {
            "alertRuleId": {
                "type": "string",
                "value": (
                    "[resourceId('Microsoft.Insights/scheduledQueryRules', "
                    "parameters('alertName'))]"
                ),
            }
        },
    }


def _log_alert(
    name: str,
    display: str,
    description: str,
    criterion: dict[str, Any],
    window: str,
    runbook: str,
    frequency: str | None = None,
    depends_on: bool = False,
) -> dict[str, Any]:
    """A log search alert rule notifying the action group; `depends_on` when the group is
    created in the same template."""
    rule: dict[str, Any] = {
        "type": "Microsoft.Insights/scheduledQueryRules",
        "apiVersion": "2022-06-15",
        "name": name,
        "location": "[parameters('location')]",
        "kind": "LogAlert",
    }
    if depends_on:
        rule["dependsOn"] = [ACTION_GROUP_ID]
    rule["properties"] = {
        "displayName": display,
        "description": description,
        "severity": "[parameters('severity')]",
        "enabled": True,
        "scopes": ["[parameters('targetResourceId')]"],
        "evaluationFrequency": frequency or window,
        "windowSize": window,
        "criteria": {"allOf": [criterion]},
        "autoMitigate": True,
        "actions": {
            "actionGroups": [ACTION_GROUP_ID],
            "customProperties": {"runbook": runbook},
        },
    }
    return rule


def _by_target(app_insights: str, workspace: str) -> str:
    return (
        f"[if(equals(parameters('targetType'), 'workspace'), variables('{workspace}'), "
        f"variables('{app_insights}'))]"
    )


def build_health_template(drift_psi_threshold: float) -> dict[str, Any]:
    """Wrong-prediction rate and drift rules, notifying the feedback template's action group."""
    base = build_template(*default_settings())
    parameters = {
        k: base["parameters"][k] for k in ("targetResourceId", "targetType", "location", "severity")
    }
    parameters["actionGroupName"] = {
        "type": "string",
        "defaultValue": "airparadis-ops",
        "metadata": {"description": "The existing action group (from feedback-alert.json)."},
    }
    once = {"numberOfEvaluationPeriods": 1, "minFailingPeriodsToAlert": 1}
    return {
        "$schema": base["$schema"],
        "contentVersion": "1.0.0.0",
        "metadata": {
            "description": "Air Paradis: wrong-prediction rate and input drift of the predictor.",
            "generator": "deploy/azure/render_alert.py from model_server.settings.ServerSettings",
            "driftPsiThreshold": drift_psi_threshold,
        },
        "parameters": parameters,
        "variables": {
            "mispredictionQuery": f'customEvents\n| where name == "{MISPREDICTION_EVENT}"',
            "mispredictionWorkspaceQuery": f'AppEvents\n| where Name == "{MISPREDICTION_EVENT}"',
            "driftQuery": (
                f'customMetrics\n| where name == "{DRIFT_METRIC}"\n'
                "| summarize psi = max(value) by bin(timestamp, 5m)"
            ),
            "driftWorkspaceQuery": (
                f'AppMetrics\n| where Name == "{DRIFT_METRIC}"\n'
                "| summarize psi = max(Max) by bin(TimeGenerated, 5m)"
            ),
        },
        "resources": [
            _log_alert(
                "airparadis-misprediction-rate",
                "Air Paradis: wrong-prediction rate over its threshold",
                "The predictor's wrong-prediction rate (share of 'wrong' verdicts) crossed "
                "AIRPARADIS_SERVER_MISPREDICTION_THRESHOLD with wrong verdicts from at least "
                "AIRPARADIS_SERVER_ALERT_MIN_DISTINCT_CLIENTS clients (it logs "
                f"{MISPREDICTION_EVENT}).",
                {
                    "query": _by_target("mispredictionQuery", "mispredictionWorkspaceQuery"),
                    "timeAggregation": "Count",
                    "operator": "GreaterThanOrEqual",
                    "threshold": 1,
                    "failingPeriods": once,
                },
                "PT5M",
                "docs/operations.md#alerts",
            ),
            _log_alert(
                "airparadis-input-drift",
                "Air Paradis: live tweets drifted from the training data",
                f"PSI of live input against the training reference above {drift_psi_threshold} "
                f"for {DRIFT_PERIODS} periods of 5 minutes running.",
                {
                    "query": _by_target("driftQuery", "driftWorkspaceQuery"),
                    "timeAggregation": "Maximum",
                    "metricMeasureColumn": "psi",
                    "operator": "GreaterThan",
                    "threshold": drift_psi_threshold,
                    "failingPeriods": {
                        "numberOfEvaluationPeriods": DRIFT_PERIODS,
                        "minFailingPeriodsToAlert": DRIFT_PERIODS,
                    },
                },
                "PT5M",
                "docs/operations.md#input-drift",
            ),
        ],
    }


def render_health(settings: ServerSettings | None = None) -> str:
    threshold = (DriftSettings() if settings is None else settings.drift).psi_threshold
    return json.dumps(build_health_template(threshold), indent=2) + "\n"


def default_settings() -> tuple[int, int]:
    """Threshold and window the server uses when no AIRPARADIS_SERVER_ALERT_* is set."""
    defaults = AlertSettings()
    return defaults.threshold, defaults.window_seconds


def render(settings: ServerSettings | None = None) -> str:
    """The template for ``settings``, or for the server's defaults (the committed file)."""
    if settings is None:
        threshold, window = default_settings()
    else:
        threshold, window = settings.alert.threshold, settings.alert.window_seconds
    return json.dumps(build_template(threshold, window), indent=2) + "\n"


def _check_custom_outputs(
    parser: argparse.ArgumentParser, output: Path | None, health_output: Path | None
) -> None:
    """Values from the environment are one deployment's: they must not overwrite the committed
    templates, which hold the defaults and which a test compares with the settings."""
    if output is None or health_output is None:
        parser.error("--from-env needs --output and --health-output (files of your own)")
    committed = {TEMPLATE.resolve(), HEALTH_TEMPLATE.resolve()}
    for path in (output, health_output):
        if path.resolve() in committed:
            parser.error(f"{path} is a committed template; write custom values to another file")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render the ARM templates of deploy/azure.")
    parser.add_argument("--check", action="store_true", help="only report drift")
    parser.add_argument(
        "--from-env",
        action="store_true",
        help="use AIRPARADIS_SERVER_* from the environment instead of the defaults",
    )
    parser.add_argument("--output", type=Path, help="feedback alert file")
    parser.add_argument("--health-output", type=Path, help="health alerts file")
    args = parser.parse_args(argv)
    if args.from_env:
        _check_custom_outputs(parser, args.output, args.health_output)
    args.output = args.output or TEMPLATE
    args.health_output = args.health_output or HEALTH_TEMPLATE
    settings = ServerSettings() if args.from_env else None
    stale = 0
    for path, text in (
        (args.output, render(settings)),
        (args.health_output, render_health(settings)),
    ):
        if args.check:
            current = path.read_text(encoding="utf-8") if path.exists() else ""
            if current != text:
                print(f"{path} is stale; run: .venv/bin/python deploy/azure/render_alert.py")
                stale = 1
            continue
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return stale


if __name__ == "__main__":
    sys.exit(main())
