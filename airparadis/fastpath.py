"""The single-tweet fast path: the compiled extension where it is built, pure Python otherwise.

`airparadis._fastpath` (C) cleans and scores a tweet in a few microseconds; it is optional, so
an install without a C compiler (the dashboard, a bare training machine) still works. The pure
twins here and in `airparadis.text` give the same output, computed in the same order; the tests
hold both paths to it. Set ``AIRPARADIS_PURE_PYTHON=1`` to take the pure path where the
extension is built (tests, debugging).
"""

from __future__ import annotations

import array
import functools
import importlib.util
import logging
import math
import os
import re
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

logger = logging.getLogger(__name__)

PURE_PYTHON_ENV = "AIRPARADIS_PURE_PYTHON"
EXTENSION = "airparadis._fastpath"
_TRUE = {"1", "true", "yes", "on"}


@functools.cache
def use_compiled() -> bool:
    """Whether the compiled extension serves this process (decided once; tests clear it).

    An extension that is built but fails to import is an error, not a silent fallback.
    """
    if os.environ.get(PURE_PYTHON_ENV, "").strip().lower() in _TRUE:
        return False
    if importlib.util.find_spec(EXTENSION) is None:
        logger.info("%s is not built: text is cleaned and scored in pure Python", EXTENSION)
        return False
    importlib.import_module(EXTENSION)
    return True


class TextCleaner(Protocol):
    def clean(self, text: str, /) -> str | None:
        """The cleaned tweet, or None for text this cleaner leaves to the patterns."""
        ...


class LinearTable(Protocol):
    """TF-IDF n-gram vocabulary and logistic-regression weights (see `PureLinearTable`)."""

    def score(self, cleaned: str, /) -> float: ...
    def score_texts(self, cleaner: Any, texts: Sequence[str], /) -> bytes: ...
    def lookup(self, term: str, /) -> int: ...
    def size(self) -> int: ...


# Tokens of a cleaned tweet: runs of anything but the ASCII whitespace that str.isspace knows.
_TOKEN = re.compile(r"[^\t-\r\x1c-\x1f ]+")


class PureLinearTable:
    """The pure-Python twin of the compiled `LinearTable`, with its arithmetic in its order.

    N-grams are counted by n, then by position; distinct hits are summed in first-occurrence
    order, so results equal the compiled table's bit for bit.
    """

    def __init__(
        self,
        terms: Sequence[str],
        weighted: np.ndarray,
        idf: np.ndarray,
        intercept: float,
        min_n: int,
        max_n: int,
        sublinear_tf: bool,
    ) -> None:
        if min_n < 1 or max_n < min_n:
            raise ValueError("need 1 <= min_n <= max_n")
        index: dict[str, int] = {}
        for position, term in enumerate(terms):
            if not isinstance(term, str):
                raise TypeError("terms must be str")
            if index.setdefault(term, position) != position:
                raise ValueError(f"duplicate term {term!r}")
        self._index = index
        self._weighted = _doubles(weighted, len(index), "weighted")
        self._idf = _doubles(idf, len(index), "idf")
        self._intercept = float(intercept)
        self._min_n, self._max_n, self._sublinear = min_n, max_n, bool(sublinear_tf)

    def score(self, cleaned: str, /) -> float:
        """P(positive) of a cleaned tweet (tokens separated by whitespace)."""
        if not isinstance(cleaned, str):
            raise TypeError("score() takes a str")
        tokens = _TOKEN.findall(cleaned)
        counts: dict[int, int] = {}
        get = self._index.get
        for n in range(self._min_n, self._max_n + 1):
            for start in range(len(tokens) - n + 1):
                found = get(" ".join(tokens[start : start + n]))
                if found is not None:
                    counts[found] = counts.get(found, 0) + 1
        dot = norm = 0.0
        for found, count in counts.items():
            weighted, idf = self._weighted[found], self._idf[found]
            if count == 1:
                dot += weighted
                norm += idf * idf
            else:
                tf = 1.0 + math.log(count) if self._sublinear else float(count)
                x = idf * tf
                dot += weighted * tf
                norm += x * x
        z = self._intercept + (dot / math.sqrt(norm) if norm > 0.0 else 0.0)
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))

    def score_texts(self, cleaner: TextCleaner, texts: Sequence[str], /) -> bytes:
        """float64 bytes of P(positive) per raw tweet; NaN where `cleaner` returns None."""
        proba = array.array("d")
        for position, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {position} is not a str")
            cleaned = cleaner.clean(text)
            proba.append(math.nan if cleaned is None else self.score(cleaned))
        return proba.tobytes()

    def lookup(self, term: str, /) -> int:
        """The term's index, or -1."""
        if not isinstance(term, str):
            raise TypeError("lookup() takes a str")
        return self._index.get(term, -1)

    def size(self) -> int:
        return len(self._index)


def _doubles(values: np.ndarray, n: int, name: str) -> list[float]:
    """The compiled table's check: a float64 array of exactly n values."""
    if not isinstance(values, np.ndarray) or values.dtype != np.float64 or values.size != n:
        raise ValueError(f"{name} must be a contiguous float64 array of {n} values")
    return [float(v) for v in values.ravel().tolist()]


def linear_table(
    terms: Sequence[str],
    weighted: np.ndarray,
    idf: np.ndarray,
    intercept: float,
    min_n: int,
    max_n: int,
    sublinear_tf: bool,
) -> LinearTable:
    """The compiled table where the extension serves, else its pure twin."""
    if use_compiled():
        from airparadis._fastpath import LinearTable as CompiledTable

        return CompiledTable(terms, weighted, idf, intercept, min_n, max_n, sublinear_tf)
    return PureLinearTable(terms, weighted, idf, intercept, min_n, max_n, sublinear_tf)
