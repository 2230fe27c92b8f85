"""`airparadis train`: train one family, log it to MLflow, register it through the gate."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from training_jobs.cli_k8s import DryRunOption, OnK8sOption, launch_job, repeat_flag
from training_jobs.cli_options import DataOption, usage_error

ParamOption = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        help="Family parameter KEY=VALUE (VALUE parsed as JSON when it can be); repeatable.",
    ),
]


def parse_params(pairs: list[str] | None) -> dict[str, object]:
    """``["C=4", "cell=\"lstm\"", "cell=lstm"]`` -> {"C": 4, "cell": "lstm"}."""
    params: dict[str, object] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise usage_error(f"--param {pair!r} is not KEY=VALUE")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


def train(
    family: Annotated[str, typer.Option(help="Model family: tfidf_lr, rnn, transformer.")] = (
        "tfidf_lr"
    ),
    data: DataOption = None,
    max_rows: Annotated[
        int | None, typer.Option(help="Stratified sample size, for quick runs.")
    ] = None,
    param: ParamOption = None,
    no_register: Annotated[
        bool, typer.Option("--no-register", help="Log the run but do not register.")
    ] = False,
    on_k8s: OnK8sOption = False,
    dry_run: DryRunOption = False,
) -> None:
    """Train a family, log it to MLflow, and register it; the gate picks champion/challenger."""
    if on_k8s or dry_run:
        args = ["train", "--family", family, *repeat_flag("--param", param)]
        args += [*repeat_flag("--data", data), *(["--max-rows", str(max_rows)] if max_rows else [])]
        launch_job(args + (["--no-register"] if no_register else []), dry_run)
        return
    from airparadis.bundle import BundleError
    from airparadis.settings import PlatformSettings
    from training_jobs.data import DataError
    from training_jobs.settings import TrainingSettings, remember_data
    from training_jobs.train import train as run_training

    overrides: dict[str, object] = {}
    if data:
        overrides["data"] = data
    if max_rows:
        overrides["max_rows"] = max_rows
    settings = TrainingSettings(**overrides)  # type: ignore[arg-type]
    try:
        result = run_training(
            family, settings, PlatformSettings(), params=parse_params(param),
            register_model=not no_register,
        )  # fmt: skip
    except (DataError, ValueError, BundleError) as exc:
        raise usage_error(str(exc)) from exc
    remember_data(settings.data)
    typer.echo(result.table)
    typer.echo(f"run: {result.run_id}  data fingerprint: {result.fingerprint}")
    if result.gate:
        typer.echo(result.gate.summary())
    if result.registered:
        r = result.registered
        typer.echo(f"registered: models:/{r.name}/{r.version} as @{r.alias}")
