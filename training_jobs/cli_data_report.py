"""The `airparadis data report` command (wired into the `data` group by `airparadis_cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def report(
    source: Annotated[
        Path,
        typer.Argument(
            help="Sentiment140 CSV/Parquet, the airline Parquet, a feedback "
            "export, or a folder of them."
        ),
    ],
    against: Annotated[
        Path | None,
        typer.Option(
            "--against",
            help="A second source: how much of its vocabulary SOURCE's "
            "covers (for example the airline tweets against Sentiment140).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for report.md, the PNG plots and summary.json. "
            "Default: reports/data/<UTC time> under AIRPARADIS_HOME.",
        ),
    ] = None,
    mlflow: Annotated[
        bool, typer.Option("--mlflow/--no-mlflow", help="Log the report as an MLflow run.")
    ] = True,
) -> None:
    """Analyse a labelled tweet source: class balance, lengths, telling words and bigrams,
    duplicates and conflicting labels, non-ASCII and mojibake text, vocabulary overlap."""
    from mlflow.exceptions import MlflowException

    from airparadis.settings import PlatformSettings
    from training_jobs.data import DataError
    from training_jobs.data_report_write import data_report, default_out, terminal_summary

    platform = PlatformSettings()
    try:
        result = data_report(source, against, out or default_out(platform), platform, mlflow)
    except (DataError, MlflowException, OSError) as exc:  # bad input, tracking, a full disk
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from exc
    typer.echo(terminal_summary(result))
