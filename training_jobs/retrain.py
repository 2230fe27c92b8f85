"""`airparadis retrain` and `airparadis calibrate`: turn stored feedback into a better model
for the domain it comes from, and let the gate decide.

Rule for feedback: a confirmed prediction keeps its label; a corrected one takes the label the
user chose (for a bare "wrong", the other class). Several verdicts on the same tweet are
resolved by majority; a tie is a contradiction and the tweet is left out.

Feedback is then ordered by time (a tweet counts at its latest verdict) and split: the latest
share is kept aside for the gate, which nothing is fitted on; `retrain` trains on the earlier
part with a weight chosen (with the calibration) on the slice just before the gate's, and
`calibrate` fits a calibrator for the champion's unchanged weights on all of it.
"""

from __future__ import annotations

import logging
import tempfile
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import mlflow
import pandas as pd

from airparadis import LABELS
from airparadis.bundle import (
    BundleError,
    SentimentClassifier,
    find_bundle,
    load_bundle,
    read_info,
)
from airparadis.calibration import (
    Calibration,
    CalibrationError,
    raw_proba,
    raw_threshold,
    save_calibration,
)
from airparadis.calibration_fit import GenericSample, fit_calibration, prior_calibration
from airparadis.drift import load_reference
from airparadis.embedding import bulk_runtime, exported_encoder
from airparadis.feedback_export import export_feedback
from airparadis.label_shift import PriorEstimate, prior_policy
from airparadis.settings import PlatformSettings
from airparadis.tracking import configure_tracking, download_model
from training_jobs.feedback_fit import CALIBRATION_FOLDS, DomainFeedback, log_calibration
from training_jobs.gate import GateDecision
from training_jobs.gated_registration import (
    gate_and_register,
    gate_generic_sample,
    generic_gate_frame,
)
from training_jobs.generic_direction import cached_direction, head_generic_rows
from training_jobs.metrics import binary_metrics, finite_metrics
from training_jobs.registry import RegisteredModel, log_bundle
from training_jobs.run_inputs import prepare_split
from training_jobs.run_report import log_feedback_datasets
from training_jobs.settings import TrainingSettings
from training_jobs.train import TrainResult, train

logger = logging.getLogger(__name__)


def feedback_label(row: dict[str, object]) -> int:
    """The label one feedback row gives its tweet: the correction, else the prediction as the
    verdict judged it."""
    predicted = LABELS.index(str(row["predicted_label"]))
    if row.get("correct_label"):
        return LABELS.index(str(row["correct_label"]))
    return predicted if row["verdict"] == "correct" else 1 - predicted


def feedback_examples(rows: list[dict[str, object]]) -> tuple[pd.DataFrame, int]:
    """(text, label, created_at) examples in time order, and how many tweets contradicted.

    A tweet's time is that of its latest verdict; rows without a time keep their order.
    """
    votes: dict[str, Counter[int]] = {}
    latest: dict[str, object] = {}
    for position, row in enumerate(rows):
        label = feedback_label(row)
        tweet = str(row["tweet"])
        votes.setdefault(tweet, Counter())[label] += 1
        latest.pop(tweet, None)  # re-inserted: dict order follows the latest verdict
        latest[tweet] = row.get("created_at") or position
    examples, contradictions = [], 0
    for text, counter in votes.items():
        (label, top), *rest = counter.most_common()
        if rest and rest[0][1] == top:
            contradictions += 1
            continue
        examples.append((text, label))
    frame = pd.DataFrame(examples, columns=["text", "label"])
    frame["label"] = frame["label"].astype("int8")
    order = {tweet: rank for rank, tweet in enumerate(latest)}
    times = [latest[t] for t in frame["text"]]
    if times and all(isinstance(t, datetime | str) for t in times):
        frame["created_at"] = pd.to_datetime(pd.Series(times, dtype=object), utc=True)
    frame["_rank"] = [order[t] for t in frame["text"]]
    sort_by = ["created_at", "_rank"] if "created_at" in frame.columns else ["_rank"]
    frame = frame.sort_values(sort_by, kind="stable").drop(columns="_rank")
    return frame.reset_index(drop=True), contradictions


FEEDBACK_GATE_SHARE = 0.2
"""Latest share of the time-ordered feedback kept aside for the gate (never fitted on): the
newest labels judge a candidate on the traffic it will serve next."""
FEEDBACK_GATE_MIN = 20
"""Fewest labelled feedbacks an in-domain gate slice (or a prior correction's check) needs;
below it the in-domain score is noise, so the gate reads the generic criterion alone."""
FEEDBACK_SELECT_SHARE = 0.25
"""Latest share of the feedback left after the gate slice that chooses the feedback weight
and fits the calibration in `retrain` (never trained on)."""
PRIOR_MIN_TWEETS = 500
"""Unlabelled tweets the live EM prior must rest on before `calibrate` serves it."""
PRIOR_MIN_LOG_ODDS = 0.25
"""Smallest log-odds gap between the live EM prior and the served model's prior for
`calibrate` to serve it: about 6 points near one half, some three standard errors of a share
estimated on `PRIOR_MIN_TWEETS` tweets."""


