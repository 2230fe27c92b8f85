"""The wrong-prediction rules, evaluated as feedback arrives (Azure Monitor runs the same rule).

Two rules, each firing at most once per window and leaving a WARNING log event that Azure
Monitor can also query:

- the count rule: at least `threshold` wrong verdicts within `window_seconds`;
- the rate rule: the wrong-prediction rate (share of wrong verdicts) at or above `threshold`
  over `window_seconds`, once at least `min_feedback` verdicts are in.

Both also need wrong verdicts from at least `min_distinct_clients` distinct clients within
their window, so that one user clicking "Wrong" a few times cannot page ops alone; at 1 the
rules count verdicts only, whoever sent them. An alert names the clients it counted.
"""

from __future__ import annotations

import json
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
MAX_CLIENTS_KEPT = 20
"""Client identities an alert records (the count of distinct clients is always exact)."""
alert_logger = logging.getLogger("airparadis.alerts")


class _ClientGate:
    """The distinct-client condition both rules share."""

    store: FeedbackStore
    window_seconds: int
    min_distinct_clients: int

    def _clients(self) -> list[str] | None:
        """The clients that reported wrong verdicts in the window, or None when fewer than
        `min_distinct_clients` did."""
        clients = self.store.wrong_clients(self.window_seconds)
        return clients if len(clients) >= self.min_distinct_clients else None

    def _record(self, alert: dict[str, Any], clients: list[str]) -> bool:
        alert["clients"] = json.dumps(clients[:MAX_CLIENTS_KEPT])
        recorded = self.store.add_alert_once(alert, window_start(self.window_seconds))
        alert["clients"] = clients[:MAX_CLIENTS_KEPT]
        alert["distinct_clients"] = len(clients)
        if recorded:
            ALERTS.inc()
        return recorded


class NegativeFeedbackRule(_ClientGate):
    """The count rule: `threshold` wrong verdicts within `window_seconds` (from at least
    `min_distinct_clients` clients)."""

    def __init__(
        self,
        store: FeedbackStore,
        threshold: int,
        window_seconds: int,
        min_distinct_clients: int = 1,
    ) -> None:
        self.store = store
        self.threshold = threshold
        self.window_seconds = window_seconds
        self.min_distinct_clients = min_distinct_clients

    def evaluate(
        self, model_version: str | None, client_id: str | None = None
    ) -> dict[str, Any] | None:
        wrong, total = self.store.window_counts(self.window_seconds)
        if wrong < self.threshold:
            return None
        clients = self._clients()
        if clients is None:
            return None
        alert = {
            "fired_at": datetime.now(UTC),
            "rule": RULE,
            "count": wrong,
            "threshold": self.threshold,
            "window_seconds": self.window_seconds,
            "model_version": model_version,
            "client_id": client_id,
            "verdicts": total,
        }
        if not self._record(alert, clients):
            return None
        alert_logger.warning(
            "%s: %d wrong predictions within %d s (threshold %d) from %d clients, last from %s",
            ALERT_EVENT,
            wrong,
            self.window_seconds,
            self.threshold,
            len(clients),
            escape(client_id or "-"),
            extra={
                "microsoft.custom_event.name": ALERT_EVENT,
                "count": wrong,
                "client_id": client_id,
                "clients": len(clients),
            },
        )
        return alert


class MispredictionRateRule(_ClientGate):
    """The rate rule: the wrong-prediction rate over the window; past the threshold it alerts.

    The rate only counts once `min_feedback` verdicts are in the window, so two unlucky
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
        min_distinct_clients: int = 1,
    ) -> None:
        self.store = store
        self.threshold = threshold
        self.window_seconds = window_seconds
        self.min_feedback = min_feedback
        self.min_distinct_clients = min_distinct_clients

    def rate(self) -> tuple[float, int, int]:
        """(wrong-prediction rate, wrong, total) over the window; NaN below `min_feedback`."""
        wrong, total = self.store.window_counts(self.window_seconds)
        return (wrong / total if total >= self.min_feedback else float("nan")), wrong, total

    def scraped_rate(self) -> float:
        """The gauge's value at scrape time, so it decays as the window moves on."""
        try:
            return self.rate()[0]
        except (FeedbackUnavailable, SQLAlchemyError) as exc:
            alert_logger.warning("wrong-prediction rate not computed: %s", exc)
            return float("nan")

    def evaluate(
        self, model_version: str | None, client_id: str | None = None
    ) -> dict[str, Any] | None:
        rate, wrong, total = self.rate()
        if total < self.min_feedback or rate < self.threshold:
            return None
        clients = self._clients()
        if clients is None:
            return None
        alert = {
            "fired_at": datetime.now(UTC),
            "rule": MISPREDICTION_RULE,
            "count": wrong,
            "threshold": round(100 * self.threshold),  # percent, for this rule
            "window_seconds": self.window_seconds,
            "model_version": model_version,
            "client_id": client_id,
            "verdicts": total,
        }
        if not self._record(alert, clients):
            return None
        alert_logger.warning(
            "%s: wrong-prediction rate %.0f%% over %d verdicts within %d s (threshold %.0f%%) "
            "from %d clients, last from %s",
            MISPREDICTION_EVENT,
            100 * rate,
            total,
            self.window_seconds,
            100 * self.threshold,
            len(clients),
            escape(client_id or "-"),
            extra={
                "microsoft.custom_event.name": MISPREDICTION_EVENT,
                "rate": rate,
                "client_id": client_id,
                "clients": len(clients),
            },
        )
        return alert
