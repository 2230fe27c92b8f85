"""The Azure Monitor alert (deploy/azure): same threshold and window as the model server."""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType
from typing import Any

import pytest

from model_server.settings import DriftSettings, ServerSettings

from .conftest import REPO_ROOT

TEMPLATE_PATH = REPO_ROOT / "deploy" / "azure" / "feedback-alert.json"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "render_alert", REPO_ROOT / "deploy" / "azure" / "render_alert.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RENDER = _module()


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return dict(json.loads(TEMPLATE_PATH.read_text(encoding="utf-8")))


def _resource(template: dict[str, Any], kind: str) -> dict[str, Any]:
    (resource,) = [r for r in template["resources"] if r["type"] == kind]
    return resource


def test_threshold_and_window_equal_the_server_settings(
    template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AIRPARADIS_SERVER_ALERT_THRESHOLD", "AIRPARADIS_SERVER_ALERT_WINDOW_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    settings = ServerSettings()
    rule = _resource(template, "Microsoft.Insights/scheduledQueryRules")["properties"]
    (criterion,) = rule["criteria"]["allOf"]
    assert criterion["threshold"] == settings.alert.threshold == 3
    assert criterion["operator"] == "GreaterThanOrEqual"
    assert criterion["timeAggregation"] == "Count"
    assert RENDER.iso_to_seconds(rule["windowSize"]) == settings.alert.window_seconds == 300
    assert rule["windowSize"] == "PT5M"
    assert template["metadata"]["alertThreshold"] == settings.alert.threshold


def test_committed_template_is_up_to_date() -> None:
    assert TEMPLATE_PATH.read_text(encoding="utf-8") == RENDER.render(), (
        "deploy/azure/feedback-alert.json is stale; run: "
        ".venv/bin/python deploy/azure/render_alert.py"
    )


def test_query_counts_negative_feedback_events(template: dict[str, Any]) -> None:
    for name in ("appInsightsQuery", "workspaceQuery"):
        query = template["variables"][name]
        assert '"airparadis_feedback"' in query
        assert '["verdict"]' in query and '== "wrong"' in query
    assert template["variables"]["appInsightsQuery"].startswith("customEvents")
    assert template["variables"]["workspaceQuery"].startswith("AppEvents")


def test_rule_notifies_an_action_group(template: dict[str, Any]) -> None:
    group = _resource(template, "Microsoft.Insights/actionGroups")
    assert (
        group["properties"]["emailReceivers"][0]["emailAddress"] == "[parameters('emailAddress')]"
    )
    rule = _resource(template, "Microsoft.Insights/scheduledQueryRules")
    assert rule["kind"] == "LogAlert"
    assert rule["properties"]["actions"]["actionGroups"] == rule["dependsOn"]
    assert rule["properties"]["scopes"] == ["[parameters('targetResourceId')]"]
    assert template["parameters"]["webhookUrl"]["type"] == "securestring"


def test_other_settings_render_other_numbers() -> None:
    custom = ServerSettings(alert={"threshold": 7, "window_seconds": 900})
    data = json.loads(RENDER.render(custom))
    rule = _resource(data, "Microsoft.Insights/scheduledQueryRules")["properties"]
    assert rule["criteria"]["allOf"][0]["threshold"] == 7
    assert rule["windowSize"] == "PT15M"
    with pytest.raises(ValueError, match="not one Azure Monitor accepts"):
        RENDER.iso_window(420)


def test_example_parameters_match_the_template(template: dict[str, Any]) -> None:
    example = json.loads(
        (REPO_ROOT / "deploy/azure/feedback-alert.parameters.example.json").read_text()
    )
    given = set(example["parameters"])
    declared = set(template["parameters"])
    required = {k for k, v in template["parameters"].items() if "defaultValue" not in v}
    assert given <= declared
    assert required <= given


HEALTH_PATH = REPO_ROOT / "deploy" / "azure" / "health-alerts.json"


def test_health_alerts_are_up_to_date_and_use_the_server_numbers() -> None:
    from model_server.alerting import MISPREDICTION_EVENT
    from model_server.drift import PSI_METRIC

    health = json.loads(HEALTH_PATH.read_text(encoding="utf-8"))
    assert HEALTH_PATH.read_text(encoding="utf-8") == RENDER.render_health()
    rules = {r["name"]: r["properties"] for r in health["resources"]}
    (drift,) = rules["airparadis-input-drift"]["criteria"]["allOf"]
    assert drift["threshold"] == DriftSettings().psi_threshold
    assert drift["operator"] == "GreaterThan" and drift["metricMeasureColumn"] == "psi"
    assert drift["failingPeriods"]["minFailingPeriodsToAlert"] == 3
    for name in ("driftQuery", "driftWorkspaceQuery"):
        assert f'"{PSI_METRIC}"' in health["variables"][name]
        assert "psi = max(" in health["variables"][name]
    for name in ("mispredictionQuery", "mispredictionWorkspaceQuery"):
        assert f'"{MISPREDICTION_EVENT}"' in health["variables"][name]
    feedback = json.loads(TEMPLATE_PATH.read_text(encoding="utf-8"))
    by_name = "[resourceId('Microsoft.Insights/actionGroups', parameters('actionGroupName'))]"
    assert all(rule["actions"]["actionGroups"] == [by_name] for rule in rules.values())
    assert (
        health["parameters"]["actionGroupName"]["defaultValue"]
        == feedback["parameters"]["actionGroupName"]["defaultValue"]
    )
    custom = json.loads(RENDER.render_health(ServerSettings(drift={"psi_threshold": 0.1})))
    thresholds = [r["properties"]["criteria"]["allOf"][0]["threshold"] for r in custom["resources"]]
    assert thresholds == [1, 0.1]


def test_custom_values_never_overwrite_the_committed_templates(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Following the docs with `--from-env --output mine.json` used to rewrite the committed
    health template too: custom values need both outputs named, outside the committed files."""
    committed = {p: p.read_bytes() for p in (TEMPLATE_PATH, RENDER.HEALTH_TEMPLATE)}
    monkeypatch.setenv("AIRPARADIS_SERVER_ALERT_THRESHOLD", "7")
    mine, health = tmp_path / "mine.json", tmp_path / "health.json"
    for argv in (
        ["--from-env", "--output", str(mine)],
        ["--from-env", "--output", str(mine), "--health-output", str(RENDER.HEALTH_TEMPLATE)],
    ):
        with pytest.raises(SystemExit) as refused:
            RENDER.main(argv)
        assert refused.value.code == 2
    assert "--health-output" in capsys.readouterr().err
    assert RENDER.main(["--from-env", "--output", str(mine), "--health-output", str(health)]) == 0
    assert json.loads(mine.read_text())["metadata"]["alertThreshold"] == 7
    assert health.is_file()
    assert {p: p.read_bytes() for p in committed} == committed
