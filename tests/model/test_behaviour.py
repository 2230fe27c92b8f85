"""Behavioural tests (CheckList style) of every family's served artifact.

Invariance: what the cleaning maps to one placeholder (an @user, a URL) cannot move the label.
Direction: negating a clear positive lowers P(positive).
Minimum functionality: clear positives and clear negatives get the right label.
"""

from __future__ import annotations

import numpy as np
import pytest

from airparadis.bundle import SentimentClassifier

CLEAR_POSITIVES = [
    "I love this, best day ever!",
    "thank you so much, you are awesome",
    "had a great time with my friends today, so happy",
    "good morning everyone, have a wonderful day",
    "this is amazing, I love it",
]
CLEAR_NEGATIVES = [
    "I hate this, worst day ever",
    "so sad and sick today, I feel terrible",
    "my flight got cancelled again, this sucks",
    "I miss you so much, this is awful",
    "ugh my head hurts and I can't sleep",
]
NEGATIONS = [
    ("I love this song", "I do not love this song"),
    ("this is good", "this is not good"),
    ("I am happy today", "I am not happy today"),
    ("great flight, thank you", "not a great flight, no thank you"),
]
USERS = ["@united", "@JetBlue", "@bob_42", "@airparadis"]
URLS = ["http://bit.ly/abc", "https://twitpic.com/2y1zl", "www.example.com/x?y=1"]
TEMPLATES = [
    "{} best crew ever, thanks!",
    "{} lost my luggage, never again",
    "{} so happy to be home",
    "{} my flight is delayed three hours",
]


def labels(model: SentimentClassifier, texts: list[str]) -> np.ndarray:
    return model.predict_proba(texts) >= model.info.threshold


def test_minimum_functionality_clear_positives(served_model: SentimentClassifier) -> None:
    proba = served_model.predict_proba(CLEAR_POSITIVES)
    wrong = [t for t, p in zip(CLEAR_POSITIVES, proba, strict=True) if p < 0.5]
    assert not wrong, f"{served_model.info.family} calls clear positives negative: {wrong}"


def test_minimum_functionality_clear_negatives(served_model: SentimentClassifier) -> None:
    proba = served_model.predict_proba(CLEAR_NEGATIVES)
    wrong = [t for t, p in zip(CLEAR_NEGATIVES, proba, strict=True) if p >= 0.5]
    assert not wrong, f"{served_model.info.family} calls clear negatives positive: {wrong}"


@pytest.mark.parametrize("template", TEMPLATES)
def test_invariance_to_the_user_mentioned(served_model: SentimentClassifier, template: str) -> None:
    tweets = [template.format(user) for user in USERS]
    assert len(set(labels(served_model, tweets))) == 1, tweets


@pytest.mark.parametrize("template", TEMPLATES)
def test_invariance_to_the_url_shared(served_model: SentimentClassifier, template: str) -> None:
    tweets = [template.format("").strip() + " " + url for url in URLS]
    assert len(set(labels(served_model, tweets))) == 1, tweets


@pytest.mark.parametrize(("positive", "negated"), NEGATIONS)
def test_direction_negation_lowers_p_positive(
    served_model: SentimentClassifier, positive: str, negated: str
) -> None:
    p_positive, p_negated = served_model.predict_proba([positive, negated])
    assert p_negated < p_positive, (positive, p_positive, negated, p_negated)
