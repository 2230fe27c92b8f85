"""The user page driven without a browser, against the real model server on loopback."""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Iterator
from pathlib import Path

import httpx
import panel as pn
import pytest

from dashboard.client import Explanation, ModelServerClient, TokenContribution
from dashboard.connection import ServerConnection
from dashboard.explain_view import explanation_html
from dashboard.user import UserPage
from dashboard.user_card import PredictionCard
from dashboard.words import EXPLAIN_FAILED
from tests.conftest import RunningServer, start_server
from tests.dashboard.conftest import dead_url, settings_for

HAPPY = "I love this airline, great crew and a smooth flight!"
ANGRY = "worst delay ever, my bag is lost and nobody helps"


def make_page(
    url: str, transport: httpx.BaseTransport | None = None, **settings: object
) -> UserPage:
    settings.setdefault("feedback_undo_seconds", 0)  # sent at once; the undo has its own test
    s = settings_for(url, **settings)
    return UserPage(ServerConnection(s, transport=transport), s)


@pytest.fixture(scope="module")
def short_tweet_server(
    tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path
) -> Iterator[RunningServer]:
    """A server of its own that accepts tweets of 40 characters, under another route name:
    the page knows both only from its /v1/info."""
    server = start_server(
        tmp_path_factory.mktemp("short-tweet-home"),
        str(tiny_bundle),
        AIRPARADIS_SERVER_MAX_TWEET_CHARS="40",
        AIRPARADIS_SERVER_SERVED_NAME="short",
    )
    yield server
    server.stop()


def click(card: PredictionCard, action: str, value: str | None = None) -> None:
    """What a card's button or select sends from the browser, run to its end."""
    asyncio.run(card.handle({"action": action, "value": value}))


class BrokenExplainer(httpx.BaseTransport):
    """The real server, except that ``:explain`` answers `status` (a broken or older server)."""

    def __init__(self, status: int, body: dict[str, object]) -> None:
        self.status, self.body = status, body
        self.real = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(":explain"):
            return httpx.Response(self.status, json=self.body)
        return self.real.handle_request(request)


def test_one_tweet_per_line_gets_label_confidence_and_version(model_server: RunningServer) -> None:
    page = make_page(model_server.url)
    page.text = f"{HAPPY}\n\n   {ANGRY}  \n"
    page.param.trigger("submit")  # what the button does: `classify` on an event loop

    assert [c.prediction.text for c in page.cards] == [HAPPY, ANGRY]
    assert [c.prediction.label for c in page.cards] == ["positive", "negative"]
    for card in page.cards:
        assert 0.5 <= card.prediction.confidence <= 1.0
        assert card.feedback_state == "none"
    assert page.message_kind == "success" and "2 tweets" in page.message
    assert page.connection.status == "ready" and page.connection.banner == ""
    history = page.history
    assert list(history["tweet"]) == [ANGRY, HAPPY]  # newest first
    assert list(history["feedback"]) == ["—", "—"]
    # The tiny test model is not sure of the angry one: within the band it says uncertain.
    assert history.loc[1, "sentiment"] == "▲ positive"
    assert history.loc[0, "sentiment"] in ("▼ negative", "? uncertain")
    exported = list(csv.DictReader(page.csv_file()))
    assert [r["tweet"] for r in exported] == [HAPPY, ANGRY]  # oldest first, in full
    assert [r["model_version"] for r in exported] == ["local", "local"]  # a bundle path
    for row, card in zip(exported, page.cards, strict=True):
        # The card and the export show one number: the card's rounding rule.
        assert f"{row['confidence_percent']} % confident" in card.summary_html()
    # The browser draws exactly these cards, in this order.
    drawn = page._cards_view.cards
    assert [c["id"] for c in drawn] == [c.feedback_id for c in page.cards]
    assert [c["summary"] for c in drawn] == [c.summary_html() for c in page.cards]


