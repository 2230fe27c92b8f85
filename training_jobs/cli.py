"""Typer commands of the training side: data, train, evaluate. Heavy imports stay inside."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

data_app = typer.Typer(no_args_is_help=True, help="Fetch and prepare the Sentiment140 data.")

DataOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--data",
        help="CSV/Parquet file or folder; repeat for several. Default: AIRPARADIS_TRAIN_DATA.",
    ),
]


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


@data_app.command("download")
def download(
    dest: Annotated[Path, typer.Option(help="Folder to put the archive and CSVs in.")] = Path(
        "data/sentiment140"
    ),
    url: Annotated[str | None, typer.Option(help="Archive URL (default: official).")] = None,
    md5: Annotated[str | None, typer.Option(help="Expected MD5; '' skips the check.")] = None,
) -> None:
    """Download the official trainingandtestdata.zip, check its MD5, and extract the CSVs."""
    from training_jobs.download import DownloadError, download_archive
    from training_jobs.settings import TrainingSettings

    settings = TrainingSettings()
    try:
        files = download_archive(
            url or settings.download_url, dest, settings.download_md5 if md5 is None else md5
        )
    except DownloadError as exc:
        raise _fail(str(exc)) from exc
    for path in files:
        typer.echo(path)


@data_app.command("prepare")
def prepare(data: DataOption = None) -> None:
    """Read every source, report malformed and neutral rows, and cache them as Parquet."""
    from airparadis.settings import PlatformSettings
    from training_jobs.data import DataError, load_sources
    from training_jobs.settings import TrainingSettings

    settings = TrainingSettings(data=data) if data else TrainingSettings()
    try:
        _, report = load_sources(settings.data, cache_dir=PlatformSettings().home / "cache")
    except DataError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(report.summary())


def train(
    family: Annotated[str, typer.Option(help="Model family to train.")] = "tfidf_lr",
    data: DataOption = None,
    max_rows: Annotated[
        int | None, typer.Option(help="Stratified sample size, for quick runs.")
    ] = None,
    no_register: Annotated[bool, typer.Option(help="Log the run but do not register.")] = False,
) -> None:
    """Train a family, log it to MLflow, and register it as the champion."""
    from airparadis.settings import PlatformSettings
    from training_jobs.data import DataError
    from training_jobs.settings import TrainingSettings
    from training_jobs.train import train as run_training

    overrides: dict[str, object] = {}
    if data:
        overrides["data"] = data
    if max_rows:
        overrides["max_rows"] = max_rows
    settings = TrainingSettings(**overrides)  # type: ignore[arg-type]
    try:
        result = run_training(family, settings, PlatformSettings(), register_model=not no_register)
    except (DataError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(result.table)
    typer.echo(f"run: {result.run_id}  data fingerprint: {result.fingerprint}")
    if result.registered:
        r = result.registered
        typer.echo(f"registered: models:/{r.name}/{r.version} as @{r.alias}")


def evaluate(
    model_uri: Annotated[
        str | None,
        typer.Option(help="models:/name@alias, runs:/..., or a bundle folder. Default: champion."),
    ] = None,
    data: DataOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Evaluate a model on CSV/Parquet files (official CSV, manual test file, Parquet)."""
    from mlflow.exceptions import MlflowException

    from airparadis.bundle import BundleError
    from airparadis.settings import PlatformSettings
    from training_jobs.data import DataError
    from training_jobs.evaluate import evaluate as run_evaluation
    from training_jobs.settings import TrainingSettings

    platform = PlatformSettings()
    paths = data or TrainingSettings().data
    try:
        metrics, report = run_evaluation(model_uri or platform.champion_uri, paths, platform)
    except (DataError, BundleError, FileNotFoundError, MlflowException) as exc:
        raise _fail(str(exc)) from exc
    metrics["n"] = int(metrics["n"])
    if as_json:
        typer.echo(json.dumps(metrics, sort_keys=True))
    else:
        typer.echo(report.summary())
        for key in sorted(metrics):
            typer.echo(f"{key:>20}: {metrics[key]:.4f}")
