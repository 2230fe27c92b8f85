"""What the training commands share: the --data option and the usage error (exit 2) each
raises for input it refuses. Each command imports its heavy libraries inside its body, so
`airparadis --help` loads none of them and a command only its own."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DataOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--data",
        help="CSV/Parquet file or folder; repeat for several. Default: AIRPARADIS_TRAIN_DATA.",
    ),
]


def usage_error(message: str) -> typer.Exit:
    """Print the message in red on stderr; the caller raises the Exit (code 2)."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)