def test_each_prediction_comes_with_its_words_highlighted(model_server: RunningServer) -> None:
    page = make_page(model_server.url)
    page.text = f"{HAPPY}\n{ANGRY}"
    asyncio.run(page.classify())

    happy, angry = (card.explanation for card in page.cards)
    assert happy is not None and angry is not None
    assert happy.text == HAPPY and happy.label == "positive"
    assert happy.method == "exact-linear" and happy.unit == "logit"  # TF-IDF + LR: exact
    contribution = {t.token: t.contribution for t in happy.tokens}
    assert contribution["love"] > 0 and contribution["great"] > 0
    assert sum(t.contribution for t in angry.tokens) < 0
    shown = explanation_html(happy)
    assert '<span class="ap-tok ap-tok-pos"' in shown
    assert 'title="love: toward positive, +' in shown and ">love</span>" in shown
    assert page._cards_view.words[page.cards[0].feedback_id] == page.cards[0].words_html()
    pn.panel(page).get_root()


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (500, {"error": "explainer crashed"}, "explainer crashed"),
        (404, {"detail": "Not Found"}, "Not Found"),  # a server from before :explain
    ],
)
def test_a_failed_explanation_keeps_the_prediction(
    model_server: RunningServer, status: int, body: dict[str, object], reason: str
) -> None:
    page = make_page(model_server.url, transport=BrokenExplainer(status, body))
    page.text = HAPPY
    asyncio.run(page.classify())

    [card] = page.cards
    assert card.prediction.label == "positive" and page.message_kind == "success"
    assert card.explanation is None
    # Plain words on the card; the server's detail goes to the log only.
    assert card.explain_note == EXPLAIN_FAILED and reason not in card.explain_note
    assert page.connection.banner == ""  # predictions work: no "server unavailable" banner
    pn.panel(page).get_root()


def test_a_batch_over_the_explain_limit_is_classified_without_highlighting(
    model_server: RunningServer,
) -> None:
    page = make_page(model_server.url, max_tweets=40)
    page.text = "\n".join(f"flight {i} was fine" for i in range(33))
    asyncio.run(page.classify())
    assert len(page.cards) == 33
    assert all(card.explanation is None for card in page.cards)
    assert "up to 32 tweets" in page.cards[0].explain_note


def test_highlighting_escapes_text_and_scales_with_the_largest_push() -> None:
    explanation = Explanation(
        "<b>& fine the", "negative", 0.3, "occlusion", "probability",
        (TokenContribution("b", -0.2), TokenContribution("fine", 0.1),
         TokenContribution("the", 0.0)),
    )  # fmt: skip
    shown = explanation_html(explanation, min_share=0.0)
    assert "<b>" not in shown and "&lt;b&gt;&amp;" in shown
    assert 'class="ap-tok ap-tok-neg" style="background: rgba(207, 34, 46, 0.600)"' in shown
    assert 'class="ap-tok ap-tok-pos" style="background: rgba(45, 164, 78, 0.300)"' in shown
    assert ">the</span>" not in shown  # a stop word with no push is not shown


def test_feedback_is_confirmed_stored_once_and_shown_in_history(
    model_server: RunningServer,
) -> None:
    page = make_page(model_server.url)
    page.text = ANGRY
    asyncio.run(page.classify())
    card = page.cards[0]

    click(card, "wrong")

    assert card.feedback_state == "stored", card.feedback_note
    assert card.feedback_note.startswith("✓ Thanks! Saved at ")
    assert "the prediction was wrong" in card.feedback_note
    assert card.feedback_id[:8] not in card.feedback_note and "UTC" not in card.feedback_note
    assert card.verdict == "wrong"
    assert page.history.loc[0, "feedback"] == "✗ wrong"
    # Sent with the card's id: the server has it, and a second click stores nothing new.
    client = ModelServerClient(settings_for(model_server.url))
    again = client.feedback(card.prediction, verdict="wrong", feedback_id=card.feedback_id)
    assert again["duplicate"] is True
    click(card, "correct")
    assert card.verdict == "wrong"


