"""`airparadis feedback export|replay`: stored feedback out to Parquet, or labelled tweets
replayed through a running server as feedback."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from training_jobs.cli_options import usage_error


def export_feedback(
    out: Annotated[Path, typer.Option(help="Folder to write feedback.parquet into.")],
) -> None:
    """Write every stored feedback to Parquet, for retraining."""
    from sqlalchemy.exc import SQLAlchemyError

    from airparadis.feedback_export import export_feedback as run_export
    from airparadis.settings import PlatformSettings

    if out.exists() and not out.is_dir():
        raise usage_error(
            f"{out} is an existing file; --out takes a folder (feedback.parquet goes in it)"
        )
    try:
        path, count = run_export(PlatformSettings().feedback_url, out)
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        raise usage_error(f"feedback store unreachable: {type(exc).__name__}: {cause}") from exc
    except OSError as exc:
        raise usage_error(f"cannot write the export into {out}: {exc}") from exc
    typer.echo(f"{count} feedback rows -> {path}")


def replay_feedback(
    data: Annotated[
        list[Path],
        typer.Option(
            "--data",
            help="Labelled CSV/Parquet file or folder (Sentiment140, the airline Parquet, a "
            "feedback export); repeat for several. Read in file order.",
        ),
    ],
    limit: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many labelled tweets.")
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(help="Model server URL. Default: AIRPARADIS_TRAIN_REPLAY_SERVER_URL."),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            help="API key, when the server requires one. Default: AIRPARADIS_TRAIN_REPLAY_API_KEY."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Post labelled tweets as user feedback: the server predicts, then gets the verdict.

    Feedback ids come from each tweet and its label, so a rerun stores nothing twice; rows
    without a binary label (neutral) are skipped and counted.
    """
    import logging

    from tqdm import tqdm

    from training_jobs.data import DataError
    from training_jobs.replay import FeedbackClient, ReplayError, ReplayRefused, check_sources
    from training_jobs.replay import replay as run_replay
    from training_jobs.settings import TrainingSettings

    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request hides the bar
    settings = TrainingSettings()
    key = api_key or (
        settings.replay.api_key.get_secret_value() if settings.replay.api_key else None
    )
    try:
        files = check_sources(data)
        client = FeedbackClient(server or settings.replay.server_url, api_key=key)
    except DataError as exc:
        raise usage_error(str(exc)) from exc
    except ReplayRefused as exc:
        raise usage_error(str(exc)) from exc
    except ReplayError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from exc
    try:
        with tqdm(total=limit, unit="tweet", desc="replay", file=sys.stderr) as bar:
            summary = run_replay(files, client, limit=limit, progress=bar.update)
    except ReplayRefused as exc:
        raise usage_error(str(exc)) from exc
    except DataError as exc:
        raise usage_error(str(exc)) from exc
    finally:
        client.close()
    typer.echo(json.dumps(summary.as_dict(), sort_keys=True) if as_json else summary.text())
    if summary.aborted:
        raise typer.Exit(code=1)
