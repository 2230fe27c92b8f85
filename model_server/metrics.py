"""Prometheus counters of this predictor, served on kserve's ``/metrics`` beside its histograms."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PREDICTIONS = Counter("airparadis_predictions", "Tweets classified, by predicted label.", ["label"])
FEEDBACK = Counter("airparadis_feedback", "Feedback stored, by verdict.", ["verdict"])
ALERTS = Counter("airparadis_alerts", "Negative-feedback alerts fired.")
BATCH_SIZE = Histogram(
    "airparadis_model_batch_tweets",
    "Tweets per model call made by the micro-batcher.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048),
)
PENDING = Gauge("airparadis_pending_tweets", "Tweets admitted and waiting for the model.")
MISPREDICTION_RATE = Gauge(
    "airparadis_misprediction_rate",
    "Share of 'wrong' verdicts among the feedback of the rolling window (NaN before enough), "
    "computed at scrape time.",
)
