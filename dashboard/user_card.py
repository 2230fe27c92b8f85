"""The classified tweets on the user page: each one's verdict, highlighted words and feedback.

A `PredictionCard` is the state of one tweet (Python only). `CardList` draws all the cards of a
batch as one browser-side component (`panel.custom.JSComponent`): the browser builds the cards
and their feedback controls from a few strings, and a click comes back as one message naming
its card. Cards made of Panel widgets were a dozen Bokeh models each, built in Python and laid
out by the browser one by one, which made a batch of 50 slow to appear.
"""

from __future__ import annotations

import asyncio
import html
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Any

import panel as pn
import param
from panel.custom import JSComponent

from dashboard import theme
from dashboard.certainty import Certainty, percent
from dashboard.client import Explanation, Prediction
from dashboard.explain_view import Highlighting
from dashboard.history import BAR_COLOR

logger = logging.getLogger(__name__)

BADGE = {
    "positive": ("ap-positive", "▲ Positive"),
    "negative": ("ap-negative", "▼ Negative"),
    "uncertain": ("ap-uncertain", "? Uncertain"),
}
RIGHT_LABELS = {"Pick the right label…": "", "Negative": "negative", "Positive": "positive"}
FEEDBACK_PROMPT = "Was it right? Your feedback helps us improve the model."
LOCKED_STATES = ("pending", "sending", "stored")

FeedbackSender = Callable[["PredictionCard", "str | None", "str | None"], Awaitable[None]]
UndoHandler = Callable[["PredictionCard"], None]


def summary_html(prediction: Prediction, certainty: Certainty) -> str:
    """Verdict, confidence, gauge and tweet of one card."""
    p, c = prediction, certainty
    css, badge = BADGE.get(c.verdict, ("ap-unknown", html.escape(c.verdict)))
    shown = percent(c.confidence)
    sure = f"leans {c.leaning}, only {shown} % confident" if c.uncertain else f"{shown} % confident"
    version = html.escape(p.model_version or "local bundle")
    color = BAR_COLOR.get(c.verdict, BAR_COLOR["uncertain"])
    return (
        f'<div class="ap-card-head"><span class="ap-badge {css}">{badge}</span>'
        f'<span class="ap-confidence">{sure}</span>'
        f'<span class="ap-version">model version: {version}</span></div>'
        f'<div class="ap-gauge"><div style="width:{shown}%;background:{color}"></div></div>'
        f'<div class="ap-tweet">{html.escape(p.text)}</div>'
    )


