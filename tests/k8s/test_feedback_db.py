"""D3: in the chart, feedback lives in one database that every predictor replica and the
retraining Jobs share, with a user of its own; the retraining Jobs get their data volume.

The bootstrap Job's own command and script run against the real PostgreSQL of the test machine
(127.0.0.1:5432, as on CI), then the predictor's feedback store writes through the provisioned
user, which cannot reach MLflow's or Optuna's databases.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from .conftest import RENDER_CASES, Renderer, by_kind, env_of, pod_spec

ADMIN = os.environ.get("AIRPARADIS_TEST_POSTGRES_ADMIN", "postgres")
HOST = "127.0.0.1"


def _predictor_env(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    (isvc,) = by_kind(docs, "InferenceService").values()
    return env_of(pod_spec(isvc)["containers"][0])


@pytest.mark.parametrize(
    ("label", "values", "extra"), RENDER_CASES, ids=[c[0] for c in RENDER_CASES]
)
def test_predictor_and_retraining_share_one_feedback_database(
    renderer: Renderer, label: str, values: str | None, extra: tuple[str, ...]
) -> None:
    docs = renderer.docs(
        values,
        extra=(*extra, "--set", "retraining.enabled=true", "--set", "jobs.data.existingClaim=d"),
    )
    predictor = _predictor_env(docs)
    (cron,) = by_kind(docs, "CronJob").values()
    retrain = env_of(pod_spec(cron)["containers"][0])
    url = predictor["AIRPARADIS_SERVER_FEEDBACK_DB_URL"]
    assert retrain["AIRPARADIS_SERVER_FEEDBACK_DB_URL"] == url, label
    for name in ("FEEDBACK_DB_PASSWORD",):
        assert retrain.get(name) == predictor.get(name), label
    # Never the per-pod SQLite default, never MLflow's administrator.
    if "value" in url:
        assert url["value"].startswith("postgresql+psycopg://feedback:$(FEEDBACK_DB_PASSWORD)@")
        assert url["value"].endswith(":5432/feedback")
    else:
        assert url["valueFrom"]["secretKeyRef"]["name"] != "airparadis-mlflow-db"
    # The retraining Job reads the training data from the claim.
    spec = pod_spec(cron)
    mounts = {m["name"]: m for m in spec["containers"][0]["volumeMounts"]}
    assert mounts["data"]["readOnly"] is True
    assert retrain["AIRPARADIS_TRAIN_DATA"]["value"] == mounts["data"]["mountPath"]
    (data,) = [v for v in spec["volumes"] if v["name"] == "data"]
    assert data["persistentVolumeClaim"]["claimName"] == "d"


def test_an_external_database_needs_a_feedback_url(renderer: Renderer) -> None:
    message = renderer.fails(
        "--set", "postgresql.enabled=false", "--set", "mlflow.backendStore.existingSecret=db"
    )
    assert "feedbackDb.existingSecret" in message


@pytest.fixture
def databases() -> Iterator[dict[str, str]]:
    """Throw-away names for the feedback user and the three databases."""
    tag = uuid.uuid4().hex[:8]
    names = {
        "user": f"fb_user_{tag}",
        "feedback": f"fb_db_{tag}",
        "mlflow": f"mlflow_{tag}",
        "optuna": f"optuna_{tag}",
    }
    with psycopg.connect(host=HOST, user=ADMIN, dbname="test", autocommit=True) as conn:
        for db in ("mlflow", "optuna"):
            conn.execute(f'CREATE DATABASE "{names[db]}"')
    yield names
    with psycopg.connect(host=HOST, user=ADMIN, dbname="test", autocommit=True) as conn:
        for db in ("feedback", "mlflow", "optuna"):
            conn.execute(f'DROP DATABASE IF EXISTS "{names[db]}" WITH (FORCE)')
        conn.execute(f'DROP ROLE IF EXISTS "{names["user"]}"')


def _run_bootstrap(
    job: dict[str, Any], script: str, tmp_path: Path, names: dict[str, str], password: str
) -> None:
    """The Job's container command, with its script and environment, against local PostgreSQL."""
    (container,) = pod_spec(job)["containers"]
    env = {e["name"]: e.get("value", "") for e in container["env"]}
    assert {e["name"] for e in container["env"] if "valueFrom" in e} == {
        "PGPASSWORD",
        "FEEDBACK_DB_PASSWORD",
    }
    env.update(
        PGHOST=HOST,
        PGUSER=ADMIN,
        PGDATABASE="test",
        PGPASSWORD="unused-with-trust-auth",
        FEEDBACK_DB_USER=names["user"],
        FEEDBACK_DB_NAME=names["feedback"],
        FEEDBACK_DB_PASSWORD=password,
        MLFLOW_DB_NAME=names["mlflow"],
        OPTUNA_DB_NAME=names["optuna"],
        PATH=os.environ["PATH"],
        HOME=str(tmp_path),
    )
    (tmp_path / "feedback-db.sql").write_text(script, encoding="utf-8")
    command = [*container["command"], *container["args"]]
    command[-1] = command[-1].replace("/bootstrap/", f"{tmp_path}/")
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert password not in " ".join(command), "the password is never an argument"


