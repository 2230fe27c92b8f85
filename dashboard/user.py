"""The user page: classify tweets, see how sure the model is, and say whether it was right."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pandas as pd
import panel as pn
import param

from dashboard import theme
from dashboard.certainty import certainty
from dashboard.client import Explanation, Prediction, ServerUnavailable
from dashboard.connection import ServerConnection
from dashboard.explain_view import Highlighting, legend_html
from dashboard.feedback_flow import FeedbackFlow
from dashboard.history import TABLE_COLUMNS, HistoryRow, table_frame, to_csv
from dashboard.settings import DashboardSettings
from dashboard.user_card import CardList, PredictionCard
from dashboard.words import EXPLAIN_FAILED, plain_error, session_zone

logger = logging.getLogger(__name__)

BINARY_NOTE = (
    "The model tells negative from positive tweets only; it has no neutral class. When it is "
    "close to a coin toss, the card says uncertain."
)
SERVER_DOWN_MESSAGE = "Not analyzed: the model server is unavailable. Your text is kept."


class UserPage(FeedbackFlow):
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
        default=pd.DataFrame(columns=TABLE_COLUMNS),
        doc="This session's predictions as the table shows them, newest first.",
    )

    def __init__(
        self, connection: ServerConnection, settings: DashboardSettings, **params: Any
    ) -> None:
        super().__init__(connection, settings.feedback_undo_seconds, **params)
        self.page_max_tweets = settings.max_tweets
        self.band = settings.uncertain_band
        self.highlighting = Highlighting(
            settings.explain.top_k, settings.explain.min_share, tuple(settings.airline_words)
        )
        connection.param.watch(self._on_status, "status")
        # All three are on the page from the start, so the first batch only sends its data
        # (the browser has already built, compiled and styled the card list).
        self._no_results = theme.card(
            theme.empty(
                "Results appear here: the sentiment of each tweet, how confident the model "
                "is, and buttons to tell us whether it got it right."
            ),
            css_class="ap-results-empty",
        )
        self._legend = theme.html_pane(
            legend_html(),
            sizing_mode="stretch_width",
            margin=(0, 10),
            css_classes=["ap-legend"],
            visible=False,
        )
        self._cards_view = CardList(visible=False)
        self._results = pn.Column(
            self._no_results,
            self._legend,
            self._cards_view,
            sizing_mode="stretch_width",
            margin=0,
        )
        self._history_table = self._new_history_table()

    # -- actions ----------------------------------------------------------------------------
    def tweets(self) -> list[str]:
        return [line.strip() for line in self.text.splitlines() if line.strip()]

    def _say(self, text: str, kind: str = "info") -> None:
        self.message_kind = kind
        self.message = text

    def _on_status(self, event: param.parameterized.Event) -> None:
        """A "server unavailable" message goes once the server is back: it would be stale."""
        if event.new == "ready" and self.message == SERVER_DOWN_MESSAGE:
            self._say("The model server is back: press Analyze sentiment again.", "info")

    @property
    def max_tweets(self) -> int:
        """Tweets analyzed at once: this page's own cap, within the server's request limit."""
        limits = self.connection.limits
        return min(self.page_max_tweets, limits.max_instances if limits else self.page_max_tweets)

    @property
    def max_chars(self) -> int | None:
        """The server's longest tweet (``/v1/info``); None until the server has said, when
        the server's own answer (a 4xx naming its limit) is the check."""
        limits = self.connection.limits
        return limits.max_tweet_chars if limits else None

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
        limit = self.max_chars
        too_long = [(i, len(t)) for i, t in enumerate(tweets, 1) if limit and len(t) > limit]
        if limit and too_long:
            where = ", ".join(f"line {i} ({n:,} characters)" for i, n in too_long[:5])
            self._say(
                f"Too long: {where}. A tweet may have at most {limit:,} characters.", "warning"
            )
            return None
        return tweets

    @param.depends("submit", watch=True)
    async def classify(self) -> None:
        """Classify the tweets typed; every problem ends as an inline message or the banner.

        The HTTP calls run off the event loop, and the cards show before the explanation is
        asked for, so a slow explanation never delays them.
        """
        if self.connection.limits is None:  # not asked yet: the limits come from the server
            await self.connection.check()
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
            self._say(SERVER_DOWN_MESSAGE, "danger")
            return []
        if isinstance(result, Exception):
            logger.error("predict failed", exc_info=result)
            self._say(f"Not analyzed: {plain_error(result)}", "warning")
            return []
        self.connection.mark_up()
        threshold = self.connection.served.get("threshold")
        cards = [
            PredictionCard(
                p,
                certainty(p.probability, p.label, threshold, self.band),
                self.send_feedback,
                self.undo_feedback,
                self.highlighting,
            )
            for p in result
        ]
        for new in cards:
            self.rows[new.feedback_id] = HistoryRow(
                new.created, new.prediction.text, new.certainty, new.prediction.probability,
                new.prediction.model_version,
            )  # fmt: skip
        self.cards = cards  # first: the browser draws them while the history is redrawn
        count = f"{len(cards)} tweets" if len(cards) > 1 else "1 tweet"
        self._say(f"Analyzed {count}.", "success")
        self._publish()
        return cards

    def _explainable(self, cards: list[PredictionCard]) -> bool:
        """Whether to ask for explanations: one call covers at most the server's
        `max_explain_instances` tweets, and a bigger batch is not worth several (occlusion
        costs a model call per word), so its cards say so instead. A server that gave no
        limits is asked, and its refusal is the card's note."""
        limits = self.connection.limits
        if limits is None or len(cards) <= limits.max_explain_instances:
            return bool(cards)
        note = (
            f"Not explained: word highlighting is given for up to "
            f"{limits.max_explain_instances} tweets analyzed at once."
        )
        with self._cards_view.batch():
            for card in cards:
                card.explain_note = note
        return False

    def _explain(self, tweets: list[str]) -> list[Explanation] | Exception:
        try:
            return self.connection.client.explain(tweets)
        except Exception as exc:  # noqa: BLE001 - sorted out by _attach, never raised
            return exc

    def _attach(self, cards: list[PredictionCard], result: list[Explanation] | Exception) -> None:
        """Each card gets its explanation, or a note: the prediction stays either way.

        A failed explanation does not raise the banner: predictions worked, and the periodic
        health check tells whether the server itself is down. The detail goes to the log.
        """
        if isinstance(result, Exception):
            logger.warning("explain failed: %s", result)
            with self._cards_view.batch():
                for card in cards:
                    card.explain_note = EXPLAIN_FAILED
            return
        with self._cards_view.batch():
            for card, explanation in zip(cards, result, strict=True):
                card.explanation = explanation

    @param.depends("clear", watch=True)
    def reset(self) -> None:
        self.text = ""
        self.cards = []
        self.message = ""

    # -- history ----------------------------------------------------------------------------
    def _publish(self) -> None:
        self.history = table_frame(list(self.rows.values()), session_zone())

    def csv_file(self) -> Any:
        """The history as CSV, for the Download button."""
        return to_csv(list(self.rows.values()), session_zone())

    # -- view -------------------------------------------------------------------------------
    @param.depends("message", "message_kind")
    def _hint_html(self, served: dict[str, Any]) -> str:
        """The input's limits, redrawn when ``/v1/info`` (`served`) brings the server's."""
        chars = self.max_chars if served else None
        each = f", {chars:,} characters each" if chars else ""
        return (
            f'<span class="ap-muted">Up to {self.max_tweets} tweets at once{each}. '
            f"{BINARY_NOTE}</span>"
        )

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

    @param.depends("cards", watch=True)
    def _draw_cards(self) -> None:
        """The cards under one legend; all of them are one browser-side component."""
        self._cards_view.draw(self.cards)
        shown = bool(self.cards)
        self._no_results.visible = not shown
        self._legend.visible = self._cards_view.visible = shown

    def _new_history_table(self) -> pn.widgets.Tabulator:
        """One table for the session, whose rows follow `history` (a new table per change
        would be a new browser-side model each time)."""
        return pn.widgets.Tabulator(
            self.history,
            disabled=True,
            show_index=False,
            sizing_mode="stretch_width",
            layout="fit_columns",
            page_size=10,
            titles={c: c.capitalize() for c in TABLE_COLUMNS},
            formatters={"confidence": {"type": "html"}, "tweet": {"type": "textarea"}},
            widths={"time": 70, "tweet": "42%", "sentiment": 115, "confidence": 110},
            # On a phone the columns that do not fit fold under their row, the tweet stays.
            configuration={"responsiveLayout": "collapse"},
            css_classes=["ap-history"],
            margin=(5, 10),
            visible=False,
        )

    @param.depends("history", watch=True)
    def _redraw_history(self) -> None:
        table = self._history_table
        with pn.io.hold():
            table.pagination = "local" if len(self.history) > 10 else None
            table.value = self.history
            table.visible = not self.history.empty

    def _history_view(self) -> pn.viewable.Viewable:
        empty = theme.empty("No prediction yet in this session.")
        empty.visible = self.param.history.rx.pipe(lambda frame: frame.empty)
        return pn.Column(empty, self._history_table, sizing_mode="stretch_width", margin=0)

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
            width=170,
            description=None,
            css_classes=["ap-submit"],
        )
        clear = pn.widgets.Button.from_param(
            self.param.clear,
            **theme.button_look("default", "outline"),
            width=80,
            description=None,
            css_classes=["ap-clear"],
        )
        hint = theme.html_pane(
            pn.bind(self._hint_html, self.connection.param.served),
            sizing_mode="stretch_width",
            margin=(4, 10),
            css_classes=["ap-binary-note"],
        )
        download = pn.widgets.FileDownload(
            callback=self.csv_file,
            filename="air-paradis-predictions.csv",
            label="Download CSV",
            **theme.button_look("default", "outline"),
            width=150,
            css_classes=["ap-history-csv"],
        )
        return pn.Column(
            self.connection.banner_view(),
            theme.card(
                theme.heading("Analyze tweets"),
                text,
                pn.FlexBox(submit, clear, gap="4px"),
                hint,
                self._message_view,
                css_class="ap-analyze",
            ),
            theme.heading("Results", margin=(14, 15, 0, 15)),
            self._results,
            theme.card(
                pn.FlexBox(
                    theme.heading("History of this session"),
                    download,
                    justify_content="space-between",
                    align_items="center",
                ),
                self._history_view(),
                css_class="ap-session",
                margin=(14, 5, 8, 5),
            ),
            sizing_mode="stretch_width",
            css_classes=["ap-page"],
        )
