"""Optuna tuning (SQLite and the real PostgreSQL server), pruning, MLflow child runs, the
retrain of the best trial, the registry gate and `airparadis compare`, on small slices."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import optuna
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from airparadis.settings import PlatformSettings
from airparadis_cli.app import app
from training_jobs.gate import decide
from training_jobs.settings import TrainingSettings
from training_jobs.train import train
from training_jobs.tune import PARENT_RUN_ATTR, RETRAINED_ATTR, _reporter, load_study, tune

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PlatformSettings:
    for name in ("MLFLOW_TRACKING_URI", "OPTUNA_STORAGE", "AIRPARADIS_TRAIN_TUNE_STORAGE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIRPARADIS_HOME", str(tmp_path / "home"))
    return PlatformSettings()


def settings_for(data: Path, **extra: object) -> TrainingSettings:
    return TrainingSettings(data=[data], max_rows=3000, seed=9, **extra)  # type: ignore[arg-type]


def test_gate_rule() -> None:
    platform = PlatformSettings()
    first = decide(0.70, None, 0.01, "accuracy", platform)
    assert (first.alias, first.promoted) == ("champion", True)
    better = decide(0.80, 0.78, 0.01, "accuracy", platform, "3")
    assert (better.alias, better.promoted) == ("champion", True)
    close = decide(0.785, 0.78, 0.01, "accuracy", platform, "3")
    assert (close.alias, close.promoted) == ("challenger", False)
    assert "0.7850" in close.summary() and "v3 0.7800" in close.summary()


def test_gate_promotes_only_a_clearly_better_model(
    platform: PlatformSettings, sentiment140_dir: Path
) -> None:
    settings = settings_for(sentiment140_dir, gate={"margin": 0.005})
    weak = train("tfidf_lr", settings, platform, params={"C": 0.01, "ngram_max": 1})
    assert weak.gate is not None and weak.gate.alias == "champion"
    same = train("tfidf_lr", settings, platform, params={"C": 0.01, "ngram_max": 1})
    assert same.gate is not None and same.gate.alias == "challenger"
    assert same.gate.champion_score == pytest.approx(weak.gate.candidate_score)
    strong = train("tfidf_lr", settings, platform)
    assert strong.gate is not None and strong.gate.alias == "champion", strong.gate.summary()

    client = MlflowClient()
    champion = client.get_model_version_by_alias(platform.model_name, "champion")
    challenger = client.get_model_version_by_alias(platform.model_name, "challenger")
    assert strong.registered is not None and same.registered is not None
    assert (str(champion.version), str(challenger.version)) == (
        strong.registered.version,
        same.registered.version,
    )
    run = client.get_run(same.run_id)
    assert run.data.params["gate.decision"] == "challenger"
    assert run.data.metrics["gate.champion_score"] == pytest.approx(weak.gate.candidate_score)
    assert "gate" in challenger.tags


def test_pruner_stops_a_trial_below_the_median(platform: PlatformSettings) -> None:
    from airparadis.tracking import configure_tracking

    configure_tracking(platform)
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=2)
    )
    for value in (0.8, 0.82):
        trial = study.ask()
        trial.report(value, 1)
        study.tell(trial, value)
    trial = study.ask()
    with mlflow.start_run(), pytest.raises(optuna.TrialPruned):
        _reporter(trial)(1, 0.55)


def test_tune_sqlite_child_runs_pruning_and_retrain(
    platform: PlatformSettings, sentiment140_dir: Path
) -> None:
    settings = settings_for(sentiment140_dir)
    result = tune("tfidf_lr", settings, platform, trials=4)
    assert result.storage.startswith("sqlite:///") and result.trials == 4
    study = load_study("tfidf_lr", settings, platform)
    states = {t.state for t in study.trials}
    assert states <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    assert all(len(t.intermediate_values) >= 1 for t in study.trials)
    assert {"C", "ngram_max", "char_ngram_max"} <= set(study.best_params)

    client = MlflowClient()
    parent_id = study.user_attrs[PARENT_RUN_ATTR]
    children = client.search_runs(
        [client.get_run(parent_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_id}'",
    )
    stages = sorted(r.data.tags["stage"] for r in children)
    assert stages == ["retrain"] + ["trial"] * 4
    assert result.retrained is not None and result.retrained.registered is not None
    assert study.user_attrs[RETRAINED_ATTR] == study.best_trial.number
    retrain_run = client.get_run(result.retrained.run_id)
    assert retrain_run.data.metrics["data.rows_train"] == 2400
    assert "validation_accuracy" not in retrain_run.data.metrics  # validation was trained on

    training_runs = len(client.search_runs([retrain_run.info.experiment_id]))
    compare = CliRunner().invoke(app, ["compare"], env={"COLUMNS": "200"})
    assert compare.exit_code == 0, compare.output
    assert "| tfidf_lr | sklearn |" in compare.stdout  # not a terminal: Markdown
    assert "eval accuracy" not in compare.stdout  # no run logged it: no empty column
    comparison_run = client.get_run(compare.stdout.split("logged to run ")[1].split()[0])
    assert {a.path for a in client.list_artifacts(comparison_run.info.run_id)} >= {
        "comparison.md",
        "comparison.png",
    }
    assert comparison_run.info.experiment_id != retrain_run.info.experiment_id
    assert comparison_run.info.artifact_uri.startswith(platform.artifact_root.as_uri())
    assert len(client.search_runs([retrain_run.info.experiment_id])) == training_runs


def test_tune_two_worker_processes_share_one_study(
    platform: PlatformSettings, sentiment140_dir: Path
) -> None:
    runner = CliRunner()
    args = ["tune", "--family", "tfidf_lr", "--data", str(sentiment140_dir), "--max-rows",
            "2000", "--trials", "4", "--workers", "2", "--no-retrain"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    study = load_study("tfidf_lr", settings_for(sentiment140_dir), platform)
    assert len(study.trials) == 4
    assert "4 trials" in result.stdout


@pytest.fixture
def postgres_study() -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    with contextlib.suppress(KeyError):
        optuna.delete_study(study_name=name, storage=POSTGRES_URL)


def test_postgres_study_creator_and_worker(
    platform: PlatformSettings, sentiment140_dir: Path, postgres_study: str
) -> None:
    runner = CliRunner()
    create = ["tune", "--family", "tfidf_lr", "--create-study-only", "--storage", POSTGRES_URL,
              "--study", postgres_study]  # fmt: skip
    first = runner.invoke(app, [*create, "--skip-if-exists"])
    assert first.exit_code == 0 and "created" in first.stdout, first.output
    again = runner.invoke(app, [*create, "--skip-if-exists"])
    assert again.exit_code == 0 and "exists" in again.stdout, again.output
    refused = runner.invoke(app, create)
    assert refused.exit_code == 2 and "already exists" in refused.stderr

    worker = runner.invoke(app, ["tune", "--family", "tfidf_lr", "--trials", "2", "--workers",
                                 "1", "--storage", POSTGRES_URL, "--study", postgres_study,
                                 "--data", str(sentiment140_dir), "--max-rows", "2000",
                                 "--no-retrain"])  # fmt: skip
    assert worker.exit_code == 0, worker.output
    study = optuna.load_study(study_name=postgres_study, storage=POSTGRES_URL)
    assert len(study.trials) == 2 and study.user_attrs["family"] == "tfidf_lr"
