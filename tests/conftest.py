"""Shared fixtures: ../shared, a tiny model trained here, a real server on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL_NAME = "air-paradis-sentiment"


MLFLOW_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID")


# -- markers by what a test needs (`make test-fast` deselects them), applied here by fixture and
# by module so that test files need not carry them; tests may also mark themselves.
_MARKS_BY_FIXTURE: dict[str, frozenset[str]] = {
    "browser": frozenset({"browser"}),
    "postgres": frozenset({"postgres_store", "postgres_study", "databases"}),
    "containers": frozenset({"docker_daemon", "base_image", "project_images"}),
    # A server process, a training beyond the session's tiny bundle, a neural export.
    "slow": frozenset(
        {
            "model_server", "alerting_server", "rules_server", "unreferenced_server",
            "drift_server", "strict_server", "secured", "served_model", "rnn_bundle",
            "transformer_bundle", "small_split", "trained", "registry_home",
            "calibrated_server",
        }
    ),
}  # fmt: skip
_MARKS_BY_MODULE: dict[str, frozenset[str]] = {
    "dashboard/test_browser.py": frozenset({"browser", "slow"}),
    "k8s/test_feedback_db.py": frozenset({"postgres"}),
    "core/test_tune_claim.py": frozenset({"postgres"}),
    "core/test_alias_race.py": frozenset({"slow"}),
    "test_up.py": frozenset({"slow"}),
    "test_loop.py": frozenset({"slow"}),
    "server/test_hot_reload.py": frozenset({"slow"}),
    "server/test_fuzz.py": frozenset({"slow"}),
    "server/test_overload.py": frozenset({"slow"}),
    "training/test_retrain.py": frozenset({"slow"}),
    "training/test_tune_gate.py": frozenset({"slow"}),
    "training/test_export_formats.py": frozenset({"slow"}),
    "training/test_cli_errors.py": frozenset({"slow"}),  # the CLI as a process, per case
    "docs/test_doc_commands.py": frozenset({"slow"}),  # the documented commands, servers too
}
_SLOW_TESTS = frozenset(  # each starts the server CLI as a process of its own
    {
        "server/test_hardening.py::test_client_errors_are_one_escaped_line_without_traceback",
        "server/test_server_api.py::test_missing_model_is_live_but_not_ready",
        "server/test_server_api.py::test_bad_settings_are_a_usage_error_naming_the_setting",
        "core/test_fastpath.py::test_dashboard_and_cleaning_work_without_the_extension",
    }
)
_TESTS_DIR = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by these markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        module = item.path.relative_to(_TESTS_DIR).as_posix()
        marks = set(_MARKS_BY_MODULE.get(module, ()))
        if module.startswith("containers/"):  # the chart's pods in Docker
            marks |= {"containers", "slow"}
        marks |= {mark for mark, names in _MARKS_BY_FIXTURE.items() if fixtures & names}
        if "postgres" in item.name.lower():  # e.g. store[postgresql], test_postgres_...
            marks.add("postgres")
        function = getattr(item, "function", None)
        calls = function.__code__.co_names if function is not None else ()
        name = getattr(item, "originalname", item.name)
        if "start_server" in calls or f"{module}::{name}" in _SLOW_TESTS:
            marks.add("slow")
        for mark in sorted(marks):
            item.add_marker(mark)


@pytest.fixture(autouse=True)
def _isolated_mlflow_environment() -> Iterator[None]:
    """`mlflow.set_tracking_uri` also writes MLFLOW_TRACKING_URI into os.environ, which
    PlatformSettings reads: without this, one test's store would become every later test's."""
    saved = {name: os.environ.pop(name, None) for name in MLFLOW_VARIABLES}
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only ../shared folder beside the checkout (override with AIRPARADIS_SHARED_DIR)."""
    path = Path(os.environ.get("AIRPARADIS_SHARED_DIR", REPO_ROOT.parent / "shared")).resolve()
    if not (path / "README.md").is_file():
        pytest.fail(f"shared data folder not found at {path}; set AIRPARADIS_SHARED_DIR")
    return path