class PredictionCard(param.Parameterized):
    """One classified tweet and its feedback; its feedback id makes retries safe."""

    right_label: param.Selector[str] = param.Selector(
        default="",
        objects=RIGHT_LABELS,
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

    @property
    def locked(self) -> bool:
        return self.feedback_state in LOCKED_STATES

    def summary_html(self) -> str:
        return summary_html(self.prediction, self.certainty)

    def words_html(self) -> str:
        """The highlighted words, or why there are none yet."""
        if self.explanation is None:
            return f'<div class="ap-explain-legend">{html.escape(self.explain_note)}</div>'
        return self._highlighting.html(self.explanation)

    def feedback_view(self) -> dict[str, str]:
        """What the browser needs to draw the feedback controls."""
        return {"state": self.feedback_state, "note": self.feedback_note, "label": self.right_label}

    async def handle(self, event: dict[str, Any]) -> None:
        """One click or pick of the card's controls, as the browser sends it."""
        action, value = event.get("action"), event.get("value")
        if action in ("correct", "wrong"):
            await self._sender(self, action, None)
        elif action == "label" and value in ("negative", "positive"):
            if not self.locked:
                self.right_label = value
            await self._sender(self, None, value)
        elif action == "undo":
            self._on_undo(self)
        else:
            logger.warning("ignored an unknown card event: %r", event)


# The cards' own look, beside the dashboard's stylesheet: the box of `theme.card`, and buttons
# and a select like Panel's outline widgets (on a phone they wrap under each other).
CARD_CSS = (
    ".ap-prediction {"
    + "".join(f" {key}: {value};" for key, value in theme.CARD_STYLES.items())
    + """ margin: 6px 5px; }
.ap-card-body { padding: 4px 10px; }
.ap-explanation { margin: 2px 0 4px 0; }
.ap-feedback { display: flex; flex-wrap: wrap; align-items: center; gap: 4px;
  margin: 8px 10px 2px 10px; }
.ap-feedback button, .ap-feedback select { font: inherit; font-size: .92em; min-height: 31px;
  border-radius: 4px; padding: 4px 12px; background: #fff; cursor: pointer; }
.ap-feedback button:disabled, .ap-feedback select:disabled { opacity: .55; cursor: default; }
.ap-fb-correct button { color: #1a7f37; border: 1px solid #1a7f37; width: 100px; }
.ap-fb-correct button:hover:enabled { background: #1a7f37; color: #fff; }
.ap-fb-wrong button { color: #cf222e; border: 1px solid #cf222e; width: 100px; }
.ap-fb-wrong button:hover:enabled { background: #cf222e; color: #fff; }
.ap-fb-undo button { color: #24292f; border: 1px solid #8c959f; width: 80px; }
.ap-fb-label select { border: 1px solid #8c959f; color: #24292f; width: 170px; max-width: 100%; }
.ap-fb-undo[hidden] { display: none; }
.ap-feedback-note { flex: 1 1 220px; min-width: 0; margin: 4px 6px; }
"""
)

# The browser's half: `summary` and `words` are HTML escaped by Python, the note is text. One
# listener on the list sends each click with its card's id; what the click changes comes back
# through `feedback`.
CARDS_ESM = """
const CARD = `<div class="ap-card-body"><div class="ap-summary"></div>
  <div class="ap-explanation"></div></div>
  <div class="ap-feedback">
    <span class="ap-fb-correct"><button type="button" data-action="correct">✓ Correct</button>
    </span><span class="ap-fb-wrong"><button type="button" data-action="wrong">✗ Wrong</button>
    </span>
    <span class="ap-fb-label"><select aria-label="Right label"></select></span>
    <span class="ap-fb-undo" hidden><button type="button" data-action="undo">Undo</button></span>
    <span class="ap-feedback-note"><span class="ap-note"></span></span>
  </div>`;

// Python's dicts may arrive as Maps or as plain objects.
const get = (dict, key) => (dict instanceof Map ? dict.get(key) : dict?.[key]);
const entries = (dict) => (dict instanceof Map ? [...dict.entries()] : Object.entries(dict));

export function render({ model }) {
  const c = model.esm_constants;
  const list = document.createElement("div");
  list.className = "ap-cards";
  const idOf = (node) => node.closest(".ap-prediction").dataset.id;
  list.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button) model.send_msg({ id: idOf(button), action: button.dataset.action });
  });
  list.addEventListener("change", (event) => {
    const select = event.target;
    if (select.value) model.send_msg({ id: idOf(select), action: "label", value: select.value });
  });
  const cards = () => {
    list.replaceChildren(...model.cards.map((item) => {
      const [id, summary] = [get(item, "id"), get(item, "summary")];
      const card = document.createElement("div");
      card.className = "ap-card ap-prediction";
      card.dataset.id = id;
      card.innerHTML = CARD;
      card.querySelector(".ap-summary").innerHTML = summary;
      const select = card.querySelector("select");
      for (const [text, value] of entries(get(c, "labels"))) select.add(new Option(text, value));
      return card;
    }));
    words();
    feedback();
  };
  const each = (update) => {
    for (const card of list.children) update(card, card.dataset.id);
  };
  const words = () => each((card, id) => {
    const box = card.querySelector(".ap-explanation");
    const shown = get(model.words, id) ?? "";
    if (box.innerHTML !== shown) box.innerHTML = shown;
  });
  const feedback = () => each((card, id) => {
    const view = get(model.feedback, id);
    const [state, note, label] = ["state", "note", "label"].map((key) => get(view, key) ?? "");
    const locked = get(c, "locked").includes(state);
    for (const control of card.querySelectorAll(".ap-feedback button, select")) {
      control.disabled = locked && !control.closest(".ap-fb-undo");
    }
    card.querySelector(".ap-fb-undo").hidden = state !== "pending";
    card.querySelector("select").value = label;
    const text = card.querySelector(".ap-note");
    text.className = "ap-note" + ({ stored: " ap-ok", failed: " ap-err" }[state] ?? "");
    text.textContent = note || get(c, "prompt");
  });
  cards();
  model.on("cards", cards);
  model.on("words", words);
  model.on("feedback", feedback);
  return list;
}
"""


class CardList(JSComponent):  # type: ignore[misc]
    """The cards of the last batch, drawn by the browser; it follows each card's parameters."""

    cards = param.List(default=[], doc="Each card's id and summary (HTML), in order.")
    words = param.Dict(default={}, doc="Each card's highlighted words (HTML), by id.")
    feedback = param.Dict(default={}, doc="Each card's feedback state, note and label, by id.")

    _esm = CARDS_ESM
    _constants = {"labels": RIGHT_LABELS, "prompt": FEEDBACK_PROMPT, "locked": LOCKED_STATES}

    def __init__(self, **params: Any) -> None:
        params.setdefault("sizing_mode", "stretch_width")
        params.setdefault("margin", 0)
        params.setdefault("stylesheets", [theme.CSS, CARD_CSS])
        super().__init__(**params)
        self._shown: dict[str, PredictionCard] = {}
        self._batching = False
        self._watchers: list[tuple[PredictionCard, list[param.parameterized.Watcher]]] = []

    def draw(self, cards: list[PredictionCard]) -> None:
        """Draw `cards` instead of the previous batch."""
        for card, watchers in self._watchers:
            for watcher in watchers:
                card.param.unwatch(watcher)
        self._shown = {card.feedback_id: card for card in cards}
        self._watchers = [
            (
                card,
                [
                    card.param.watch(self._redraw_words, ["explanation", "explain_note"]),
                    card.param.watch(
                        self._redraw_feedback, ["feedback_state", "feedback_note", "right_label"]
                    ),
                ],
            )
            for card in cards
        ]
        self._redraw_all()
        self.cards = [{"id": i, "summary": card.summary_html()} for i, card in self._shown.items()]

    @contextmanager
    def batch(self) -> Iterator[None]:
        """The cards changed inside are sent to the browser once, at the end (one message
        for a batch's explanations, not one per card)."""
        self._batching = True
        try:
            yield
        finally:
            self._batching = False
            self._redraw_all()

    def _redraw_all(self) -> None:
        self.words = {i: card.words_html() for i, card in self._shown.items()}
        self.feedback = {i: card.feedback_view() for i, card in self._shown.items()}

    def _redraw_words(self, event: param.parameterized.Event) -> None:
        card = event.obj
        if not self._batching:
            self.words = {**self.words, card.feedback_id: card.words_html()}

    def _redraw_feedback(self, event: param.parameterized.Event) -> None:
        card = event.obj
        if not self._batching:
            self.feedback = {**self.feedback, card.feedback_id: card.feedback_view()}

    def _handle_msg(self, data: Any) -> None:
        """Panel's hook for the browser's `model.send_msg`: the card's `handle` runs on the
        event loop, in the order the browser sent the clicks."""
        card = self._shown.get(str(data.get("id"))) if isinstance(data, dict) else None
        if card is None:
            logger.warning("ignored an event for no card on the page: %r", data)
            return
        pn.state.execute(partial(card.handle, data))
