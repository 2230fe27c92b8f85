"""`make bench`, model families: training time, artifact sizes, in-process scoring speed.

For each family the latest finished training run in MLflow (``AIRPARADIS_HOME`` /
``MLFLOW_TRACKING_URI``) gives the training time and the served bundle; a family with no run
is trained here on a 20,000-tweet slice (and marked so). Then, in this one process:

- tweets/s of the served bundle's ``predict_proba`` at batch 1, 32 and 1,000, on test tweets;
- artifact sizes, which depend only on the architecture: the recurrent network saved as Keras
  and converted to TFLite fp32 / float16 / dynamic-range int8; MiniLM exported to ONNX fp32
  and int8;
- the plain ``transformers`` PyTorch forward (padding to the longest tweet of each batch, no
  export) against the ONNX bundle, on the same tweets;
- the TF-IDF + LR bundle on the compiled extension (``airparadis._fastpath``) against its
  pure-Python twin (``AIRPARADIS_PURE_PYTHON=1``): single tweets as serving scores them, and
  batches, with a check that both give the same probabilities.

The section "## Model families" of the output file is replaced (appended when absent).
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import bench_parser

SECTION = "## Model families"
BATCHES = (1, 32, 1000)
SLICE_ROWS = 20_000
QUICK_PARAMS: dict[str, dict[str, Any]] = {
    "tfidf_lr": {},
    "rnn": {"epochs": 2},
    "transformer": {"mode": "frozen", "head_epochs": 10},
}


BUDGET_S = 8.0
"""Seconds spent measuring each (runtime, batch size) point."""


def tweets_per_second(
    predict: Callable[[Sequence[str]], Any], tweets: list[str], batch: int
) -> float:
    """Throughput over repeated calls of `batch` tweets, for about `budget_s` seconds."""
    predict(tweets[:batch])  # warm-up
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < BUDGET_S:
        start = done % max(1, len(tweets) - batch)
        predict(tweets[start : start + batch])
        done += batch
    return done / (time.perf_counter() - started)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def rnn_sizes(params: dict[str, Any], vocab_size: int, tmp: Path) -> dict[str, int]:
    """Keras file and TFLite fp32/float16/int8 of the recurrent network with these shapes."""
    from training_jobs.families.rnn import build_network, to_tflite

    model = build_network(params, vocab_size)
    twin = build_network(params, vocab_size, unroll=True)
    twin.set_weights(model.get_weights())
    model.save(tmp / "rnn.keras")
    sizes = {"Keras (.keras)": _size(tmp / "rnn.keras")}
    for name, quantization in (("fp32", "none"), ("float16", "float16"), ("int8", "dynamic")):
        sizes[f"TFLite {name}"] = len(to_tflite(twin, quantization))
    return sizes


def onnx_sizes(tmp: Path) -> dict[str, int]:
    """MiniLM + head exported to ONNX fp32, then dynamically quantized to int8."""
    from training_jobs.families.transformer import (
        build_module,
        encoder_dir,
        export_onnx,
        quantize_int8,
    )

    export_onnx(build_module(encoder_dir(), 0.1), tmp / "fp32.onnx")
    quantize_int8(tmp / "fp32.onnx", tmp / "int8.onnx")
    return {
        "PyTorch safetensors fp32": _size(encoder_dir() / "model.safetensors"),
        "ONNX fp32": _size(tmp / "fp32.onnx"),
        "ONNX int8": _size(tmp / "int8.onnx"),
    }


def pytorch_baseline(tweets: list[str]) -> Callable[[Sequence[str]], Any]:
    """Plain transformers: AutoTokenizer + AutoModel forward, mean pooling, a linear head."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from airparadis.text import clean_tweets
    from training_jobs.families.transformer import encoder_dir

    directory = encoder_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    encoder = AutoModel.from_pretrained(str(directory)).eval()
    head = torch.nn.Linear(384, 1)

    def predict(texts: Sequence[str]) -> Any:
        batch = tokenizer(
            clean_tweets(texts), padding=True, truncation=True, max_length=64, return_tensors="pt"
        )
        with torch.inference_mode():
            hidden = encoder(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.sigmoid(head(pooled)).squeeze(-1).numpy()

    return predict


def fastpath_comparison(bundle_dir: Path, tweets: list[str]) -> list[str]:
    """Compiled extension vs pure Python on one TF-IDF + LR bundle, in this process."""
    from airparadis.bundle import load_bundle, tweet_scorer
    from airparadis.fastpath import PURE_PYTHON_ENV, use_compiled
    from airparadis.text import text_cleaner

    def choose(pure: bool | None) -> None:
        """Switch paths (None: back to the environment's choice) before the next load."""
        if pure is None and saved is not None:
            os.environ[PURE_PYTHON_ENV] = saved
        elif pure:
            os.environ[PURE_PYTHON_ENV] = "1"
        else:
            os.environ.pop(PURE_PYTHON_ENV, None)
        use_compiled.cache_clear()
        text_cleaner.cache_clear()

    saved = os.environ.get(PURE_PYTHON_ENV)
    rows: dict[str, tuple[float, float, np.ndarray]] = {}
    try:
        for name, pure in (("compiled (C extension)", False), ("pure Python", True)):
            choose(pure)
            if not pure and not use_compiled():
                continue  # the extension is not built here: only the pure path to show
            model = load_bundle(bundle_dir)
            score = tweet_scorer(model)
            if score is None:
                return []

            def one_by_one(batch: Sequence[str], score: Callable[[str], float] = score) -> Any:
                return [score(t) for t in batch]

            one = tweets_per_second(one_by_one, tweets, 1)
            many = tweets_per_second(model.predict_proba, tweets, 1000)
            rows[name] = (one, many, model.predict_proba(tweets))
    finally:
        choose(None)
    lines = [
        "",
        "### TF-IDF + LR: compiled extension vs pure-Python path (in process)",
        "",
        "| path | single tweet µs | single tweets/s | batch 1000 tweets/s |",
        "|---|---|---|---|",
    ]
    for name, (one, many, _) in rows.items():
        lines.append(f"| {name} | {1e6 / one:.1f} | {one:,.0f} | {many:,.0f} |")
    if len(rows) == 2:
        (c_one, c_many, c_proba), (p_one, p_many, p_proba) = rows.values()
        same = "identical" if np.array_equal(c_proba, p_proba) else "DIFFERENT"
        lines += [
            "",
            f"In this run the compiled path scored {c_one / p_one:.2f}x as many single tweets "
            f"a second as the pure-Python path, and {c_many / p_many:.2f}x as many in batches "
            f"of 1,000; the probabilities of the {len(tweets):,} tweets on both paths are "
            f"{same}.",
        ]
    return lines


def latest_bundles(tmp: Path) -> dict[str, tuple[Path, float | None, str]]:
    """family label -> (bundle folder, train seconds, run id) from MLflow."""
    import mlflow

    from airparadis.bundle import find_bundle
    from airparadis.settings import PlatformSettings
    from airparadis.tracking import configure_tracking
    from training_jobs.compare import latest_runs

    platform_settings = PlatformSettings()
    configure_tracking(platform_settings)
    found: dict[str, tuple[Path, float | None, str]] = {}
    for label, run in latest_runs(platform_settings.experiment).items():
        local = Path(
            mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id, artifact_path="model", dst_path=str(tmp / run.info.run_id)
            )
        )
        found[label] = (find_bundle(local), run.data.metrics.get("train_seconds"), run.info.run_id)
    return found


