"""Typer commands of the training side: data, train, evaluate. Heavy imports stay inside."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from airparadis.label_shift import PriorEstimate
    from training_jobs.settings import TrainingSettings

data_app = typer.Typer(no_args_is_help=True, help="Fetch, prepare and analyse the training data.")
home_app = typer.Typer(no_args_is_help=True, help="Move or relocate the embedded home.")

DataOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--data",
        help="CSV/Parquet file or folder; repeat for several. Default: AIRPARADIS_TRAIN_DATA.",
    ),
]


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


@data_app.command("download")
def download(
    dest: Annotated[Path, typer.Option(help="Folder to put the archive and CSVs in.")] = Path(
        "data/sentiment140"
    ),
    url: Annotated[str | None, typer.Option(help="Archive URL (default: official).")] = None,
    md5: Annotated[str | None, typer.Option(help="Expected MD5; '' skips the check.")] = None,
) -> None:
    """Download the official trainingandtestdata.zip, check its MD5, and extract the CSVs."""
    from training_jobs.download import DownloadError, download_archive
    from training_jobs.settings import TrainingSettings

    settings = TrainingSettings()
    try:
        files = download_archive(
            url or settings.download_url, dest, settings.download_md5 if md5 is None else md5
        )
    except DownloadError as exc:
        raise _fail(str(exc)) from exc
    for path in files:
        typer.echo(path)


@data_app.command("prepare")
def prepare(data: DataOption = None) -> None:
    """Read every source, report malformed and neutral rows, and cache them as Parquet."""
    from airparadis.settings import PlatformSettings
    from training_jobs.data import DataError, load_sources
    from training_jobs.settings import TrainingSettings, remember_data

    settings = TrainingSettings(data=data) if data else TrainingSettings()
    try:
        _, report = load_sources(settings.data, cache_dir=PlatformSettings().home / "cache")
    except DataError as exc:
        raise _fail(str(exc)) from exc
    remember_data(settings.data)
    typer.echo(report.summary())


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
            raise _fail(f"--param {pair!r} is not KEY=VALUE")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


OnK8sOption = Annotated[
    bool, typer.Option("--on-k8s", help="Submit the same command as a Kubernetes Job instead.")
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="With --on-k8s: print the Job's YAML, submit nothing.")
]


def _repeat(flag: str, values: list[Path] | list[str] | None) -> list[str]:
    return [item for value in values or [] for item in (flag, str(value))]


def _launch(args: list[str], dry_run: bool, completions: int | None = None) -> None:
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
        raise _fail(f"cannot submit the Job: {exc}") from exc
    typer.echo(f"submitted Job {settings.namespace}/{name}")


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
        args = ["train", "--family", family, *_repeat("--param", param)]
        args += [*_repeat("--data", data), *(["--max-rows", str(max_rows)] if max_rows else [])]
        _launch(args + (["--no-register"] if no_register else []), dry_run)
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
        raise _fail(str(exc)) from exc
    remember_data(settings.data)
    typer.echo(result.table)
    typer.echo(f"run: {result.run_id}  data fingerprint: {result.fingerprint}")
    if result.gate:
        typer.echo(result.gate.summary())
    if result.registered:
        r = result.registered
        typer.echo(f"registered: models:/{r.name}/{r.version} as @{r.alias}")


def tune(
    family: Annotated[str, typer.Option(help="Model family to tune.")] = "tfidf_lr",
    trials: Annotated[int, typer.Option(min=0, help="Trials to add, spread over the workers.")] = (
        10
    ),
    workers: Annotated[int, typer.Option(min=1, help="Worker processes on the same study.")] = 1,
    study: Annotated[
        str | None, typer.Option(help="Study name (default: airparadis-<family>).")
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(help="Study storage URL (default: OPTUNA_STORAGE, else SQLite in home)."),
    ] = None,
    data: DataOption = None,
    max_rows: Annotated[
        int | None, typer.Option(help="Stratified sample size, for quick runs.")
    ] = None,
    create_study_only: Annotated[
        bool, typer.Option(help="Create the study (and its MLflow parent run), then stop.")
    ] = False,
    skip_if_exists: Annotated[
        bool, typer.Option(help="With --create-study-only: an existing study is fine.")
    ] = False,
    retrain: Annotated[
        bool, typer.Option(help="Retrain the best trial on train+validation and register it.")
    ] = True,
    on_k8s: OnK8sOption = False,
    dry_run: DryRunOption = False,
) -> None:
    """Optuna search: W workers share one study; the best trial is retrained and gated.

    With --on-k8s the workers are the completions of one Indexed Job, each running this
    command with one worker against the shared (PostgreSQL) study storage.
    """
    if on_k8s or dry_run:
        per_worker = -(-trials // workers)
        args = ["tune", "--family", family, "--trials", str(per_worker), "--workers", "1"]
        args += [*(["--study", study] if study else []), *_repeat("--data", data)]
        args += [*(["--max-rows", str(max_rows)] if max_rows else [])]
        _launch(args + ([] if retrain else ["--no-retrain"]), dry_run, completions=workers)
        return
    import optuna

    from airparadis.settings import PlatformSettings
    from training_jobs.data import DataError
    from training_jobs.settings import TrainingSettings
    from training_jobs.tune import StudyExistsError, create_study, storage_url
    from training_jobs.tune import tune as run_tuning

    overrides: dict[str, object] = {}
    for key, value in (("data", data), ("max_rows", max_rows), ("tune_study", study),
                       ("tune_storage", storage)):  # fmt: skip
        if value:
            overrides[key] = value
    settings = TrainingSettings(**overrides)  # type: ignore[arg-type]
    platform = PlatformSettings()
    try:
        if create_study_only:
            created, new = create_study(family, settings, platform, skip_if_exists)
            state = "created" if new else "exists"
            typer.echo(f"study {created.study_name} {state} in {storage_url(settings, platform)}")
            return
        result = run_tuning(family, settings, platform, trials, workers, retrain)
    except (StudyExistsError, DataError, ValueError, RuntimeError) as exc:
        raise _fail(str(exc)) from exc
    except optuna.exceptions.OptunaError as exc:
        raise _fail(f"optuna: {exc}") from exc
    typer.echo(f"study {result.study_name}: {result.trials} trials, best {result.best_value}")
    typer.echo(f"best params: {json.dumps(result.best_params, sort_keys=True)}")
    if result.retrained:
        typer.echo(result.retrained.table)
        if result.retrained.gate:
            typer.echo(result.retrained.gate.summary())


def retrain(
    family: Annotated[str, typer.Option(help="Model family to retrain.")] = "tfidf_lr",
    workdir: Annotated[
        Path | None,
        typer.Option(
            help="Where the exported feedback is written. Default: AIRPARADIS_HOME/retrain."
        ),
    ] = None,
    on_k8s: OnK8sOption = False,
    dry_run: DryRunOption = False,
    tune_trials: Annotated[
        int, typer.Option(min=0, help="Optuna trials choosing the feedback weight (0: grid).")
    ] = 0,
) -> None:
    """Export feedback, add it to the training data, train, and let the gate decide."""
    if on_k8s or dry_run:
        extra = ["--tune-trials", str(tune_trials)] if tune_trials else []
        _launch(["retrain", "--family", family, *extra], dry_run)
        return
    from airparadis.bundle import BundleError
    from airparadis.settings import PlatformSettings
    from training_jobs.data import DataError
    from training_jobs.retrain import retrain as run_retrain
    from training_jobs.settings import TrainingSettings
    from training_jobs.train import TrainResult

    platform = PlatformSettings()
    try:
        result = run_retrain(
            family,
            TrainingSettings(),
            platform,
            workdir or platform.home / "retrain",
            tune_trials=tune_trials,
        )
    except (DataError, ValueError, BundleError) as exc:
        raise _fail(str(exc)) from exc
    if not hasattr(result, "table"):  # the champion's domain head won: no generic refit
        assert result.calibration is not None
        typer.echo(f"domain head on the champion, generic model unchanged ({result.reason})")
        typer.echo(_calibration_summary(result.calibration))
        if result.gate:
            typer.echo(result.gate.summary())
        return
    assert isinstance(result, TrainResult)
    typer.echo(result.table)
    if result.feedback_weight is not None:
        typer.echo(f"feedback weight: {result.feedback_weight:g}")
    if result.calibration is not None:
        typer.echo(_calibration_summary(result.calibration))
    if result.gate:
        typer.echo(result.gate.summary())


def _calibration_summary(calibration: object) -> str:
    from airparadis.calibration import Calibration

    assert isinstance(calibration, Calibration)
    if not calibration.heldout:  # a prior correction with no labels to score it on
        return (
            f"calibration: {calibration.method} intercept {calibration.intercept:+.3f} "
            f"(live positive share {calibration.prior:.3f}) threshold {calibration.threshold:.2f}"
        )
    raw, cal = calibration.heldout["raw"], calibration.heldout["calibrated"]

    def cell(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    method: str = calibration.method
    if calibration.head_features:
        method += f" ({calibration.head_features}, {calibration.head_generic_rows} generic rows)"
    return (
        f"calibration: {method} slope {calibration.slope:.3f} intercept "
        f"{calibration.intercept:+.3f} threshold {calibration.threshold:.2f} on "
        f"{calibration.labels} feedbacks (positive share {calibration.prior:.3f}); "
        f"cross-validated macro-F1 raw {cell(raw['macro_f1'])} -> calibrated "
        f"{cell(cal['macro_f1'])}, complaints caught {cell(raw['recall_negative'])} -> "
        f"{cell(cal['recall_negative'])}, ECE {cell(raw['ece'])} -> {cell(cal['ece'])}"
    )


def _live_prior(settings: TrainingSettings) -> PriorEstimate | None:
    from training_jobs.replay import FeedbackClient, ReplayError

    key = settings.replay_api_key.get_secret_value() if settings.replay_api_key else None
    try:
        client = FeedbackClient(settings.replay_server_url, key)
        try:
            return client.live_prior()
        finally:
            client.close()
    except ReplayError as exc:
        raise _fail(str(exc)) from exc


def calibrate(
    model_uri: Annotated[
        str | None, typer.Option(help="models:/name@alias or runs:/... Default: champion.")
    ] = None,
    workdir: Annotated[
        Path | None,
        typer.Option(
            help="Where the exported feedback is written. Default: AIRPARADIS_HOME/calibrate."
        ),
    ] = None,
    live_prior: Annotated[
        bool,
        typer.Option(
            help="Below the labels a calibration needs, read the live EM prior from the "
            "server (/v1/drift at the replay server URL) and serve it when the label-shift "
            "policy allows."
        ),
    ] = False,
) -> None:
    """Fit a calibration (logit map + threshold) on labelled feedback; register the
    calibrated model (same weights) as a new version through the gate."""
    from mlflow.exceptions import MlflowException

    from airparadis.bundle import BundleError
    from airparadis.settings import PlatformSettings
    from training_jobs.data import DataError
    from training_jobs.retrain import calibrate as run_calibrate
    from training_jobs.settings import TrainingSettings

    settings = TrainingSettings()
    try:
        prior = _live_prior(settings) if live_prior else None
        platform = PlatformSettings()
        result = run_calibrate(
            settings, platform, workdir or platform.home / "calibrate", model_uri,
            live_prior=prior,
        )  # fmt: skip
    except (DataError, ValueError, BundleError, MlflowException, OSError) as exc:
        raise _fail(str(exc)) from exc
    if result.calibration is None:
        typer.echo(f"calibration: {result.reason}")
        return
    typer.echo(_calibration_summary(result.calibration))
    if result.gate:
        typer.echo(result.gate.summary())
    if result.registered:
        r = result.registered
        typer.echo(f"registered: models:/{r.name}/{r.version} as @{r.alias}")


def score(
    input_path: Annotated[Path, typer.Option("--input", help="Parquet file with a text column.")],
    output: Annotated[Path, typer.Option(help="Parquet file to write.")],
    model_uri: Annotated[
        str | None, typer.Option(help="models:/name@alias or a bundle folder. Default: champion.")
    ] = None,
    text_column: Annotated[str, typer.Option(help="Column holding the tweets.")] = "text",
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per record batch.")] = 8192,
) -> None:
    """Score a Parquet file in record batches with the serving bundle (bounded memory)."""
    from mlflow.exceptions import MlflowException

    from airparadis.bundle import BundleError, load_bundle
    from airparadis.settings import PlatformSettings
    from airparadis.tracking import connect, download_model, needs_registry
    from training_jobs.score import ScoringError, score_file

    platform = PlatformSettings()
    uri = model_uri or platform.champion_uri
    try:
        if needs_registry(uri):
            connect(platform)
        model = load_bundle(download_model(uri))
        report = score_file(model, input_path, output, text_column, batch_size)
    except (ScoringError, BundleError, FileNotFoundError, MlflowException) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"{report.rows} rows scored in {report.batches} batches -> {output}")
    if report.unlabelled:
        typer.echo(f"{report.unlabelled} rows without text left unlabelled (null label)")


def compare(
    markdown: Annotated[
        bool,
        typer.Option(
            "--markdown", help="Print Markdown (the default when the output is not a terminal)."
        ),
    ] = False,
) -> None:
    """Table over the latest run of each family; logs it and a comparison plot to MLflow."""
    from rich.console import Console
    from rich.table import Table

    from airparadis.settings import PlatformSettings
    from training_jobs.compare import compare as run_compare

    try:
        result = run_compare(PlatformSettings())
    except LookupError as exc:
        raise _fail(str(exc)) from exc
    if markdown or not sys.stdout.isatty():
        typer.echo(result.table)
    else:
        header, *body = result.rows
        table = Table(*header, title="Latest run of each family (test split unless named)")
        for row in body:
            table.add_row(*row)
        Console().print(table)
    typer.echo(
        f"comparison logged to run {result.run_id} of experiment {result.experiment!r} "
        "(comparison.md, comparison.png)"
    )


def evaluate(
    model_uri: Annotated[
        str | None,
        typer.Option(help="models:/name@alias, runs:/..., or a bundle folder. Default: champion."),
    ] = None,
    data: DataOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Evaluate a model on CSV/Parquet files (official CSV, manual test file, Parquet)."""
    from mlflow.exceptions import MlflowException

    from airparadis.bundle import BundleError
    from airparadis.settings import PlatformSettings
    from training_jobs.data import DataError
    from training_jobs.evaluate import evaluate as run_evaluation
    from training_jobs.settings import TrainingSettings

    platform = PlatformSettings()
    paths = data or TrainingSettings().data
    try:
        metrics, report = run_evaluation(model_uri or platform.champion_uri, paths, platform)
    except (DataError, BundleError, FileNotFoundError, MlflowException) as exc:
        raise _fail(str(exc)) from exc
    from training_jobs.metrics import json_safe

    output: dict[str, object] = dict(metrics)
    output["n"] = int(metrics["n"])
    if as_json:  # strict JSON: an undefined metric (one-class ROC-AUC) is null, with a warning
        safe = json_safe(output, "evaluate")
        typer.echo(json.dumps(safe, sort_keys=True, allow_nan=False))
    else:
        typer.echo(report.summary())
        for key in sorted(metrics):
            value = metrics[key]
            typer.echo(f"{key:>20}: {'n/a' if value != value else f'{value:.4f}'}")


