"""The shared cleaning: what it keeps, what it normalises, and its compiled path.

The behaviour tests run on both paths (compiled extension and pure Python); the compiled
cleaner is then checked against the regular expressions that define the cleaning.
"""

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airparadis._fastpath import Cleaner
from airparadis.text import (
    NEGATIVE_EMOTICON_TOKEN,
    POSITIVE_EMOTICON_TOKEN,
    URL_TOKEN,
    USER_TOKEN,
    PatternCleaner,
    clean_tweet,
    clean_with_patterns,
    compiled_cleaner,
)
from tests.core.fastpath_paths import fast_path  # noqa: F401

COMPILED_CLEANER = compiled_cleaner()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("@united thanks!", f"{USER_TOKEN} thanks"),
        ("see http://t.co/abc and www.x.com/y", f"see {URL_TOKEN} and {URL_TOKEN}"),
        ("&quot;great&quot; &amp; fun", "great fun"),
        ("soooooo goooood", "soo good"),
        ("LOUD Words", "loud words"),
        ("I can't, won't, don't", "i can not will not do not"),
        ("it wasnt me", "it was not me"),
        ("love it :) :-D", f"love it {POSITIVE_EMOTICON_TOKEN} {POSITIVE_EMOTICON_TOKEN}"),
        ("lost my bag :( :'(", f"lost my bag {NEGATIVE_EMOTICON_TOKEN} {NEGATIVE_EMOTICON_TOKEN}"),
        ("Caf\u00c3\u00a9 au lait", "café au lait"),
        ("", ""),
    ],
)
@pytest.mark.usefixtures("fast_path")
def test_clean_tweet(raw: str, expected: str) -> None:
    assert clean_tweet(raw) == expected


@pytest.mark.usefixtures("fast_path")
def test_url_colon_slash_is_not_a_frown() -> None:
    assert NEGATIVE_EMOTICON_TOKEN not in clean_tweet("go to http://example.com:/path now")


@pytest.mark.usefixtures("fast_path")
def test_cleaning_is_idempotent() -> None:
    once = clean_tweet("@a I can't believe it!!! sooo bad :( http://x.y")
    assert clean_tweet(once) == once


# -- the compiled path: the same output as the regular expressions, wherever it applies --------

_PIECES = (
    "http://", "HTTPS://", "www.", "https:// ", "won't", "Can't", "ain", "n't", "nt", "doesnt",
    "is", "need", ":-)", ":'(", ":D", "xD", "xd", "d:", "</3", ">:(", "^_^", ";)", ":/", "://",
    "aaa", "___", "it's", "'", "`", "@user", "@", "_", "/", "\t", "\x0b", "\x1c", "  ", "0", "9",
)  # fmt: skip
_CHARS = "aAbdDnNpPsStTwWxX'`:;-)(]=[<>3^_*/\\|@#. ?!,\n"


@settings(max_examples=3000, deadline=None)
@given(
    st.lists(st.one_of(st.sampled_from(_PIECES), st.sampled_from(_CHARS)), max_size=40).map("".join)
)
def test_compiled_cleaner_matches_the_patterns_on_generated_text(text: str) -> None:
    compiled = COMPILED_CLEANER.clean(text)
    assert compiled is not None  # ASCII without '&': always the compiled path
    assert compiled == clean_with_patterns(text)


def test_compiled_cleaner_matches_the_patterns_on_every_shared_tweet(
    sentiment140_dir: Path,
) -> None:
    labelled = pd.read_csv(
        sentiment140_dir / "training.94k.processed.noemoticon.csv",
        encoding="latin-1",
        header=None,
        usecols=[5],
    )[5]
    unlabelled = pd.read_parquet(sentiment140_dir / "training.text-only.76k.parquet")["text"]
    texts = [str(t) for t in (*labelled, *unlabelled)]
    compiled = [(t, COMPILED_CLEANER.clean(t)) for t in texts]
    handled = [(t, c) for t, c in compiled if c is not None]
    assert len(handled) > 0.9 * len(texts)  # most tweets take the fast path
    mismatches = [t for t, c in handled if c != clean_with_patterns(t)]
    assert mismatches == []


@pytest.mark.parametrize("text", ["caf\u00e9 :)", "fish &amp; chips", "it\u2019s fine", "&"])
@pytest.mark.usefixtures("fast_path")
def test_text_outside_the_compiled_path_uses_the_patterns(text: str) -> None:
    assert COMPILED_CLEANER.clean(text) is None
    assert clean_tweet(text) == clean_with_patterns(text)


def test_compiled_cleaner_rejects_bad_tables() -> None:
    with pytest.raises(ValueError, match="too long"):
        Cleaner("x" * 40, "u", [], [], [])
    with pytest.raises(ValueError, match="ASCII"):
        Cleaner("xxurl", "xxuser", [("\u263a", "smile")], [], [])
    with pytest.raises(TypeError):
        COMPILED_CLEANER.clean(b"bytes")  # type: ignore[arg-type]


def test_pattern_cleaner_is_the_pure_twin() -> None:
    cleaner = PatternCleaner()
    for text in ("@a I can't :( http://x", "caf\u00e9 &amp; tea", ""):
        assert cleaner.clean(text) == clean_with_patterns(text)
    with pytest.raises(TypeError):
        cleaner.clean(b"bytes")  # type: ignore[arg-type]
