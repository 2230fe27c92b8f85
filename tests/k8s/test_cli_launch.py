"""`train|tune|retrain --on-k8s --dry-run` print Jobs that pass validation, as the CLI runs them."""

import yaml
from typer.testing import CliRunner

from airparadis_cli.app import app
from tests.k8s.conftest import validate_builtin


def _job(args: list[str]) -> dict:  # type: ignore[type-arg]
    result = CliRunner().invoke(app, [*args, "--on-k8s", "--dry-run"])
    assert result.exit_code == 0, result.output
    job = yaml.safe_load(result.stdout)
    validate_builtin(job)
    return job  # type: ignore[no-any-return]


def test_train_dry_run_carries_the_command() -> None:
    job = _job(["train", "--family", "rnn", "--param", "cell=lstm", "--max-rows", "5000"])
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == [
        "train",
        "--family",
        "rnn",
        "--param",
        "cell=lstm",
        "--max-rows",
        "5000",
    ]
    env = {e["name"] for e in container["env"]}
    assert "MLFLOW_TRACKING_URI" in env
    assert job["spec"]["backoffLimit"] >= 0 and job["spec"]["ttlSecondsAfterFinished"] > 0


def test_tune_dry_run_is_an_indexed_job_of_one_worker_each() -> None:
    job = _job(["tune", "--family", "tfidf_lr", "--trials", "10", "--workers", "3"])
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == 3
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:8] == ["tune", "--family", "tfidf_lr", "--trials", "4", "--workers", "1"][:8]


def test_retrain_dry_run() -> None:
    job = _job(["retrain", "--family", "tfidf_lr"])
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "retrain",
        "--family",
        "tfidf_lr",
    ]