def test_the_bootstrap_job_gives_feedback_a_database_and_a_least_privilege_user(
    renderer: Renderer, databases: dict[str, str], tmp_path: Path
) -> None:
    from model_server.feedback import FeedbackStore

    docs = renderer.docs()
    job = by_kind(docs, "Job")["airparadis-feedback-db"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    script = by_kind(docs, "ConfigMap")["airparadis-feedback-db"]["data"]["feedback-db.sql"]
    # Twice (every upgrade runs it), the second time with a rotated password.
    _run_bootstrap(job, script, tmp_path, databases, "first-password")
    _run_bootstrap(job, script, tmp_path, databases, "rotated-password")

    user = databases["user"]
    with psycopg.connect(host=HOST, user=ADMIN, dbname="test") as conn:
        role = conn.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolcanlogin, rolpassword IS NOT NULL"
            " FROM pg_authid WHERE rolname = %s",
            (user,),
        ).fetchone()
        assert role == (False, False, False, True, True)
        owner = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
            (databases["feedback"],),
        ).fetchone()
        assert owner == (user,)

    # The predictor's store works through the feedback user, in its database...
    store = FeedbackStore(f"postgresql+psycopg://{user}:x@{HOST}:5432/{databases['feedback']}")
    store.add(
        {
            "id": str(uuid.uuid4()),
            "tweet": "my bag is lost",
            "predicted_label": "positive",
            "probability": 0.8,
            "verdict": "wrong",
            "correct_label": None,
            "model_name": "m",
            "model_version": "3",
            "request_id": "r-1",
        }
    )
    assert [row["verdict"] for row in store.export_rows()] == ["wrong"]
    store.engine.dispose()
    # ... and cannot even connect to MLflow's or Optuna's.
    for db in ("mlflow", "optuna"):
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            psycopg.connect(host=HOST, user=user, dbname=databases[db]).close()


def test_initdb_creates_them_before_postgresql_accepts_connections(
    renderer: Renderer, databases: dict[str, str], tmp_path: Path
) -> None:
    """On a new data directory the image's entrypoint runs /docker-entrypoint-initdb.d/*.sql
    (psql -v ON_ERROR_STOP=1 --no-psqlrc -f) with the container's environment, before it
    listens on TCP: no predictor can start before the feedback user exists. The Job then
    finds everything in place."""
    docs = renderer.docs()
    init = by_kind(docs, "ConfigMap")["airparadis-postgresql-init"]["data"]
    assert sorted(init) == ["10-optuna.sql", "20-feedback.sql"]
    (statefulset,) = by_kind(docs, "StatefulSet").values()
    container = pod_spec(statefulset)["containers"][0]
    env = {e["name"]: e.get("value", "") for e in container["env"]}
    assert {e["name"] for e in container["env"] if "valueFrom" in e} == {
        "POSTGRES_PASSWORD",
        "FEEDBACK_DB_PASSWORD",
    }
    env.update(
        FEEDBACK_DB_USER=databases["user"],
        FEEDBACK_DB_NAME=databases["feedback"],
        FEEDBACK_DB_PASSWORD="initdb-password",
        MLFLOW_DB_NAME=databases["mlflow"],
        OPTUNA_DB_NAME=databases["optuna"],
        PATH=os.environ["PATH"],
    )
    script = tmp_path / "20-feedback.sql"
    script.write_text(init["20-feedback.sql"], encoding="utf-8")
    entrypoint = ["psql", "-v", "ON_ERROR_STOP=1", "--no-psqlrc", "-h", HOST, "-U", ADMIN]
    result = subprocess.run(
        [*entrypoint, "-d", "test", "-f", str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    with psycopg.connect(host=HOST, user=databases["user"], dbname=databases["feedback"]) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (databases["user"],)
    job = by_kind(docs, "Job")["airparadis-feedback-db"]
    script_text = by_kind(docs, "ConfigMap")["airparadis-feedback-db"]["data"]["feedback-db.sql"]
    assert script_text == init["20-feedback.sql"], "one script for both paths"
    _run_bootstrap(job, script_text, tmp_path, databases, "initdb-password")
