"""The user page: classify tweets, see how sure the model is, and say whether it was right."""

from __future__ import annotations

import asyncio
import html
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import panel as pn
import param

from dashboard import theme
from dashboard.client import (
    MAX_EXPLAIN_TWEETS,
    Explanation,
    Prediction,
    RequestRejected,
    ServerUnavailable,
    TokenContribution,
)
from dashboard.connection import ServerConnection

logger = logging.getLogger(__name__)

LABEL_STYLE = {
    "positive": ("ap-positive", "▲", "success"),
    "negative": ("ap-negative", "▼", "danger"),
}
HISTORY_COLUMNS = ["time", "tweet", "label", "confidence", "model", "feedback"]
METHOD_LEGEND = {
    "exact-linear": "exact logit contributions of the linear model",
    "occlusion": "occlusion: change in P(positive) when the word is dropped",
}
UNIT_NAME = {"logit": "logit", "probability": "P(positive)"}
# Background of a token at full strength; weaker tokens get a proportionally paler one.
TOKEN_RGB = {"ap-tok-pos": "45, 164, 78", "ap-tok-neg": "207, 34, 46"}
MAX_TOKEN_ALPHA = 0.6

FeedbackSender = Callable[["PredictionCard", "str | None", "str | None"], Awaitable[None]]


class PredictionCard(pn.viewable.Viewer):  # type: ignore[misc]
    """One classified tweet with its feedback controls; its feedback id makes retries safe."""

    mark_correct = param.Event(label="✓ Correct", doc="The prediction was right.")
    mark_wrong = param.Event(label="✗ Wrong", doc="The prediction was wrong.")
    right_label: param.Selector[str] = param.Selector(
        default="",
        objects={"Pick the right label…": "", "Negative": "negative", "Positive": "positive"},
        label="Right label",
        doc="The label the user says is right (implies correct or wrong).",
    )
    feedback_state: param.Selector[str] = param.Selector(
        default="none", objects=["none", "sending", "stored", "failed"], doc="Feedback progress."
    )
    feedback_note = param.String(default="", doc="Confirmation or failure of the feedback.")
    explanation = param.ClassSelector(
        class_=Explanation, default=None, allow_None=True, doc="Token contributions, once known."
    )
    explain_note = param.String(
        default="Explaining…", doc="Shown instead of the explanation while there is none."
    )

    def __init__(self, prediction: Prediction, sender: FeedbackSender, **params: Any) -> None:
        super().__init__(**params)
        self.prediction = prediction
        self.feedback_id = uuid.uuid4().hex
        self.created = datetime.now(UTC)
        self.verdict: str | None = None
        self._sender = sender

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

    @property
    def locked(self) -> bool:
        return self.feedback_state in ("sending", "stored")

    def _header(self) -> pn.viewable.Viewable:
        p = self.prediction
        css, arrow, _ = LABEL_STYLE.get(p.label, ("ap-unknown", "•", "secondary"))
        version = html.escape(p.model_version or "local bundle")
        return theme.html_pane(
            f'<div class="ap-card-head"><span class="ap-badge {css}">{arrow} '
            f"{html.escape(p.label.capitalize())}</span>"
            f'<span class="ap-confidence">{p.confidence:.0%} confident</span>'
            f'<span class="ap-version">model version: {version}</span></div>'
            f'<div class="ap-tweet">{html.escape(p.text)}</div>',
            sizing_mode="stretch_width",
            margin=(4, 10),
        )

    def _gauge(self) -> pn.viewable.Viewable:
        p = self.prediction
        _, _, color = LABEL_STYLE.get(p.label, ("", "", "secondary"))
        return pn.indicators.Progress(
            value=round(100 * p.confidence),
            max=100,
            bar_color=color,
            sizing_mode="stretch_width",
            height=12,
            margin=(2, 10, 6, 10),
            css_classes=["ap-gauge"],
        )

    @param.depends("explanation", "explain_note")
    def _explanation_view(self) -> pn.viewable.Viewable:
        if self.explanation is None:
            body = f'<div class="ap-explain-legend">{html.escape(self.explain_note)}</div>'
        else:
            body = explanation_html(self.explanation)
        return theme.html_pane(
            body, sizing_mode="stretch_width", margin=(0, 10, 4, 10), css_classes=["ap-explanation"]
        )

    @param.depends("feedback_state", "feedback_note")
    def _note(self) -> pn.viewable.Viewable:
        css = {"stored": "ap-ok", "failed": "ap-err"}.get(self.feedback_state, "")
        text = self.feedback_note or "Was it right? Your feedback helps us improve the model."
        return theme.html_pane(
            f'<span class="ap-note {css}">{html.escape(text)}</span>',
            margin=(8, 10),
            css_classes=["ap-feedback-note"],
        )

    def __panel__(self) -> pn.viewable.Viewable:
        locked = self.param.feedback_state.rx.pipe(lambda s: s in ("sending", "stored"))
        correct = pn.widgets.Button.from_param(
            self.param.mark_correct,
            **theme.button_look("success", "outline"),
            width=110,
            disabled=locked,
            description=None,
            css_classes=["ap-fb-correct"],
        )
        wrong = pn.widgets.Button.from_param(
            self.param.mark_wrong,
            **theme.button_look("danger", "outline"),
            width=110,
            disabled=locked,
            description=None,
            css_classes=["ap-fb-wrong"],
        )
        right = pn.widgets.Select.from_param(
            self.param.right_label,
            name="",
            width=180,
            disabled=locked,
            description=None,
            css_classes=["ap-fb-label"],
        )
        return theme.card(
            self._header(),
            self._gauge(),
            self._explanation_view,
            pn.Row(correct, wrong, right, self._note, align="start"),
            css_class="ap-prediction",
            margin=(6, 5),
        )