def split_feedback(
    examples: pd.DataFrame, share: float = FEEDBACK_GATE_SHARE, min_rows: int = FEEDBACK_GATE_MIN
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(earlier, gate): the latest `share` of time-ordered examples is the gate's, when that is
    at least `min_rows` tweets; else there is no gate slice."""
    size = int(len(examples) * share)
    if size < min_rows:
        return examples, examples.iloc[0:0]
    return examples.iloc[:-size], examples.iloc[-size:]


def load_feedback(workdir: Path) -> tuple[pd.DataFrame, int, int]:
    """(time-ordered examples, feedback rows, contradictory tweets) from the feedback store."""
    path, count = export_feedback(PlatformSettings().feedback_url, workdir)
    examples, contradictions = feedback_examples(pd.read_parquet(path).to_dict("records"))
    return examples, count, contradictions


def domain_feedback(examples: pd.DataFrame, settings: TrainingSettings) -> DomainFeedback:
    """Split time-ordered examples into fit / select / gate slices (see `DomainFeedback`)."""
    earlier, gate = split_feedback(examples)
    select_size = int(len(earlier) * FEEDBACK_SELECT_SHARE)
    weights = (
        (float(settings.feedback.weight),)
        if settings.feedback.weight is not None
        else tuple(settings.feedback.weight_grid)
    )
    if select_size < settings.calibration_min_labels and len(weights) > 1:
        # Too few to choose on: the middle candidate, and every label trains.
        return DomainFeedback(earlier, earlier.iloc[0:0], gate, (weights[len(weights) // 2],))
    if select_size < settings.calibration_min_labels:
        return DomainFeedback(earlier, earlier.iloc[0:0], gate, weights)
    return DomainFeedback(earlier.iloc[:-select_size], earlier.iloc[-select_size:], gate, weights)


def retrain(
    family: str,
    settings: TrainingSettings,
    platform: PlatformSettings,
    workdir: Path,
    tune_trials: int = 0,
) -> TrainResult | CalibrateResult:
    """Learn the domain from feedback, and let the gate decide.

    First the champion (of this family) gets a domain head fitted on the feedback alone: when
    cross-validation prefers it to the plain maps of the logit, it is registered as is and the
    generic model is not refitted (seconds instead of minutes; generic ranking untouched),
    unless `retrain_refit_generic`. Otherwise the generic data plus weighted feedback are
    trained on; with `tune_trials`, Optuna picks the weight (on the `select` slice)."""
    if not settings.retrain_refit_generic:
        from mlflow.exceptions import MlflowException

        try:
            head = calibrate(settings, platform, workdir, only_head_for=family)
        except (MlflowException, BundleError) as exc:  # no champion to put a head on
            head = CalibrateResult(None, str(exc))
        if head.calibration is not None:
            return head
        logger.info("domain head not registered (%s): refitting the generic model", head.reason)
    examples, count, contradictions = load_feedback(workdir)
    if settings.feedback.cap is not None:
        examples = examples.tail(settings.feedback.cap)
    domain = domain_feedback(examples, settings)
    if tune_trials > 0 and len(domain.select) and len(domain.fit):
        from training_jobs.tune import tune_feedback_weight

        weight = tune_feedback_weight(family, settings, platform, domain, tune_trials)
        domain = DomainFeedback(domain.fit, domain.select, domain.gate, (weight,))
    logger.info(
        "%d feedback rows -> %d examples (%d contradictory tweets left out): %d trained on, "
        "%d choose the weight (%s) and calibrate, %d kept for the gate",
        count, len(examples), contradictions, len(domain.fit), len(domain.select),
        ",".join(f"{w:g}" for w in domain.weights), len(domain.gate),
    )  # fmt: skip
    return train(
        family,
        settings,
        platform,
        domain=domain,
        extra_metrics={
            "feedback.rows": count,
            "feedback.examples": len(examples),
            "feedback.contradictions": contradictions,
            "feedback.fit": len(domain.fit),
            "feedback.select": len(domain.select),
            "feedback.gate": len(domain.gate),
        },
    )


@dataclass(frozen=True)
class CalibrateResult:
    calibration: Calibration | None
    reason: str
    run_id: str | None = None
    registered: RegisteredModel | None = None
    gate: GateDecision | None = None


def _register_prior(
    model: SentimentClassifier,
    bundle_dir: Path,
    examples: pd.DataFrame,
    live_prior: PriorEstimate,
    settings: TrainingSettings,
    platform: PlatformSettings,
    uri: str,
    count: int,
) -> CalibrateResult:
    """Serve the live EM prior when the policy allows it. The labelled feedback at hand was
    fitted on by nothing here, so all of it checks the correction and judges it at the gate
    (two criteria) when there are `FEEDBACK_GATE_MIN` of them; with fewer, the gate only
    checks that generic quality holds."""
    if model.info.calibration:
        return CalibrateResult(None, "nothing changes: the model is already calibrated")
    labelled = None
    if len(examples):
        labelled = (raw_proba(model, examples["text"].tolist()), examples["label"].to_numpy())
    reference = load_reference(bundle_dir)
    heldout = reference.em_map if reference is not None else None
    decision = prior_policy(
        live_prior, min_tweets=PRIOR_MIN_TWEETS,
        min_log_odds=PRIOR_MIN_LOG_ODDS, labelled=labelled,
        min_check_labels=FEEDBACK_GATE_MIN, threshold=raw_threshold(model.info),
        heldout=heldout,
    )  # fmt: skip
    if not decision.apply:
        return CalibrateResult(None, f"no prior correction: {decision.reason}")
    calibration = prior_calibration(live_prior, raw_threshold(model.info), labelled, heldout)
    info = read_info(bundle_dir)
    save_calibration(bundle_dir, info, calibration)
    served = load_bundle(bundle_dir, bulk_runtime())
    split, _ = prepare_split(settings, platform)
    judged = examples if len(examples) >= FEEDBACK_GATE_MIN else None
    with mlflow.start_run(run_name=f"calibrate-prior-{info.family}") as run:
        mlflow.set_tags({"family": info.family, "format": info.format, "stage": "calibrate",
                         "calibrated_from": uri})  # fmt: skip
        mlflow.log_metrics({"feedback.rows": count, "feedback.examples": len(examples),
                            "label_shift.tweets": live_prior.count})  # fmt: skip
        log_calibration(calibration)
        registered, gate = gate_and_register(
            log_bundle(served, bundle_dir), served, generic_gate_frame(settings, split), settings,
            platform,
            tags={"family": info.family, "format": info.format, "stage": "calibrate",
                  "data.fingerprint": split.fingerprint},
            domain_frame=judged, prior_only=judged is None,
        )  # fmt: skip
    return CalibrateResult(calibration, f"prior correction: {decision.reason}", run.info.run_id,
                           registered, gate)  # fmt: skip


def generic_sample(
    model: SentimentClassifier, train: pd.DataFrame, settings: TrainingSettings,
    feedback_rows: int, encoder: Path | None,
) -> GenericSample | None:  # fmt: skip
    """The generic rows fitted beside `feedback_rows` feedbacks (`head_generic_rows`: from the
    generic training split, never the test split the gate reads), with the model's raw score
    on them, and the generic sentiment direction in the space of `encoder` (the head's
    encoder folder, None when the head reads no embeddings)."""
    rows = head_generic_rows(train, settings, feedback_rows)
    if rows.empty:
        return None
    texts = rows["text"].tolist()
    direction = cached_direction(train, settings, encoder) if encoder is not None else None
    return GenericSample(texts, raw_proba(model, texts), rows["label"].to_numpy(), direction)


@dataclass(frozen=True)
class HeadEncoder:
    """The head's encoder folder (None: the head reads no embeddings), and how many of the
    first fitting feedbacks it was fine-tuned on (`fit_calibration`'s `encoder_seen`; 0 for
    the shipped encoder)."""

    directory: Path | None
    seen: int = 0


def head_encoder(
    fitting: pd.DataFrame, train: pd.DataFrame, settings: TrainingSettings, workdir: Path
) -> HeadEncoder:
    """The head's encoder: none without embeddings, MiniLM fine-tuned on `fitting` (in
    `workdir`) from `head_encoder_tuning_min_labels` labels on, when the latest feedbacks it
    is not trained on hold two of each class to judge the head by, else the shipped one."""
    if not settings.head_embeddings:
        return HeadEncoder(None)
    least = settings.head_encoder_tuning_min_labels
    if least is None or len(fitting) < least:
        return HeadEncoder(exported_encoder())
    from training_jobs.encoder_tuning import holdout_size, tune_encoder

    judged = fitting["label"].iloc[-holdout_size(len(fitting)) :]
    if min(judged.sum(), len(judged) - judged.sum()) < 2:
        logger.info(
            "encoder not fine-tuned: its %d held-out feedbacks lack two of each class",
            len(judged),
        )
        return HeadEncoder(exported_encoder())
    generic = head_generic_rows(train, settings, len(fitting))
    target = workdir / "tuned-encoder"
    return HeadEncoder(target, tune_encoder(fitting, generic, settings, target))


def calibrate(
    settings: TrainingSettings,
    platform: PlatformSettings,
    workdir: Path,
    model_uri: str | None = None,
    only_head_for: str | None = None,
    live_prior: PriorEstimate | None = None,
) -> CalibrateResult:
    """Fit a calibration for a registered model (default: the champion) on feedback and
    register it (same weights, new ``bundle.json`` and head file) as a new version through
    the gate. With `only_head_for` (a family), register only when the model is of that family
    and a domain head wins (the fast path of `retrain`). Below `calibration_min_labels`, a
    `live_prior` (EM on the served traffic, `/v1/drift`) is served as a prior correction when
    `airparadis.label_shift.prior_policy` allows it."""
    configure_tracking(platform)
    examples, count, contradictions = load_feedback(workdir)
    fitting, gate = split_feedback(examples)
    uri = model_uri or platform.champion_uri
    with tempfile.TemporaryDirectory() as tmp:
        bundle_dir = find_bundle(download_model(uri, Path(tmp) / "download"))
        model = load_bundle(bundle_dir, bulk_runtime())
        if only_head_for is not None and model.info.family != only_head_for:
            return CalibrateResult(None, f"the champion is {model.info.family}")
        if len(fitting) < settings.calibration_min_labels:
            if live_prior is not None and only_head_for is None:
                return _register_prior(
                    model, bundle_dir, examples, live_prior, settings, platform, uri, count
                )
            return CalibrateResult(
                None, f"nothing changes: {len(fitting)} labelled feedbacks; calibration needs "
                f"{settings.calibration_min_labels}",
            )  # fmt: skip
        split, _ = prepare_split(settings, platform)
        encoder = head_encoder(fitting, split.train, settings, Path(tmp))
        try:
            calibration = fit_calibration(
                raw_proba(model, fitting["text"].tolist()), fitting["label"].to_numpy(),
                raw_threshold(model.info), settings.calibration_min_labels,
                CALIBRATION_FOLDS, settings.seed, texts=fitting["text"].tolist(),
                generic=generic_sample(
                    model, split.train, settings, len(fitting), encoder.directory
                ),
                encoder_dir=encoder.directory, encoder_runtime=bulk_runtime(),
                encoder_seen=encoder.seen,
            )  # fmt: skip
        except CalibrationError as exc:
            return CalibrateResult(None, f"nothing changes: {exc}")
        if only_head_for is not None and calibration.method != "domain_head":
            return CalibrateResult(None, f"cross-validation chose {calibration.method}")
        info = read_info(bundle_dir)
        save_calibration(bundle_dir, info, calibration)
        served = load_bundle(bundle_dir, bulk_runtime())
        with mlflow.start_run(run_name=f"calibrate-{info.family}") as run:
            mlflow.set_tags({"family": info.family, "format": info.format, "stage": "calibrate",
                             "calibrated_from": uri})  # fmt: skip
            log_feedback_datasets({"calibration": fitting, "gate": gate}, workdir)
            mlflow.log_metrics(
                {"feedback.rows": count, "feedback.examples": len(examples),
                 "feedback.contradictions": contradictions, "feedback.fit": len(fitting),
                 "feedback.gate": len(gate)}
            )  # fmt: skip
            log_calibration(calibration)
            # As served, on the sample of the generic split the gate's generic criteria read
            # (the gate itself reads it at the generic prior too, `training_jobs.gate`).
            sample = gate_generic_sample(split.test, settings)
            served_test = binary_metrics(
                sample["label"].to_numpy(), served.predict_proba(sample["text"].tolist()),
                served.info.threshold,
            )  # fmt: skip
            mlflow.log_metrics({f"test_{k}": v for k, v in finite_metrics(served_test).items()})
            if len(gate):
                gate_metrics = binary_metrics(
                    gate["label"].to_numpy(), served.predict_proba(gate["text"].tolist()),
                    served.info.threshold,
                )  # fmt: skip
                mlflow.log_metrics(
                    {f"feedback_gate_{k}": v for k, v in finite_metrics(gate_metrics).items()}
                )
            model_uri_logged = log_bundle(served, bundle_dir)
            registered, decision = gate_and_register(
                model_uri_logged, served, generic_gate_frame(settings, split), settings, platform,
                tags={"family": info.family, "format": info.format, "stage": "calibrate",
                      "data.fingerprint": split.fingerprint},
                domain_frame=gate if len(gate) else None,
            )  # fmt: skip
    return CalibrateResult(
        calibration, f"calibrated on {len(fitting)} feedbacks", run.info.run_id, registered,
        decision,
    )  # fmt: skip
