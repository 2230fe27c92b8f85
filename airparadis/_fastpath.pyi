"""Types of the compiled module built from _fastpath.c."""

from collections.abc import Sequence

import numpy as np

class Cleaner:
    def __init__(
        self,
        url_token: str,
        user_token: str,
        emoticons: Sequence[tuple[str, str]],
        heads: Sequence[tuple[str, str]],
        auxiliaries: Sequence[tuple[str, str]],
    ) -> None: ...
    def clean(self, text: str, /) -> str | None: ...

class LinearTable:
    def __init__(
        self,
        terms: Sequence[str],
        weighted: np.ndarray,
        idf: np.ndarray,
        intercept: float,
        min_n: int,
        max_n: int,
        sublinear_tf: bool,
    ) -> None: ...
    def score(self, cleaned: str, /) -> float: ...
    def score_texts(self, cleaner: Cleaner, texts: Sequence[str], /) -> bytes: ...
    def lookup(self, term: str, /) -> int: ...
    def size(self) -> int: ...
