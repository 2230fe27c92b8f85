"""`airparadis up`: the embedded mode in one command (train if needed, serve, dashboard)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from types import FrameType
from typing import Annotated

import typer


def _champion_exists() -> bool:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from airparadis.settings import PlatformSettings
    from airparadis.tracking import configure_tracking

    platform = PlatformSettings()
    configure_tracking(platform)
    try:
        MlflowClient().get_model_version_by_alias(platform.model_name, platform.champion_alias)
    except MlflowException:
        return False
    return True


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    return False


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def up(
    retrain: Annotated[bool, typer.Option(help="Train even if a champion exists.")] = False,
    server_port: Annotated[int, typer.Option(help="Model server port.")] = 8080,
    dashboard_port: Annotated[int, typer.Option(help="Dashboard port.")] = 5006,
    detach: Annotated[
        bool, typer.Option(help="Return once both are up, leaving them running.")
    ] = False,
) -> None:
    """Train the baseline if no champion exists, then run the model server and the dashboard."""
    from model_server.settings import ServerSettings

    if retrain or not _champion_exists():
        typer.echo("No champion model yet: training the TF-IDF + LR baseline ...")
        trained = subprocess.run([sys.executable, "-m", "airparadis", "train"], check=False)
        if trained.returncode != 0:
            typer.secho(
                "error: training the baseline failed (its message is above); set "
                "AIRPARADIS_TRAIN_DATA or run `airparadis data download` first",
                fg="red",
                err=True,
            )
            raise typer.Exit(2)
    host = ServerSettings().host
    server = subprocess.Popen(
        [sys.executable, "-m", "airparadis", "serve", "--port", str(server_port)],
        start_new_session=detach,
    )
    server_url = f"http://{host}:{server_port}"
    if not _wait_ready(f"{server_url}/v2/health/ready", server, timeout=120):
        server.terminate()
        typer.secho("error: the model server did not become ready", fg="red", err=True)
        raise typer.Exit(1)
    dashboard = subprocess.Popen(
        [
            sys.executable, "-m", "airparadis", "dashboard",
            "--port", str(dashboard_port), "--server-url", server_url,
        ],
        start_new_session=detach,
    )  # fmt: skip
    dashboard_url = f"http://{host}:{dashboard_port}"
    if not _wait_ready(dashboard_url, dashboard, timeout=60):
        server.terminate()
        dashboard.terminate()
        typer.secho("error: the dashboard did not start", fg="red", err=True)
        raise typer.Exit(1)
    from airparadis.settings import PlatformSettings

    name = ServerSettings().served_name or PlatformSettings().model_name
    typer.echo(f"Model server: {server_url}  (v1: {server_url}/v1/models/{name}:predict)")
    typer.echo(f"Dashboard:    {dashboard_url}   (ops view: {dashboard_url}/ops)")
    typer.echo(f"Metrics:      {server_url}/metrics")
    settings = ServerSettings()
    if settings.api_docs:
        typer.echo(f"API page:     {server_url}/docs")
    if settings.grpc_port:
        typer.echo(f"gRPC v2:      {host}:{settings.grpc_port}  (Open Inference Protocol)")
    if detach:
        typer.echo(
            f"Running in the background (server pid {server.pid}, dashboard pid {dashboard.pid})."
        )
        return
    typer.echo("Press Ctrl-C to stop.")
    # Both stop it: Ctrl-C, and SIGTERM from a service manager. Set explicitly, because a
    # process started in the background inherits SIGINT ignored.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _interrupt)
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for process in (dashboard, server):
            process.terminate()
        for process in (dashboard, server):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:  # a child stuck in shutdown must not outlive us
                process.kill()
                process.wait()
