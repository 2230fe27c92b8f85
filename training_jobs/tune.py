"""Optuna search over a family's space: shared studies, pruning, one MLflow child run a trial.

The study lives in a storage URL (SQLite under the platform home by default, PostgreSQL for
studies shared by Kubernetes worker Jobs). Whoever creates the study also opens the MLflow
parent run and stores its id in the study's user attributes, so every worker, in any process
or pod, nests its trials under that one parent. Trials fit on the training split and are scored
on the validation split; the test split is never looked at while tuning. The best trial is then
retrained on train+validation and registered through the gate.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import mlflow
import optuna

from airparadis.metrics import accuracy
from airparadis.settings import PlatformSettings
from airparadis.tracking import configure_tracking
from training_jobs.families import Reporter, get_family
from training_jobs.families.params import PARAMS_MODELS
from training_jobs.feedback_fit import DomainFeedback, fit_with_feedback, select_score
from training_jobs.run_inputs import prepare_split, resolve_params
from training_jobs.settings import TrainingSettings
from training_jobs.split import Split
from training_jobs.study_storage import open_storage
from training_jobs.train import TrainResult, train

logger = logging.getLogger(__name__)

PARENT_RUN_ATTR = "mlflow_parent_run_id"
RETRAINED_ATTR = "retrained_trial"
EPOCH_KEYS = {"best_epoch": "epochs", "best_head_epoch": "head_epochs"}
"""Trial results that fix how long the retrain runs (no validation left to stop early on)."""


class StudyExistsError(RuntimeError):
    """The study already exists and ``--skip-if-exists`` was not given."""


@dataclass(frozen=True)
class TuneResult:
    study_name: str
    storage: str
    best_value: float | None
    best_params: dict[str, Any]
    trials: int
    retrained: TrainResult | None


def study_name(settings: TrainingSettings, family: str) -> str:
    return settings.tune_study or f"airparadis-{family}"


def storage_url(settings: TrainingSettings, platform: PlatformSettings) -> str:
    if settings.tune_storage:
        return settings.tune_storage
    platform.home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(platform.home / 'optuna.db').resolve()}"


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """Median: prune below the median of earlier trials at the same step (after 2 trials)."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.NopPruner()


def create_study(
    family: str,
    settings: TrainingSettings,
    platform: PlatformSettings,
    skip_if_exists: bool = False,
) -> tuple[optuna.Study, bool]:
    """Create the study (its MLflow parent run, its defaults queued); (study, created).

    Only the one process whose insert of the study name succeeds queues the defaults, so
    workers that start together (Kubernetes completions) do not each queue a copy.
    """
    name, storage = study_name(settings, family), storage_url(settings, platform)
    try:
        study = optuna.create_study(
            study_name=name,
            storage=open_storage(storage),
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=settings.seed),
            pruner=make_pruner(settings.tune_pruner),
        )
    except optuna.exceptions.DuplicatedStudyError:
        if not skip_if_exists:
            raise StudyExistsError(f"study {name!r} already exists in {storage}") from None
        return load_study(family, settings, platform), False
    configure_tracking(platform)
    with mlflow.start_run(run_name=f"tune-{family}") as parent:
        mlflow.set_tags({"family": family, "stage": "tune", "optuna.study": name})
    study.set_user_attr(PARENT_RUN_ATTR, parent.info.run_id)
    study.set_user_attr("family", family)
    enqueue_defaults(study, family, settings)
    logger.info("created study %s in %s (MLflow parent run %s)", name, storage, parent.info.run_id)
    return study, True


def enqueue_defaults(study: optuna.Study, family_name: str, settings: TrainingSettings) -> None:
    """Queue the configured defaults as a trial (once), so the search starts from a known point
    and can only report something at least as good on validation."""
    family = get_family(family_name)
    defaults = resolve_params(family, settings, None)
    try:
        fixed = family.search_space(optuna.trial.FixedTrial(defaults))
    except ValueError as exc:  # a default outside the space: nothing to queue
        logger.info("defaults not queued: %s", exc)
        return
    study.enqueue_trial(fixed, skip_if_exists=True)


def load_study(family: str, settings: TrainingSettings, platform: PlatformSettings) -> optuna.Study:
    return optuna.load_study(
        study_name=study_name(settings, family),
        storage=open_storage(storage_url(settings, platform)),
        sampler=optuna.samplers.TPESampler(),
        pruner=make_pruner(settings.tune_pruner),
    )