def export_feedback(
    out: Annotated[Path, typer.Option(help="Folder to write feedback.parquet into.")],
) -> None:
    """Write every stored feedback to Parquet, for retraining."""
    from sqlalchemy.exc import SQLAlchemyError

    from airparadis.feedback_export import export_feedback as run_export
    from airparadis.settings import PlatformSettings

    if out.exists() and not out.is_dir():
        raise _fail(
            f"{out} is an existing file; --out takes a folder (feedback.parquet goes in it)"
        )
    try:
        path, count = run_export(PlatformSettings().feedback_url, out)
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        raise _fail(f"feedback store unreachable: {type(exc).__name__}: {cause}") from exc
    except OSError as exc:
        raise _fail(f"cannot write the export into {out}: {exc}") from exc
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
        settings.replay_api_key.get_secret_value() if settings.replay_api_key else None
    )
    try:
        files = check_sources(data)
        client = FeedbackClient(server or settings.replay_server_url, api_key=key)
    except DataError as exc:
        raise _fail(str(exc)) from exc
    except ReplayRefused as exc:
        raise _fail(str(exc)) from exc
    except ReplayError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from exc
    try:
        with tqdm(total=limit, unit="tweet", desc="replay", file=sys.stderr) as bar:
            summary = run_replay(files, client, limit=limit, progress=bar.update)
    except ReplayRefused as exc:
        raise _fail(str(exc)) from exc
    except DataError as exc:
        raise _fail(str(exc)) from exc
    finally:
        client.close()
    typer.echo(json.dumps(summary.as_dict(), sort_keys=True) if as_json else summary.text())
    if summary.aborted:
        raise typer.Exit(code=1)


@home_app.command("move")
def move_home(
    source: Annotated[Path, typer.Argument(help="The home to move (holds mlflow.db).")],
    destination: Annotated[Path, typer.Argument(help="Its new path (must not exist).")],
) -> None:
    """Move a home and rewrite the artifact locations its MLflow store records."""
    from airparadis.home import HomeError, move

    try:
        rewritten = move(source, destination)
    except HomeError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"moved {source} to {destination}; {rewritten} artifact locations rewritten")
    typer.echo(f"use it with: export AIRPARADIS_HOME={destination.resolve()}")


@home_app.command("relocate")
def relocate_home(
    home: Annotated[
        Path | None, typer.Argument(help="A copied or restored home. Default: AIRPARADIS_HOME.")
    ] = None,
) -> None:
    """After copying or restoring a home elsewhere: point its store at its own artifacts."""
    from airparadis.home import HomeError, relocate
    from airparadis.settings import PlatformSettings

    try:
        rewritten = relocate(home or PlatformSettings().home)
    except HomeError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"{rewritten} artifact locations rewritten")
