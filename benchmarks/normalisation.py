"""Token normalisation (none, stem, lemma) measured on TF-IDF + LR: quality and serving cost.

For each normalisation, the default TF-IDF + LR is fitted on the training split of the given
Sentiment140 sources (fixed split, seed 42) and scored on their test split and on the airline
tweets (negative and positive rows); then the single-tweet path is timed on test tweets:
cleaning plus normalising alone, and the whole `score_tweet` of the bundle, both per tweet.
Prints a Markdown table for docs/models.md.

    python -m benchmarks.normalisation DATA [DATA ...] --airline FILE [--rows N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from airparadis.bundle import load_bundle, tweet_scorer
from airparadis.metrics import binary_metrics
from airparadis.text import NORMALISATIONS, clean_tweet
from training_jobs.data import load_sources
from training_jobs.families.tfidf_lr import TfidfLogisticRegression
from training_jobs.split import split_data, stratified_sample


def _per_tweet_us(texts: list[str], call: object, repeats: int = 5) -> float:
    """Microseconds per tweet, the best of `repeats` passes (the least disturbed by other
    processes on a shared machine)."""
    assert callable(call)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for text in texts:
            call(text)
        best = min(best, time.perf_counter() - start)
    return best / len(texts) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data", nargs="+", type=Path)
    parser.add_argument("--airline", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=None, help="stratified sample of the data")
    args = parser.parse_args()
    frame, _ = load_sources(args.data)
    frame = stratified_sample(frame, args.rows, seed=42)
    split = split_data(frame, 0.1, 0.1, seed=42)
    airline, _ = load_sources([args.airline])
    timing = split.test["text"].tolist()[:5000]
    print(f"train {len(split.train)}, test {len(split.test)}, airline {len(airline)}")
    print(
        "| normalisation | test accuracy | test ROC-AUC | airline macro-F1 | airline negative "
        "recall | airline ROC-AUC | fit s | clean+normalise µs/tweet | score_tweet µs/tweet |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    family = TfidfLogisticRegression()
    for name in NORMALISATIONS:
        started = time.perf_counter()
        model = family.fit(split.train, split.validation, {"normalisation": name}, seed=42)
        fit_s = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as tmp:
            family.save(model, Path(tmp))
            served = load_bundle(Path(tmp))
        test = binary_metrics(
            split.test["label"].to_numpy(), served.predict_proba(split.test["text"].tolist())
        )
        domain = binary_metrics(
            airline["label"].to_numpy(), served.predict_proba(airline["text"].tolist())
        )
        clean_us = _per_tweet_us(timing, lambda t, n=name: clean_tweet(t, n))
        scorer = tweet_scorer(served)
        score_us = _per_tweet_us(timing, scorer) if scorer is not None else float("nan")
        print(
            f"| {name} | {test['accuracy']:.4f} | {test['roc_auc']:.4f} | "
            f"{domain['macro_f1']:.4f} | {domain['recall_negative']:.4f} | "
            f"{domain['roc_auc']:.4f} | {fit_s:.0f} | {clean_us:.1f} | {score_us:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