class UserPage(pn.viewable.Viewer):  # type: ignore[misc]
    """State of one browser session: the tweets typed, their predictions, the feedback sent."""

    text = param.String(default="", doc="Tweets to classify, one per line.")
    submit = param.Event(label="Analyze sentiment", doc="Classify the tweets typed.")
    clear = param.Event(label="Clear", doc="Empty the input and the results.")
    message = param.String(default="", doc="Inline message about the input or the last call.")
    message_kind: param.Selector[str] = param.Selector(
        default="info", objects=["info", "warning", "danger", "success"]
    )
    cards = param.List(default=[], item_type=PredictionCard, doc="Predictions of the last submit.")
    history = param.DataFrame(
        default=pd.DataFrame(columns=HISTORY_COLUMNS),
        doc="This session's predictions, newest first.",
    )

    def __init__(
        self, connection: ServerConnection, max_chars: int, max_tweets: int, **params: Any
    ) -> None:
        super().__init__(**params)
        self.connection = connection
        self.max_chars = max_chars
        self.max_tweets = max_tweets
        self._rows: dict[str, dict[str, Any]] = {}

    # -- actions ----------------------------------------------------------------------------
    def tweets(self) -> list[str]:
        return [line.strip() for line in self.text.splitlines() if line.strip()]

    def _say(self, text: str, kind: str = "info") -> None:
        self.message_kind = kind
        self.message = text

    def validate(self) -> list[str] | None:
        """The tweets to send, or None after explaining inline what is wrong with the input."""
        tweets = self.tweets()
        if not tweets:
            self._say("Type or paste a tweet first — one tweet per line.", "warning")
            return None
        if len(tweets) > self.max_tweets:
            self._say(
                f"That is {len(tweets)} tweets; at most {self.max_tweets} can be analyzed at once.",
                "warning",
            )
            return None
        too_long = [(i, len(t)) for i, t in enumerate(tweets, 1) if len(t) > self.max_chars]
        if too_long:
            where = ", ".join(f"line {i} ({n:,} characters)" for i, n in too_long[:5])
            self._say(
                f"Too long: {where}. A tweet may have at most {self.max_chars:,} characters.",
                "warning",
            )
            return None
        return tweets

    def classify(self) -> None:
        """Classify the tweets typed; every problem ends as an inline message or the banner."""
        tweets = self.validate()
        if tweets is None:
            return
        cards = self._show(tweets, self._predict(tweets))
        if self._explainable(cards):
            self._attach(cards, self._explain(tweets))

    @param.depends("submit", watch=True)
    async def classify_async(self) -> None:
        """`classify` for the button: the HTTP calls run off the event loop, and the cards show
        before the explanation is asked for, so a slow explanation never delays them."""
        tweets = self.validate()
        if tweets is None:
            return
        self._say("Analyzing…", "info")
        cards = self._show(tweets, await asyncio.to_thread(self._predict, tweets))
        if self._explainable(cards):
            self._attach(cards, await asyncio.to_thread(self._explain, tweets))

    def _predict(self, tweets: list[str]) -> list[Prediction] | Exception:
        try:
            return self.connection.client.predict(tweets)
        except Exception as exc:  # noqa: BLE001 - sorted out by _show, never raised
            return exc

    def _show(
        self, tweets: list[str], result: list[Prediction] | Exception
    ) -> list[PredictionCard]:
        """The new cards on the page; none after a failure, which becomes a message."""
        if isinstance(result, ServerUnavailable):
            self.connection.mark_down(result)
            self._say("Not analyzed: the model server is unavailable. Your text is kept.", "danger")
            return []
        if isinstance(result, RequestRejected):
            self._say(f"The server refused these tweets: {result}", "warning")
            return []
        if isinstance(result, Exception):
            logger.error("predict failed", exc_info=result)
            self._say(f"Something went wrong while analyzing: {result}", "danger")
            return []
        self.connection.mark_up()
        cards = [PredictionCard(p, self._send_feedback_async) for p in result]
        for new in cards:
            self._record(new)
        self.cards = cards
        count = f"{len(cards)} tweets" if len(cards) > 1 else "1 tweet"
        self._say(f"Analyzed {count}.", "success")
        return cards

    @staticmethod
    def _explainable(cards: list[PredictionCard]) -> bool:
        """Whether to ask for explanations: one call covers at most `MAX_EXPLAIN_TWEETS`
        tweets, and a bigger batch is not worth several (occlusion costs a model call per
        word), so its cards say so instead."""
        if len(cards) <= MAX_EXPLAIN_TWEETS:
            return bool(cards)
        for card in cards:
            card.explain_note = (
                f"Not explained: word highlighting is given for up to {MAX_EXPLAIN_TWEETS} "
                "tweets analyzed at once."
            )
        return False

    def _explain(self, tweets: list[str]) -> list[Explanation] | Exception:
        try:
            return self.connection.client.explain(tweets)
        except Exception as exc:  # noqa: BLE001 - sorted out by _attach, never raised
            return exc

    @staticmethod
    def _attach(cards: list[PredictionCard], result: list[Explanation] | Exception) -> None:
        """Each card gets its explanation, or a note: the prediction stays either way.

        A failed explanation does not raise the banner: predictions worked, and the periodic
        health check tells whether the server itself is down.
        """
        if isinstance(result, Exception):
            if not isinstance(result, ServerUnavailable | RequestRejected):
                logger.error("explain failed", exc_info=result)
            for card in cards:
                card.explain_note = f"No word highlighting: {result}"
            return
        for card, explanation in zip(cards, result, strict=True):
            card.explanation = explanation

    @param.depends("clear", watch=True)
    def reset(self) -> None:
        self.text = ""
        self.cards = []
        self.message = ""

    def send_feedback(
        self, card: PredictionCard, verdict: str | None = None, correct_label: str | None = None
    ) -> None:
        """Send one verdict or right label for `card`; the card shows whether it was stored."""
        if self._begin_feedback(card):
            result = self._post_feedback(card, verdict, correct_label)
            self._end_feedback(card, verdict, correct_label, result)

    async def _send_feedback_async(
        self, card: PredictionCard, verdict: str | None, correct_label: str | None
    ) -> None:
        if self._begin_feedback(card):
            result = await asyncio.to_thread(self._post_feedback, card, verdict, correct_label)
            self._end_feedback(card, verdict, correct_label, result)

    @staticmethod
    def _begin_feedback(card: PredictionCard) -> bool:
        if card.feedback_state in ("sending", "stored"):
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
        if isinstance(result, ServerUnavailable):
            self.connection.mark_down(result)
            self._failed(card, "the server is unavailable. Try again in a moment.")
            return
        if isinstance(result, Exception):
            if not isinstance(result, RequestRejected):
                logger.error("feedback failed", exc_info=result)
            self._failed(card, str(result))
            return
        self.connection.mark_up()
        if verdict is None and correct_label is not None:
            verdict = "correct" if correct_label == card.prediction.label else "wrong"
        card.verdict = verdict
        short_id = str(result.get("id", ""))[:8]
        when = _clock(result.get("created_at"))
        again = " (already stored earlier)" if result.get("duplicate") else ""
        card.feedback_note = f"✓ Feedback stored{again} — “{verdict}”, id {short_id}, {when}"
        card.feedback_state = "stored"
        label = (
            f" → {correct_label}"
            if correct_label and correct_label != card.prediction.label
            else ""
        )
        self._update(card, f"{'✓' if verdict == 'correct' else '✗'} {verdict}{label}")
        if pn.state.curdoc is not None and pn.state.notifications is not None:
            pn.state.notifications.success("Thanks! Your feedback was stored.", duration=3000)

    @staticmethod
    def _failed(card: PredictionCard, reason: str) -> None:
        card.feedback_state, card.feedback_note = "failed", f"Not stored: {reason}"
        card.right_label = ""  # so the same label can be picked again to retry

    # -- history ----------------------------------------------------------------------------
    def _record(self, card: PredictionCard) -> None:
        p = card.prediction
        self._rows[card.feedback_id] = {
            "time": card.created.strftime("%H:%M:%S"),
            "tweet": p.text if len(p.text) <= 120 else p.text[:117] + "…",
            "label": p.label,
            "confidence": round(100 * p.confidence, 1),
            "model": p.model_version or "local",
            "feedback": "—",
        }
        self._publish()

    def _update(self, card: PredictionCard, feedback: str) -> None:
        if card.feedback_id in self._rows:
            self._rows[card.feedback_id]["feedback"] = feedback
            self._publish()

    def _publish(self) -> None:
        rows = list(reversed(self._rows.values()))
        self.history = pd.DataFrame(rows, columns=HISTORY_COLUMNS)

    # -- view -------------------------------------------------------------------------------
    @param.depends("message", "message_kind")
    def _message_view(self) -> pn.viewable.Viewable:
        if not self.message:
            return pn.Spacer(height=0, margin=0)
        return pn.pane.Alert(
            self.message,
            alert_type=self.message_kind,
            sizing_mode="stretch_width",
            css_classes=["ap-message"],
            margin=(8, 10, 2, 10),
        )

    @param.depends("cards")
    def _results(self) -> pn.viewable.Viewable:
        if not self.cards:
            return theme.card(
                theme.empty(
                    "Results appear here: the sentiment of each tweet, how confident the model "
                    "is, and buttons to tell us whether it got it right."
                ),
                css_class="ap-results-empty",
            )
        return pn.Column(*self.cards, sizing_mode="stretch_width", margin=0)

    @param.depends("history")
    def _history_view(self) -> pn.viewable.Viewable:
        if self.history.empty:
            return theme.empty("No prediction yet in this session.")
        return pn.widgets.Tabulator(
            self.history,
            disabled=True,
            show_index=False,
            sizing_mode="stretch_width",
            layout="fit_data_stretch",
            pagination="local" if len(self.history) > 10 else None,
            page_size=10,
            titles={**{c: c.capitalize() for c in HISTORY_COLUMNS}, "time": "Time (UTC)"},
            formatters={
                "confidence": {"type": "progress", "max": 100, "legend": True, "color": "#54aeff"},
                "label": {"type": "lookup", "positive": "▲ positive", "negative": "▼ negative"},
            },
            widths={"tweet": "40%", "confidence": 150},
            css_classes=["ap-history"],
            margin=(5, 10),
        )

    def __panel__(self) -> pn.viewable.Viewable:
        text = pn.widgets.TextAreaInput.from_param(
            self.param.text,
            name="",
            placeholder="Type or paste a tweet… (several tweets: one per line)",
            rows=4,
            resizable="height",
            description=None,
            sizing_mode="stretch_width",
            css_classes=["ap-input"],
            margin=(5, 10),
        )
        submit = pn.widgets.Button.from_param(
            self.param.submit,
            **theme.button_look("primary"),
            width=180,
            description=None,
            css_classes=["ap-submit"],
        )
        clear = pn.widgets.Button.from_param(
            self.param.clear,
            **theme.button_look("default", "outline"),
            width=90,
            description=None,
            css_classes=["ap-clear"],
        )
        hint = theme.html_pane(
            f'<span class="ap-muted">Up to {self.max_tweets} tweets at once, '
            f"{self.max_chars:,} characters each.</span>",
            margin=(12, 10),
        )
        return pn.Column(
            self.connection.banner_view(),
            theme.card(
                theme.heading("Analyze tweets"),
                text,
                pn.Row(submit, clear, hint),
                self._message_view,
                css_class="ap-analyze",
            ),
            theme.heading("Results", margin=(14, 15, 0, 15)),
            self._results,
            theme.card(
                theme.heading("History of this session"),
                self._history_view,
                css_class="ap-session",
                margin=(14, 5, 8, 5),
            ),
            sizing_mode="stretch_width",
            css_classes=["ap-page"],
        )


