"""Prometheus counters of this predictor, served on kserve's ``/metrics`` beside its histograms."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PREDICTIONS = Counter("airparadis_predictions", "Tweets classified, by predicted label.", ["label"])
FEEDBACK = Counter(
    "airparadis_feedback", "Feedback stored, by verdict (correct or wrong).", ["verdict"]
)
ALERTS = Counter(
    "airparadis_alerts", "Alerts fired by the wrong-prediction rules (count and rate)."
)
BATCH_SIZE = Histogram(
    "airparadis_model_batch_tweets",
    "Tweets per model call made by the micro-batcher.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048),
)
PENDING = Gauge("airparadis_pending_tweets", "Tweets admitted and waiting for the model.")
MISPREDICTION_RATE = Gauge(
    "airparadis_misprediction_rate",
    "Wrong-prediction rate: share of 'wrong' verdicts among the feedback of the rule's "
    "rolling window (NaN before enough verdicts), computed at scrape time.",
)
PREDICT_SECONDS = Histogram(
    "airparadis_predict_seconds",
    "Time the predictor takes to answer a predict call (parse, clean, score, encode), with "
    "buckets fine enough for sub-millisecond calls (kserve's first bucket is 5 ms).",
    buckets=(
        0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
        0.5, 1.0, 2.5,
    ),
)  # fmt: skip
