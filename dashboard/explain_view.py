"""Word highlighting of one card: the words the user typed that moved the prediction most.

The server explains the cleaned tokens the model reads (lowercased, ``xxuser`` for an @handle,
``xxurl`` for a link, n-grams for some models). The analyst typed words, so each token is mapped
back to the word it came from by cleaning the tweet one word at a time with the same
`airparadis.text.clean_tweet` serving uses. Only the contributions that matter are shown: the
`top_k` largest by size, each at least `min_share` of the largest, without stop words and without
the airline's own name (it is in most tweets and says nothing about their sentiment).
"""

from __future__ import annotations

import html
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from airparadis.text import clean_tweet
from dashboard.client import Explanation

# Background of a word at full strength; weaker words get a proportionally paler one.
TOKEN_RGB = {"ap-tok-pos": "45, 164, 78", "ap-tok-neg": "207, 34, 46"}
MAX_TOKEN_ALPHA = 0.6
UNIT_NAME = {"logit": "log-odds", "probability": "P(positive)"}
LEGEND = (
    "The model reads two sentiments only, negative or positive. Highlighted words pushed this "
    "tweet: green toward positive, red toward negative; the deeper the colour, the stronger the "
    "push. Only the words that weighed most are shown; hover or tap one for its exact weight."
)
# Function words: they carry no sentiment of their own, whatever weight the model gives them.
# Negations (no, not, never…) are not among them: they matter.
_STOP_WORDS = """a an the and or but if so as at by for from in into of on onto to with about over
    i me my we us our you your he him his she her it its they them their this that these those
    is are was were be been being am do does did have has had will would can could should
    just then than there here what which who whom when where how also too very s t"""
STOP_WORDS = frozenset(_STOP_WORDS.split())


@dataclass(frozen=True)
class Word:
    """One highlighted piece of the tweet: the user's own words and their push."""

    text: str
    token: str
    contribution: float


def word_map(text: str) -> dict[str, str]:
    """Each cleaned token of `text` → the word the user typed (first occurrence wins).

    A placeholder (``xxuser``, ``xxurl``, ``xxsmile``) maps to the @handle, link or emoticon;
    other words lose the punctuation around them ("delay," → "delay").
    """
    mapping: dict[str, str] = {}
    for chunk in text.split():
        for token in clean_tweet(chunk).split():
            mapping.setdefault(token, _bare(chunk, token))
    return mapping


def _bare(chunk: str, token: str) -> str:
    if token.startswith("xx"):
        return chunk
    stripped = chunk.strip(".,;:!?\"'()[]{}…“”‘’«»*-_~")
    return stripped or chunk


def original_words(token: str, mapping: dict[str, str]) -> str:
    """The user's words of one token, an n-gram word by word; unknown parts stay as they are."""
    return " ".join(mapping.get(part, part) for part in token.split())


def selected_words(
    explanation: Explanation,
    top_k: int,
    min_share: float,
    quiet_words: Collection[str] = (),
) -> list[Word]:
    """The contributions worth showing, strongest first, in the user's words."""
    mapping = word_map(explanation.text)
    quiet = {w.lower() for w in quiet_words}
    kept = [t for t in explanation.tokens if not _is_quiet(t.token, mapping, quiet)]
    peak = max((abs(t.contribution) for t in kept), default=0.0)
    if peak <= 0:
        return []
    strongest = sorted(kept, key=lambda t: abs(t.contribution), reverse=True)
    return [
        Word(original_words(t.token, mapping), t.token, t.contribution)
        for t in strongest[:top_k]
        if abs(t.contribution) >= min_share * peak
    ]


def _is_quiet(token: str, mapping: dict[str, str], airline: set[str]) -> bool:
    """A stop word, the airline's name or handle (@AirParadis), or an n-gram of those."""
    return all(
        part in STOP_WORDS
        or part in airline
        or mapping.get(part, part).lower().lstrip("@#") in airline
        for part in token.split()
    )


def explanation_html(
    explanation: Explanation,
    top_k: int = 6,
    min_share: float = 0.15,
    quiet_words: Collection[str] = (),
) -> str:
    """The highlighted words of one tweet as chips; the legend is the page's, not the card's."""
    words = selected_words(explanation, top_k, min_share, quiet_words)
    if not words:
        return '<div class="ap-explain"><span class="ap-muted">No word stood out.</span></div>'
    unit = UNIT_NAME.get(explanation.unit, explanation.unit)
    peak = max(abs(w.contribution) for w in words)
    return f'<div class="ap-explain">{"".join(_chips(words, peak, unit))}</div>'


def _chips(words: Iterable[Word], peak: float, unit: str) -> Iterable[str]:
    for word in words:
        value = word.contribution
        css = "ap-tok-pos" if value > 0 else "ap-tok-neg"
        alpha = MAX_TOKEN_ALPHA * abs(value) / peak
        toward = "positive" if value > 0 else "negative"
        title = html.escape(f"{word.text}: toward {toward}, {value:+.3f} {unit}")
        yield (
            f'<span class="ap-tok {css}" style="background: rgba({TOKEN_RGB[css]}, {alpha:.3f})"'
            f' title="{title}">{html.escape(word.text)}</span> '
        )


def legend_html() -> str:
    return f'<div class="ap-explain-legend">{html.escape(LEGEND)}</div>'


@dataclass(frozen=True)
class Highlighting:
    """Which contributions the cards show (from the dashboard settings)."""

    top_k: int = 6
    min_share: float = 0.15
    quiet_words: tuple[str, ...] = ()

    def html(self, explanation: Explanation) -> str:
        return explanation_html(explanation, self.top_k, self.min_share, self.quiet_words)
