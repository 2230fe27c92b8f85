"""`airparadis tune`: an Optuna search shared by workers, here or as an Indexed Job."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from training_jobs.cli_k8s import DryRunOption, OnK8sOption, launch_job, repeat_flag
from training_jobs.cli_options import DataOption, usage_error


def tune(
    family: Annotated[str, typer.Option(help="Model family to tune.")] = "tfidf_lr",
    trials: Annotated[int, typer.Option(min=0, help="Trials to add, spread over the workers.")] = (
        10
    ),
    workers: Annotated[int, typer.Option(min=1, help="Worker processes on the same study.")] = 1,
    study: Annotated[
        str | None, typer.Option(help="Study name (default: airparadis-<family>).")
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(help="Study storage URL (default: OPTUNA_STORAGE, else SQLite in home)."),
    ] = None,
    data: DataOption = None,
    max_rows: Annotated[
        int | None, typer.Option(help="Stratified sample size, for quick runs.")
    ] = None,
    create_study_only: Annotated[
        bool, typer.Option(help="Create the study (and its MLflow parent run), then stop.")
    ] = False,
    skip_if_exists: Annotated[
        bool, typer.Option(help="With --create-study-only: an existing study is fine.")
    ] = False,
    retrain: Annotated[
        bool, typer.Option(help="Retrain the best trial on train+validation and register it.")
    ] = True,
    on_k8s: OnK8sOption = False,
    dry_run: DryRunOption = False,
) -> None:
    """Optuna search: W workers share one study; the best trial is retrained and gated.

    With --on-k8s the workers are the completions of one Indexed Job, each running this
    command with one worker against the shared (PostgreSQL) study storage.
    """
    if on_k8s or dry_run:
        per_worker = -(-trials // workers)
        args = ["tune", "--family", family, "--trials", str(per_worker), "--workers", "1"]
        args += [*(["--study", study] if study else []), *repeat_flag("--data", data)]
        args += [*(["--max-rows", str(max_rows)] if max_rows else [])]
        launch_job(args + ([] if retrain else ["--no-retrain"]), dry_run, completions=workers)
        return
    import optuna

    from airparadis.settings import PlatformSettings
    from training_jobs.data import DataError
    from training_jobs.settings import TrainingSettings
    from training_jobs.tune import StudyExistsError, create_study, storage_url
    from training_jobs.tune import tune as run_tuning

    overrides: dict[str, object] = {}
    for key, value in (("data", data), ("max_rows", max_rows), ("tune_study", study),
                       ("tune_storage", storage)):  # fmt: skip
        if value:
            overrides[key] = value
    settings = TrainingSettings(**overrides)  # type: ignore[arg-type]
    platform = PlatformSettings()
    try:
        if create_study_only:
            created, new = create_study(family, settings, platform, skip_if_exists)
            state = "created" if new else "exists"
            typer.echo(f"study {created.study_name} {state} in {storage_url(settings, platform)}")
            return
        result = run_tuning(family, settings, platform, trials, workers, retrain)
    except (StudyExistsError, DataError, ValueError, RuntimeError) as exc:
        raise usage_error(str(exc)) from exc
    except optuna.exceptions.OptunaError as exc:
        raise usage_error(f"optuna: {exc}") from exc
    typer.echo(f"study {result.study_name}: {result.trials} trials, best {result.best_value}")
    typer.echo(f"best params: {json.dumps(result.best_params, sort_keys=True)}")
    if result.retrained:
        typer.echo(result.retrained.table)
        if result.retrained.gate:
            typer.echo(result.retrained.gate.summary())