def test_picking_the_right_label_sends_it(model_server: RunningServer) -> None:
    page = make_page(model_server.url)
    page.text = HAPPY
    asyncio.run(page.classify())
    card = page.cards[0]
    assert card.prediction.label == "positive"

    click(card, "label", "negative")  # the "Pick the right label" select

    assert card.feedback_state == "stored"
    assert card.verdict == "wrong"
    assert page.history.loc[0, "feedback"] == "✗ wrong → negative"
    assert "(it is negative)" in card.feedback_note


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "Type or paste a tweet first"),
        ("   \n\n  ", "Type or paste a tweet first"),
        ("ok\n" + "x" * 41, "line 2 (41 characters)"),
        ("\n".join(f"tweet {i}" for i in range(4)), "That is 4 tweets; at most 3"),
    ],
)
def test_empty_long_or_too_many_tweets_get_an_inline_message(
    short_tweet_server: RunningServer, text: str, expected: str
) -> None:
    page = make_page(short_tweet_server.url, max_tweets=3)
    page.text = text
    asyncio.run(page.classify())
    assert expected in page.message
    assert page.message_kind == "warning"
    assert page.cards == []
    assert page.connection.banner == ""


def test_the_tweet_limit_is_the_servers_once_it_can_be_reached(
    short_tweet_server: RunningServer,
) -> None:
    """Before the server has answered, the page has no limit of its own to apply: it asks the
    server first, keeps the text while it is down, and checks lengths once it has said."""
    long = "a complaint about a lost bag, longer than forty characters"
    page = make_page(dead_url())
    assert "characters each" not in page._hint_html(page.connection.served)
    page.text = long
    asyncio.run(page.classify())
    assert page.connection.limits is None
    assert page.message_kind == "danger" and "Your text is kept" in page.message
    assert page.text == long and page.cards == []

    page.connection.server_url = short_tweet_server.url  # the server comes up
    assert page.connection.limits is not None
    assert "40 characters each" in page._hint_html(page.connection.served)
    asyncio.run(page.classify())
    assert page.message_kind == "warning" and page.cards == []
    assert "line 1 (58 characters)" in page.message and "at most 40 characters" in page.message

    page.text = "lost bag, again"  # within the limit: classified on the server's route
    asyncio.run(page.classify())
    assert [c.prediction.text for c in page.cards] == ["lost bag, again"]
    assert page.connection.client.served_name == "short"


def test_banner_when_the_server_is_down_then_clears_when_it_is_back(
    model_server: RunningServer,
) -> None:
    page = make_page(dead_url())
    page.text = HAPPY
    asyncio.run(page.classify())  # no exception reaches the user

    assert page.connection.status == "down"
    assert "unavailable" in page.connection.banner
    assert page.message_kind == "danger" and "Your text is kept" in page.message
    assert page.text == HAPPY and page.cards == []
    assert asyncio.run(page.connection.check()).reachable is False

    page.connection.server_url = model_server.url  # the server "returns"

    assert page.connection.status == "ready"
    assert page.connection.banner == ""
    assert "Not analyzed" not in page.message and "back" in page.message  # not stale
    asyncio.run(page.classify())
    assert page.cards[0].prediction.label == "positive"


def test_feedback_while_the_server_is_down_fails_softly_and_can_be_retried(
    model_server: RunningServer,
) -> None:
    page = make_page(model_server.url)
    page.text = HAPPY
    asyncio.run(page.classify())
    card = page.cards[0]
    page.connection.server_url = dead_url()

    click(card, "correct")
    assert card.feedback_state == "failed"
    assert "Not stored" in card.feedback_note
    assert page.connection.banner

    page.connection.server_url = model_server.url
    click(card, "correct")
    assert card.feedback_state == "stored"
    assert page.connection.banner == ""


