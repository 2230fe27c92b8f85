"""The compiled extension is optional: the pure path gives the same bits, and what does not
serve single tweets (the dashboard) imports without it."""

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from airparadis.bundle import load_bundle
from airparadis.fastpath import PURE_PYTHON_ENV, PureLinearTable, use_compiled
from airparadis.formats.sklearn import SklearnClassifier
from tests.conftest import REPO_ROOT
from tests.core.fastpath_paths import reset_path_choice
from training_jobs.data import load_sources
from training_jobs.split import stratified_sample


@pytest.fixture(autouse=True)
def _path_choice_restored() -> Iterator[None]:
    """Tests here switch paths; the next test decides afresh from its own environment."""
    yield
    reset_path_choice()


# -- the two paths against each other: the same bits ------------------------------------------


def _scores_on(path: str, monkeypatch: pytest.MonkeyPatch, bundle: Path, texts: list[str]):  # type: ignore[no-untyped-def]
    from airparadis.bundle import tweet_scorer

    if path == "pure":
        monkeypatch.setenv(PURE_PYTHON_ENV, "1")
    else:
        monkeypatch.delenv(PURE_PYTHON_ENV, raising=False)
    reset_path_choice()
    model = load_bundle(bundle)
    assert isinstance(model, SklearnClassifier) and model.scorer is not None
    assert isinstance(model.scorer.table, PureLinearTable) is (path == "pure")
    score = tweet_scorer(model)
    assert score is not None
    explained = [model.explain(t) for t in texts[:200]]
    return model.predict_proba(texts).tolist(), [score(t) for t in texts], explained


def test_compiled_and_pure_paths_give_the_same_bits(
    tiny_bundle: Path, sentiment140_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame, _ = load_sources([sentiment140_dir])
    texts = stratified_sample(frame, 5000, seed=3)["text"].tolist()
    texts += ["", "caf\u00e9 &amp; :(", "a " * 400, " ".join(["love it", "so so"] * 90)]
    compiled = _scores_on("compiled", monkeypatch, tiny_bundle, texts)
    pure = _scores_on("pure", monkeypatch, tiny_bundle, texts)
    assert compiled[0] == pure[0]  # batch scoring: exact float equality
    assert compiled[1] == pure[1]  # single-tweet scoring
    assert compiled[2] == pure[2]  # explanations (they share the lookup)


@pytest.mark.parametrize("sublinear", [False, True])
def test_compiled_and_pure_tables_score_repeats_identically(sublinear: bool) -> None:
    from airparadis._fastpath import LinearTable

    rng = np.random.default_rng(5)
    words = [f"w{i}" for i in range(40)]
    terms = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
    weighted, idf = rng.normal(size=len(terms)), rng.uniform(1, 9, size=len(terms))
    args = (terms, weighted, idf, -0.3, 1, 3, sublinear)
    compiled, pure = LinearTable(*args), PureLinearTable(*args)
    for _ in range(300):
        text = " ".join(rng.choice(words[:12], size=int(rng.integers(0, 80))).tolist())
        assert compiled.score(text) == pure.score(text)
    spaced = "w1\tw2  w1\x1cw2\u00a0w3 \n"  # only ASCII whitespace separates tokens
    assert compiled.score(spaced) == pure.score(spaced)


# What an install without the extension sees: importing it fails.
_NO_EXTENSION = "import sys; sys.modules['airparadis._fastpath'] = None; "


@pytest.mark.parametrize(
    ("prelude", "env"),
    [(_NO_EXTENSION, {}), ("", {PURE_PYTHON_ENV: "1"})],
    ids=["extension-absent", "pure-switch"],
)
def test_dashboard_and_cleaning_work_without_the_extension(
    prelude: str, env: dict[str, str]
) -> None:
    code = prelude + (
        "import dashboard.app; "
        "from airparadis.text import clean_tweet; "
        "from airparadis.fastpath import use_compiled; "
        "assert clean_tweet('@x sooo GOOD :) http://y') == 'xxuser soo good xxsmile xxurl'; "
        "assert not use_compiled(); "
        "loaded = getattr(sys.modules.get('airparadis._fastpath'), '__file__', None); "
        "print('loaded', loaded)"
    )
    environ = {k: v for k, v in os.environ.items() if k != PURE_PYTHON_ENV}
    out = subprocess.run(
        [sys.executable, "-c", "import sys; " + code],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**environ, **env},
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "loaded None"  # no compiled code was loaded


def test_a_built_extension_that_fails_to_import_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken build must not fall back silently to the slower path."""
    import airparadis

    broken = tmp_path / "airparadis"
    broken.mkdir()
    (broken / "_fastpath.py").write_text("raise ImportError('undefined symbol: x')\n")
    monkeypatch.delenv(PURE_PYTHON_ENV, raising=False)
    monkeypatch.setattr(airparadis, "__path__", [str(broken), *airparadis.__path__])
    monkeypatch.delitem(sys.modules, "airparadis._fastpath", raising=False)
    reset_path_choice()
    with pytest.raises(ImportError, match="undefined symbol"):
        use_compiled()