@pytest.fixture(scope="session")
def sentiment140_dir(shared_dir: Path) -> Path:
    return shared_dir / "data" / "sentiment140"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory, sentiment140_dir: Path) -> Path:
    """A TF-IDF + LR bundle trained here on a 6,000-tweet stratified slice of the shared data."""
    from airparadis.drift import build_reference, save_reference
    from training_jobs.data import load_sources
    from training_jobs.families.tfidf_lr import TfidfLogisticRegression
    from training_jobs.split import split_data, stratified_sample

    frame, _ = load_sources([sentiment140_dir])
    frame = stratified_sample(frame, 6000, seed=7)
    split = split_data(frame, 0.1, 0.1, seed=7)
    family = TfidfLogisticRegression()
    model = family.fit(split.train, split.validation, {"min_df": 1}, seed=7)
    directory = tmp_path_factory.mktemp("bundle") / "bundle"
    family.save(model, directory)
    test_texts = split.test["text"].tolist()
    reference = build_reference(
        split.train["text"].tolist(), test_texts, model.predict_proba(test_texts), 0.5
    )
    save_reference(directory, reference)
    return directory


AIRLINE_FILE = Path("data/airline/us_airline_tweets.united_southwest_delta.parquet")
CALIBRATION_ROWS = 400
"""The first labelled airline tweets stand for the feedback `calibrated_bundle` is fitted on;
tests draw live traffic from the later ones."""


@pytest.fixture(scope="session")
def calibrated_bundle(
    tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path, shared_dir: Path
) -> Path:
    """The tiny bundle calibrated on airline feedback, as `airparadis calibrate` leaves it."""
    import shutil

    import pandas as pd

    from airparadis.bundle import load_bundle, read_info, write_info
    from airparadis.calibration import with_calibration
    from airparadis.calibration_fit import fit_calibration

    bundle = tmp_path_factory.mktemp("calibrated") / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    frame = pd.read_parquet(shared_dir / AIRLINE_FILE, columns=["text", "target"]).dropna()
    feedback = frame.head(CALIBRATION_ROWS)
    raw = load_bundle(bundle).predict_proba(feedback["text"].tolist())
    calibration = fit_calibration(raw, feedback["target"].astype(int).to_numpy())
    write_info(bundle, with_calibration(read_info(bundle), calibration))
    return bundle


@dataclass
class RunningServer:
    url: str
    home: Path
    process: subprocess.Popen[bytes]
    log: Path
    grpc_port: int = 0

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def predict_url(self) -> str:
        return f"{self.url}/v1/models/{MODEL_NAME}:predict"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def server_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRPARADIS_", "MLFLOW_"))}
    env.update({"AIRPARADIS_HOME": str(home), "PYTHONUNBUFFERED": "1", **extra})
    # A port of its own for the gRPC server too: several servers (and checkouts) run at once.
    env.setdefault("AIRPARADIS_SERVER_GRPC_PORT", str(free_port()))
    return env


def start_server(
    home: Path, model_uri: str, port: int | None = None, ready_timeout: float = 90, **env: str
) -> RunningServer:
    """Start `airparadis serve` as a real process on loopback and wait until it is ready."""
    port = port or free_port()
    home.mkdir(parents=True, exist_ok=True)
    log = home / f"server-{port}.log"
    environment = server_env(home, **env)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airparadis",
            "serve",
            "--port",
            str(port),
            "--model-uri",
            model_uri,
        ],
        cwd=home,
        env=environment,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    grpc_port = int(environment["AIRPARADIS_SERVER_GRPC_PORT"])
    server = RunningServer(f"http://127.0.0.1:{port}", home, process, log, grpc_port)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/v2/health/ready", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"server not ready in {ready_timeout}s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def model_server(
    tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path
) -> Iterator[RunningServer]:
    """The real model server, serving the tiny bundle, for the whole session."""
    server = start_server(tmp_path_factory.mktemp("server-home"), str(tiny_bundle))
    yield server
    server.stop()
