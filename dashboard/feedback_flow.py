"""Feedback from the cards to the server, with a short undo.

The server has no way to delete a feedback, and a feedback it stored may fire an alert or feed
a retraining. So a click is held for `undo_seconds` (the card shows an Undo button), then sent.
Nothing the user left standing is lost: when the session ends (tab closed) every held feedback
is sent at once. With `undo_seconds` at 0 a click is sent at once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import panel as pn

from dashboard.client import RequestRejected, ServerUnavailable
from dashboard.connection import ServerConnection
from dashboard.history import HistoryRow
from dashboard.user_card import PredictionCard
from dashboard.words import local_clock, plain_error, session_zone

logger = logging.getLogger(__name__)

VERDICT_WORDS = {"correct": "the prediction was right", "wrong": "the prediction was wrong"}


class FeedbackFlow(pn.viewable.Viewer):  # type: ignore[misc]
    """Holds, sends and confirms the feedback of one session's cards."""

    def __init__(self, connection: ServerConnection, undo_seconds: float, **params: Any) -> None:
        super().__init__(**params)
        self.connection = connection
        self.undo_seconds = undo_seconds
        self.rows: dict[str, HistoryRow] = {}
        self._held: dict[str, PredictionCard] = {}

    def _publish(self) -> None:
        """Redraw the history (the page's)."""

    # -- the card's callbacks ------------------------------------------------------------------
    async def send_feedback(
        self, card: PredictionCard, verdict: str | None = None, correct_label: str | None = None
    ) -> None:
        """A verdict or right label for `card`: held for undo, or sent at once without one."""
        if card.locked:
            return
        if self.undo_seconds > 0:
            self.hold(card, verdict, correct_label)
            return
        await self._send(card, verdict, correct_label)

    def hold(self, card: PredictionCard, verdict: str | None, correct_label: str | None) -> None:
        """Keep the feedback `undo_seconds` on the card, then send it (needs a running loop)."""
        card.pending = (verdict, correct_label)
        card.feedback_state = "pending"
        said = _verdict(card, verdict, correct_label)
        card.feedback_note = (
            f"Noted: {VERDICT_WORDS[said]}. Sending in {self.undo_seconds:.0f} s — Undo to take "
            "it back."
        )
        self._held[card.feedback_id] = card
        card.task = asyncio.get_running_loop().create_task(self._send_later(card))

    async def _send_later(self, card: PredictionCard) -> None:
        await asyncio.sleep(self.undo_seconds)
        if card.feedback_state != "pending" or card.pending is None:
            return
        self._held.pop(card.feedback_id, None)
        await self._send_held(card)

    def undo_feedback(self, card: PredictionCard) -> None:
        """Take back a held feedback: nothing is sent."""
        if card.feedback_state != "pending":
            return
        if card.task is not None:
            card.task.cancel()
        self._held.pop(card.feedback_id, None)
        card.pending, card.task = None, None
        card.feedback_state, card.feedback_note = "none", "Undone: nothing was sent."
        card.right_label = ""

    async def flush(self) -> None:
        """Send every held feedback now, side by side (the session is ending)."""
        held = list(self._held.values())
        self._held.clear()
        for card in held:
            if card.task is not None:
                card.task.cancel()
        await asyncio.gather(*(self._send_held(card) for card in held))

    # -- sending -------------------------------------------------------------------------------
    async def _send_held(self, card: PredictionCard) -> None:
        if card.pending is None:
            return
        verdict, correct_label = card.pending
        card.feedback_state = "none"  # so that _send takes it
        await self._send(card, verdict, correct_label)

    async def _send(
        self, card: PredictionCard, verdict: str | None, correct_label: str | None
    ) -> None:
        """Post one feedback off the event loop; the card shows whether it was stored."""
        if self._begin_feedback(card):
            result = await asyncio.to_thread(self._post_feedback, card, verdict, correct_label)
            self._end_feedback(card, verdict, correct_label, result)

    @staticmethod
    def _begin_feedback(card: PredictionCard) -> bool:
        if card.locked:
            return False
        card.feedback_state, card.feedback_note = "sending", "Sending…"
        return True

    def _post_feedback(
        self, card: PredictionCard, verdict: str | None, correct_label: str | None
    ) -> dict[str, Any] | Exception:
        try:
            return self.connection.client.feedback(
                card.prediction,
                verdict=verdict,
                correct_label=correct_label,
                feedback_id=card.feedback_id,
            )
        except Exception as exc:  # noqa: BLE001 - sorted out by _end_feedback, never raised
            return exc

    def _end_feedback(
        self,
        card: PredictionCard,
        verdict: str | None,
        correct_label: str | None,
        result: dict[str, Any] | Exception,
    ) -> None:
        card.pending, card.task = None, None
        if isinstance(result, ServerUnavailable):
            self.connection.mark_down(result)
            self._failed(card, "the server is unavailable. Try again in a moment.")
            return
        if isinstance(result, Exception):
            if not isinstance(result, RequestRejected):
                logger.error("feedback failed", exc_info=result)
            self._failed(card, plain_error(result))
            return
        self.connection.mark_up()
        verdict = _verdict(card, verdict, correct_label)
        card.verdict = verdict
        card.feedback_note = confirmation(card, verdict, correct_label, result)
        card.feedback_state = "stored"
        label = (
            f" → {correct_label}"
            if correct_label and correct_label != card.prediction.label
            else ""
        )
        row = self.rows.get(card.feedback_id)
        if row is not None:
            row.feedback = f"{'✓' if verdict == 'correct' else '✗'} {verdict}{label}"
            self._publish()

    @staticmethod
    def _failed(card: PredictionCard, reason: str) -> None:
        card.feedback_state, card.feedback_note = "failed", f"Not stored: {reason}"
        card.right_label = ""  # so the same label can be picked again to retry


def _verdict(card: PredictionCard, verdict: str | None, correct_label: str | None) -> str:
    if verdict is None:
        return "correct" if correct_label == card.prediction.label else "wrong"
    return verdict


def confirmation(
    card: PredictionCard, verdict: str, correct_label: str | None, receipt: dict[str, Any]
) -> str:
    """The card's thanks, in plain words and the user's local time (no internal id)."""
    import pandas as pd

    created = pd.Timestamp(receipt.get("created_at") or card.created)
    when = local_clock(created.to_pydatetime(), session_zone())
    what = VERDICT_WORDS[verdict]
    if correct_label and correct_label != card.prediction.label:
        what += f" (it is {correct_label})"
    again = " It had already been saved earlier." if receipt.get("duplicate") else ""
    return f"✓ Thanks! Saved at {when}: {what}.{again}"
