"""The transformer family's training loops: the head alone on frozen embeddings, or the
whole network fine-tuned; each reports validation accuracy (Optuna's steps) and keeps the
best state seen.

Needs torch, transformers and pandas only (see `transformer_model`): the GPU entry point
(`transformer_gpu`) runs these loops on a machine without the project's environment.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from airparadis.formats.onnx import TOKENIZER_FILE, load_tokenizer, pad_batch
from airparadis.metrics import accuracy
from airparadis.text import clean_tweets
from training_jobs.families import Reporter, report_validation
from training_jobs.families.transformer_model import (
    LOGIT_THRESHOLD,
    build_module,
    encoder_dir,
    forward_batches,
    load_checkpoint,
    logits,
    pick_device,
)

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


def train_network(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    params: dict[str, Any],
    seed: int,
    report: Reporter | None = None,
) -> tuple[torch.nn.Module, Path, dict[str, Any], dict[str, Any]]:
    """(module on the CPU in eval mode, its tokenizer file, the full parameters, what training
    found: best epoch and validation accuracy) for `params`, every parameter of the family
    (`TransformerParams`' dump: the GPU entry point has no pydantic to fill defaults)."""
    import torch

    p = {**params, "seed": seed}
    torch.manual_seed(seed)
    directory = encoder_dir(p["encoder_dir"])
    module = build_module(directory, float(p["dropout"]))
    if p["checkpoint"]:
        module.load_state_dict(load_checkpoint(Path(p["checkpoint"])))
    module.to(pick_device(str(p["device"])))
    tokenizer = load_tokenizer(directory / TOKENIZER_FILE, int(p["max_len"]))
    trained: dict[str, Any] = {}
    if p["mode"] == "frozen" and int(p["head_epochs"]) > 0:
        for weight in cast("torch.nn.Module", module.encoder).parameters():
            weight.requires_grad_(False)
        trained = train_head(module, tokenizer, train, validation, p, report)
    elif p["mode"] == "finetune" and int(p["epochs"]) > 0:
        trained = fine_tune(module, tokenizer, train, validation, p, report)
    module.to("cpu").eval()
    return module, directory / TOKENIZER_FILE, p, trained


def train_head(
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
        forward_batches(module, tokenizer, train["text"].tolist(), embed=True)
    )
    x_val = torch.from_numpy(
        forward_batches(module, tokenizer, validation["text"].tolist(), embed=True)
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
            score = accuracy(y_val, head(x_val).squeeze(-1).numpy(), LOGIT_THRESHOLD)
        if score > best[0]:
            best = (score, epoch, {k: v.clone() for k, v in head.state_dict().items()})
        report_validation(report, epoch, score)
    head.load_state_dict(best[2])
    head.to(device)
    return {"best_head_epoch": best[1], "best_validation_accuracy": best[0]}


def fine_tune(
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
                raw = module(torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device))
            loss = loss_fn(raw.float(), labels[rows].to(device))
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
                scores = logits(module, tokenizer, validation["text"].tolist())
                score = accuracy(y_val, scores, LOGIT_THRESHOLD)
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
