"""`airparadis score`: batch scoring of a Parquet file with the serving bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from training_jobs.cli_options import usage_error


def score(
    input_path: Annotated[Path, typer.Option("--input", help="Parquet file with a text column.")],
    output: Annotated[Path, typer.Option(help="Parquet file to write.")],
    model_uri: Annotated[
        str | None, typer.Option(help="models:/name@alias or a bundle folder. Default: champion.")
    ] = None,
    text_column: Annotated[str, typer.Option(help="Column holding the tweets.")] = "text",
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per record batch.")] = 8192,
) -> None:
    """Score a Parquet file in record batches with the serving bundle (bounded memory)."""
    from mlflow.exceptions import MlflowException

    from airparadis.bundle import BundleError, load_bundle
    from airparadis.embedding import bulk_runtime
    from airparadis.settings import PlatformSettings
    from airparadis.tracking import connect, download_model, needs_registry
    from training_jobs.score import ScoringError, score_file

    platform = PlatformSettings()
    uri = model_uri or platform.champion_uri
    try:
        if needs_registry(uri):
            connect(platform)
        model = load_bundle(download_model(uri), bulk_runtime(cached=False))
        report = score_file(model, input_path, output, text_column, batch_size)
    except (ScoringError, BundleError, FileNotFoundError, MlflowException) as exc:
        raise usage_error(str(exc)) from exc
    typer.echo(f"{report.rows} rows scored in {report.batches} batches -> {output}")
    if report.unlabelled:
        typer.echo(f"{report.unlabelled} rows without text left unlabelled (null label)")
