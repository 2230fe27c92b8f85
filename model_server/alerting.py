"""The negative-feedback rule, evaluated as feedback arrives (Azure Monitor runs the same rule).

It fires when at least `threshold` wrong-prediction feedbacks arrived within `window_seconds`,
at most once per window, and leaves a WARNING log event that Azure Monitor can also query.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from model_server.errors import escape
from model_server.feedback import FeedbackStore, FeedbackUnavailable, window_start
from model_server.metrics import ALERTS

RULE = "negative_feedback"
ALERT_EVENT = "airparadis_negative_feedback_alert"
MISPREDICTION_RULE = "misprediction_rate"
MISPREDICTION_EVENT = "airparadis_misprediction_alert"
alert_logger = logging.getLogger("airparadis.alerts")


class NegativeFeedbackRule:
    def __init__(self, store: FeedbackStore, threshold: int, window_seconds: int) -> None:
        self.store = store
        self.threshold = threshold
        self.window_seconds = window_seconds

    def evaluate(
        self, model_version: str | None, client_id: str | None = None
    ) -> dict[str, Any] | None:
        since = window_start(self.window_seconds)
        count = self.store.window_counts(self.window_seconds)[0]
        if count < self.threshold:
            return None
        alert = {
            "fired_at": datetime.now(UTC),
            "rule": RULE,
            "count": count,
            "threshold": self.threshold,
            "window_seconds": self.window_seconds,
            "model_version": model_version,
            "client_id": client_id,
        }
        if not self.store.add_alert_once(alert, since):
            return None
        ALERTS.inc()
        alert_logger.warning(
            "%s: %d wrong-prediction feedbacks within %d s (threshold %d), last from %s",
            ALERT_EVENT,
            count,
            self.window_seconds,
            self.threshold,
            escape(client_id or "-"),
            extra={
                "microsoft.custom_event.name": ALERT_EVENT,
                "count": count,
                "client_id": client_id,
            },
        )
        return alert


class MispredictionRateRule:
    """Rolling share of wrong verdicts; past the threshold it alerts.

    The share only counts once `min_feedback` verdicts are in the window, so two unlucky
    clicks on a quiet night do not page anyone. Retraining is not ordered from here: the
    predictor has no Kubernetes credentials. Alertmanager or Azure Monitor trigger the
    retraining CronJob instead (docs/operations.md).
    """

    def __init__(
        self,
        store: FeedbackStore,
        threshold: float,
        window_seconds: int,
        min_feedback: int,
    ) -> None:
        self.store = store
        self.threshold = threshold
        self.window_seconds = window_seconds
        self.min_feedback = min_feedback

    def rate(self) -> tuple[float, int, int]:
        """(share of wrong verdicts, wrong, total) over the window; NaN below `min_feedback`."""
        wrong, total = self.store.window_counts(self.window_seconds)
        return (wrong / total if total >= self.min_feedback else float("nan")), wrong, total

    def scraped_rate(self) -> float:
        """The gauge's value at scrape time, so it decays as the window moves on."""
        try:
            return self.rate()[0]
        except (FeedbackUnavailable, SQLAlchemyError) as exc:
            alert_logger.warning("misprediction rate not computed: %s", exc)
            return float("nan")

    def evaluate(
        self, model_version: str | None, client_id: str | None = None
    ) -> dict[str, Any] | None:
        since = window_start(self.window_seconds)
        rate, wrong, total = self.rate()
        if total < self.min_feedback or rate < self.threshold:
            return None
        alert = {
            "fired_at": datetime.now(UTC),
            "rule": MISPREDICTION_RULE,
            "count": wrong,
            "threshold": round(100 * self.threshold),  # percent, for this rule
            "window_seconds": self.window_seconds,
            "model_version": model_version,
            "client_id": client_id,
        }
        if not self.store.add_alert_once(alert, since):
            return None
        ALERTS.inc()
        alert_logger.warning(
            "%s: %.0f%% of %d feedbacks within %d s say wrong (threshold %.0f%%), last from %s",
            MISPREDICTION_EVENT,
            100 * rate,
            total,
            self.window_seconds,
            100 * self.threshold,
            escape(client_id or "-"),
            extra={
                "microsoft.custom_event.name": MISPREDICTION_EVENT,
                "rate": rate,
                "client_id": client_id,
            },
        )
        return alert
