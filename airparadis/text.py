"""The one text-cleaning implementation, shared by training and serving so they cannot drift.

Tokens that carry sentiment but vary in form are mapped to stable placeholders: URLs, @users,
emoticons. Negated contractions are expanded so that "not" survives as its own token.

The regular expressions below define the cleaning. Where the optional compiled extension is
built (see `airparadis.fastpath`), ASCII text without '&' (most tweets) is cleaned by its
`Cleaner`, built from the same tables, because serving pays this cost on every request;
`clean_tweet` picks the path, so training and serving still share one function, and the tests
hold both paths to the same output.

Token normalisation (`NORMALISATIONS`: none, Snowball stemming, or lemmatization) is a model
choice stored in every bundle; it runs after cleaning, per token, in Python, whichever path
cleaned the text, and leaves the placeholder tokens whole.
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Literal, get_args

from airparadis.fastpath import TextCleaner, use_compiled

URL_TOKEN = "xxurl"
USER_TOKEN = "xxuser"
POSITIVE_EMOTICON_TOKEN = "xxsmile"
NEGATIVE_EMOTICON_TOKEN = "xxsad"

CLEANING_VERSION = 2
"""Stored in every model bundle; bump it whenever the output of `clean_tweet` changes."""

Normalisation = Literal["none", "stem", "lemma"]
NORMALISATIONS: tuple[str, ...] = get_args(Normalisation)
"""After cleaning, each token as it is, its Snowball English stem (``pystemmer``), or its
English lemma (``simplemma``, whose dictionary ships in its wheel: nothing is downloaded)."""
PLACEHOLDERS = frozenset({URL_TOKEN, USER_TOKEN, POSITIVE_EMOTICON_TOKEN, NEGATIVE_EMOTICON_TOKEN})

_POSITIVE_EMOTICONS = (
    ":)", ":-)", ": )", ":]", ":d", ":-d", "=)", "=]", ";)", ";-)", ";d", ":p", ":-p",
    "xd", "<3", "(:", "^_^", "^^", ":*", ":-*",
)  # fmt: skip
_NEGATIVE_EMOTICONS = (
    ":(", ":-(", ": (", ":[", ":'(", ":'-(", "=(", ":/", ":-/", ":\\", ":s", ":|", "d:",
    "):", "</3", ":@", ">:(",
)  # fmt: skip


def _longest_first(emoticons: Iterable[str]) -> list[str]:
    """The order the pattern tries them in (stable among equal lengths)."""
    return sorted(emoticons, key=len, reverse=True)


def _emoticon_pattern(emoticons: Iterable[str]) -> re.Pattern[str]:
    body = "|".join(re.escape(e) for e in _longest_first(emoticons))
    # An emoticon must stand alone: not glued to a word on its left (so "http:/" is no frown).
    return re.compile(rf"(?<![\w/])(?:{body})(?![\w])", re.IGNORECASE)


_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_USER = re.compile(r"@\w+")
_EMOTICON_TOKENS = {e: POSITIVE_EMOTICON_TOKEN for e in _POSITIVE_EMOTICONS} | {
    e: NEGATIVE_EMOTICON_TOKEN for e in _NEGATIVE_EMOTICONS
}
_EMOTICON = _emoticon_pattern(_EMOTICON_TOKENS)
_MAYBE_EMOTICON = re.compile(r"[:;=<()^]|xd", re.IGNORECASE)
_CONTRACTION_HEADS = {"won": "will", "can": "can", "ain": "is"}
_NEGATED_AUXILIARIES = (
    "do", "does", "did", "is", "are", "was", "were", "has", "have", "had", "could", "would",
    "should", "must", "need",
)  # fmt: skip
_CONTRACTION = re.compile(
    rf"\b({'|'.join(_CONTRACTION_HEADS)})'?t\b"
    r"|(?<=\w)n't\b"
    rf"|\b({'|'.join(_NEGATED_AUXILIARIES)})nt\b"
)
_REPEATED = re.compile(r"(\w)\1{2,}")
# Runs of letters and digits, keeping apostrophes inside words ("it's"); all else separates.
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def _expand_contraction(match: re.Match[str]) -> str:
    head, aux = match.group(1), match.group(2)
    if head is not None:
        return f"{_CONTRACTION_HEADS[head]} not"
    if aux is not None:
        return f"{aux} not"
    return " not"


def _emoticon_token(match: re.Match[str]) -> str:
    return f" {_EMOTICON_TOKENS[match.group(0).lower()]} "


def repair_mojibake(text: str) -> str:
    """Undo UTF-8 text that was decoded as latin-1, as many Sentiment140 rows carry (``Ã©``)."""
    if text.isascii():
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return text


class PatternCleaner:
    """The pure-Python twin of the compiled `Cleaner`: every text through the patterns."""

    def clean(self, text: str, /) -> str:
        if not isinstance(text, str):
            raise TypeError(f"clean() takes a str, not {type(text).__name__}")
        return clean_with_patterns(text)


def compiled_cleaner() -> TextCleaner:
    """The compiled `Cleaner` over this module's tables (needs the extension built)."""
    from airparadis._fastpath import Cleaner

    return Cleaner(
        url_token=URL_TOKEN,
        user_token=USER_TOKEN,
        emoticons=[(e, _EMOTICON_TOKENS[e]) for e in _longest_first(_EMOTICON_TOKENS)],
        heads=list(_CONTRACTION_HEADS.items()),
        auxiliaries=[(a, a) for a in _NEGATED_AUXILIARIES],
    )


