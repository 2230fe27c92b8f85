"""Worker processes sharing one SQLite study each run a queued trial exactly once."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from airparadis_cli.app import app
from training_jobs.study_storage import open_storage

QUEUED = 48
WORKERS = 4


def _work(url: str, trials: int) -> None:
    """One worker: pop queued trials as fast as it can, so pops from workers collide."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="race", storage=open_storage(url))
    study.optimize(lambda trial: trial.suggest_float("x", 0, QUEUED), n_trials=trials)


def test_queued_trials_run_once_each_across_worker_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="race", storage=open_storage(url))
    for x in range(QUEUED):
        study.enqueue_trial({"x": float(x)})

    spawn = multiprocessing.get_context("spawn")
    workers = [spawn.Process(target=_work, args=(url, QUEUED // WORKERS)) for _ in range(WORKERS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert [worker.exitcode for worker in workers] == [0] * WORKERS

    trials = optuna.load_study(study_name="race", storage=url).trials
    assert [trial.state for trial in trials] == [optuna.trial.TrialState.COMPLETE] * QUEUED
    assert sorted(trial.params["x"] for trial in trials) == [float(x) for x in range(QUEUED)]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("not a url", "Could not parse"),
        ("nosuchdb://host/x", "Can't load plugin"),
        ("postgresql+psycopg://tuner:s3cret@127.0.0.1:1/optuna", "Connection refused"),
        ("sqlite:////no/such/folder/optuna.db", "unable to open database file"),
    ],
)
def test_a_storage_that_cannot_be_used_is_a_usage_error(
    url: str, reason: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRPARADIS_HOME", str(tmp_path / "home"))
    args = ["tune", "--family", "tfidf_lr", "--create-study-only", "--storage", url]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "study storage" in result.stderr and reason in result.stderr
    assert "s3cret" not in result.output
