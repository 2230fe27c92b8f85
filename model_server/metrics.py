"""Prometheus counters of this predictor, served on kserve's ``/metrics`` beside its histograms."""

from __future__ import annotations

from prometheus_client import Counter

PREDICTIONS = Counter("airparadis_predictions", "Tweets classified, by predicted label.", ["label"])
FEEDBACK = Counter("airparadis_feedback", "Feedback stored, by verdict.", ["verdict"])
ALERTS = Counter("airparadis_alerts", "Negative-feedback alerts fired.")