def train_slices(
    missing: list[str], data: list[Path], tmp: Path
) -> dict[str, tuple[Path, float | None, str]]:
    from training_jobs.data import load_sources
    from training_jobs.families import get_family
    from training_jobs.split import split_data, stratified_sample

    frame, _ = load_sources(data)
    split = split_data(stratified_sample(frame, SLICE_ROWS, 42), 0.1, 0.1, 42)
    trained: dict[str, tuple[Path, float | None, str]] = {}
    for name in missing:
        family = get_family(name)
        started = time.perf_counter()
        model = family.fit(split.train, split.validation, QUICK_PARAMS[name], 42)
        seconds = time.perf_counter() - started
        family.save(model, tmp / f"slice-{name}")
        trained[name] = (tmp / f"slice-{name}", seconds, f"{SLICE_ROWS:,}-tweet slice")
    return trained


def measure(data: list[Path]) -> str:
    from airparadis.bundle import load_bundle
    from training_jobs.data import load_sources
    from training_jobs.families import FAMILY_NAMES
    from training_jobs.split import split_data

    frame, _ = load_sources(data)
    tweets = split_data(frame, 0.1, 0.1, 42).test["text"].tolist()[:2000]
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        bundles = latest_bundles(tmp)
        missing = [n for n in FAMILY_NAMES if not any(k.split(" ")[0] == n for k in bundles)]
        bundles.update(train_slices(missing, data, tmp))

        lines += [
            "### Training time and in-process scoring speed (`predict_proba`, tweets/s)",
            "",
            "| family | format | trained on | train s | bundle MB "
            "| batch 1 | batch 32 | batch 1000 |",
            "|---|---|---|---|---|---|---|---|",
        ]
        rnn_params: tuple[dict[str, Any], int] | None = None
        onnx_bundle: Any = None
        sklearn_bundle: Path | None = None
        for label, (bundle_dir, seconds, source) in sorted(bundles.items()):
            model = load_bundle(bundle_dir)
            speeds = [tweets_per_second(model.predict_proba, tweets, b) for b in BATCHES]
            trained_on = source if "slice" in source else f"run {source[:8]}"
            lines.append(
                f"| {label} | {model.info.format} | {trained_on} | "
                f"{seconds if seconds is not None else float('nan'):.0f} | "
                f"{_size(bundle_dir) / 1e6:.1f} | " + " | ".join(f"{s:,.0f}" for s in speeds) + " |"
            )
            if model.info.family == "rnn":
                rnn_params = (model.info.params, model.vocabulary.size)  # type: ignore[attr-defined]
            if model.info.format == "onnx" and onnx_bundle is None:
                onnx_bundle = model
            if model.info.format == "sklearn" and sklearn_bundle is None:
                sklearn_bundle = bundle_dir

        if sklearn_bundle is not None:
            lines += fastpath_comparison(sklearn_bundle, tweets)

        lines += ["", "### Artifact sizes (they depend on the architecture only)", ""]
        lines += ["| family | artifact | MB |", "|---|---|---|"]
        if rnn_params is not None:
            for name, size in rnn_sizes(*rnn_params, tmp).items():
                lines.append(f"| rnn | {name} | {size / 1e6:.2f} |")
        for name, size in onnx_sizes(tmp).items():
            lines.append(f"| transformer | {name} | {size / 1e6:.2f} |")

        if onnx_bundle is not None:
            baseline = pytorch_baseline(tweets)
            precision = onnx_bundle.info.params.get("export_precision", "?")
            lines += [
                "",
                "### Transformer: served ONNX export vs plain `transformers` PyTorch forward",
                "",
                "| runtime | batch 1 | batch 32 | batch 1000 |",
                "|---|---|---|---|",
            ]
            for name, predict in (
                ("PyTorch (transformers, fp32, pad to longest)", baseline),
                (f"ONNX Runtime ({precision}, length-sorted dynamic padding)",
                 onnx_bundle.predict_proba),
            ):  # fmt: skip
                speeds = [tweets_per_second(predict, tweets, b) for b in BATCHES]
                lines.append(f"| {name} | " + " | ".join(f"{s:,.0f}" for s in speeds) + " |")
    header = [
        SECTION,
        "",
        f"Written by `python -m benchmarks.families` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, one process, "
        "test-split tweets (seed 42). Throughput is single-process wall clock on a shared machine: "
        "compare rows of one run, not across runs.",
        "",
    ]
    return "\n".join(header + lines) + "\n"


def write_section(out: Path, section: str, title: str = SECTION) -> None:
    """Replace the `title` section of `out` (or append it), keeping the rest."""
    text = out.read_text() if out.is_file() else "# Benchmarks\n"
    if title in text:
        before, _, after = text.partition(title)
        rest = after.split("\n## ", 1)
        text = before + (("## " + rest[1]) if len(rest) > 1 else "")
    out.write_text(text.rstrip("\n") + "\n\n" + section)


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--seconds", type=float, default=BUDGET_S, help="Per measured point.")
    args = parser.parse_args()
    globals()["BUDGET_S"] = args.seconds
    section = measure(args.data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_section(args.out, section)
    print(section)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
