"""One classified tweet on the user page: its verdict, its highlighted words, its feedback.

A card is light on purpose (one HTML pane for the verdict, one for the words, the feedback
controls): a batch of 50 must draw quickly in the browser.
"""

from __future__ import annotations

import asyncio
import html
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import panel as pn
import param

from dashboard import theme
from dashboard.certainty import Certainty, percent
from dashboard.client import Explanation, Prediction
from dashboard.explain_view import Highlighting
from dashboard.history import BAR_COLOR

BADGE = {
    "positive": ("ap-positive", "▲ Positive"),
    "negative": ("ap-negative", "▼ Negative"),
    "uncertain": ("ap-uncertain", "? Uncertain"),
}

FeedbackSender = Callable[["PredictionCard", "str | None", "str | None"], Awaitable[None]]
UndoHandler = Callable[["PredictionCard"], None]


class PredictionCard(pn.viewable.Viewer):  # type: ignore[misc]
    """One classified tweet with its feedback controls; its feedback id makes retries safe."""

    mark_correct = param.Event(label="✓ Correct", doc="The prediction was right.")
    mark_wrong = param.Event(label="✗ Wrong", doc="The prediction was wrong.")
    undo = param.Event(label="Undo", doc="Take back the feedback before it is sent.")
    right_label: param.Selector[str] = param.Selector(
        default="",
        objects={"Pick the right label…": "", "Negative": "negative", "Positive": "positive"},
        label="Right label",
        doc="The label the user says is right (implies correct or wrong).",
    )
    feedback_state: param.Selector[str] = param.Selector(
        default="none",
        objects=["none", "pending", "sending", "stored", "failed"],
        doc="Feedback progress; pending means it can still be undone.",
    )
    feedback_note = param.String(default="", doc="Confirmation or failure of the feedback.")
    explanation = param.ClassSelector(
        class_=Explanation, default=None, allow_None=True, doc="Token contributions, once known."
    )
    explain_note = param.String(
        default="Finding the words that mattered…",
        doc="Shown instead of the explanation while there is none.",
    )

    def __init__(
        self,
        prediction: Prediction,
        certainty: Certainty,
        sender: FeedbackSender,
        on_undo: UndoHandler,
        highlighting: Highlighting,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        self.prediction = prediction
        self.certainty = certainty
        self.feedback_id = uuid.uuid4().hex
        self.created = datetime.now(UTC)
        self.verdict: str | None = None
        self.pending: tuple[str | None, str | None] | None = None
        self.task: asyncio.Task[None] | None = None
        self._sender = sender
        self._on_undo = on_undo
        self._highlighting = highlighting

    # The callbacks are coroutines: Panel runs them on the event loop in the order the browser
    # sent the events, while the HTTP call itself runs in a worker thread.
    @param.depends("mark_correct", watch=True)
    async def _on_correct(self) -> None:
        await self._sender(self, "correct", None)

    @param.depends("mark_wrong", watch=True)
    async def _on_wrong(self) -> None:
        await self._sender(self, "wrong", None)

    @param.depends("right_label", watch=True)
    async def _on_right_label(self) -> None:
        if self.right_label:
            await self._sender(self, None, self.right_label)

    @param.depends("undo", watch=True)
    def _on_undo_click(self) -> None:
        self._on_undo(self)

    @property
    def locked(self) -> bool:
        return self.feedback_state in ("pending", "sending", "stored")

    def summary_html(self) -> str:
        """Verdict, confidence, gauge and tweet: one pane, so a card stays light."""
        p, c = self.prediction, self.certainty
        css, badge = BADGE.get(c.verdict, ("ap-unknown", html.escape(c.verdict)))
        shown = percent(c.confidence)
        if c.uncertain:
            sure = f"leans {c.leaning}, only {shown} % confident"
        else:
            sure = f"{shown} % confident"
        version = html.escape(p.model_version or "local bundle")
        color = BAR_COLOR.get(c.verdict, BAR_COLOR["uncertain"])
        return (
            f'<div class="ap-card-head"><span class="ap-badge {css}">{badge}</span>'
            f'<span class="ap-confidence">{sure}</span>'
            f'<span class="ap-version">model version: {version}</span></div>'
            f'<div class="ap-gauge"><div style="width:{shown}%;background:{color}"></div></div>'
            f'<div class="ap-tweet">{html.escape(p.text)}</div>'
        )

    def _explanation_html(self, explanation: Explanation | None, note: str) -> str:
        if explanation is None:
            return f'<div class="ap-explain-legend">{html.escape(note)}</div>'
        return self._highlighting.html(explanation)

    def _note_html(self, state: str, note: str) -> str:
        css = {"stored": "ap-ok", "failed": "ap-err"}.get(state, "")
        text = note or "Was it right? Your feedback helps us improve the model."
        return f'<span class="ap-note {css}">{html.escape(text)}</span>'

    def __panel__(self) -> pn.viewable.Viewable:
        locked = self.param.feedback_state.rx.pipe(lambda s: s in ("pending", "sending", "stored"))
        correct = pn.widgets.Button.from_param(
            self.param.mark_correct,
            **theme.button_look("success", "outline"),
            width=100,
            disabled=locked,
            description=None,
            css_classes=["ap-fb-correct"],
        )
        wrong = pn.widgets.Button.from_param(
            self.param.mark_wrong,
            **theme.button_look("danger", "outline"),
            width=100,
            disabled=locked,
            description=None,
            css_classes=["ap-fb-wrong"],
        )
        right = pn.widgets.Select.from_param(
            self.param.right_label,
            name="",
            width=170,
            disabled=locked,
            description=None,
            css_classes=["ap-fb-label"],
        )
        undo = pn.widgets.Button.from_param(
            self.param.undo,
            **theme.button_look("default", "outline"),
            width=80,
            visible=self.param.feedback_state.rx() == "pending",
            description=None,
            css_classes=["ap-fb-undo"],
        )
        note = theme.html_pane(
            pn.bind(self._note_html, self.param.feedback_state, self.param.feedback_note),
            margin=(8, 10),
            sizing_mode="stretch_width",
            css_classes=["ap-feedback-note"],
        )
        return theme.card(
            theme.html_pane(self.summary_html(), sizing_mode="stretch_width", margin=(4, 10)),
            theme.html_pane(
                pn.bind(self._explanation_html, self.param.explanation, self.param.explain_note),
                sizing_mode="stretch_width",
                margin=(0, 10, 4, 10),
                css_classes=["ap-explanation"],
            ),
            # A FlexBox wraps on a narrow screen; a Row would widen the card to fit its widgets.
            pn.FlexBox(correct, wrong, right, undo, note, align_items="center", gap="4px"),
            css_class="ap-prediction",
            margin=(6, 5),
        )
