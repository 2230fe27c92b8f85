"""Reading the model server's ``/metrics``: counters by label, the misprediction-rate gauge
and latency percentiles.

Latency percentiles are estimated from cumulative histogram buckets the way Prometheus'
``histogram_quantile`` does: find the bucket holding the rank, then interpolate linearly inside
it. They cover everything since the server process started. kserve's per-stage histograms
start at 5 ms, above most of this server's calls: the predict stage is read from the server's
own ``airparadis_predict_seconds`` (buckets from 50 µs) when it has it, and a percentile
inside a first bucket is reported as below that bucket's bound, not interpolated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

PREDICTIONS = "airparadis_predictions"
FEEDBACK = "airparadis_feedback"
ALERTS = "airparadis_alerts"
MISPREDICTION_RATE = "airparadis_misprediction_rate"
# kserve's per-stage histograms, in the order a request goes through them.
LATENCY_STAGES = {
    "preprocess": "request_preprocess_seconds",
    "predict": "request_predict_seconds",
    "postprocess": "request_postprocess_seconds",
}
OWN_PREDICT = "airparadis_predict_seconds"
"""The predictor's own histogram of its predict calls, with sub-millisecond buckets."""
QUANTILES = (0.5, 0.9, 0.99)


@dataclass
class Histogram:
    """Cumulative buckets (upper bound, count), sorted, ending with +Inf."""

    buckets: list[tuple[float, float]] = field(default_factory=list)
    total: float = 0.0
    sum: float = 0.0

    @property
    def count(self) -> float:
        return self.buckets[-1][1] if self.buckets else 0.0

    def in_first_bucket(self, q: float) -> bool:
        """Whether quantile `q` falls inside the first bucket, where the estimate can only
        say it is below that bucket's bound."""
        if not self.buckets or not self.count:
            return False
        return self.buckets[0][1] >= q * self.count


@dataclass
class ServerMetrics:
    predictions_by_label: dict[str, float] = field(default_factory=dict)
    feedback_by_verdict: dict[str, float] = field(default_factory=dict)
    alerts_total: float = 0.0
    # Share of 'wrong' verdicts in the server's rolling window; NaN until it holds enough.
    misprediction_rate: float = math.nan
    latency: dict[str, Histogram] = field(default_factory=dict)

    def percentiles(self, quantiles: Sequence[float] = QUANTILES) -> dict[str, dict[float, float]]:
        """Estimated latency in seconds by stage and quantile (NaN without observations)."""
        return {
            stage: {q: histogram_quantile(q, h.buckets) for q in quantiles}
            for stage, h in self.latency.items()
        }


def parse_metrics(text: str, model_name: str | None = None) -> ServerMetrics:
    """The counters and histograms the dashboard shows, from Prometheus exposition text.

    Histogram samples of other models (``model_name`` label) are left out when a name is given.
    Raises ValueError on text that is not Prometheus exposition, or without prometheus-client.
    """
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError as exc:  # the dashboard image may be built without the serving extra
        raise ValueError("prometheus-client is not installed") from exc
    out = ServerMetrics()
    stage_of = {name: stage for stage, name in LATENCY_STAGES.items()}
    stage_of[OWN_PREDICT] = OWN_PREDICT
    partial: dict[str, dict[float, float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name == PREDICTIONS:
            for s in family.samples:
                if s.name.endswith("_total"):
                    label = s.labels.get("label", "?")
                    out.predictions_by_label[label] = (
                        out.predictions_by_label.get(label, 0) + s.value
                    )
        elif family.name == FEEDBACK:
            for s in family.samples:
                if s.name.endswith("_total"):
                    verdict = s.labels.get("verdict", "?")
                    out.feedback_by_verdict[verdict] = (
                        out.feedback_by_verdict.get(verdict, 0) + s.value
                    )
        elif family.name == ALERTS:
            out.alerts_total = sum(s.value for s in family.samples if s.name.endswith("_total"))
        elif family.name == MISPREDICTION_RATE:
            out.misprediction_rate = next((s.value for s in family.samples), math.nan)
        elif family.name in stage_of:
            stage = stage_of[family.name]
            histogram = out.latency.setdefault(stage, Histogram())
            buckets = partial.setdefault(stage, {})
            for s in family.samples:
                if model_name and s.labels.get("model_name", model_name) != model_name:
                    continue
                if s.name.endswith("_bucket"):
                    bound = float(s.labels["le"])
                    buckets[bound] = buckets.get(bound, 0.0) + s.value
                elif s.name.endswith("_sum"):
                    histogram.sum += s.value
                elif s.name.endswith("_count"):
                    histogram.total += s.value
    for stage, buckets in partial.items():
        out.latency[stage].buckets = sorted(buckets.items())
    own = out.latency.pop(OWN_PREDICT, None)
    if own is not None and own.count:
        out.latency["predict"] = own
    return out


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """Prometheus' estimate of quantile `q` from cumulative (upper bound, count) buckets."""
    if not 0 <= q <= 1:
        raise ValueError("quantile must be within [0, 1]")
    ordered = sorted(buckets)
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]):
        return math.nan
    total = ordered[-1][1]
    if total <= 0:
        return math.nan
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for index, (bound, count) in enumerate(ordered):
        if count >= rank:
            if math.isinf(bound):
                # The rank is past the last finite bucket: the best estimate is that bound.
                return ordered[index - 1][0]
            if index == 0 and bound <= 0:
                return bound
            in_bucket = count - lower_count
            if in_bucket <= 0:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / in_bucket
        lower_bound, lower_count = bound, count
    return ordered[-2][0]
