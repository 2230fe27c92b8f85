"""The TFLite format: a word vocabulary plus a builtin-ops flatbuffer run by ``ai-edge-litert``.

The serving install has no TensorFlow, so everything the recurrent family needs at request
time lives here: `WordVocabulary` (cleaned text -> fixed-length id matrix, the one encoder
training uses too) and `TFLiteClassifier` (LiteRT's Interpreter over that matrix).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from airparadis.bundle_format import BundleInfo, register_format
from airparadis.text import clean_tweets

TFLITE_FILE = "model.tflite"
VOCAB_FILE = "vocab.json"
PAD_ID = 0
OOV_ID = 1
_MAX_BATCH = 256


@dataclass(frozen=True)
class WordVocabulary:
    """Token ids over cleaned tweets; 0 pads, 1 stands for any token outside the vocabulary."""

    tokens: tuple[str, ...]
    max_len: int
    padding: str = "pre"
    truncating: str = "post"
    normalisation: str = "none"
    """Token normalisation `encode` applies after cleaning; the bundle's choice (bundle.json)."""

    @classmethod
    def build(
        cls,
        cleaned: Iterable[str],
        size: int,
        max_len: int,
        padding: str = "pre",
        truncating: str = "post",
        min_count: int = 2,
        normalisation: str = "none",
    ) -> WordVocabulary:
        """The `size` most frequent tokens of the (training) texts seen at least `min_count`;
        `cleaned` is already normalised with `normalisation`."""
        counts = Counter(token for text in cleaned for token in text.split())
        common = [t for t, c in counts.most_common(size) if c >= min_count]
        return cls(tuple(common), max_len, padding, truncating, normalisation)

    @property
    def size(self) -> int:
        """Rows of the embedding matrix: the tokens plus padding and OOV."""
        return len(self.tokens) + 2

    def encode_cleaned(self, cleaned: Sequence[str]) -> np.ndarray:
        """int32 matrix (n, max_len), padded and truncated on the configured sides."""
        index = self._index
        out = np.full((len(cleaned), self.max_len), PAD_ID, dtype=np.int32)
        for row, text in enumerate(cleaned):
            ids = [index.get(token, OOV_ID) for token in text.split()]
            if len(ids) > self.max_len:
                ids = ids[: self.max_len] if self.truncating == "post" else ids[-self.max_len :]
            if ids:
                if self.padding == "pre":
                    out[row, self.max_len - len(ids) :] = ids
                else:
                    out[row, : len(ids)] = ids
        return out

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode_cleaned(clean_tweets(texts, self.normalisation))

    @property
    def _index(self) -> dict[str, int]:
        cached: dict[str, int] | None = self.__dict__.get("_index_cache")
        if cached is None:
            cached = {token: i + 2 for i, token in enumerate(self.tokens)}
            object.__setattr__(self, "_index_cache", cached)
        return cached

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        payload = {
            "tokens": list(self.tokens),
            "max_len": self.max_len,
            "padding": self.padding,
            "truncating": self.truncating,
        }
        (directory / VOCAB_FILE).write_text(json.dumps(payload))

    @classmethod
    def load(cls, directory: Path, normalisation: str = "none") -> WordVocabulary:
        raw = json.loads((directory / VOCAB_FILE).read_text())
        return cls(
            tuple(raw["tokens"]), int(raw["max_len"]), raw["padding"], raw["truncating"],
            normalisation,
        )  # fmt: skip


class TFLiteClassifier:
    """Runs the flatbuffer with LiteRT; batches are cut to at most 256 rows per invoke."""

    def __init__(self, model: bytes, vocabulary: WordVocabulary, info: BundleInfo) -> None:
        from ai_edge_litert.interpreter import Interpreter

        threads = int(info.params.get("threads", 2))
        self.info = info
        self.vocabulary = vocabulary
        self._interpreter = Interpreter(model_content=model, num_threads=threads)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._batch = -1
        # One interpreter holds one set of tensors: calls from several threads must queue.
        self._lock = threading.Lock()

    def _run(self, ids: np.ndarray) -> np.ndarray:
        if ids.shape[0] != self._batch:
            self._interpreter.resize_tensor_input(self._input, list(ids.shape), strict=False)
            self._interpreter.allocate_tensors()
            self._batch = ids.shape[0]
        self._interpreter.set_tensor(self._input, ids)
        self._interpreter.invoke()
        return np.asarray(self._interpreter.get_tensor(self._output)).reshape(-1)

    def predict_ids(self, ids: np.ndarray) -> np.ndarray:
        """P(positive) for an already encoded id matrix."""
        if len(ids) == 0:
            return np.zeros(0, dtype=np.float64)
        parts = []
        with self._lock:
            for start in range(0, len(ids), _MAX_BATCH):
                parts.append(self._run(ids[start : start + _MAX_BATCH]).copy())
        return np.concatenate(parts).astype(np.float64)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.predict_ids(self.vocabulary.encode(texts))


@register_format("tflite")
def load_tflite(directory: Path, info: BundleInfo) -> TFLiteClassifier:
    return TFLiteClassifier(
        (directory / TFLITE_FILE).read_bytes(),
        WordVocabulary.load(directory, info.normalisation),
        info,
    )
