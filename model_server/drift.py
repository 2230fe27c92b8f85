"""Input-drift monitor: a rolling window of live tweets and P(positive), compared with the
reference the served bundle was trained with (`airparadis.drift`).

Requests only append to the window; the statistics are computed when `/metrics` is scraped
or `/v1/drift` is read, so drift tracking costs the predict path a deque append.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from airparadis.drift import DriftReference, DriftReport, compare

PSI_METRIC = "airparadis_drift_psi"
"""One name on /metrics, in Azure Monitor's customMetrics and in the alert rules."""


class DriftMonitor:
    def __init__(self, window: int, min_tweets: int, psi_threshold: float) -> None:
        self.window = window
        self.min_tweets = min_tweets
        self.psi_threshold = psi_threshold
        self._lock = threading.Lock()
        self._texts: deque[str] = deque(maxlen=window)
        self._proba: deque[float] = deque(maxlen=window)
        self._reference: DriftReference | None = None
        self._recorded = 0
        self._cached: tuple[int, DriftReport | None] = (-1, None)

    def use_reference(self, reference: DriftReference | None) -> None:
        """A new model starts a new window: its P(positive) is not comparable to the last."""
        with self._lock:
            self._reference = reference
            self._texts.clear()
            self._proba.clear()
            self._recorded += 1

    def record(self, texts: Sequence[str], proba: Sequence[float]) -> None:
        with self._lock:
            self._texts.extend(texts)
            self._proba.extend(proba)
            self._recorded += 1

    def report(self) -> DriftReport | None:
        """None without a reference; otherwise the live window against it (recomputed only
        when something was recorded since the last call)."""
        with self._lock:
            recorded, reference = self._recorded, self._reference
            if self._cached[0] == recorded:
                return self._cached[1]
            texts, proba = list(self._texts), np.fromiter(self._proba, dtype=float)
        report = compare(reference, texts, proba) if reference is not None else None
        with self._lock:
            self._cached = (recorded, report)
        return report

    def psi(self, report: DriftReport) -> dict[str, float]:
        """PSI by signal; NaN while the window holds fewer than `min_tweets`."""
        enough = report.live.count >= self.min_tweets
        return {
            "probability": report.psi_probability if enough else math.nan,
            "length": report.psi_length if enough else math.nan,
        }

    def summary(self) -> dict[str, Any]:
        report = self.report()
        body: dict[str, Any] = {
            "tracked": report is not None,
            "window": self.window,
            "min_tweets": self.min_tweets,
            "psi_threshold": self.psi_threshold,
        }
        if report is None:
            body["reason"] = "the served bundle has no drift reference; retrain it to track drift"
            return body
        psi = self.psi(report)
        body.update(_finite(report.as_dict()))
        body["enough_tweets"] = report.live.count >= self.min_tweets
        body["drifting"] = any(value > self.psi_threshold for value in psi.values())
        body["psi_probability"] = _finite(psi["probability"])
        body["psi_length"] = _finite(psi["length"])
        return body


class DriftCollector(Collector):  # type: ignore[misc]
    """Drift gauges for Prometheus, computed at scrape time. PSI is NaN until the window
    holds `min_tweets`; every gauge is absent when the bundle has no reference."""

    def __init__(self, monitor: DriftMonitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[GaugeMetricFamily]:
        report = self.monitor.report()
        if report is None:
            return
        psi = GaugeMetricFamily(
            PSI_METRIC,
            "Population stability index of live inputs against the training reference.",
            labels=["signal"],
        )
        for signal, value in self.monitor.psi(report).items():
            psi.add_metric([signal], value)
        yield psi
        for name, doc, attr in (
            ("oov_share", "Share of tokens outside the training vocabulary.", "oov_share"),
            ("positive_share", "Share of tweets predicted positive.", "positive_share"),
            ("mean_tokens", "Mean tokens per cleaned tweet.", "mean_tokens"),
        ):
            gauge = GaugeMetricFamily(f"airparadis_drift_{name}", doc, labels=["source"])
            gauge.add_metric(["live"], getattr(report.live, attr))
            gauge.add_metric(["reference"], getattr(report.reference, attr))
            yield gauge
        yield GaugeMetricFamily(
            "airparadis_drift_window_tweets",
            "Live tweets in the drift window.",
            value=report.live.count,
        )


def _finite(value: Any) -> Any:
    """JSON has no NaN: an empty window's means become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
