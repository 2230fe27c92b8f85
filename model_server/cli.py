"""Typer commands of the model server: serve, and feedback export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

feedback_app = typer.Typer(no_args_is_help=True, help="Work with stored user feedback.")


def serve(
    model_uri: Annotated[
        str | None, typer.Option(help="models:/name@alias or a bundle folder. Default: champion.")
    ] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (default 8080).")] = None,
    host: Annotated[str | None, typer.Option(help="Interface (default 127.0.0.1).")] = None,
) -> None:
    """Run the KServe model server (v1, v2, feedback, /metrics) until interrupted."""
    from airparadis.settings import PlatformSettings
    from model_server.server import run
    from model_server.settings import ServerSettings

    overrides = {
        k: v for k, v in {"model_uri": model_uri, "http_port": port, "host": host}.items() if v
    }
    run(ServerSettings(**overrides), PlatformSettings())  # type: ignore[arg-type]


@feedback_app.command("export")
def export(
    out: Annotated[Path, typer.Option(help="Folder to write feedback.parquet into.")],
) -> None:
    """Write every stored feedback to Parquet, for retraining."""
    from airparadis.settings import PlatformSettings
    from model_server.export import export_feedback
    from model_server.settings import ServerSettings

    path, count = export_feedback(ServerSettings(), PlatformSettings(), out)
    typer.echo(f"{count} feedback rows -> {path}")
