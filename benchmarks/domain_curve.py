"""The learning curve's readings: each way the product learns from feedback, fitted on the
first N pool tweets and measured on the later airline slice (`benchmarks.domain`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

AIRLINE_FILE = "data/airline/us_airline_tweets.united_southwest_delta.parquet"
POOL_SHARE = 0.75


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
    head_s140_generic: float = float("nan")
    """Sentiment140 accuracy of the head at its generic prior (the gate's generic criterion)."""
    s140_sample_raw: float = float("nan")
    """Sentiment140 accuracy of the raw model on the same sample."""


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
    from airparadis.embedding import bulk_runtime
    from training_jobs.feedback_fit import CALIBRATION_FOLDS
    from training_jobs.retrain import HeadEncoder, generic_sample, head_encoder
    from training_jobs.settings import TrainingSettings

    settings = TrainingSettings()
    encoder = (
        head_encoder(feedback, train, settings, directory.parent / f"{directory.name}-encoder")
        if head and train is not None
        else HeadEncoder(None)
    )
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
                generic_sample(model, train, settings, len(feedback), encoder.directory)  # type: ignore[arg-type]
                if head and train is not None
                else None
            ),
            encoder_dir=encoder.directory,
            encoder_runtime=bulk_runtime(),
            encoder_seen=encoder.seen,
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
    from airparadis.calibration import generic_prior_proba, save_calibration, training_prior
    from airparadis.calibration_fit import fit_heldout_map, prior_calibration
    from airparadis.label_shift import estimate_prior, prior_policy
    from airparadis.metrics import binary_metrics
    from training_jobs.families import get_family
    from training_jobs.feedback_fit import fit_with_feedback
    from training_jobs.gated_registration import gate_generic_sample
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
    served_test = gate_generic_sample(test, settings)
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
                copy_bundle(generic_dir, target)
                calibration = prior_calibration(estimate, heldout=heldout_map)
                save_calibration(target, generic.info, calibration)  # type: ignore[attr-defined]
                with_prior = macro_f1(load_bundle(target), heldout)
            readings[count] = Reading(
                raw, with_prior, raw, raw, raw, None, generic_s140["accuracy"], 0.0, raw,
                "none", generic_served["roc_auc"], head_s140_acc=generic_served["accuracy"],
                prior_reason=decision.reason, head_s140_generic=generic_served["accuracy"],
                s140_sample_raw=generic_served["accuracy"],
            )  # fmt: skip
            continue
        earlier, _ = split_feedback(feedback)
        target = tmp / f"cal-{count}"
        copy_bundle(generic_dir, target)
        calibrated = macro_f1(calibrated_model(load_bundle(target), target, earlier), heldout)
        head_target = tmp / f"head-{count}"
        copy_bundle(generic_dir, head_target)
        started = time.perf_counter()
        head_model = calibrated_model(
            load_bundle(head_target), head_target, earlier, head=True, train=train
        )
        head_s = time.perf_counter() - started
        head_info = head_model.info.calibration  # type: ignore[attr-defined]
        head_p = head_model.predict_proba(served_texts)  # type: ignore[attr-defined]
        head_served = binary_metrics(served_labels, head_p, head_model.info.threshold)  # type: ignore[attr-defined]
        at_prior_p, at_prior_t = generic_prior_proba(head_model, served_texts, head_p)  # type: ignore[arg-type]
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
            "head_s140_generic": binary_metrics(served_labels, at_prior_p, at_prior_t)["accuracy"],
            "s140_sample_raw": generic_served["accuracy"],
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


def copy_bundle(source: Path, target: Path) -> None:
    import shutil

    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