def _reporter(trial: optuna.Trial) -> Reporter:
    """Intermediate validation scores go to Optuna (for pruning) and to the trial's run."""

    def report(step: int, score: float) -> None:
        trial.report(score, step)
        mlflow.log_metric("validation_accuracy", score, step=step)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step} with {score:.4f}")

    return report


def make_objective(
    family_name: str, settings: TrainingSettings, split: Split, parent_run_id: str | None
) -> Any:
    family = get_family(family_name)
    resolve_params(family, settings, None)  # configured parameters a family refuses: fail now

    def objective(trial: optuna.Trial) -> float:
        params = resolve_params(family, settings, family.search_space(trial))
        with mlflow.start_run(
            run_name=f"trial-{trial.number}", nested=True, parent_run_id=parent_run_id
        ) as run:
            mlflow.set_tags({"family": family.name, "stage": "trial",
                             "optuna.trial": str(trial.number)})  # fmt: skip
            mlflow.log_params({f"model.{k}": v for k, v in params.items()})
            trial.set_user_attr("mlflow_run_id", run.info.run_id)
            try:
                model = family.fit(
                    split.train, split.validation, params, settings.seed, _reporter(trial)
                )
            except optuna.TrialPruned:
                mlflow.set_tag("optuna.state", "pruned")
                raise
            proba = model.predict_proba(split.validation["text"].tolist())
            value = accuracy(split.validation["label"].to_numpy(), proba, model.info.threshold)
            for key in EPOCH_KEYS:
                if key in model.info.params:
                    trial.set_user_attr(key, model.info.params[key])
            mlflow.log_metric("objective_validation_accuracy", value)
            mlflow.set_tag("optuna.state", "complete")
            return value

    return objective


def run_worker(
    family: str, settings: TrainingSettings, platform: PlatformSettings, trials: int
) -> optuna.Study:
    """One worker: load (or create) the study and run `trials` trials on it."""
    study, _ = create_study(family, settings, platform, skip_if_exists=True)
    configure_tracking(platform)
    split, _ = prepare_split(settings, platform)
    parent = study.user_attrs.get(PARENT_RUN_ATTR)
    study.optimize(
        make_objective(family, settings, split, parent),
        n_trials=trials,
        timeout=settings.tune_timeout,
        gc_after_trial=True,
    )
    return study


def _spawn_workers(
    family: str, settings: TrainingSettings, platform: PlatformSettings, trials: int, workers: int
) -> None:
    """W processes running the one-worker command, exactly as each Kubernetes worker Job does."""
    per_worker = math.ceil(trials / workers)
    command = [
        sys.executable, "-m", "airparadis", "tune", "--family", family,
        "--trials", str(per_worker), "--workers", "1", "--no-retrain",
        "--study", study_name(settings, family), "--storage", storage_url(settings, platform),
    ]  # fmt: skip
    env = {**os.environ, **settings_env(settings)}
    processes = [subprocess.Popen(command, env=env) for _ in range(workers)]
    failed = [p.args for p in processes if p.wait() != 0]
    if failed:
        raise RuntimeError(f"{len(failed)} of {workers} tuning workers failed")


def settings_env(settings: TrainingSettings) -> dict[str, str]:
    """The settings as ``AIRPARADIS_TRAIN_*`` variables, so a worker process sees what we see
    (including values that came from command-line options rather than the environment)."""
    dumped = settings.model_dump(mode="json", exclude={"tune_storage", "tune_study"})
    flat: dict[str, Any] = {}
    for name, value in dumped.items():
        if isinstance(value, dict):  # a family's parameters: one variable each, as read
            flat.update({f"{name}_{key}": item for key, item in value.items()})
        else:
            flat[name] = value
    env: dict[str, str] = {}
    for name, value in flat.items():
        if value is None:
            continue
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        env[f"AIRPARADIS_TRAIN_{name.upper()}"] = str(value)
    return env


def retrain_params(trial: optuna.trial.FrozenTrial, family: str) -> dict[str, Any]:
    """The trial's parameters, with its best epoch count fixed (validation is now trained on)."""
    params: dict[str, Any] = dict(trial.params)
    keeps_best = "restore_best" in PARAMS_MODELS[family].model_fields
    for key, param in EPOCH_KEYS.items():
        if key in trial.user_attrs:
            params[param] = max(1, math.ceil(float(trial.user_attrs[key])))
            if keeps_best:
                params["restore_best"] = False
    return params


