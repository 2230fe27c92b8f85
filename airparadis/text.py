"""The one text-cleaning implementation, shared by training and serving so they cannot drift.

Tokens that carry sentiment but vary in form are mapped to stable placeholders: URLs, @users,
emoticons. Negated contractions are expanded so that "not" survives as its own token.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

URL_TOKEN = "xxurl"
USER_TOKEN = "xxuser"
POSITIVE_EMOTICON_TOKEN = "xxsmile"
NEGATIVE_EMOTICON_TOKEN = "xxsad"

CLEANING_VERSION = 1
"""Stored in every model bundle; bump it whenever the output of `clean_tweet` changes."""

_POSITIVE_EMOTICONS = (
    ":)", ":-)", ": )", ":]", ":d", ":-d", "=)", "=]", ";)", ";-)", ";d", ":p", ":-p",
    "xd", "<3", "(:", "^_^", "^^", ":*", ":-*",
)  # fmt: skip
_NEGATIVE_EMOTICONS = (
    ":(", ":-(", ": (", ":[", ":'(", ":'-(", "=(", ":/", ":-/", ":\\", ":s", ":|", "d:",
    "):", "</3", ":@", ">:(",
)  # fmt: skip


def _emoticon_pattern(emoticons: Iterable[str]) -> re.Pattern[str]:
    ordered = sorted(emoticons, key=len, reverse=True)
    body = "|".join(re.escape(e) for e in ordered)
    # An emoticon must stand alone: not glued to a word on its left (so "http:/" is no frown).
    return re.compile(rf"(?<![\w/]){body}(?![\w])", re.IGNORECASE)


_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_USER = re.compile(r"@\w+")
_POSITIVE = _emoticon_pattern(_POSITIVE_EMOTICONS)
_NEGATIVE = _emoticon_pattern(_NEGATIVE_EMOTICONS)
_WONT = re.compile(r"\bwon'?t\b")
_CANT = re.compile(r"\bcan'?t\b")
_AINT = re.compile(r"\bain'?t\b")
_NT = re.compile(r"(\w)n't\b")
_NT_NO_APOSTROPHE = re.compile(
    r"\b(do|does|did|is|are|was|were|has|have|had|could|would|should|must|need)nt\b"
)
_REPEATED = re.compile(r"(\w)\1{2,}")
_NON_WORD = re.compile(r"[^\w' ]+|_")
_APOSTROPHES = re.compile(r"(?<!\w)'|'(?!\w)")
_SPACES = re.compile(r"\s+")
_PLACEHOLDER_SPACE = {
    URL_TOKEN: f" {URL_TOKEN} ",
    USER_TOKEN: f" {USER_TOKEN} ",
    POSITIVE_EMOTICON_TOKEN: f" {POSITIVE_EMOTICON_TOKEN} ",
    NEGATIVE_EMOTICON_TOKEN: f" {NEGATIVE_EMOTICON_TOKEN} ",
}


def repair_mojibake(text: str) -> str:
    """Undo UTF-8 text that was decoded as latin-1, as many Sentiment140 rows carry (``Ã©``)."""
    if not any("\u00c0" <= ch <= "\u00ff" for ch in text):
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return text


def clean_tweet(text: str) -> str:
    """Normalise one tweet into space-separated lowercase tokens."""
    text = repair_mojibake(html.unescape(text))
    text = _URL.sub(_PLACEHOLDER_SPACE[URL_TOKEN], text)
    text = _USER.sub(_PLACEHOLDER_SPACE[USER_TOKEN], text)
    text = _POSITIVE.sub(_PLACEHOLDER_SPACE[POSITIVE_EMOTICON_TOKEN], text)
    text = _NEGATIVE.sub(_PLACEHOLDER_SPACE[NEGATIVE_EMOTICON_TOKEN], text)
    text = text.lower().replace("\u2019", "'").replace("`", "'")
    text = _WONT.sub("will not", text)
    text = _CANT.sub("can not", text)
    text = _AINT.sub("is not", text)
    text = _NT.sub(r"\1 not", text)
    text = _NT_NO_APOSTROPHE.sub(r"\1 not", text)
    text = _REPEATED.sub(r"\1\1", text)
    text = _NON_WORD.sub(" ", text)
    text = _APOSTROPHES.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def clean_tweets(texts: Iterable[str]) -> list[str]:
    return [clean_tweet(t) for t in texts]
