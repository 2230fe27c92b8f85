"""Typer command of the dashboard."""

from __future__ import annotations

from typing import Annotated

import typer


def dashboard(
    port: Annotated[int | None, typer.Option(help="HTTP port (default 5006).")] = None,
    server_url: Annotated[
        str | None, typer.Option(help="Model server URL (default http://127.0.0.1:8080).")
    ] = None,
) -> None:
    """Run the Panel dashboard until interrupted."""
    from dashboard.app import serve
    from dashboard.settings import DashboardSettings

    overrides = {k: v for k, v in {"port": port, "server_url": server_url}.items() if v}
    serve(DashboardSettings(**overrides))  # type: ignore[arg-type]
