"""The recurrent network's embedding choices: each builds, trains one epoch on tiny made-up
tweets, and starts from its source (the gensim vectors logged to MLflow, MiniLM's table)."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import optuna
import pandas as pd
import pytest
from pydantic import ValidationError

from airparadis.bundle import load_bundle
from training_jobs.families import get_family
from training_jobs.families.params import RnnEmbedding, RnnEmbeddingMode, validate_params
from training_jobs.families.rnn import KerasRecurrentModel
from training_jobs.families.rnn_embeddings import (
    EMBEDDING_MODES,
    EMBEDDINGS,
    MINILM_TABLE,
    WORD_VECTORS_ARTIFACT,
)
from training_jobs.run_inputs import resolve_params
from training_jobs.settings import TrainingSettings

POSITIVE = ["happy", "love", "great", "thanks", "awesome", "fun"]
NEGATIVE = ["sad", "hate", "awful", "delayed", "lost", "grumpiest"]
FILLER = ["the", "flight", "today", "my", "is", "so", "again", "@united"]
TINY = {
    "epochs": 1,
    "units": 4,
    "dense_units": 4,
    "embedding_dim": 8,
    "max_len": 8,
    "min_count": 1,
    "batch_size": 32,
    "embedding_epochs": 2,
    "quantization": "none",
}


def _tweets(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, rows)
    texts = [
        " ".join([*rng.choice(POSITIVE if y else NEGATIVE, 2), *rng.choice(FILLER, 3)])
        for y in labels
    ]
    return pd.DataFrame({"text": texts, "label": labels})


@pytest.fixture(scope="module")
def tweets() -> tuple[pd.DataFrame, pd.DataFrame]:
    return _tweets(240, seed=1), _tweets(60, seed=2)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def tracking(store: str) -> str:
    """This module's store, and an experiment in it: an experiment another test made active
    belongs to another store."""
    mlflow.set_tracking_uri(store)
    mlflow.set_experiment("rnn-embeddings")
    return store


@pytest.fixture(scope="module")
def minilm_384(tweets: tuple[pd.DataFrame, pd.DataFrame]) -> KerasRecurrentModel:
    return _fit(tweets, embedding="minilm", embedding_mode="frozen", embedding_dim=384)


def _fit(tweets: tuple[pd.DataFrame, pd.DataFrame], **params: Any) -> KerasRecurrentModel:
    model = get_family("rnn").fit(tweets[0], tweets[1], {**TINY, **params}, seed=3)
    assert isinstance(model, KerasRecurrentModel)
    return model


def _row(model: KerasRecurrentModel, word: str) -> np.ndarray:
    matrix = model.model.get_layer("embedding").get_weights()[0]
    return np.asarray(matrix[model.vocabulary.tokens.index(word) + 2])


def test_settings_and_family_offer_the_same_choices_and_default_to_learned() -> None:
    assert typing.get_args(RnnEmbedding) == EMBEDDINGS
    assert typing.get_args(RnnEmbeddingMode) == EMBEDDING_MODES
    settings = TrainingSettings()
    assert (settings.rnn.embedding, settings.rnn.embedding_mode) == ("learned", "fine-tuned")
    params = resolve_params(get_family("rnn"), settings, None)
    assert (params["embedding"], params["embedding_mode"]) == ("learned", "fine-tuned")


@pytest.mark.parametrize("kind", ["word2vec", "fasttext"])
def test_gensim_vectors_are_logged_and_initialise_the_frozen_embedding(
    tweets: tuple[pd.DataFrame, pd.DataFrame], tracking: str, kind: str
) -> None:
    from gensim.models import KeyedVectors

    with mlflow.start_run() as run:
        model = _fit(tweets, embedding=kind, embedding_mode="frozen")
    path = mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/{WORD_VECTORS_ARTIFACT}")
    vectors = KeyedVectors.load_word2vec_format(str(Path(path) / f"{kind}.bin"), binary=True)
    assert vectors.vector_size == TINY["embedding_dim"]
    assert set(model.vocabulary.tokens) <= set(vectors.key_to_index)  # training words only
    for word in ("happy", "delayed"):
        np.testing.assert_allclose(_row(model, word), vectors[word], rtol=1e-6)
    assert not model.model.get_layer("embedding").trainable


def test_fine_tuned_word2vec_moves_away_from_its_start(
    tweets: tuple[pd.DataFrame, pd.DataFrame], tracking: str
) -> None:
    from gensim.models import KeyedVectors

    with mlflow.start_run() as run:
        model = _fit(tweets, embedding="word2vec", embedding_mode="fine-tuned")
    path = mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/{WORD_VECTORS_ARTIFACT}")
    vectors = KeyedVectors.load_word2vec_format(str(Path(path) / "word2vec.bin"), binary=True)
    moved = np.abs(_row(model, "happy") - vectors["happy"]).max()
    assert moved > 1e-4, "a fine-tuned embedding must train"
    assert model.model.get_layer("embedding").trainable


def test_minilm_rows_are_word_piece_means_and_stay_when_frozen(
    minilm_384: KerasRecurrentModel,
) -> None:
    from safetensors.numpy import load_file
    from transformers import AutoTokenizer

    from training_jobs.families.transformer_model import encoder_dir

    directory = encoder_dir()
    table = load_file(str(directory / "model.safetensors"))[MINILM_TABLE]
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    model = minilm_384
    assert model.model.get_layer("embedding").get_weights()[0].shape[1] == 384
    pieces_of = {}
    for word in ("happy", "delayed", "grumpiest", "xxuser"):  # xxuser: the cleaned @united
        pieces = tokenizer(word, add_special_tokens=False)["input_ids"]
        np.testing.assert_allclose(_row(model, word), table[pieces].mean(axis=0), atol=1e-6)
        pieces_of[word] = len(pieces)
    assert pieces_of["happy"] == 1 and pieces_of["grumpiest"] > 1 and pieces_of["xxuser"] > 1


def test_minilm_narrower_than_384_is_a_projection_of_the_word_piece_means(
    tweets: tuple[pd.DataFrame, pd.DataFrame], minilm_384: KerasRecurrentModel
) -> None:
    wide = minilm_384
    narrow = _fit(tweets, embedding="minilm", embedding_mode="frozen", embedding_dim=8)
    raw = wide.model.get_layer("embedding").get_weights()[0][2:]
    projected = narrow.model.get_layer("embedding").get_weights()[0][2:]
    assert projected.shape == (raw.shape[0], 8)
    # A linear map with orthonormal rows: projected = raw @ W.T, W W.T = I.
    w, *_ = np.linalg.lstsq(raw, projected, rcond=None)
    np.testing.assert_allclose(raw @ w, projected, atol=1e-4)
    np.testing.assert_allclose(w.T @ w, np.eye(8), atol=1e-3)


@pytest.mark.parametrize("mode", ["fine-tuned", "frozen"])
def test_learned_starts_from_keras_random_weights_and_moves_unless_frozen(
    tweets: tuple[pd.DataFrame, pd.DataFrame], mode: str
) -> None:
    import keras

    from training_jobs.families.rnn import build_network

    model = _fit(tweets, embedding_mode=mode)
    assert model.info.params["embedding"] == "learned"
    keras.utils.set_random_seed(3)  # what `fit` does before building the network
    params = validate_params("rnn", {**TINY, "embedding_mode": mode})
    start = build_network(params, model.vocabulary.size).get_layer("embedding").get_weights()[0]
    after = model.model.get_layer("embedding").get_weights()[0]
    assert after.shape == start.shape == (model.vocabulary.size, TINY["embedding_dim"])
    if mode == "frozen":
        np.testing.assert_array_equal(after, start)
    else:
        assert np.abs(after - start).max() > 1e-4


def test_word2vec_initialised_model_exports_and_serves_through_the_bundle(
    tweets: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    family = get_family("rnn")
    model = _fit(tweets, embedding="word2vec", embedding_mode="frozen")
    family.save(model, tmp_path)
    served = load_bundle(tmp_path)
    assert served.info.params["embedding"] == "word2vec"
    texts = ["so happy love this crew", "delayed again, lost my bag", "", "zzz unknown words"]
    gap = np.abs(served.predict_proba(texts) - model.predict_proba(texts))
    assert gap.max() <= 1e-4
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["bundle.json", "model.tflite", "vocab.json"]
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"embedding": "glove"}, "embedding: Input should be 'learned', 'word2vec', 'fasttext'"),
        (
            {"embedding": "word2vec", "embedding_mode": "thawed"},
            "embedding_mode: Input should be 'fine-tuned' or 'frozen'",
        ),
    ],
)
def test_an_invalid_choice_is_refused_naming_the_choices(
    tweets: tuple[pd.DataFrame, pd.DataFrame], params: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _fit(tweets, **params)


def test_an_invalid_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRPARADIS_TRAIN_RNN_EMBEDDING", "glove")
    with pytest.raises(ValidationError, match=r"rnn\.embedding"):
        TrainingSettings()


def test_optuna_searches_both_embedding_dimensions() -> None:
    family = get_family("rnn")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(40):
        trial = study.ask()
        params = family.search_space(trial)
        seen.add((params["embedding"], params["embedding_mode"]))
        study.tell(trial, 0.5)
    assert seen == {(e, m) for e in EMBEDDINGS for m in EMBEDDING_MODES}