@functools.cache
def text_cleaner() -> TextCleaner:
    """The cleaner of `clean_tweet` and of batch scoring: compiled where the extension is."""
    return compiled_cleaner() if use_compiled() else PatternCleaner()


def clean_tweet(text: str, normalisation: str = "none") -> str:
    """Normalise one tweet into space-separated lowercase tokens, each then normalised."""
    cleaned = text_cleaner().clean(text)
    if cleaned is None:
        cleaned = clean_with_patterns(text)
    if normalisation == "none":
        return cleaned
    return normalise_tokens(cleaned, normalisation)


def check_normalisation(name: str) -> str:
    """`name` if it is a known normalisation, else a ValueError that lists them."""
    if name not in NORMALISATIONS:
        raise ValueError(
            f"unknown token normalisation {name!r}; choose one of {', '.join(NORMALISATIONS)}"
        )
    return name


def normalise_tokens(cleaned: str, normalisation: str) -> str:
    """Each token of a cleaned tweet through the normaliser; placeholders stay whole."""
    token = token_normaliser(normalisation)
    return " ".join(t if t in PLACEHOLDERS else token(t) for t in cleaned.split(" ") if t)


@functools.cache
def token_normaliser(normalisation: str) -> Callable[[str], str]:
    """The per-token function of `normalisation`, cached per distinct token; the libraries
    load lazily (the lemmatizer's dictionary takes a moment), only when a bundle asks."""
    check_normalisation(normalisation)
    if normalisation == "none":
        return str
    if normalisation == "stem":
        import Stemmer

        stem: Callable[[str], str] = Stemmer.Stemmer("english").stemWord
        return functools.lru_cache(maxsize=200_000)(stem)
    import simplemma

    @functools.lru_cache(maxsize=200_000)
    def lemma(token: str) -> str:
        found = str(simplemma.lemmatize(token, lang="en")).lower()
        # A lemma must stay one lowercase token ("i" -> "I" is lowercased back).
        return found if found and not any(c.isspace() for c in found) else token

    return lemma


def clean_with_patterns(text: str) -> str:
    """The regular-expression definition of `clean_tweet`, for any text.

    Each step runs only when its trigger character can be present.
    """
    if "&" in text:
        text = html.unescape(text)
    text = repair_mojibake(text)
    probe = text.lower()
    if "http" in probe or "www." in probe:
        text = _URL.sub(f" {URL_TOKEN} ", text)
    if "@" in text:
        text = _USER.sub(f" {USER_TOKEN} ", text)
    if _MAYBE_EMOTICON.search(text):
        text = _EMOTICON.sub(_emoticon_token, text)
    text = text.lower()
    if "\u2019" in text or "`" in text:
        text = text.replace("\u2019", "'").replace("`", "'")
    if "nt" in text or "n't" in text:  # every contraction the pattern expands has one
        text = _CONTRACTION.sub(_expand_contraction, text)
    text = _REPEATED.sub(r"\1\1", text)
    return " ".join(_TOKEN.findall(text))


def clean_tweets(texts: Iterable[str], normalisation: str = "none") -> list[str]:
    return [clean_tweet(t, normalisation) for t in texts]


def is_blank(text: str) -> bool:
    """True when `text` holds nothing to classify: empty, or only spaces, line breaks and
    invisible format characters (zero-width space, BOM). Serving refuses such a tweet and
    batch scoring leaves it unlabelled, rather than both answering the model's prior."""
    return all(c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in text)
