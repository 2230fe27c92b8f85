"""Typer command of the model server: serve."""

from __future__ import annotations

from typing import Annotated

import typer


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
