"""Typer command of the dashboard."""

from __future__ import annotations

from typing import Annotated, Any

import typer


def dashboard(
    port: Annotated[int | None, typer.Option(help="HTTP port (default 5006).")] = None,
    server_url: Annotated[
        str | None,
        typer.Option(help="Model server or InferenceService URL (default http://127.0.0.1:8080)."),
    ] = None,
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1).")] = None,
) -> None:
    """Run the Panel dashboard (user page at /, ops page at /ops) until interrupted.

    Every other setting is read from AIRPARADIS_DASHBOARD_* variables (see docs/dashboard.md).
    """
    from pydantic import ValidationError

    from dashboard.app import serve
    from dashboard.auth import AuthMisconfigured
    from dashboard.settings import DashboardSettings

    overrides: dict[str, Any] = {
        k: v for k, v in {"port": port, "server_url": server_url, "host": host}.items() if v
    }
    try:
        settings = DashboardSettings(**overrides)
        serve(settings)
    except ValidationError as exc:
        from airparadis.settings import settings_problems

        typer.secho(f"error: invalid dashboard configuration: {settings_problems(exc)}",
                    fg="red", err=True)  # fmt: skip
        raise typer.Exit(2) from exc
    except AuthMisconfigured as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
