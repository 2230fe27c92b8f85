"""`airparadis_model_info` on /metrics: which model each replica serves, for dashboards.

A Grafana panel (charts/airparadis/dashboards) shows the served version from it; a version
switch (alias followed, or a rollout) shows as one series ending and another starting.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import InfoMetricFamily
from prometheus_client.registry import Collector

from model_server.model import SentimentModel


class ModelInfoCollector(Collector):  # type: ignore[misc]
    """Read at scrape time, so it follows the model the server holds now."""

    def __init__(self, model: SentimentModel) -> None:
        self.model = model

    def collect(self) -> Iterator[InfoMetricFamily]:
        model = self.model
        ref, classifier = model.ref, model.classifier
        info = InfoMetricFamily(
            "airparadis_model", "The model served: name, registry version, family."
        )
        info.add_metric(
            [],
            {
                "name": model.name,
                "version": ref.version if ref else "",
                "family": classifier.info.family if classifier else "",
                "ready": "true" if model.ready else "false",
            },
        )
        yield info