def test_a_server_that_is_up_but_not_ready_shows_a_loading_banner() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/health/ready":
            return httpx.Response(503, json={"ready": False})
        return httpx.Response(503, json={"error": "model not loaded"})

    settings = settings_for("http://predictor.example")
    connection = ServerConnection(settings, transport=httpx.MockTransport(handler))
    page = UserPage(connection, settings)
    asyncio.run(connection.check())
    assert connection.status == "loading"
    assert "not ready" in connection.banner
    page.text = HAPPY
    asyncio.run(page.classify())
    assert connection.status == "down" and "model not loaded" in connection.banner


def test_the_page_renders_with_results_and_history(model_server: RunningServer) -> None:
    page = make_page(model_server.url)
    pn.panel(page).get_root()  # the empty page
    page.text = f"{HAPPY}\n{ANGRY}"
    asyncio.run(page.classify())
    asyncio.run(page.send_feedback(page.cards[1], verdict="correct"))
    root = pn.panel(page).get_root()
    assert root is not None
    page.param.trigger("clear")
    assert page.text == "" and page.cards == [] and len(page.history) == 2


def test_a_refused_token_points_at_the_auth_setting() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(403, json={"error": "denied"}))
    connection = ServerConnection(settings_for("https://isvc.example"), transport=transport)
    asyncio.run(connection.check())
    assert connection.status == "down"
    assert "AIRPARADIS_DASHBOARD_AUTH_HEADER" in connection.banner


def test_feedback_can_be_undone_before_it_is_sent(model_server: RunningServer) -> None:
    page = make_page(model_server.url, feedback_undo_seconds=0.3)
    page.text = f"{HAPPY}\n{ANGRY}"
    asyncio.run(page.classify())
    kept, undone = page.cards
    client = ModelServerClient(settings_for(model_server.url))

    async def click_then_wait() -> None:
        await kept.handle({"action": "correct"})  # what the buttons send
        await undone.handle({"action": "wrong"})
        assert kept.feedback_state == undone.feedback_state == "pending"
        assert "Undo" in undone.feedback_note
        await undone.handle({"action": "undo"})
        assert undone.feedback_state == "none" and "nothing was sent" in undone.feedback_note
        await asyncio.sleep(0.6)

    asyncio.run(click_then_wait())
    assert kept.feedback_state == "stored" and kept.verdict == "correct"
    assert undone.verdict is None
    # The server has the kept one only: sending the undone one again stores it as new.
    assert client.feedback(kept.prediction, verdict="correct", feedback_id=kept.feedback_id)[
        "duplicate"
    ]
    assert not client.feedback(undone.prediction, verdict="wrong", feedback_id=undone.feedback_id)[
        "duplicate"
    ]


def test_feedback_held_for_undo_is_sent_when_the_session_ends(model_server: RunningServer) -> None:
    page = make_page(model_server.url, feedback_undo_seconds=60)
    page.text = ANGRY
    asyncio.run(page.classify())
    [card] = page.cards

    click(card, "wrong")
    assert card.feedback_state == "pending"
    asyncio.run(page.flush())  # what closing the tab runs
    assert card.feedback_state == "stored" and card.verdict == "wrong"


def test_a_click_in_the_browser_reaches_its_card(
    model_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The card list routes `model.send_msg({id, action})` to the card of that id; the browser
    then draws the card's new state from `feedback`."""
    page = make_page(model_server.url)
    page.text = f"{HAPPY}\n{ANGRY}"
    asyncio.run(page.classify())
    happy, angry = page.cards
    view = page._cards_view

    view._handle_msg({"id": angry.feedback_id, "action": "label", "value": "positive"})

    assert angry.feedback_state == "stored" and happy.feedback_state == "none"
    assert view.feedback[angry.feedback_id] == {
        "state": "stored", "note": angry.feedback_note, "label": "positive",
    }  # fmt: skip
    assert view.feedback[happy.feedback_id]["state"] == "none"
    view._handle_msg({"id": "no-such-card", "action": "correct"})
    view._handle_msg({"id": happy.feedback_id, "action": "delete"})
    assert happy.feedback_state == "none"
    assert "no card on the page" in caplog.text and "unknown card event" in caplog.text
