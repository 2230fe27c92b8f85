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
    grpc_port: Annotated[
        int | None, typer.Option(help="gRPC v2 port (default 8081; 0 turns gRPC off).")
    ] = None,
) -> None:
    """Run the KServe model server (v1, v2, feedback, /metrics) until interrupted."""
    from airparadis.settings import PlatformSettings
    from model_server.server import run
    from model_server.settings import ServerSettings

    given = {"model_uri": model_uri, "http_port": port, "host": host, "grpc_port": grpc_port}
    overrides = {k: v for k, v in given.items() if v is not None}
    run(ServerSettings(**overrides), PlatformSettings())  # type: ignore[arg-type]


@feedback_app.command("export")
def export(
    out: Annotated[Path, typer.Option(help="Folder to write feedback.parquet into.")],
) -> None:
    """Write every stored feedback to Parquet, for retraining."""
    from sqlalchemy.exc import SQLAlchemyError

    from airparadis.settings import PlatformSettings
    from model_server.export import export_feedback
    from model_server.settings import ServerSettings

    if out.exists() and not out.is_dir():
        raise _fail(
            f"{out} is an existing file; --out takes a folder (feedback.parquet goes in it)"
        )
    try:
        path, count = export_feedback(ServerSettings(), PlatformSettings(), out)
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        raise _fail(f"feedback store unreachable: {type(exc).__name__}: {cause}") from exc
    except OSError as exc:
        raise _fail(f"cannot write the export into {out}: {exc}") from exc
    typer.echo(f"{count} feedback rows -> {path}")


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)
