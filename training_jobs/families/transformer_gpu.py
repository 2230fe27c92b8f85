"""Fine-tune the transformer on a GPU machine that has torch, transformers and pandas only.

``python -m training_jobs.families.transformer_gpu --split split.parquet --encoder-dir minilm
--defaults params.json --out OUT`` trains on a split prepared here (`training_jobs.remote_gpu
prepare`, which also writes every family parameter into ``params.json``), then writes the fp16
weights (``finetuned.safetensors``) and ``metrics.json`` into OUT. It needs the
project's source (the ``airparadis`` and ``training_jobs`` folders), not its environment: no
compiled core, no MLflow, no pydantic, no scikit-learn (a test imports it with those blocked).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd

from airparadis.metrics import accuracy
from training_jobs.families.transformer_model import (
    LOGIT_THRESHOLD,
    logits,
    pick_device,
    save_checkpoint,
)
from training_jobs.families.transformer_training import train_network

SPLITS = ("train", "validation", "test")


def fine_tune_split(
    frame: pd.DataFrame, params: dict[str, Any], seed: int, out: Path
) -> dict[str, Any]:
    """Fine-tune on the ``train`` rows of a prepared split, keep the best state by the
    ``validation`` rows, score both held-out splits, and write weights and metrics to `out`."""
    parts = {name: frame[frame["split"] == name].reset_index(drop=True) for name in SPLITS}
    started = time.perf_counter()
    module, tokenizer_path, p, trained = train_network(
        parts["train"], parts["validation"], params, seed
    )
    metrics: dict[str, Any] = {"train_seconds": time.perf_counter() - started, **trained}
    from airparadis.formats.onnx import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_path, int(p["max_len"]))
    module = module.to(pick_device("auto"))
    for name in ("validation", "test"):
        scores = logits(module, tokenizer, parts[name]["text"].tolist())
        metrics[f"{name}_accuracy"] = accuracy(
            parts[name]["label"].to_numpy(), scores, LOGIT_THRESHOLD
        )
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(module, out / "finetuned.safetensors")
    (out / "metrics.json").write_text(
        json.dumps({"params": params, **metrics}, indent=2, default=str)
    )
    return metrics


def main(argv: list[str] | None = None) -> None:
    """Fine-tune on a prepared split file (GPU machine); writes fp16 weights and metrics."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--split", type=Path, required=True, help="Parquet: text, label, split.")
    parser.add_argument("--encoder-dir", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--defaults", type=Path, required=True,
        help="JSON of every family parameter (params.json from `remote_gpu prepare`).",
    )  # fmt: skip
    parser.add_argument("--params", default="{}", help="JSON object of parameters to change.")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    params = {**json.loads(args.defaults.read_text()), "mode": "finetune",
              "encoder_dir": args.encoder_dir, "quantization": "none",
              **json.loads(args.params)}  # fmt: skip
    metrics = fine_tune_split(pd.read_parquet(args.split), params, args.seed, args.out)
    print(json.dumps(metrics, indent=2, default=str))


if __name__ == "__main__":
    main()
