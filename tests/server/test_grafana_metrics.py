"""Every metric the Grafana dashboard queries is on a real server's /metrics."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import RunningServer
from tests.k8s.test_grafana_dashboard import queried_metrics


def test_every_queried_metric_is_served(model_server: RunningServer) -> None:
    httpx.post(model_server.predict_url, json={"instances": ["lovely crew", "lost bag"]})
    feedback = {"tweet": "lost bag", "predicted_label": "negative", "verdict": "correct"}
    assert httpx.post(f"{model_server.url}/v1/feedback", json=feedback).status_code == 201
    text = httpx.get(f"{model_server.url}/metrics").text
    served = {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }
    assert queried_metrics() - served == set()
    (info,) = [
        s for f in text_string_to_metric_families(text) for s in f.samples
        if s.name == "airparadis_model_info"
    ]  # fmt: skip
    assert info.labels["family"] == "tfidf_lr" and info.labels["ready"] == "true"
