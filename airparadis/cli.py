"""The `airparadis` command: one entry point over every component, each imported lazily."""

from __future__ import annotations

import logging

import typer
from pydantic import ValidationError

from airparadis.up import up
from dashboard.cli import dashboard
from model_server.cli import feedback_app, serve
from training_jobs.cli import compare, data_app, evaluate, retrain, score, train, tune

app = typer.Typer(
    no_args_is_help=True,
    help="Air Paradis Sentiment: train, track, serve and monitor tweet-sentiment models.",
)
app.add_typer(data_app, name="data")
app.add_typer(feedback_app, name="feedback")
app.command()(train)
app.command()(evaluate)
app.command()(tune)
app.command()(compare)
app.command()(retrain)
app.command()(score)
app.command()(serve)
app.command()(dashboard)
app.command()(up)


@app.callback()
def _configure(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at DEBUG level."),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def main() -> None:
    """The console script: a settings object refusing its environment is a usage error."""
    try:
        app(prog_name="airparadis")
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or exc.title}: {error['msg']}"
            for error in exc.errors()
        )
        typer.secho(f"error: invalid {exc.title} configuration: {problems}", fg="red", err=True)
        raise SystemExit(2) from exc
