"""Recurrent family: embedding -> (bidirectional) RNN/GRU/LSTM -> dense head, Keras on TF.

The vocabulary is built on the training split only and saved beside the model. The served
artifact is a TFLite flatbuffer with builtin ops only: the trained weights are copied into an
*unrolled* twin of the network (the sequence length is fixed), which lowers every recurrent
step to plain FULLY_CONNECTED/LOGISTIC/TANH ops, so no Flex (SELECT_TF_OPS) delegate is needed
and ``ai-edge-litert`` runs it without TensorFlow.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from airparadis import DEFAULT_THRESHOLD
from airparadis.bundle import BundleInfo, SentimentClassifier, write_info
from airparadis.formats.tflite import TFLITE_FILE, WordVocabulary
from airparadis.metrics import accuracy
from airparadis.text import NORMALISATIONS, check_normalisation, clean_tweets
from training_jobs.families import Reporter, report_validation
from training_jobs.families.params import validate_params
from training_jobs.families.rnn_embeddings import (
    EMBEDDING_MODES,
    EMBEDDINGS,
    initial_matrix,
    layer_width,
)

if TYPE_CHECKING:
    import keras
    import optuna

logger = logging.getLogger(__name__)

TFLITE_TOLERANCE = 1e-3
"""Largest |P_tflite - P_keras| accepted for an unquantized export (float32 round-off)."""


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class KerasRecurrentModel:
    """The trained Keras network with its vocabulary: the in-memory face before export."""

    def __init__(self, model: keras.Model, vocabulary: WordVocabulary, info: BundleInfo) -> None:
        self.model = model
        self.vocabulary = vocabulary
        self.info = info

    def predict_ids(self, ids: np.ndarray) -> np.ndarray:
        proba = self.model.predict(ids, batch_size=1024, verbose=0)
        return np.asarray(proba, dtype=np.float64).reshape(-1)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.predict_ids(self.vocabulary.encode(texts))


def build_network(params: dict[str, Any], vocab_size: int, unroll: bool = False) -> keras.Model:
    """Embedding, recurrent layer (cell and direction from params), dense head.

    `unroll=True` builds the export twin: same layers and weights, recurrent loop unrolled.
    The embedding's width and trainability follow `rnn_embeddings` (MiniLM caps the width).
    """
    _quiet_tensorflow()
    import keras

    cells = {"rnn": keras.layers.SimpleRNN, "gru": keras.layers.GRU, "lstm": keras.layers.LSTM}
    pooled = params["pooling"] == "max"
    inputs = keras.Input(shape=(int(params["max_len"]),), dtype="int32", name="ids")
    # Parameters recorded before the embedding choice existed mean a learned, trained one.
    embedding = str(params.get("embedding", "learned"))
    frozen = params.get("embedding_mode") == "frozen"
    width = layer_width(embedding, int(params["embedding_dim"]))
    x = keras.layers.Embedding(vocab_size, width, trainable=not frozen, name="embedding")(inputs)
    x = keras.layers.SpatialDropout1D(float(params["dropout"]) / 2)(x)
    recurrent = cells[params["cell"]](
        int(params["units"]), return_sequences=pooled, unroll=unroll, name=params["cell"]
    )
    if params["bidirectional"]:
        recurrent = keras.layers.Bidirectional(recurrent, name="bidirectional")
    x = recurrent(x)
    if pooled:
        x = keras.layers.GlobalMaxPooling1D()(x)
    x = keras.layers.Dropout(float(params["dropout"]))(x)
    x = keras.layers.Dense(int(params["dense_units"]), activation="relu", name="dense")(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="p_positive")(x)
    return keras.Model(inputs, outputs, name=f"airparadis_{params['cell']}")


def to_tflite(model: keras.Model, quantization: str) -> bytes:
    """Convert with builtin ops only; optional dynamic-range or float16 quantization."""
    _quiet_tensorflow()
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization in ("dynamic", "float16"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return bytes(converter.convert())


class RecurrentNetwork:
    name = "rnn"
    format = "tflite"

    def search_space(self, trial: optuna.trial.BaseTrial) -> dict[str, Any]:
        return {
            "embedding": trial.suggest_categorical("embedding", list(EMBEDDINGS)),
            "embedding_mode": trial.suggest_categorical("embedding_mode", list(EMBEDDING_MODES)),
            "cell": trial.suggest_categorical("cell", ["rnn", "gru", "lstm"]),
            "bidirectional": trial.suggest_categorical("bidirectional", [True, False]),
            "pooling": trial.suggest_categorical("pooling", ["max", "last"]),
            "embedding_dim": trial.suggest_int("embedding_dim", 64, 256, step=64),
            "units": trial.suggest_int("units", 32, 128, step=32),
            "dropout": trial.suggest_float("dropout", 0.1, 0.5),
            "learning_rate": trial.suggest_float("learning_rate", 5e-4, 5e-3, log=True),
            "vocab_size": trial.suggest_int("vocab_size", 10_000, 60_000, step=10_000),
            "normalisation": trial.suggest_categorical("normalisation", list(NORMALISATIONS)),
        }

    def fit(
        self,
        train: pd.DataFrame,
        validation: pd.DataFrame,
        params: dict[str, Any],
        seed: int,
        report: Reporter | None = None,
    ) -> SentimentClassifier:
        """Train epoch by epoch, scoring validation after each; keep the best epoch's weights."""
        _quiet_tensorflow()
        import keras

        p = validate_params(self.name, params)  # the one check of every choice and bound
        keras.utils.set_random_seed(seed)
        normalisation = check_normalisation(p["normalisation"])
        cleaned = clean_tweets(train["text"], normalisation)
        vocabulary = WordVocabulary.build(
            cleaned, int(p["vocab_size"]), int(p["max_len"]), p["padding"], p["truncating"],
            int(p["min_count"]), normalisation,
        )  # fmt: skip
        x_train = vocabulary.encode_cleaned(cleaned)
        y_train = train["label"].to_numpy().astype(np.float32)
        weights = (  # feedback rows carry a weight in retraining
            train["weight"].fillna(1.0).to_numpy(dtype=np.float32)
            if "weight" in train.columns
            else None
        )
        x_val = vocabulary.encode(validation["text"].tolist())
        y_val = validation["label"].to_numpy()

        model = build_network(p, vocabulary.size)
        matrix = initial_matrix(p, cleaned, vocabulary.tokens, seed)
        if matrix is not None:
            model.get_layer("embedding").set_weights([matrix])
        model.compile(
            optimizer=keras.optimizers.Adam(float(p["learning_rate"])),
            loss="binary_crossentropy",
        )
        best = (-1.0, 0, model.get_weights())
        for epoch in range(1, int(p["epochs"]) + 1):
            model.fit(
                x_train, y_train, batch_size=int(p["batch_size"]), epochs=1, shuffle=True,
                verbose=0, sample_weight=weights,
            )  # fmt: skip
            proba = model.predict(x_val, batch_size=1024, verbose=0).ravel()
            score = accuracy(y_val, proba, DEFAULT_THRESHOLD)
            logger.info("rnn epoch %d: validation accuracy %.4f", epoch, score)
            if score > best[0]:
                best = (score, epoch, model.get_weights())
            report_validation(report, epoch, score)
        if p["restore_best"]:
            model.set_weights(best[2])
        info = BundleInfo(
            family=self.name,
            format=self.format,
            normalisation=normalisation,
            params={**p, "best_epoch": best[1] if p["restore_best"] else int(p["epochs"])},
        )
        return KerasRecurrentModel(model, vocabulary, info)

    def save(self, model: SentimentClassifier, directory: Path) -> None:
        """Copy the weights into the unrolled twin, convert it, and write the bundle."""
        assert isinstance(model, KerasRecurrentModel)
        params = model.info.params
        twin = build_network(params, model.vocabulary.size, unroll=True)
        twin.set_weights(model.model.get_weights())
        directory.mkdir(parents=True, exist_ok=True)
        (directory / TFLITE_FILE).write_bytes(to_tflite(twin, str(params["quantization"])))
        model.vocabulary.save(directory)
        write_info(directory, model.info)

    def save_keras(self, model: SentimentClassifier, path: Path) -> None:
        """The Keras file, for comparing artifact sizes (never served: serving has no TF)."""
        assert isinstance(model, KerasRecurrentModel)
        model.model.save(path)


def keras_tflite_gap(model: KerasRecurrentModel, texts: Sequence[str]) -> float:
    """Largest |P_keras - P_tflite| over `texts`, exporting to a scratch bundle."""
    from airparadis.bundle import load_bundle

    with tempfile.TemporaryDirectory() as tmp:
        RecurrentNetwork().save(model, Path(tmp))
        served = load_bundle(Path(tmp))
        return float(np.max(np.abs(served.predict_proba(texts) - model.predict_proba(texts))))
