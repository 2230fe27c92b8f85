"""The user page's pure rules: the uncertain band, the shown percentages, the words mapped back
from the model's tokens, the history's CSV rows, and the plain words for errors."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta, timezone

import pytest

from dashboard.certainty import certainty, percent
from dashboard.client import Explanation, RequestRejected, ServerUnavailable, TokenContribution
from dashboard.explain_view import explanation_html, selected_words, word_map
from dashboard.history import HistoryRow, csv_rows, table_frame, to_csv
from dashboard.words import SERVER_DOWN, browser_zone, local_clock, plain_error


@pytest.mark.parametrize(
    ("probability", "label", "threshold", "verdict"),
    [
        (0.86, "positive", 0.5, "positive"),
        (0.64, "positive", 0.5, "uncertain"),  # within 0.15 of the threshold
        (0.36, "negative", 0.5, "uncertain"),
        (0.34, "negative", 0.5, "negative"),
        (0.64, "positive", 0.3, "positive"),  # the served threshold, not 0.5
        (0.40, "positive", None, "uncertain"),  # no /v1/info yet: 0.5 assumed
    ],
)
def test_uncertain_within_the_band_around_the_served_threshold(
    probability: float, label: str, threshold: float | None, verdict: str
) -> None:
    said = certainty(probability, label, threshold, band=0.15)
    assert said.verdict == verdict
    assert said.leaning == label


def test_a_band_of_zero_never_says_uncertain() -> None:
    assert certainty(0.5, "positive", 0.5, band=0.0).verdict == "positive"


@pytest.mark.parametrize(
    ("share", "shown"), [(1.0, 99), (0.996, 99), (0.994, 99), (0.855, 86), (0.5, 50), (0.0, 1)]
)
def test_percent_is_whole_and_never_100_nor_0(share: float, shown: int) -> None:
    assert percent(share) == shown


def test_confidence_is_of_the_predicted_label() -> None:
    said = certainty(0.1, "negative", 0.5, band=0.15)
    assert said.shown == "90 %"


def test_tokens_map_back_to_the_words_typed() -> None:
    mapping = word_map("@AirParadis Worst delay EVER!!! see https://t.co/x :( don't")
    assert mapping["xxuser"] == "@AirParadis"
    assert mapping["xxurl"] == "https://t.co/x"
    assert mapping["xxsad"] == ":("
    assert mapping["worst"] == "Worst" and mapping["ever"] == "EVER"
    assert mapping["not"] == "don't"


def _explanation(text: str, *tokens: tuple[str, float]) -> Explanation:
    parts = tuple(TokenContribution(t, c) for t, c in tokens)
    return Explanation(text, "negative", 0.2, "exact-linear", "logit", parts)


def test_only_the_contributions_that_matter_in_the_users_words() -> None:
    explanation = _explanation(
        "@AirParadis @bob the worst delay, thanks Air Paradis",
        ("xxuser", -0.5), ("the", -0.9), ("worst", -2.0), ("worst delay", -0.8),
        ("delay", -1.0), ("thanks", 1.2), ("air", 0.7), ("paradis", 0.5), ("air paradis", 0.6),
    )  # fmt: skip
    words = selected_words(explanation, top_k=3, min_share=0.2, quiet_words=["air", "paradis"])
    assert [w.text for w in words] == ["worst", "thanks", "delay"]  # strongest first
    everything = selected_words(explanation, top_k=20, min_share=0.2, quiet_words=["paradis"])
    shown = [w.text for w in everything]
    assert "@AirParadis" in shown and "worst delay" in shown  # a placeholder, an n-gram
    assert "the" not in shown and "Paradis" not in shown  # a stop word, the airline's name
    assert "Air" in shown  # "air" alone is not quiet here
    assert "xxuser" not in explanation_html(explanation, 20, 0.2)
    airline = selected_words(explanation, 20, 0.2, quiet_words=["air", "paradis", "airparadis"])
    assert not {"@AirParadis", "Air", "Air Paradis"} & {w.text for w in airline}


def test_tiny_contributions_are_left_out() -> None:
    explanation = _explanation("bad seat ok", ("bad", -1.0), ("seat", -0.05), ("ok", 0.1))
    assert [w.text for w in selected_words(explanation, 6, 0.15)] == ["bad"]
    assert "No word stood out" in explanation_html(_explanation("the", ("the", 0.4)))


def _rows() -> list[HistoryRow]:
    first = datetime(2026, 3, 1, 13, 5, 9, tzinfo=UTC)
    return [
        HistoryRow(first, "great crew, thanks", certainty(0.997, "positive", 0.5, 0.15), 0.997,
                   "3"),
        HistoryRow(first + timedelta(minutes=2), 'bag lost, "again"',
                   certainty(0.41, "negative", 0.5, 0.15), 0.41, None, "✗ wrong"),
    ]  # fmt: skip


def test_csv_rows_hold_full_tweets_numbers_and_local_times() -> None:
    paris = timezone(timedelta(hours=1))
    rows = csv_rows(_rows(), paris)
    assert rows[0]["time"] == "2026-03-01T14:05:09+01:00"
    assert rows[0]["confidence_percent"] == 99 and rows[0]["sentiment"] == "positive"
    assert rows[1]["sentiment"] == "uncertain" and rows[1]["predicted_label"] == "negative"
    assert rows[1]["model_version"] == "local" and rows[1]["feedback"] == "✗ wrong"
    assert rows[0]["feedback"] == ""
    read = list(csv.DictReader(to_csv(_rows(), paris)))
    assert read[1]["tweet"] == 'bag lost, "again"'  # quoted, not cut
    assert float(read[1]["probability_positive"]) == 0.41


def test_the_table_shows_the_same_number_coloured_by_verdict() -> None:
    frame = table_frame(_rows(), UTC)
    assert list(frame["time"]) == ["13:07", "13:05"]  # newest first
    assert "99 %" in frame.loc[1, "confidence"] and "#2da44e" in frame.loc[1, "confidence"]
    assert "59 %" in frame.loc[0, "confidence"] and "#8c959f" in frame.loc[0, "confidence"]
    assert frame.loc[0, "sentiment"] == "? uncertain"


def test_errors_become_plain_words() -> None:
    refused = ServerUnavailable("cannot reach http://x ([Errno 111] Connection refused)")
    assert plain_error(refused) == SERVER_DOWN
    assert plain_error("[Errno 111] Connection refused") == SERVER_DOWN
    assert "Errno" not in plain_error(RequestRejected("HTTP 422: bad"))
    assert "Errno" not in plain_error(RuntimeError("boom"))


def test_times_in_the_browsers_zone() -> None:
    when = datetime(2026, 7, 1, 12, 30, tzinfo=UTC)
    assert local_clock(when, browser_zone("Europe/Paris", None)) == "14:30"
    assert local_clock(when, browser_zone(None, -120)) == "14:30"  # JS offset: behind UTC
    assert local_clock(when, browser_zone("Not/AZone", 240)) == "08:30"


def test_the_banner_keeps_socket_errors_in_the_log() -> None:
    from dashboard.connection import ServerConnection
    from tests.dashboard.conftest import dead_url, settings_for

    connection = ServerConnection(settings_for(dead_url()))
    connection.mark_down("cannot reach http://127.0.0.1:1 ([Errno 111] Connection refused)")
    assert "Errno" not in connection.banner and "unavailable" in connection.banner
    connection.mark_down("model not loaded")  # the server's own words stay
    assert "(model not loaded)" in connection.banner
