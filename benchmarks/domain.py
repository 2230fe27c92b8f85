"""Learning curve on airline tweets: macro-F1 on a later, held-out slice against the number of
labelled feedbacks replayed, for each way the product learns from them.

The shared airline file is sorted by time. Its binary rows are cut once: the earlier 75% is
the replay pool (feedback arrives in that order), the later 25% is measured on and never used
for fitting or choosing anything. Each reading runs the product's own code on the first N
pool tweets, split as `retrain` and `calibrate` split feedback (the latest share kept for the
gate):

- raw: the generic model (TF-IDF + LR on the Sentiment140 train split, product defaults);
- prior policy (0 labels): the label-shift policy of `airparadis.label_shift.prior_policy`
  on the pool's unlabelled tweets (standing for the live window); when it applies, the
  generic model served with the EM prior as a "prior" calibration, as `calibrate --live-prior`
  registers it;
- calibrated: `airparadis calibrate`'s calibrator on the feedback (maps of the logit);
- weighted retrain: `airparadis retrain`'s model (weight chosen on held-out feedback), raw;
- both: that model with the calibration `retrain` fits;
- domain head: what `calibrate` and `retrain` now fit on the feedback (identity, Platt or the
  domain head of `airparadis.domain_head`, n-grams alone or with MiniLM sentence embeddings,
  fitted beside a generic Sentiment140 sample, all chosen by cross-validation on the
  feedback), on the unchanged generic model. Beside it, on the fixed test-split sample the
  gate's generic criteria read: Sentiment140 accuracy of the head at its generic prior (its
  generic intercept, deciding at 0.5: what the gate's generic criterion and the issue's
  generic goal read), served Sentiment140 accuracy and ROC-AUC (at the airline's prior), and
  the served milliseconds per single tweet.

`--quick` reads 0 / 100 / 1,000 / all without the weighted retrains (the weighted columns
then show a dash).

A leave-one-airline-out reading (pool from two airlines, measured on the third's later slice)
stands in for airlines not in the shared data. Sentiment140 accuracy (test split, raw score at
the raw threshold, as the gate reads it) is reported beside. The section "## Airline domain:
learning curve" of the output file is replaced (appended when absent).

Modules: `benchmarks.domain_curve` (the readings), `benchmarks.domain_report` (the table and
its prose), this one (the run, and `retrain` timed end to end).
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from benchmarks import bench_parser
from benchmarks.domain_curve import POOL_SHARE, airline_frames, read_curve
from benchmarks.domain_report import curve_table
from benchmarks.families import write_section

SECTION = "## Airline domain: learning curve"
COUNTS = (0, 50, 100, 300, 1000, None)  # None: the whole pool
QUICK_COUNTS = (0, 100, 1000, None)
LOAO_COUNTS = (0, 100, 1000, None)
TUNED_COUNTS = (1000, None)
"""Where the fine-tuned encoder is read (it costs minutes per reading on a CPU)."""
TUNED_ENV = "AIRPARADIS_TRAIN_HEAD_ENCODER_TUNING_MIN_LABELS"


def tuned_encoder_curve(
    generic: object, generic_dir: Path, split: object, pool: pd.DataFrame,
    heldout: pd.DataFrame, tmp: Path,
) -> tuple[list[str], float]:  # fmt: skip
    """The table of the head on a MiniLM fine-tuned on the feedback (the product's opt-in
    `head_encoder_tuning_min_labels`, set to its least, 2, for this reading), and its seconds."""
    import os
    from unittest import mock

    started = time.perf_counter()
    with mock.patch.dict(os.environ, {TUNED_ENV: "2"}):
        readings = read_curve(
            generic, generic_dir, split.train, split.validation, split.test,  # type: ignore[attr-defined]
            pool, heldout, TUNED_COUNTS, tmp, retrain=False,
        )  # fmt: skip
    return curve_table(readings, len(pool), goals=True), time.perf_counter() - started


def time_retrain(
    generic: object,
    generic_dir: Path,
    feedback: pd.DataFrame,
    data: list[Path],
    home: Path,
    refit: bool,
) -> tuple[float, str]:
    """(seconds, what it registered) of `airparadis retrain` (tfidf_lr) with `feedback`
    replayed into the store of a registry whose champion is the generic model; `refit` sets
    `retrain_refit_generic`."""
    import os

    from airparadis import LABELS
    from airparadis.settings import PlatformSettings
    from model_server.feedback import FeedbackStore, default_sqlite_url
    from training_jobs.retrain import retrain
    from training_jobs.settings import TrainingSettings

    saved = {k: os.environ.get(k) for k in ("AIRPARADIS_HOME", "MLFLOW_TRACKING_URI")}
    os.environ["AIRPARADIS_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        register_champion(generic, generic_dir)
        store = FeedbackStore(default_sqlite_url(home))
        proba = generic.predict_proba(feedback["text"].tolist())  # type: ignore[attr-defined]
        for text, label, p in zip(feedback["text"], feedback["label"], proba, strict=True):
            predicted = LABELS[int(p >= 0.5)]
            store.add({"tweet": text, "predicted_label": predicted, "probability": float(p),
                       "verdict": "correct" if predicted == LABELS[label] else "wrong",
                       "correct_label": LABELS[label]})  # fmt: skip
        started = time.perf_counter()
        result = retrain(
            "tfidf_lr", TrainingSettings(data=data, retrain_refit_generic=refit),
            PlatformSettings(), home / "work",
        )  # fmt: skip
        seconds = time.perf_counter() - started
        calibration = result.calibration
        what = "generic refit" if hasattr(result, "table") else "domain head alone"
        return seconds, f"{what}, calibration {calibration.method if calibration else 'none'}"
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def direction_line(generic: object, train: pd.DataFrame) -> str:
    """How long the head's generic sample and sentiment direction take before the first
    reading (the direction read from the cache when an earlier run embedded the same sample
    with the same encoder)."""
    from airparadis.embedding import exported_encoder
    from training_jobs.generic_direction import DIRECTIONS_DIR
    from training_jobs.retrain import generic_sample
    from training_jobs.settings import TrainingSettings

    settings = TrainingSettings()
    directions = exported_encoder() / DIRECTIONS_DIR
    before = set(directions.glob("*.npz"))
    started = time.perf_counter()
    generic_sample(generic, train, settings, 0, exported_encoder())  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    cached = set(directions.glob("*.npz")) == before
    return (
        f"Generic sample and sentiment direction of the head ({settings.head_generic_rows:,} and "
        f"{settings.head_direction_rows:,} training tweets): {seconds:.1f} s, direction "
        f"{'read from the cache' if cached else 'embedded and fitted'} (once per encoder and "
        "sample; every later `calibrate` or `retrain` reads the cache)."
    )


def clear_embedding_cache() -> None:
    """Empty training's embedding cache (`airparadis.embedding.bulk_runtime`), so the next
    retrain pays for every embedding as the first one after a new encoder or data set does."""
    import shutil

    from airparadis.embedding import bulk_runtime

    cache = bulk_runtime().cache
    if cache is not None:
        shutil.rmtree(cache, ignore_errors=True)


def register_champion(generic: object, generic_dir: Path) -> None:
    """The generic bundle as the champion of the current (bench) registry."""
    import mlflow

    from airparadis.settings import PlatformSettings
    from airparadis.tracking import configure_tracking
    from training_jobs.registry import log_bundle, register_version, set_alias

    platform = PlatformSettings()
    configure_tracking(platform)
    with mlflow.start_run(run_name="bench-generic"):
        uri = log_bundle(generic, generic_dir)  # type: ignore[arg-type]
    version = register_version(uri, platform.model_name, {"family": "tfidf_lr"})
    set_alias(platform.model_name, version, platform.champion_alias, uri)


def measure(data: list[Path], shared: Path, loao: bool, quick: bool = False) -> str:
    import os
    import tempfile

    from airparadis.bundle import load_bundle
    from training_jobs.data import load_sources
    from training_jobs.families import get_family
    from training_jobs.split import split_data

    frame, _ = load_sources(data)
    split = split_data(frame, 0.1, 0.1, 42)
    pool, heldout = airline_frames(shared)
    family = get_family("tfidf_lr")
    lines = [
        SECTION,
        "",
        "`python -m benchmarks.domain`: TF-IDF + LR (product defaults) trained on the "
        f"Sentiment140 train split ({len(split.train):,} tweets). Airline binary tweets in time "
        f"order: replay pool = the earlier {POOL_SHARE:.0%} ({len(pool):,}), measured on the "
        f"later {len(heldout):,} (positive share {heldout['label'].mean():.2f}), never fitted "
        "or chosen on. Binary macro-F1 at each model's served threshold. Feedback is split as "
        "the product splits it (latest 20% for the gate; `retrain` also holds out 25% of the "
        "rest to choose the weight and fit its calibration). Sentiment140 acc. (raw): test "
        "split, raw score at the raw threshold; the head's Sentiment140 columns read the "
        "gate's fixed sample of it.",
        "",
    ]
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        started = time.perf_counter()
        generic_model = family.fit(split.train, split.validation, {}, 42)
        generic_s = time.perf_counter() - started
        generic_dir = tmp / "generic"
        family.save(generic_model, generic_dir)
        generic = load_bundle(generic_dir)
        generic.info.params["train_prior"] = float(split.train["label"].mean())
        lines += [direction_line(generic, split.train), ""]
        readings = read_curve(
            generic, generic_dir, split.train, split.validation, split.test, pool, heldout,
            QUICK_COUNTS if quick else COUNTS, tmp, retrain=not quick,
        )  # fmt: skip
        lines += curve_table(readings, len(pool), goals=True)
        tuned_lines, tuned_s = tuned_encoder_curve(generic, generic_dir, split, pool, heldout, tmp)
        lines += [
            "",
            "Domain head on a MiniLM fine-tuned on the feedback (`HEAD_ENCODER_TUNING_MIN_LABELS`"
            " reached; the encoder is trained on the earlier 90% of the fit slice plus the "
            "head's generic rows, the latest 10% picks the epoch kept, and the gate's slice is "
            "never seen; head fit s includes the tuning and the export; "
            f"{tuned_s:.0f} s for both readings):",
            "",
            *tuned_lines,
        ]
        # The first retrain after the embedding cache is emptied, then one that finds it
        # (another home and registry, the same feedback and generic samples).
        clear_embedding_cache()
        timings = [
            ("default, embedding cache empty", *time_retrain(
                generic, generic_dir, pool.iloc[:1000], data, tmp / "home-cold", refit=False)),
            ("default, embedding cache filled by the run above", *time_retrain(
                generic, generic_dir, pool.iloc[:1000], data, tmp / "home-warm", refit=False)),
        ]  # fmt: skip
        if not quick:
            timings.append(("`retrain_refit_generic=true`", *time_retrain(
                generic, generic_dir, pool.iloc[:1000], data, tmp / "home-refit",
                refit=True)))  # fmt: skip
        load = os.getloadavg()[0]
        lines += [
            "",
            f"Generic model fit: {generic_s:.0f} s. `airparadis retrain` end to end with 1,000 "
            "feedbacks replayed into a registry whose champion is the generic model (export "
            "feedback, fit and cross-validate the calibration candidates, log to MLflow, gate, "
            "register; with the refit: load and split the data, fit the candidate weights, "
            "export, calibrate, score):",
            "",
            *[f"- {how}: {seconds:.0f} s ({what})" for how, seconds, what in timings],
            "",
            f"1-minute load average {load:.1f} on {os.cpu_count()} cores when it ended "
            "(fit s above: the weight fits alone; head fit s: choosing and fitting the "
            "calibration, domain head included).",
        ]
        if quick:
            lines += ["", "Run with `--quick`: readings at 0 / 100 / 1,000 / all, no "
                      "weighted retrain in this run."]  # fmt: skip
        if loao:
            lines += ["", "Leave one airline out (pool: two airlines' earlier tweets; measured "
                      "on the third airline's later slice; no retraining, to keep the bench "
                      "short):", ""]  # fmt: skip
            for airline in sorted(pool["airline"].unique()):
                others = pool[pool["airline"] != airline].reset_index(drop=True)
                target = heldout[heldout["airline"] == airline].reset_index(drop=True)
                lines += [f"**{airline}** (measured on {len(target):,} tweets, positive "
                          f"share {target['label'].mean():.2f}):", ""]  # fmt: skip
                part = read_curve(
                    generic, generic_dir, split.train, split.validation, split.test, others,
                    target, LOAO_COUNTS, tmp, retrain=False,
                )  # fmt: skip
                lines += [*curve_table(part, len(others), goals=False), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> None:
    import os

    parser = bench_parser(__doc__)
    parser.add_argument(
        "--shared",
        type=Path,
        default=Path(os.environ.get("AIRPARADIS_SHARED_DIR", "../shared")),
    )
    parser.add_argument("--no-loao", action="store_true", help="Skip leave-one-airline-out.")
    parser.add_argument(
        "--quick", action="store_true", help="0/100/1,000/all, no weighted retrain."
    )
    args = parser.parse_args()
    section = measure(args.data, args.shared, not args.no_loao, args.quick)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_section(args.out, section, SECTION)
    print(section)


if __name__ == "__main__":
    main()
