"""The `airparadis` command: one entry point over every installed component.

Each image installs only its own components (the serving image has no training or dashboard
code), so a component's commands are registered only when its package is installed.
"""

from __future__ import annotations

import logging
import os
from importlib.util import find_spec

import typer
from pydantic import ValidationError

app = typer.Typer(
    no_args_is_help=True,
    help="Air Paradis Sentiment: train, track, serve and monitor tweet-sentiment models.",
)


def _installed(*packages: str) -> bool:
    return all(find_spec(package) is not None for package in packages)


if _installed("training_jobs"):
    from training_jobs.cli_data import data_app
    from training_jobs.cli_data_report import report as data_report
    from training_jobs.cli_evaluate import compare, evaluate
    from training_jobs.cli_feedback import export_feedback, replay_feedback
    from training_jobs.cli_home import home_app
    from training_jobs.cli_retrain import calibrate, retrain
    from training_jobs.cli_score import score
    from training_jobs.cli_train import train
    from training_jobs.cli_tune import tune

    data_app.command("report")(data_report)
    app.add_typer(data_app, name="data")
    app.add_typer(home_app, name="home")
    app.command()(train)
    app.command()(evaluate)
    app.command()(tune)
    app.command()(compare)
    app.command()(retrain)
    app.command()(calibrate)
    app.command()(score)
    # Stored feedback is the training side's input: exported from the store, or replayed
    # through a running server's API.
    feedback_app = typer.Typer(no_args_is_help=True, help="Work with stored user feedback.")
    feedback_app.command("export")(export_feedback)
    feedback_app.command("replay")(replay_feedback)
    app.add_typer(feedback_app, name="feedback")
if _installed("model_server"):
    from model_server.cli import serve

    app.command()(serve)
if _installed("dashboard"):
    from dashboard.cli import dashboard

    app.command()(dashboard)
if _installed("training_jobs", "model_server", "dashboard"):
    from airparadis_cli.up import up

    app.command()(up)


@app.callback()
def _configure(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at DEBUG level."),
) -> None:
    from airparadis.logs import configure
    from airparadis.settings import PlatformSettings

    configure(PlatformSettings().log_format, logging.DEBUG if verbose else logging.INFO)
    # MLflow draws a progress bar per artifact download into the command's output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def main() -> None:
    """The console script: a settings object refusing its environment is a usage error."""
    try:
        app(prog_name="airparadis")
    except ValidationError as exc:
        from airparadis.settings import settings_problems

        problems = settings_problems(exc)
        typer.secho(f"error: invalid {exc.title} configuration: {problems}", fg="red", err=True)
        raise SystemExit(2) from exc
    except OSError as exc:
        # A file or folder the command was pointed at cannot be read or written (read-only,
        # missing, a folder where a file was expected): the user's to fix, named, no traceback.
        where = f": {exc.filename}" if exc.filename else ""
        typer.secho(f"error: {exc.strerror or exc}{where}", fg="red", err=True)
        raise SystemExit(2) from exc
