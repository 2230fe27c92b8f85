"""Input-drift and label-shift monitor over a rolling window of live tweets and P(positive).

Input drift compares the window with the reference the served bundle was trained with
(`airparadis.drift`). Label shift estimates the window's share of positive tweets from the
served (calibrated, where the bundle is) posteriors with Saerens et al.'s EM
(`airparadis.label_shift`), against the prior those posteriors assume
(`airparadis.calibration.training_prior`).

Requests only append to the window; the statistics are computed when `/metrics` is scraped
or `/v1/drift` is read, so monitoring costs the predict path a deque append.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from scipy.special import expit, logit

from airparadis.bundle import BundleInfo
from airparadis.calibration import calibration_of, training_prior
from airparadis.drift import DriftReference, DriftReport, compare
from airparadis.label_shift import HeldoutMap, PriorEstimate, estimate_prior

PSI_METRIC = "airparadis_drift_psi"
"""One name on /metrics, in Azure Monitor's customMetrics and in the alert rules."""
PRIOR_METRIC = "airparadis_positive_prior"
"""Share of positive tweets: `source="estimated"` (live window, EM) and `source="training"`."""
DEFAULT_PRIOR = 0.5
_EPS = 1e-6


class DriftMonitor:
    def __init__(self, window: int, min_tweets: int, psi_threshold: float) -> None:
        self.window = window
        self.min_tweets = min_tweets
        self.psi_threshold = psi_threshold
        self._lock = threading.Lock()
        self._texts: deque[str] = deque(maxlen=window)
        self._proba: deque[float] = deque(maxlen=window)
        self._reference: DriftReference | None = None
        self._em_map: HeldoutMap | None = None
        self._training_prior = DEFAULT_PRIOR
        self._to_raw: Callable[[np.ndarray], np.ndarray] | None = None
        self._recorded = 0
        self._cached: tuple[int, DriftReport | None] = (-1, None)
        self._cached_prior: tuple[int, PriorEstimate | None] = (-1, None)

    def use_reference(
        self, reference: DriftReference | None, info: BundleInfo | None = None
    ) -> None:
        """A new model starts a new window: its P(positive) is not comparable to the last.

        `info` (the served bundle's) gives the prior its posteriors assume and, for a
        calibrated bundle, the way back to the raw scale its drift reference was built on.
        """
        with self._lock:
            self._reference = reference
            self._em_map = reference.em_map if reference is not None else None
            self._training_prior = training_prior(info) if info else DEFAULT_PRIOR
            self._to_raw = uncalibrate(info) if info else None
            self._texts.clear()
            self._proba.clear()
            self._recorded += 1

    @property
    def training_prior(self) -> float:
        """The prior the live EM estimate is compared with: the held-out share its map was
        fitted at, else the prior the served posteriors assume."""
        return self._em_map.prior if self._em_map is not None else self._training_prior

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
            to_raw = self._to_raw
        if reference is None:
            report = None
        else:
            report = compare(reference, texts, to_raw(proba) if to_raw else proba)
        with self._lock:
            self._cached = (recorded, report)
        return report

    def prior(self) -> PriorEstimate | None:
        """The live window's positive share estimated by EM (through the reference's held-out
        map when it has one); None until it holds `min_tweets` (recomputed only when something
        was recorded since the last call)."""
        with self._lock:
            recorded, prior = self._recorded, self._training_prior
            em_map, to_raw = self._em_map, self._to_raw
            if self._cached_prior[0] == recorded:
                return self._cached_prior[1]
            proba = np.fromiter(self._proba, dtype=float)
        if em_map is not None and to_raw is not None:
            proba = to_raw(proba)  # the map calibrates the raw scale
        estimate = (
            estimate_prior(proba, prior, heldout=em_map) if len(proba) >= self.min_tweets else None
        )
        with self._lock:
            self._cached_prior = (recorded, estimate)
        return estimate

    def label_shift(self) -> dict[str, Any]:
        """What `/v1/drift` says about the positive share: `estimated_prior` is null until
        the window holds `min_tweets`."""
        estimate = self.prior()
        return {
            "training_prior": self.training_prior,
            "estimated_prior": estimate.prior if estimate else None,
            "tweets": estimate.count if estimate else len(self._proba),
            "iterations": estimate.iterations if estimate else None,
            "converged": estimate.converged if estimate else None,
        }

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
            "label_shift": self.label_shift(),
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
        estimate = self.monitor.prior()
        prior = GaugeMetricFamily(
            PRIOR_METRIC,
            "Share of positive tweets: estimated on the live window by EM (NaN until it holds "
            "enough tweets), and assumed by the served model (training).",
            labels=["source"],
        )
        prior.add_metric(["estimated"], estimate.prior if estimate else math.nan)
        prior.add_metric(["training"], self.monitor.training_prior)
        yield prior
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


def uncalibrate(info: BundleInfo) -> Callable[[np.ndarray], np.ndarray] | None:
    """Served probabilities back on the model's raw scale, which its drift reference holds:
    the calibration's logit map inverted (None for an uncalibrated bundle)."""
    calibration = calibration_of(info)
    if calibration is None or calibration.slope == 0:
        return None
    slope, intercept = calibration.slope, calibration.intercept

    def to_raw(p: np.ndarray) -> np.ndarray:
        z = logit(np.clip(p, _EPS, 1 - _EPS))
        return np.asarray(expit((z - intercept) / slope), dtype=np.float64)

    return to_raw


def _finite(value: Any) -> Any:
    """JSON has no NaN: an empty window's means become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
