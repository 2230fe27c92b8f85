"""The negative-feedback rule, evaluated as feedback arrives (Azure Monitor runs the same rule).

It fires when at least `threshold` wrong-prediction feedbacks arrived within `window_seconds`,
at most once per window, and leaves a WARNING log event that Azure Monitor can also query.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from model_server.feedback import FeedbackStore, window_start
from model_server.metrics import ALERTS

RULE = "negative_feedback"
ALERT_EVENT = "airparadis_negative_feedback_alert"
alert_logger = logging.getLogger("airparadis.alerts")


class NegativeFeedbackRule:
    def __init__(self, store: FeedbackStore, threshold: int, window_seconds: int) -> None:
        self.store = store
        self.threshold = threshold
        self.window_seconds = window_seconds

    def evaluate(self, model_version: str | None) -> dict[str, Any] | None:
        since = window_start(self.window_seconds)
        count = self.store.count_wrong_since(since)
        if count < self.threshold or self.store.last_alert_since(RULE, since):
            return None
        alert = {
            "fired_at": datetime.now(UTC),
            "rule": RULE,
            "count": count,
            "threshold": self.threshold,
            "window_seconds": self.window_seconds,
            "model_version": model_version,
        }
        self.store.add_alert(alert)
        ALERTS.inc()
        alert_logger.warning(
            "%s: %d wrong-prediction feedbacks within %d s (threshold %d)",
            ALERT_EVENT,
            count,
            self.window_seconds,
            self.threshold,
            extra={"microsoft.custom_event.name": ALERT_EVENT, "count": count},
        )
        return alert
