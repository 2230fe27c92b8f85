"""Fixtures of the dashboard suite: settings aimed at a server, servers with their own rules
or without a drift reference, a small MLflow registry."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from airparadis.settings import PlatformSettings
from dashboard.settings import DashboardSettings
from tests.conftest import RunningServer, free_port, start_server

# Metrics of the two registered versions; the ops page must show exactly these.
CHAMPION_METRICS = {
    "test_accuracy": 0.7812, "test_roc_auc": 0.8604, "test_f1_negative": 0.77,
    "test_macro_f1": 0.7745, "test_recall_negative": 0.7433,
}  # fmt: skip
CHALLENGER_METRICS = {"test_accuracy": 0.8031, "test_roc_auc": 0.8817, "test_f1_negative": 0.80}


def settings_for(url: str, **extra: object) -> DashboardSettings:
    """Dashboard settings aimed at `url`, independent of any AIRPARADIS_DASHBOARD_* variable."""
    return DashboardSettings(server_url=url, timeout_seconds=5, **extra)  # type: ignore[arg-type]


def dead_url() -> str:
    """A loopback URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def registry_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An embedded MLflow store with versions 1 (@champion) and 2 (@challenger) and their runs.

    Written through an explicit MlflowClient, so no global MLflow state leaks to other suites.
    """
    from mlflow import MlflowClient

    home = tmp_path_factory.mktemp("registry-home")
    platform = PlatformSettings(home=home, tracking_uri=None, registry_uri=None)
    uri = platform.resolved_tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment(
        platform.experiment, artifact_location=platform.artifact_root.as_uri()
    )
    client.create_registered_model(platform.model_name)
    for alias, metrics in (("champion", CHAMPION_METRICS), ("challenger", CHALLENGER_METRICS)):
        run = client.create_run(experiment)
        for key, value in metrics.items():
            client.log_metric(run.info.run_id, key, value)
        client.set_terminated(run.info.run_id)
        version = client.create_model_version(
            platform.model_name,
            f"{run.info.artifact_uri}/model",
            run_id=run.info.run_id,
            tags={"family": "tfidf_lr"},
        )
        client.set_registered_model_alias(platform.model_name, alias, version.version)
    return home


@pytest.fixture(scope="module")
def alerting_server(
    tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path
) -> Iterator[RunningServer]:
    """A server of its own whose rule fires after 2 wrong feedbacks from one client (the shared
    one stays quiet)."""
    server = start_server(
        tmp_path_factory.mktemp("alerting-home"),
        str(tiny_bundle),
        AIRPARADIS_SERVER_ALERT_THRESHOLD="2",
        AIRPARADIS_SERVER_ALERT_WINDOW_SECONDS="600",
        AIRPARADIS_SERVER_ALERT_MIN_DISTINCT_CLIENTS="1",
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def rules_server(
    tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path
) -> Iterator[RunningServer]:
    """A server of its own with small windows: the misprediction rate counts from 4 verdicts
    (alerting at 50 %, from one client), and drift is judged on the last 10 tweets."""
    server = start_server(
        tmp_path_factory.mktemp("rules-home"),
        str(tiny_bundle),
        AIRPARADIS_SERVER_ALERT_THRESHOLD="100",
        AIRPARADIS_SERVER_MISPREDICTION_MIN_FEEDBACK="4",
        AIRPARADIS_SERVER_MISPREDICTION_THRESHOLD="0.5",
        AIRPARADIS_SERVER_ALERT_MIN_DISTINCT_CLIENTS="1",
        AIRPARADIS_SERVER_DRIFT_WINDOW="10",
        AIRPARADIS_SERVER_DRIFT_MIN_TWEETS="10",
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def unreferenced_server(
    tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path
) -> Iterator[RunningServer]:
    """The tiny bundle without its drift reference, as bundles trained before drift were."""
    from airparadis.drift import REFERENCE_FILE, VOCABULARY_FILE

    bundle = tmp_path_factory.mktemp("unreferenced") / "bundle"
    shutil.copytree(
        tiny_bundle, bundle, ignore=shutil.ignore_patterns(REFERENCE_FILE, VOCABULARY_FILE)
    )
    server = start_server(tmp_path_factory.mktemp("unreferenced-home"), str(bundle))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def calibrated_server(
    tmp_path_factory: pytest.TempPathFactory, calibrated_bundle: Path
) -> Iterator[RunningServer]:
    """A server of the tiny bundle calibrated on airline feedback, whose label-shift estimate
    counts from 50 tweets."""
    server = start_server(
        tmp_path_factory.mktemp("calibrated-home"),
        str(calibrated_bundle),
        AIRPARADIS_SERVER_DRIFT_WINDOW="100",
        AIRPARADIS_SERVER_DRIFT_MIN_TWEETS="50",
        AIRPARADIS_SERVER_ALERT_THRESHOLD="1000",
        AIRPARADIS_SERVER_FEEDBACK_PER_MINUTE="1000",
    )
    yield server
    server.stop()


def skewed_airline_tweets(shared_dir: Path, count: int, positives: int) -> list[str]:
    """Later airline tweets (never in the calibration's feedback), `positives` of them positive."""
    import pandas as pd

    from tests.conftest import AIRLINE_FILE, CALIBRATION_ROWS

    frame = pd.read_parquet(shared_dir / AIRLINE_FILE, columns=["text", "target"]).dropna()
    later = frame.iloc[CALIBRATION_ROWS:]
    pos = later[later["target"] == 1]["text"].head(positives).tolist()
    neg = later[later["target"] == 0]["text"].head(count - positives).tolist()
    return [str(t) for t in pos + neg]
