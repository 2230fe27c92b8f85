"""Behavioural checks (CheckList style) of a served model, in one list used by both the tests
(`tests/model/test_behaviour.py`) and the model card written at registration.

Invariance: what the cleaning maps to one placeholder (an @user, a URL) cannot move the label.
Direction: negating a clear positive lowers P(positive).
Minimum functionality: clear positives and clear negatives get the right label.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from airparadis.bundle_format import SentimentClassifier

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
MINIMUM_PROBABILITY = 0.5
"""Minimum functionality reads P(positive) at one half, not at the served threshold: a
calibration moves the threshold to the airline's prior, but a clear case stays clear."""


@dataclass(frozen=True)
class CheckResult:
    """One behavioural check: how many of its cases pass, and the failing ones."""

    name: str
    kind: str
    cases: int
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures


def user_variants(template: str) -> list[str]:
    return [template.format(user) for user in USERS]


def url_variants(template: str) -> list[str]:
    return [template.format("").strip() + " " + url for url in URLS]


def wrong_clear_cases(model: SentimentClassifier, texts: list[str], positive: bool) -> list[str]:
    """The clear `texts` (all positive, or all negative) the model calls the other way."""
    proba = model.predict_proba(texts)
    return [t for t, p in zip(texts, proba, strict=True) if (p >= MINIMUM_PROBABILITY) != positive]


def label_moves(model: SentimentClassifier, tweets: list[str]) -> bool:
    """True when variants that the cleaning should make equivalent get different labels."""
    labels = model.predict_proba(tweets) >= model.info.threshold
    return len(set(labels.tolist())) > 1


def negation_raises(model: SentimentClassifier, positive: str, negated: str) -> bool:
    """True when negating `positive` does not lower P(positive), a direction failure."""
    p_positive, p_negated = model.predict_proba([positive, negated])
    return bool(p_negated >= p_positive)


def _invariance(model: SentimentClassifier, variants: Callable[[str], list[str]]) -> list[str]:
    return [t for t in TEMPLATES if label_moves(model, variants(t))]


def run_checks(model: SentimentClassifier) -> list[CheckResult]:
    """Every check of this module on `model`, as the model card reports them."""
    return [
        CheckResult("clear positives are positive", "minimum functionality",
                    len(CLEAR_POSITIVES), wrong_clear_cases(model, CLEAR_POSITIVES, True)),
        CheckResult("clear negatives are negative", "minimum functionality",
                    len(CLEAR_NEGATIVES), wrong_clear_cases(model, CLEAR_NEGATIVES, False)),
        CheckResult("the @user mentioned does not move the label", "invariance",
                    len(TEMPLATES), _invariance(model, user_variants)),
        CheckResult("the URL shared does not move the label", "invariance",
                    len(TEMPLATES), _invariance(model, url_variants)),
        CheckResult("negation lowers P(positive)", "direction", len(NEGATIONS),
                    [f"{p} / {n}" for p, n in NEGATIONS if negation_raises(model, p, n)]),
    ]  # fmt: skip
