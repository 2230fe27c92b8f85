"""`airparadis data download|prepare`: fetch and cache the training data (`data report` is in
cli_data_report)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from training_jobs.cli_options import DataOption, usage_error

data_app = typer.Typer(no_args_is_help=True, help="Fetch, prepare and analyse the training data.")


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
            url or settings.download.url, dest, settings.download.md5 if md5 is None else md5
        )
    except DownloadError as exc:
        raise usage_error(str(exc)) from exc
    for path in files:
        typer.echo(path)


@data_app.command("prepare")
def prepare(data: DataOption = None) -> None:
    """Read every source, report malformed and neutral rows, and cache them as Parquet."""
    from airparadis.settings import PlatformSettings
    from training_jobs.data import DataError, load_sources
    from training_jobs.settings import TrainingSettings, remember_data

    settings = TrainingSettings(data=data) if data else TrainingSettings()
    try:
        _, report = load_sources(settings.data, cache_dir=PlatformSettings().home / "cache")
    except DataError as exc:
        raise usage_error(str(exc)) from exc
    remember_data(settings.data)
    typer.echo(report.summary())
