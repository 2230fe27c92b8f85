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
  feedback), on the unchanged generic model. Beside it: served Sentiment140 accuracy and
  ROC-AUC (the fixed test-split sample the gate's served criterion reads) and the served
  milliseconds per single tweet.

`--quick` reads 0 / 100 / 1,000 / all without the weighted retrains (the weighted columns
then show a dash).

A leave-one-airline-out reading (pool from two airlines, measured on the third's later slice)
stands in for airlines not in the shared data. Sentiment140 accuracy (test split, raw score at
the raw threshold, as the gate reads it) is reported beside. The section "## Airline domain:
learning curve" of the output file is replaced (appended when absent).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks import bench_parser
from benchmarks.families import write_section

SECTION = "## Airline domain: learning curve"
AIRLINE_FILE = "data/airline/us_airline_tweets.united_southwest_delta.parquet"
POOL_SHARE = 0.75
COUNTS = (0, 50, 100, 300, 1000, None)  # None: the whole pool
QUICK_COUNTS = (0, 100, 1000, None)
LOAO_COUNTS = (0, 100, 1000, None)
GOALS = {0: 0.75, 100: 0.82, 1000: 0.88, None: 0.90}


@dataclass(frozen=True)
class Reading:
    raw: float
    prior: float | None
    calibrated: float
    weighted: float
    both: float
    weight: float | None
    s140_raw: float
    retrain_s: float
    head: float = float("nan")
    head_method: str = ""
    head_s140_auc: float = float("nan")
    head_s: float = 0.0
    head_s140_acc: float = float("nan")
    head_features: str = ""
    head_ms: float = float("nan")
    prior_reason: str = ""


def airline_frames(shared: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = pd.read_parquet(shared / AIRLINE_FILE)
    frame = frame[frame["target"].notna()].reset_index(drop=True)
    frame = frame.assign(label=frame["target"].astype("int8"))
    cut = int(len(frame) * POOL_SHARE)
    return frame.iloc[:cut].reset_index(drop=True), frame.iloc[cut:].reset_index(drop=True)


def macro_f1(model: object, frame: pd.DataFrame) -> float:
    from airparadis.metrics import binary_metrics

    proba = model.predict_proba(frame["text"].tolist())  # type: ignore[attr-defined]
    threshold = model.info.threshold  # type: ignore[attr-defined]
    return float(binary_metrics(frame["label"].to_numpy(), proba, threshold)["macro_f1"])


def calibrated_model(
    model: object,
    directory: Path,
    feedback: pd.DataFrame,
    head: bool = False,
    train: pd.DataFrame | None = None,
) -> object:
    """`model` saved to `directory` with a calibration fitted on `feedback`, as served (with
    `head`, the domain head competes as in `calibrate` and `retrain`: with a generic sample of
    `train` and the sentence-embedding features when the settings allow them)."""
    from airparadis.bundle import load_bundle
    from airparadis.calibration import CalibrationError, raw_threshold, save_calibration
    from airparadis.calibration_fit import fit_calibration
    from airparadis.embedding import exported_encoder
    from training_jobs.feedback_fit import CALIBRATION_FOLDS
    from training_jobs.retrain import generic_sample
    from training_jobs.settings import TrainingSettings

    settings = TrainingSettings()
    try:
        calibration = fit_calibration(
            model.predict_proba(feedback["text"].tolist()),  # type: ignore[attr-defined]
            feedback["label"].to_numpy(),
            raw_threshold(model.info),  # type: ignore[attr-defined]
            settings.calibration_min_labels,
            CALIBRATION_FOLDS,
            settings.seed,
            texts=feedback["text"].tolist() if head else None,
            generic=(
                generic_sample(model, train, settings)  # type: ignore[arg-type]
                if head and train is not None
                else None
            ),
            encoder_dir=exported_encoder() if head and settings.head_embeddings else None,
        )
    except CalibrationError:
        return model
    save_calibration(directory, model.info, calibration)  # type: ignore[attr-defined]
    return load_bundle(directory)


def read_curve(
    generic: object,
    generic_dir: Path,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    test: pd.DataFrame,
    pool: pd.DataFrame,
    heldout: pd.DataFrame,
    counts: tuple[int | None, ...],
    tmp: Path,
    retrain: bool = True,
) -> dict[int | None, Reading]:
    from airparadis.bundle import load_bundle
    from airparadis.calibration import save_calibration, training_prior
    from airparadis.calibration_fit import fit_heldout_map, prior_calibration
    from airparadis.label_shift import estimate_prior, prior_policy
    from airparadis.metrics import binary_metrics
    from training_jobs.families import get_family
    from training_jobs.feedback_fit import fit_with_feedback
    from training_jobs.gated_registration import served_generic_frame
    from training_jobs.retrain import (
        PRIOR_MIN_LOG_ODDS,
        PRIOR_MIN_TWEETS,
        domain_feedback,
        split_feedback,
    )
    from training_jobs.run_inputs import resolve_params
    from training_jobs.settings import TrainingSettings

    settings = TrainingSettings()
    family = get_family("tfidf_lr")
    params = resolve_params(family, settings, None)
    s140 = test["label"].to_numpy()
    generic_test_p = generic.predict_proba(test["text"].tolist())  # type: ignore[attr-defined]
    generic_s140 = binary_metrics(s140, generic_test_p)
    served_test = served_generic_frame(test, settings)
    served_labels, served_texts = served_test["label"].to_numpy(), served_test["text"].tolist()
    generic_p = generic.predict_proba(served_texts)  # type: ignore[attr-defined]
    generic_served = binary_metrics(served_labels, generic_p, generic.info.threshold)  # type: ignore[attr-defined]
    raw = macro_f1(generic, heldout)
    readings: dict[int | None, Reading] = {}
    for count in counts:
        feedback = pool if count is None else pool.iloc[:count]
        if count == 0:
            # The label-shift policy on the pool's unlabelled tweets (the live window), as
            # `calibrate --live-prior` applies it: served only when confident and distant.
            prior = training_prior(generic.info)  # type: ignore[attr-defined]
            # Trained as `airparadis train` trains: the EM map comes from the test split.
            heldout_map = fit_heldout_map(generic_test_p, s140)
            pool_p = generic.predict_proba(pool["text"].tolist())  # type: ignore[attr-defined]
            estimate = estimate_prior(pool_p, prior, heldout=heldout_map)
            decision = prior_policy(
                estimate, min_tweets=PRIOR_MIN_TWEETS,
                min_log_odds=PRIOR_MIN_LOG_ODDS, heldout=heldout_map,
            )  # fmt: skip
            with_prior = raw
            if decision.apply:
                target = tmp / "prior"
                _copy_bundle(generic_dir, target)
                calibration = prior_calibration(estimate, heldout=heldout_map)
                save_calibration(target, generic.info, calibration)  # type: ignore[attr-defined]
                with_prior = macro_f1(load_bundle(target), heldout)
            readings[count] = Reading(
                raw, with_prior, raw, raw, raw, None, generic_s140["accuracy"], 0.0, raw,
                "none", generic_served["roc_auc"], head_s140_acc=generic_served["accuracy"],
                prior_reason=decision.reason,
            )  # fmt: skip
            continue
        earlier, _ = split_feedback(feedback)
        target = tmp / f"cal-{count}"
        _copy_bundle(generic_dir, target)
        calibrated = macro_f1(calibrated_model(load_bundle(target), target, earlier), heldout)
        head_target = tmp / f"head-{count}"
        _copy_bundle(generic_dir, head_target)
        started = time.perf_counter()
        head_model = calibrated_model(
            load_bundle(head_target), head_target, earlier, head=True, train=train
        )
        head_s = time.perf_counter() - started
        head_info = head_model.info.calibration  # type: ignore[attr-defined]
        head_p = head_model.predict_proba(served_texts)  # type: ignore[attr-defined]
        head_served = binary_metrics(served_labels, head_p, head_model.info.threshold)  # type: ignore[attr-defined]
        head_fields: tuple[float, str, float, float] = (
            macro_f1(head_model, heldout),
            head_info["method"] if head_info else "none",
            float(head_served["roc_auc"]),
            head_s,
        )
        head_extra: dict[str, Any] = {
            "head_s140_acc": float(head_served["accuracy"]),
            "head_features": (head_info or {}).get("head_features") or "",
            "head_ms": single_tweet_ms(head_model, heldout["text"].tolist()[:200]),
        }
        if not retrain:
            nan = float("nan")
            readings[count] = Reading(
                raw, None, calibrated, nan, nan, None, nan, 0.0, *head_fields, **head_extra
            )
            print(count, readings[count], flush=True)
            continue
        domain = domain_feedback(feedback, settings)
        started = time.perf_counter()
        model, weight, _ = fit_with_feedback(
            family, train, validation, domain, params, settings.seed
        )
        seconds = time.perf_counter() - started
        retrained_dir = tmp / f"retrained-{count}"
        family.save(model, retrained_dir)
        retrained = load_bundle(retrained_dir)
        weighted = macro_f1(retrained, heldout)
        both_model = (
            calibrated_model(retrained, retrained_dir, domain.select)
            if len(domain.select)
            else retrained
        )
        s140_raw = binary_metrics(s140, retrained.predict_proba(test["text"].tolist()))
        readings[count] = Reading(
            raw,
            None,
            calibrated,
            weighted,
            macro_f1(both_model, heldout),
            weight,
            s140_raw["accuracy"],
            seconds,
            *head_fields,
            **head_extra,
        )
        print(count, readings[count], flush=True)
    return readings


def single_tweet_ms(model: object, texts: list[str]) -> float:
    """Mean milliseconds to score one tweet the way a single-tweet request is served."""
    from airparadis.bundle import tweet_scorer

    scorer = tweet_scorer(model)  # type: ignore[arg-type]
    started = time.perf_counter()
    for text in texts:
        if scorer is not None:
            scorer(text)
        else:
            model.predict_proba([text])  # type: ignore[attr-defined]
    return 1000 * (time.perf_counter() - started) / max(len(texts), 1)


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


def _copy_bundle(source: Path, target: Path) -> None:
    import shutil

    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)


def _cell(value: float, digits: int) -> str:
    return "–" if value != value else f"{value:.{digits}f}"


def _label(count: int | None, pool: int) -> str:
    return f"all ({pool:,})" if count is None else f"{count:,}"


def curve_table(readings: dict[int | None, Reading], pool: int, goals: bool) -> list[str]:
    lines = [
        "| feedbacks | raw | prior policy (served) | calibrated | weighted retrain | both |"
        " domain head | goal | head chosen | head features | head fit s | Sentiment140 acc."
        " (raw) | Sentiment140 acc. (served) | Sentiment140 ROC-AUC (served) | ms/tweet"
        " (served) | weight | fit s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for count, r in readings.items():
        goal = f"≥ {GOALS[count]:.2f}" if goals and count in GOALS else ""
        prior = f"{r.prior:.3f}" if r.prior is not None else ""
        weight = f"{r.weight:g}" if r.weight is not None else ""
        fit = f"{r.retrain_s:.0f}" if r.retrain_s else ""
        lines.append(
            f"| {_label(count, pool)} | {r.raw:.3f} | {prior} | {r.calibrated:.3f} |"
            f" {_cell(r.weighted, 3)} | {_cell(r.both, 3)} | {_cell(r.head, 3)} | {goal} |"
            f" {r.head_method} | {r.head_features} | {f'{r.head_s:.1f}' if r.head_s else ''} |"
            f" {_cell(r.s140_raw, 4)} | {_cell(r.head_s140_acc, 4)} |"
            f" {_cell(r.head_s140_auc, 4)} | {_cell(r.head_ms, 2)} | {weight} | {fit} |"
        )
    reasons = [r.prior_reason for r in readings.values() if r.prior_reason]
    if reasons:
        lines += ["", f"Prior policy at 0 labels: {reasons[0]}."]
    return lines


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
        "rest to choose the weight and fit its calibration). Sentiment140 accuracy: test "
        "split, raw score, as the gate reads generic quality.",
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
        readings = read_curve(
            generic, generic_dir, split.train, split.validation, split.test, pool, heldout,
            QUICK_COUNTS if quick else COUNTS, tmp, retrain=not quick,
        )  # fmt: skip
        lines += curve_table(readings, len(pool), goals=True)
        timings = [(False, *time_retrain(generic, generic_dir, pool.iloc[:1000], data,
                                         tmp / "home-head", refit=False))]  # fmt: skip
        if not quick:
            timings.append((True, *time_retrain(generic, generic_dir, pool.iloc[:1000], data,
                                                tmp / "home-refit", refit=True)))  # fmt: skip
        load = os.getloadavg()[0]
        lines += [
            "",
            f"Generic model fit: {generic_s:.0f} s. `airparadis retrain` end to end with 1,000 "
            "feedbacks replayed into a registry whose champion is the generic model (export "
            "feedback, fit and cross-validate the calibration candidates, log to MLflow, gate, "
            "register; with the refit: load and split the data, fit the candidate weights, "
            "export, calibrate, score):",
            "",
            *[
                f"- {'`retrain_refit_generic=true`' if refit else 'default'}: {seconds:.0f} s "
                f"({what})"
                for refit, seconds, what in timings
            ],
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
