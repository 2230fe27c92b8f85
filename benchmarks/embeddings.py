"""The recurrent network's embedding choices side by side, on one CPU-sized slice.

Every choice (`learned`, `word2vec`, `fasttext`, `minilm`, each `fine-tuned` and `frozen`, and
MiniLM frozen at its full width of 384 beside the default width's projection)
trains the family's default network on the same stratified slice of Sentiment140 and the
same split, for the same epochs (best epoch by validation accuracy kept, as `fit` does), is
exported to its served TFLite bundle, and is scored through `load_bundle` on the generic test
split and on every binary tweet of the airline file (never trained or tuned on here). The
Markdown table goes to stdout, and to `--out` when given (docs/models.md quotes it).

    nice -n 10 python -m benchmarks.embeddings --rows 40000 --epochs 2
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from airparadis.bundle import load_bundle
from airparadis.metrics import binary_metrics
from benchmarks import bench_parser
from training_jobs.data import load_sources
from training_jobs.families import get_family
from training_jobs.families.rnn_embeddings import EMBEDDING_MODES, EMBEDDINGS
from training_jobs.split import split_data, stratified_sample

AIRLINE_FILE = Path("../shared/data/airline/us_airline_tweets.united_southwest_delta.parquet")
METRICS = ("accuracy", "macro_f1", "roc_auc")


def compare(
    data: list[Path], airline: Path, rows: int, epochs: int, seed: int, choices: list[str]
) -> list[dict[str, Any]]:
    """One row of figures per `embedding/mode[/embedding_dim]` choice."""
    frame, _ = load_sources(data)
    split = split_data(stratified_sample(frame, rows, seed), 0.1, 0.1, seed)
    airline_frame, _ = load_sources([airline])
    family = get_family("rnn")
    results = []
    for choice in choices:
        embedding, mode, *width = choice.split("/")  # e.g. minilm/frozen/384
        params: dict[str, Any] = {"embedding": embedding, "embedding_mode": mode, "epochs": epochs}
        if width:
            params["embedding_dim"] = int(width[0])
        started = time.perf_counter()
        model = family.fit(split.train, split.validation, params, seed)
        seconds = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as tmp:
            family.save(model, Path(tmp))
            served = load_bundle(Path(tmp))
            row: dict[str, Any] = {
                "choice": choice,
                "train_s": seconds,
                "best_epoch": served.info.params["best_epoch"],
            }
            for name, scored in (("test", split.test), ("airline", airline_frame)):
                proba = served.predict_proba(scored["text"].tolist())
                values = binary_metrics(scored["label"].to_numpy(), proba, served.info.threshold)
                row.update({f"{name}_{k}": values[k] for k in METRICS})
        print(_markdown([row]).splitlines()[-1], flush=True)
        results.append(row)
    return results


def _markdown(results: list[dict[str, Any]]) -> str:
    header = (
        "| embedding / mode | test accuracy | test macro-F1 | test ROC-AUC | airline accuracy "
        "| airline macro-F1 | airline ROC-AUC | best epoch | train s |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    lines = [header]
    for r in results:
        figures = " | ".join(f"{r[f'{s}_{k}']:.4f}" for s in ("test", "airline") for k in METRICS)
        lines.append(f"| {r['choice']} | {figures} | {r['best_epoch']} | {r['train_s']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = bench_parser(__doc__)
    parser.set_defaults(out=None)
    parser.add_argument("--airline", type=Path, default=AIRLINE_FILE)
    parser.add_argument("--rows", type=int, default=40_000, help="Tweets sampled before split.")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--choices", nargs="+",
        default=[*(f"{e}/{m}" for e in EMBEDDINGS for m in EMBEDDING_MODES), "minilm/frozen/384"],
    )  # fmt: skip
    args = parser.parse_args()
    results = compare(args.data, args.airline, args.rows, args.epochs, args.seed, args.choices)
    table = _markdown(results)
    print(table)
    if args.out is not None:
        args.out.write_text(table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
