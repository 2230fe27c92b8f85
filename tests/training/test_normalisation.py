"""Token normalisation (none, stem, lemma): one choice, stored in the bundle, applied alike by
training, batch scoring, single-tweet serving and both cleaning paths."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from airparadis.bundle import BUNDLE_FILE, BundleError, load_bundle, tweet_scorer
from airparadis.formats.sklearn import SklearnClassifier
from airparadis.formats.tflite import WordVocabulary
from airparadis.text import (
    NORMALISATIONS,
    PLACEHOLDERS,
    clean_tweet,
    clean_tweets,
    clean_with_patterns,
    normalise_tokens,
)
from tests.conftest import start_server
from tests.core.fastpath_paths import fast_path  # noqa: F401
from training_jobs.families.tfidf_lr import TfidfLogisticRegression
from training_jobs.settings import TrainingSettings

_TWEET = "@united my flights were cancelled again :( http://t.co/x I'm LOVING the delays!!"

_POSITIVE = [
    "loving these flights", "great crews and great seats", "the pilots were amazing",
    "thanks for the upgrade :)", "best airline flying today", "happy with the smooth landing",
]  # fmt: skip
_NEGATIVE = [
    "my flight was cancelled", "hated the delays again", "lost bags and rude agents",
    "worst flying experience @airline", "cancelling flights without notice", "waiting hours :(",
]  # fmt: skip


def _frame(texts: list[str], labels: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"text": texts, "label": labels})


def test_each_normalisation_maps_words_and_keeps_placeholders() -> None:
    assert clean_tweet(_TWEET) == (
        "xxuser my flights were cancelled again xxsad xxurl i'm loving the delays"
    )
    stemmed = clean_tweet(_TWEET, "stem").split()
    lemmas = clean_tweet(_TWEET, "lemma").split()
    assert {"flight", "delay", "love", "cancel"} <= set(stemmed)
    assert {"flight", "delay", "love", "be"} <= set(lemmas)
    for tokens in (stemmed, lemmas):
        assert [t for t in tokens if t.startswith("xx")] == ["xxuser", "xxsad", "xxurl"]
        assert all(t == t.lower() and t for t in tokens)
    for placeholder in PLACEHOLDERS:
        for name in NORMALISATIONS:
            assert normalise_tokens(f"{placeholder} {placeholder}s", name).split()[0] == placeholder
    assert clean_tweet("I", "lemma") == "i"  # the lemmatizer's capital comes back lowercase


@pytest.mark.usefixtures("fast_path")
@pytest.mark.parametrize("normalisation", ["stem", "lemma"])
def test_both_cleaning_paths_normalise_alike(normalisation: str, sentiment140_dir: Path) -> None:
    from training_jobs.data import load_sources
    from training_jobs.split import stratified_sample

    frame, _ = load_sources([sentiment140_dir])
    texts = stratified_sample(frame, 3000, seed=11)["text"].tolist()
    texts += ["", "caf\u00e9 &amp; :(", "Ã©tÃ© running flights", "@a @b http://c"]
    for text in texts:
        expected = normalise_tokens(clean_with_patterns(text), normalisation)
        assert clean_tweet(text, normalisation) == expected, text


def test_unknown_normalisation_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown token normalisation 'snowball'"):
        clean_tweet("flights", "snowball")
    with pytest.raises(ValidationError, match="normalisation"):
        TrainingSettings(normalisation="snowball")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid tfidf_lr parameters: normalisation"):
        TfidfLogisticRegression().fit(
            _frame(_POSITIVE + _NEGATIVE, [1] * 6 + [0] * 6),
            _frame(_POSITIVE, [1] * 6),
            {"normalisation": "porter"},
            seed=1,
        )
    bundle = _stem_bundle(tmp_path / "bundle")
    info = json.loads((bundle / BUNDLE_FILE).read_text())
    (bundle / BUNDLE_FILE).write_text(json.dumps({**info, "normalisation": "porter"}))
    with pytest.raises(BundleError, match="token normalisation 'porter'"):
        load_bundle(bundle)


def _stem_bundle(directory: Path, normalisation: str = "stem") -> Path:
    family = TfidfLogisticRegression()
    train = _frame(_POSITIVE * 3 + _NEGATIVE * 3, [1] * 18 + [0] * 18)
    model = family.fit(
        train, train, {"min_df": 1, "ngram_max": 1, "normalisation": normalisation}, seed=3
    )
    family.save(model, directory)
    return directory


def test_bundle_keeps_the_choice_and_scoring_normalises_like_training(tmp_path: Path) -> None:
    bundle = _stem_bundle(tmp_path / "stem")
    model = load_bundle(bundle)
    assert isinstance(model, SklearnClassifier) and model.info.normalisation == "stem"
    assert model.info.params["normalisation"] == "stem"
    texts = ["I LOVED the flight", "flights cancelled", "delayed and waiting", "xxurl"]
    expected = model.pipeline.predict_proba(clean_tweets(texts, "stem"))[:, 1]
    np.testing.assert_allclose(model.predict_proba(texts), expected, rtol=1e-6)
    score = tweet_scorer(model)
    assert score is not None
    np.testing.assert_allclose([score(t) for t in texts], expected, rtol=1e-6)
    # "cancels" was never seen; its stem "cancel" was: only the stem bundle knows it.
    explained = model.explain("cancels")
    assert explained is not None and explained[0] == ["cancel"] and explained[1][0] < 0
    plain = load_bundle(_stem_bundle(tmp_path / "none", "none"))
    assert plain.info.normalisation == "none"
    assert isinstance(plain, SklearnClassifier)
    assert plain.explain("cancels") == (["cancels"], [0.0])


def test_a_bundle_written_before_the_choice_loads_as_none(tmp_path: Path) -> None:
    bundle = _stem_bundle(tmp_path / "old", "none")
    info = json.loads((bundle / BUNDLE_FILE).read_text())
    del info["normalisation"]
    (bundle / BUNDLE_FILE).write_text(json.dumps(info))
    assert load_bundle(bundle).info.normalisation == "none"


def test_the_recurrent_vocabulary_encodes_with_the_bundle_choice(tmp_path: Path) -> None:
    cleaned = clean_tweets(["flights delayed", "flight delay", "the flights"], "stem")
    vocabulary = WordVocabulary.build(cleaned, 10, 4, min_count=1, normalisation="stem")
    vocabulary.save(tmp_path)
    loaded = WordVocabulary.load(tmp_path, "stem")
    assert loaded.encode(["FLIGHTS delayed"]).tolist() == loaded.encode(["flight delay"]).tolist()
    plain = WordVocabulary.load(tmp_path)
    assert plain.encode(["flights"]).tolist() != loaded.encode(["flights"]).tolist()


@pytest.mark.slow
def test_the_server_normalises_a_stem_bundle_like_training(tmp_path: Path) -> None:
    bundle = _stem_bundle(tmp_path / "bundle")
    model = load_bundle(bundle)
    texts = ["cancelled flights", "LOVING it", "the pilots were amazing"]
    expected = model.predict_proba(texts).tolist()
    server = start_server(tmp_path / "home", str(bundle))
    try:
        response = httpx.post(server.predict_url, json={"instances": texts}, timeout=30)
    finally:
        server.stop()
    assert response.status_code == 200, response.text
    served = [p["probability"] for p in response.json()["predictions"]]
    np.testing.assert_allclose(served, expected, rtol=1e-9)
    assert served[0] < 0.5 < served[1]


def test_the_setting_and_optuna_choose_it_for_the_two_families_it_fits() -> None:
    import optuna

    from training_jobs.families import get_family
    from training_jobs.run_inputs import resolve_params

    settings = TrainingSettings(normalisation="lemma")
    for name in ("tfidf_lr", "rnn"):
        family = get_family(name)
        assert resolve_params(family, settings, None)["normalisation"] == "lemma"
        assert resolve_params(family, TrainingSettings(), None)["normalisation"] == "none"
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        seen = {family.search_space(study.ask())["normalisation"] for _ in range(30)}
        assert seen == set(NORMALISATIONS)
