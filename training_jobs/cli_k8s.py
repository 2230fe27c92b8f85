"""--on-k8s: run the same training command as a Kubernetes Job instead of here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from training_jobs.cli_options import usage_error

OnK8sOption = Annotated[
    bool, typer.Option("--on-k8s", help="Submit the same command as a Kubernetes Job instead.")
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="With --on-k8s: print the Job's YAML, submit nothing.")
]


def repeat_flag(flag: str, values: list[Path] | list[str] | None) -> list[str]:
    """A repeatable option given back as the Job's arguments: ["--data", "a", "--data", "b"]."""
    return [item for value in values or [] for item in (flag, str(value))]


def launch_job(args: list[str], dry_run: bool, completions: int | None = None) -> None:
    """Run `airparadis <args>` as a Job (AIRPARADIS_K8S_* settings), or print it."""
    from training_jobs.launcher import LauncherSettings, build_job, job_to_yaml, submit_job

    settings = LauncherSettings()
    job = build_job(args, settings, completions=completions, parallelism=completions)
    if dry_run:
        typer.echo(job_to_yaml(job))
        return
    try:
        name = submit_job(job, settings.namespace)
    except Exception as exc:
        raise usage_error(f"cannot submit the Job: {exc}") from exc
    typer.echo(f"submitted Job {settings.namespace}/{name}")
