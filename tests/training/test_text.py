"""The shared cleaning: what it keeps, what it normalises."""

import pytest

from airparadis.text import (
    NEGATIVE_EMOTICON_TOKEN,
    POSITIVE_EMOTICON_TOKEN,
    URL_TOKEN,
    USER_TOKEN,
    clean_tweet,
)


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
def test_clean_tweet(raw: str, expected: str) -> None:
    assert clean_tweet(raw) == expected


def test_url_colon_slash_is_not_a_frown() -> None:
    assert NEGATIVE_EMOTICON_TOKEN not in clean_tweet("go to http://example.com:/path now")


def test_cleaning_is_idempotent() -> None:
    once = clean_tweet("@a I can't believe it!!! sooo bad :( http://x.y")
    assert clean_tweet(once) == once
