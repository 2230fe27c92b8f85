"""`airparadis evaluate` and `airparadis compare`: metrics of one model on given data, and
the table over the latest run of each family."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from training_jobs.cli_options import DataOption, usage_error


def compare(
    markdown: Annotated[
        bool,
        typer.Option(
            "--markdown", help="Print Markdown (the default when the output is not a terminal)."
        ),
    ] = False,
) -> None:
    """Table over the latest run of each family; logs it and a comparison plot to MLflow."""
    from rich.console import Console
    from rich.table import Table

    from airparadis.settings import PlatformSettings
    from training_jobs.compare import compare as run_compare

    try:
        result = run_compare(PlatformSettings())
    except LookupError as exc:
        raise usage_error(str(exc)) from exc
    if markdown or not sys.stdout.isatty():
        typer.echo(result.table)
    else:
        header, *body = result.rows
        table = Table(*header, title="Latest run of each family (test split unless named)")
        for row in body:
            table.add_row(*row)
        Console().print(table)
    typer.echo(
        f"comparison logged to run {result.run_id} of experiment {result.experiment!r} "
        "(comparison.md, comparison.png)"
    )


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
        raise usage_error(str(exc)) from exc
    from training_jobs.metrics import json_safe

    output: dict[str, object] = dict(metrics)
    output["n"] = int(metrics["n"])
    if as_json:  # strict JSON: an undefined metric (one-class ROC-AUC) is null, with a warning
        safe = json_safe(output, "evaluate")
        typer.echo(json.dumps(safe, sort_keys=True, allow_nan=False))
    else:
        typer.echo(report.summary())
        for key in sorted(metrics):
            value = metrics[key]
            typer.echo(f"{key:>20}: {'n/a' if value != value else f'{value:.4f}'}")
