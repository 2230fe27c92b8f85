"""`airparadis home move|relocate`: move the embedded home, or repair a copied one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from training_jobs.cli_options import usage_error

home_app = typer.Typer(no_args_is_help=True, help="Move or relocate the embedded home.")


@home_app.command("move")
def move_home(
    source: Annotated[Path, typer.Argument(help="The home to move (holds mlflow.db).")],
    destination: Annotated[Path, typer.Argument(help="Its new path (must not exist).")],
) -> None:
    """Move a home and rewrite the artifact locations its MLflow store records."""
    from airparadis.home import HomeError, move

    try:
        rewritten = move(source, destination)
    except HomeError as exc:
        raise usage_error(str(exc)) from exc
    typer.echo(f"moved {source} to {destination}; {rewritten} artifact locations rewritten")
    typer.echo(f"use it with: export AIRPARADIS_HOME={destination.resolve()}")


@home_app.command("relocate")
def relocate_home(
    home: Annotated[
        Path | None, typer.Argument(help="A copied or restored home. Default: AIRPARADIS_HOME.")
    ] = None,
) -> None:
    """After copying or restoring a home elsewhere: point its store at its own artifacts."""
    from airparadis.home import HomeError, relocate
    from airparadis.settings import PlatformSettings

    try:
        rewritten = relocate(home or PlatformSettings().home)
    except HomeError as exc:
        raise usage_error(str(exc)) from exc
    typer.echo(f"{rewritten} artifact locations rewritten")
