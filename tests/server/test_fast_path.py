"""The compiled TF-IDF + LR scorer gives the trained pipeline's results."""

from pathlib import Path

import numpy as np

from airparadis.bundle import load_bundle
from airparadis.formats.sklearn import SklearnClassifier
from training_jobs.data import load_sources
from training_jobs.families.tfidf_lr import TfidfLogisticRegression
from training_jobs.split import split_data, stratified_sample


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