def explanation_html(explanation: Explanation) -> str:
    """The tweet's words as the model read them, each on a green (toward positive) or red
    (toward negative) background whose strength is its share of the tweet's largest push."""
    peak = max((abs(t.contribution) for t in explanation.tokens), default=0.0)
    unit = UNIT_NAME.get(explanation.unit, explanation.unit)
    words = " ".join(_token_html(t, peak, unit) for t in explanation.tokens)
    method = METHOD_LEGEND.get(explanation.method, explanation.method)
    legend = (
        f"Green pushes toward positive, red toward negative, deeper is stronger — {method}. "
        "Words as the model reads them: lowercased; links, @users and emoticons become "
        "xxurl, xxuser, xxsmile / xxsad."
    )
    if not explanation.tokens:
        words = '<span class="ap-muted">No word to highlight in this tweet.</span>'
    return (
        f'<div class="ap-explain">{words}</div>'
        f'<div class="ap-explain-legend">{html.escape(legend)}</div>'
    )


def _token_html(token: TokenContribution, peak: float, unit: str) -> str:
    value = token.contribution
    css = "ap-tok-pos" if value > 0 else "ap-tok-neg" if value < 0 else "ap-tok-zero"
    style = ""
    if css in TOKEN_RGB and peak > 0:
        alpha = MAX_TOKEN_ALPHA * abs(value) / peak
        style = f' style="background: rgba({TOKEN_RGB[css]}, {alpha:.3f})"'
    title = html.escape(f"{token.token}: {value:+.3f} {unit}")
    return f'<span class="ap-tok {css}"{style} title="{title}">{html.escape(token.token)}</span>'


def _clock(value: Any) -> str:
    try:
        when = pd.Timestamp(value)
    except (TypeError, ValueError):
        return "just now"
    if pd.isna(when):
        return "just now"
    if when.tzinfo is None:
        when = when.tz_localize("UTC")
    return str(when.tz_convert("UTC").strftime("at %H:%M:%S UTC"))
