"""The Grafana dashboard: valid JSON, shipped as a ConfigMap with the sidecar's label."""

from __future__ import annotations

import json
import re
from typing import Any

from .conftest import CHART, Renderer, by_kind

DASHBOARD = CHART / "dashboards" / "airparadis.json"
METRIC = re.compile(r"\b((?:airparadis|request)_[a-z_]+)\b")
"""The metric names an expression queries (ours, and kserve's per-stage histograms)."""


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def queried_metrics() -> set[str]:
    return {
        name
        for panel in dashboard()["panels"]
        for target in panel["targets"]
        for name in METRIC.findall(target["expr"])
    }


def test_the_dashboard_is_well_formed() -> None:
    board = dashboard()
    assert board["uid"] == "airparadis-sentiment" and board["schemaVersion"] >= 36
    panels = board["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    variables = {v["name"] for v in board["templating"]["list"]}
    assert variables == {"datasource", "namespace"}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
            assert 'namespace=~"$namespace"' in target["expr"], target["expr"]


def test_it_shows_what_operators_look_for() -> None:
    titles = " | ".join(p["title"].lower() for p in dashboard()["panels"])
    for wanted in ("request rate by stage", "latency", "predictions by label", "feedback",
                   "wrong-prediction rate", "psi", "prior", "model version"):  # fmt: skip
        assert wanted in titles, wanted
    assert {
        "airparadis_model_info", "airparadis_predictions_total", "airparadis_feedback_total",
        "airparadis_misprediction_rate", "airparadis_drift_psi", "airparadis_positive_prior",
        "request_predict_seconds_bucket",
    } <= queried_metrics()  # fmt: skip


def test_the_chart_ships_it_for_the_sidecar(renderer: Renderer) -> None:
    assert not [
        c
        for c in by_kind(renderer.docs(), "ConfigMap").values()
        if "grafana" in c["metadata"]["name"]
    ]  # off by default
    (config_map,) = [
        c for c in by_kind(renderer.docs("full-values.yaml"), "ConfigMap").values()
        if c["metadata"]["name"].endswith("-grafana-dashboard")
    ]  # fmt: skip
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"]["grafana_folder"] == "Air Paradis"
    (content,) = config_map["data"].values()
    assert json.loads(content) == dashboard()
