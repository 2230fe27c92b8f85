"""Behavioural tests (CheckList style) of every family's served artifact: the checks of
`airparadis.behaviour`, which the model card of each registered version also reports."""

from __future__ import annotations

import pytest

from airparadis.behaviour import (
    CLEAR_NEGATIVES,
    CLEAR_POSITIVES,
    NEGATIONS,
    TEMPLATES,
    label_moves,
    negation_raises,
    url_variants,
    user_variants,
    wrong_clear_cases,
)
from airparadis.bundle import SentimentClassifier


def test_minimum_functionality_clear_positives(served_model: SentimentClassifier) -> None:
    wrong = wrong_clear_cases(served_model, CLEAR_POSITIVES, positive=True)
    assert not wrong, f"{served_model.info.family} calls clear positives negative: {wrong}"


def test_minimum_functionality_clear_negatives(served_model: SentimentClassifier) -> None:
    wrong = wrong_clear_cases(served_model, CLEAR_NEGATIVES, positive=False)
    assert not wrong, f"{served_model.info.family} calls clear negatives positive: {wrong}"


@pytest.mark.parametrize("template", TEMPLATES)
def test_invariance_to_the_user_mentioned(served_model: SentimentClassifier, template: str) -> None:
    tweets = user_variants(template)
    assert not label_moves(served_model, tweets), tweets


@pytest.mark.parametrize("template", TEMPLATES)
def test_invariance_to_the_url_shared(served_model: SentimentClassifier, template: str) -> None:
    tweets = url_variants(template)
    assert not label_moves(served_model, tweets), tweets


@pytest.mark.parametrize(("positive", "negated"), NEGATIONS)
def test_direction_negation_lowers_p_positive(
    served_model: SentimentClassifier, positive: str, negated: str
) -> None:
    assert not negation_raises(served_model, positive, negated), (positive, negated)
