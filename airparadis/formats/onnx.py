"""The ONNX format: an exported transformer run by ONNX Runtime, tokenized by `tokenizers`.

The serving install has no PyTorch: the bundle holds ``model.onnx`` (inputs ``input_ids`` and
``attention_mask`` with dynamic batch and sequence axes, output ``p_positive``) and the
``tokenizer.json`` of the encoder. Tweets are cleaned by `airparadis.text` as in training, then
sorted by token count and cut into small batches, each padded only to its own longest tweet
(dynamic padding), so a short tweet never pays for a long one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from airparadis.bundle_format import BundleInfo, register_format
from airparadis.text import clean_tweets

ONNX_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
BATCH_SIZE = 64
"""Rows per ONNX call: big enough to use both cores, small enough to keep padding low."""


def load_tokenizer(path: Path, max_len: int) -> Any:
    """A fast `tokenizers.Tokenizer` that truncates to `max_len` and does not pad by itself."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length=max_len)
    tokenizer.no_padding()
    return tokenizer


def pad_batch(encodings: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """int64 ids and attention mask, padded with 0 to the longest encoding of the batch."""
    width = max(len(e.ids) for e in encodings)
    ids = np.zeros((len(encodings), width), dtype=np.int64)
    mask = np.zeros((len(encodings), width), dtype=np.int64)
    for row, encoding in enumerate(encodings):
        ids[row, : len(encoding.ids)] = encoding.ids
        mask[row, : len(encoding.ids)] = 1
    return ids, mask


def length_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Row indices grouped by similar length (shortest first), `batch_size` at most each."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class ONNXClassifier:
    """ONNX Runtime session plus tokenizer; thread-safe (ORT sessions allow concurrent runs)."""

    def __init__(self, model_path: Path, tokenizer_path: Path, info: BundleInfo) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = int(info.params.get("threads", 2))
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.info = info
        self.session = ort.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = load_tokenizer(tokenizer_path, int(info.params.get("max_len", 64)))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0, dtype=np.float64)
        encodings = self.tokenizer.encode_batch(clean_tweets(texts))
        out = np.empty(len(encodings), dtype=np.float64)
        for rows in length_batches([len(e.ids) for e in encodings], BATCH_SIZE):
            ids, mask = pad_batch([encodings[i] for i in rows])
            (proba,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
            out[rows] = np.asarray(proba, dtype=np.float64).reshape(-1)
        return out


@register_format("onnx")
def load_onnx(directory: Path, info: BundleInfo) -> ONNXClassifier:
    return ONNXClassifier(directory / ONNX_FILE, directory / TOKENIZER_FILE, info)
