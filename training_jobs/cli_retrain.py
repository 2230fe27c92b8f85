"""`airparadis retrain` and `airparadis calibrate`: learn from the labelled feedback, by a
refit on it or by a calibration of the served model, and let the gate decide."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from training_jobs.cli_k8s import DryRunOption, OnK8sOption, launch_job
from training_jobs.cli_options import usage_error

if TYPE_CHECKING:
    from airparadis.label_shift import PriorEstimate
    from training_jobs.settings import TrainingSettings


def retrain(
    family: Annotated[str, typer.Option(help="Model family to retrain.")] = "tfidf_lr",
    workdir: Annotated[
        Path | None,
        typer.Option(
            help="Where the exported feedback is written. Default: AIRPARADIS_HOME/retrain."
        ),
    ] = None,
    on_k8s: OnK8sOption = False,
    dry_run: DryRunOption = False,
    tune_trials: Annotated[
        int, typer.Option(min=0, help="Optuna trials choosing the feedback weight (0: grid).")
    ] = 0,
) -> None:
    """Export feedback, add it to the training data, train, and let the gate decide."""
    if on_k8s or dry_run:
        extra = ["--tune-trials", str(tune_trials)] if tune_trials else []
        launch_job(["retrain", "--family", family, *extra], dry_run)
        return
    from airparadis.bundle import BundleError
    from airparadis.settings import PlatformSettings
    from training_jobs.data import DataError
    from training_jobs.retrain import retrain as run_retrain
    from training_jobs.settings import TrainingSettings
    from training_jobs.train import TrainResult

    platform = PlatformSettings()
    try:
        result = run_retrain(
            family,
            TrainingSettings(),
            platform,
            workdir or platform.home / "retrain",
            tune_trials=tune_trials,
        )
    except (DataError, ValueError, BundleError) as exc:
        raise usage_error(str(exc)) from exc
    if not hasattr(result, "table"):  # the champion's domain head won: no generic refit
        assert result.calibration is not None
        typer.echo(f"domain head on the champion, generic model unchanged ({result.reason})")
        typer.echo(_calibration_summary(result.calibration))
        if result.gate:
            typer.echo(result.gate.summary())
        return
    assert isinstance(result, TrainResult)
    typer.echo(result.table)
    if result.feedback_weight is not None:
        typer.echo(f"feedback weight: {result.feedback_weight:g}")
    if result.calibration is not None:
        typer.echo(_calibration_summary(result.calibration))
    if result.gate:
        typer.echo(result.gate.summary())


def _calibration_summary(calibration: object) -> str:
    from airparadis.calibration import Calibration

    assert isinstance(calibration, Calibration)
    if not calibration.heldout:  # a prior correction with no labels to score it on
        return (
            f"calibration: {calibration.method} intercept {calibration.intercept:+.3f} "
            f"(live positive share {calibration.prior:.3f}) threshold {calibration.threshold:.2f}"
        )
    raw, cal = calibration.heldout["raw"], calibration.heldout["calibrated"]

    def cell(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    method: str = calibration.method
    intercept = f"{calibration.intercept:+.3f}"
    if calibration.head_features:
        method += f" ({calibration.head_features}, {calibration.head_generic_rows} generic rows)"
        intercept += f" (generic prior {calibration.generic_intercept:+.3f})"
    return (
        f"calibration: {method} slope {calibration.slope:.3f} intercept "
        f"{intercept} threshold {calibration.threshold:.2f} on "
        f"{calibration.labels} feedbacks (positive share {calibration.prior:.3f}); "
        f"cross-validated macro-F1 raw {cell(raw['macro_f1'])} -> calibrated "
        f"{cell(cal['macro_f1'])}, complaints caught {cell(raw['recall_negative'])} -> "
        f"{cell(cal['recall_negative'])}, ECE {cell(raw['ece'])} -> {cell(cal['ece'])}"
    )


def _live_prior(settings: TrainingSettings) -> PriorEstimate | None:
    from training_jobs.replay import FeedbackClient, ReplayError

    key = settings.replay.api_key.get_secret_value() if settings.replay.api_key else None
    try:
        client = FeedbackClient(settings.replay.server_url, key)
        try:
            return client.live_prior()
        finally:
            client.close()
    except ReplayError as exc:
        raise usage_error(str(exc)) from exc


def calibrate(
    model_uri: Annotated[
        str | None, typer.Option(help="models:/name@alias or runs:/... Default: champion.")
    ] = None,
    workdir: Annotated[
        Path | None,
        typer.Option(
            help="Where the exported feedback is written. Default: AIRPARADIS_HOME/calibrate."
        ),
    ] = None,
    live_prior: Annotated[
        bool,
        typer.Option(
            help="Below the labels a calibration needs, read the live EM prior from the "
            "server (/v1/drift at the replay server URL) and serve it when the label-shift "
            "policy allows."
        ),
    ] = False,
) -> None:
    """Fit a calibration (logit map + threshold) on labelled feedback; register the
    calibrated model (same weights) as a new version through the gate."""
    from mlflow.exceptions import MlflowException

    from airparadis.bundle import BundleError
    from airparadis.settings import PlatformSettings
    from training_jobs.data import DataError
    from training_jobs.retrain import calibrate as run_calibrate
    from training_jobs.settings import TrainingSettings

    settings = TrainingSettings()
    try:
        prior = _live_prior(settings) if live_prior else None
        platform = PlatformSettings()
        result = run_calibrate(
            settings, platform, workdir or platform.home / "calibrate", model_uri,
            live_prior=prior,
        )  # fmt: skip
    except (DataError, ValueError, BundleError, MlflowException, OSError) as exc:
        raise usage_error(str(exc)) from exc
    if result.calibration is None:
        typer.echo(f"calibration: {result.reason}")
        return
    typer.echo(_calibration_summary(result.calibration))
    if result.gate:
        typer.echo(result.gate.summary())
    if result.registered:
        r = result.registered
        typer.echo(f"registered: models:/{r.name}/{r.version} as @{r.alias}")
