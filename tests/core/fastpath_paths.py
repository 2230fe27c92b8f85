"""Run a test on both single-tweet paths: the compiled extension and its pure-Python twin.

Use it with ``pytestmark = pytest.mark.usefixtures("fast_path")`` (after importing it), so
every test of the module runs once per path and must give the same results on each.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airparadis.fastpath import PURE_PYTHON_ENV, use_compiled
from airparadis.text import text_cleaner

PATHS = ("compiled", "pure")


def reset_path_choice() -> None:
    use_compiled.cache_clear()
    text_cleaner.cache_clear()


@pytest.fixture(params=PATHS)
def fast_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The path under test; the compiled one must be built here (CI builds it)."""
    if request.param == "pure":
        monkeypatch.setenv(PURE_PYTHON_ENV, "1")
    else:
        monkeypatch.delenv(PURE_PYTHON_ENV, raising=False)
    reset_path_choice()
    assert use_compiled() is (request.param == "compiled"), "the extension is not built"
    yield request.param
    reset_path_choice()
