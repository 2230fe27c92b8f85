"""The compiled TF-IDF + LR scorer gives the trained pipeline's results, on both paths.

Every test here runs twice: on the compiled extension and on its pure-Python twin
(`tests.core.fastpath_paths`); tests/core/test_fastpath.py holds the two to the same bits.
"""

from pathlib import Path

import numpy as np
import pytest

from airparadis.bundle import load_bundle
from airparadis.fastpath import PureLinearTable, linear_table, use_compiled
from airparadis.formats.sklearn import SklearnClassifier
from tests.core.fastpath_paths import fast_path  # noqa: F401
from training_jobs.data import load_sources
from training_jobs.families.tfidf_lr import TfidfLogisticRegression
from training_jobs.split import split_data, stratified_sample

pytestmark = pytest.mark.usefixtures("fast_path")


def test_compiled_scorer_equals_pipeline(tiny_bundle: Path, sentiment140_dir: Path) -> None:
    model = load_bundle(tiny_bundle)
    assert isinstance(model, SklearnClassifier)
    assert model.scorer is not None
    frame, _ = load_sources([sentiment140_dir])
    texts = stratified_sample(frame, 3000, seed=11)["text"].tolist()
    texts += ["", "!!!", "xd xd xd", "not not not good good good", "@a @b http://x http://y"]
    pipeline = SklearnClassifier(model.pipeline, model.info, compile_scorer=False)
    fast, slow = model.predict_proba(texts), pipeline.predict_proba(texts)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-6)
    assert np.array_equal(fast >= 0.5, slow >= 0.5)


def test_compiled_scorer_handles_repeated_ngrams_and_sublinear_tf(sentiment140_dir: Path) -> None:
    frame, _ = load_sources([sentiment140_dir])
    split = split_data(stratified_sample(frame, 4000, seed=2), 0.1, 0.1, seed=2)
    for params in ({"sublinear_tf": False, "ngram_max": 2}, {"sublinear_tf": True}):
        model = TfidfLogisticRegression().fit(split.train, split.validation, params, seed=2)
        assert isinstance(model, SklearnClassifier) and model.scorer is not None
        texts = [
            "so so so good good",
            "bad bad bad bad day day",
            *split.test["text"].tolist()[:300],
        ]
        slow = SklearnClassifier(model.pipeline, model.info, compile_scorer=False)
        np.testing.assert_allclose(model.predict_proba(texts), slow.predict_proba(texts), atol=1e-6)


def test_serving_loads_the_scorer_without_scikit_learn(tiny_bundle: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path; from airparadis.bundle import load_bundle; "
        f"m = load_bundle(Path({str(tiny_bundle)!r})); p = m.predict_proba(['great flight']); "
        "assert 0 <= p[0] <= 1; print('sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_single_tweet_scorer_equals_the_batch_path(tiny_bundle: Path) -> None:
    """Single-tweet serving skips numpy through `score_tweet`; it must agree with the batch."""
    from airparadis.bundle import tweet_scorer

    model = load_bundle(tiny_bundle)
    score = tweet_scorer(model)
    assert score is not None
    texts = ["great flight, thank you!", "caf\u00e9 &amp; delays :(", "", "sooo bad @x http://y"]
    assert [score(t) for t in texts] == model.predict_proba(texts).tolist()


def test_compiled_table_scores_long_text_with_repeats_like_the_pipeline(
    tiny_bundle: Path,
) -> None:
    """Past 256 n-grams the table switches to heap buffers; repeats take the tf path."""
    model = load_bundle(tiny_bundle)
    assert isinstance(model, SklearnClassifier)
    pipeline = SklearnClassifier(model.pipeline, model.info, compile_scorer=False)
    long_texts = [" ".join(["love this flight", "delayed again", "xxurl"] * 60), "a " * 400]
    np.testing.assert_allclose(
        model.predict_proba(long_texts), pipeline.predict_proba(long_texts), atol=1e-6
    )


def test_table_lookup_and_bad_input() -> None:
    LinearTable = linear_table  # the compiled table or its pure twin, by the path under test
    weights, idf = np.array([1.0, -2.0]), np.array([1.5, 2.5])
    table = LinearTable(["good", "not good"], weights, idf, 0.0, 1, 2, False)
    assert isinstance(table, PureLinearTable) is not use_compiled()
    assert (table.size(), table.lookup("not good"), table.lookup("bad")) == (2, 1, -1)
    # "not good" holds both terms once: sum of coef * idf over the l2 norm of their idf.
    z = (1.0 - 2.0) / np.hypot(1.5, 2.5)
    assert table.score("not   good") == pytest.approx(1 / (1 + np.exp(-z)), abs=1e-15)
    assert table.score("") == 0.5  # no known n-gram: the intercept alone
    with pytest.raises(ValueError, match="duplicate term"):
        LinearTable(["a", "a"], weights, idf, 0.0, 1, 1, False)
    with pytest.raises(ValueError, match="float64 array of 2 values"):
        LinearTable(["a", "b"], np.array([1, 2], dtype=np.int64), idf, 0.0, 1, 1, False)
    with pytest.raises(ValueError, match="float64 array of 2 values"):
        LinearTable(["a", "b"], np.array([1.0]), idf, 0.0, 1, 1, False)
    with pytest.raises(ValueError, match="min_n"):
        LinearTable(["a", "b"], weights, idf, 0.0, 2, 1, False)
    with pytest.raises(TypeError):
        LinearTable(["a", 3], weights, idf, 0.0, 1, 1, False)  # type: ignore[list-item]


def test_batch_scoring_marks_what_the_compiled_cleaner_leaves_to_python(
    tiny_bundle: Path,
) -> None:
    from airparadis.text import clean_tweet, text_cleaner

    model = load_bundle(tiny_bundle)
    assert isinstance(model, SklearnClassifier) and model.scorer is not None
    table = model.scorer.table
    texts = ["great crew :)", "caf\u00e9 ok", "fish &amp; chips", "", "@a sooo late!!!"]
    raw = np.frombuffer(table.score_texts(text_cleaner(), texts), dtype=np.float64)
    left = [False, True, True, False, False] if use_compiled() else [False] * 5
    assert np.isnan(raw).tolist() == left  # the pure cleaner handles every text itself
    for text, p in zip(texts, raw.tolist(), strict=True):
        if not np.isnan(p):
            assert p == table.score(clean_tweet(text))
    with pytest.raises(TypeError, match="text 1 is not a str"):
        table.score_texts(text_cleaner(), ["ok", 3])  # type: ignore[list-item]


def test_contributions_add_up_to_the_logit_with_repeated_ngrams(tiny_bundle: Path) -> None:
    """Tokens that occur twice ("the", "was") share each n-gram's term across its spans."""
    import math

    model = load_bundle(tiny_bundle)
    assert isinstance(model, SklearnClassifier)
    tweet = "the crew was amazing and the flight was smooth, the the best"
    result = model.explain(tweet)
    assert result is not None
    tokens, parts = result
    assert tokens.count("the") == 4 and tokens.count("was") == 2
    logit = model.scorer.intercept + sum(parts)  # type: ignore[union-attr]
    assert 1 / (1 + math.exp(-logit)) == pytest.approx(model.predict_proba([tweet])[0], abs=1e-9)