def claim_retrain(storage: str, study: str, trial_number: int) -> bool:
    """Claim the retrain of a trial for this worker: True for exactly one caller, ever.

    A study attribute written with Optuna's API is read-then-written, so two workers finishing
    together could both see it unset. This inserts the claim as a study user attribute row;
    Optuna's schema makes (study, key) unique, so the database admits one insert.
    """
    import sqlalchemy as sa

    rdb = open_storage(storage)
    try:
        table = sa.Table("study_user_attributes", sa.MetaData(), autoload_with=rdb.engine)
        row = {
            "study_id": rdb.get_study_id_from_name(study),
            "key": f"{RETRAINED_ATTR}:{trial_number}",
            "value_json": json.dumps(f"{socket.gethostname()}:{os.getpid()}"),
        }
        with rdb.engine.begin() as connection:
            connection.execute(table.insert().values(**row))
    except sa.exc.IntegrityError:
        return False
    finally:
        rdb.engine.dispose()
    return True


def retrain_best(
    family: str, study: optuna.Study, settings: TrainingSettings, platform: PlatformSettings
) -> TrainResult | None:
    """Retrain the best trial on train+validation and register it, once per best trial.

    Skipped while other workers still run trials: the last worker to finish does it.
    """
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    if running:
        logger.info("%d trials still running elsewhere: leaving the retrain to them", len(running))
        return None
    best = study.best_trial
    storage = storage_url(settings, platform)
    if study.user_attrs.get(RETRAINED_ATTR) == best.number or not claim_retrain(
        storage, study.study_name, best.number
    ):
        logger.info("trial %d was already retrained", best.number)
        return None
    study.set_user_attr(RETRAINED_ATTR, best.number)
    result = train(
        family,
        settings,
        platform,
        params=retrain_params(best, family),
        fit_on_validation=True,
        parent_run_id=study.user_attrs.get(PARENT_RUN_ATTR),
    )
    study.set_user_attr("retrained_run_id", result.run_id)
    return result


def tune(
    family: str,
    settings: TrainingSettings,
    platform: PlatformSettings,
    trials: int,
    workers: int = 1,
    retrain: bool = True,
) -> TuneResult:
    study, _ = create_study(family, settings, platform, skip_if_exists=True)
    if workers > 1:
        _spawn_workers(family, settings, platform, trials, workers)
        study = load_study(family, settings, platform)
    else:
        study = run_worker(family, settings, platform, trials)
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    retrained = retrain_best(family, study, settings, platform) if retrain and complete else None
    return TuneResult(
        study_name=study.study_name,
        storage=storage_url(settings, platform),
        best_value=study.best_value if complete else None,
        best_params=study.best_params if complete else {},
        trials=len(study.trials),
        retrained=retrained,
    )


def tune_feedback_weight(
    family_name: str,
    settings: TrainingSettings,
    platform: PlatformSettings,
    domain: DomainFeedback,
    trials: int,
) -> float:
    """The feedback weight Optuna finds best (log scale, the configured grid tried first),
    scored as `retrain` scores candidates: macro-F1 on the held-out `select` feedback.

    The study is in memory: feedback changes between retrains, so old trials do not carry.
    """
    family = get_family(family_name)
    params = resolve_params(family, settings, None)
    split, _ = prepare_split(settings, platform)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler())
    for weight in settings.feedback.weight_grid:
        study.enqueue_trial({"feedback_weight": weight}, skip_if_exists=True)

    def objective(trial: optuna.Trial) -> float:
        weight = trial.suggest_float("feedback_weight", 1.0, 300.0, log=True)
        single = DomainFeedback(domain.fit, domain.select, domain.gate, (weight,))
        model, _, _ = fit_with_feedback(
            family, split.train, split.validation, single, params, settings.seed
        )
        return select_score(model, domain.select)

    study.optimize(objective, n_trials=trials, timeout=settings.tune_timeout)
    best = float(study.best_params["feedback_weight"])
    logger.info("feedback weight %.3g (select macro-F1 %.4f)", best, study.best_value)
    return best
