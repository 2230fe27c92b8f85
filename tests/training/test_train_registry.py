"""Training end to end on a slice of the shared data, into a real MLflow store, and back."""

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from airparadis.bundle import load_bundle
from airparadis.settings import PlatformSettings
from airparadis.tracking import download_model
from airparadis_cli.app import app
from tests.conftest import MLFLOW_VARIABLES
from training_jobs.settings import TrainingSettings
from training_jobs.train import TrainResult, train

MANUAL_TEST_ROWS = (
    b'"4","3","Mon May 11 03:17:40 UTC 2009","kindle2","tpryan","@stellargirl I loooooooovvvvvveee my Kindle2. Not that the DX is cool, but the 2 is fantastic in its own right."\n'
    b'"0","4","Mon May 11 03:18:03 UTC 2009","kindle2","vcu451","Reading my kindle2...  Love it... Lee childs is good read."\n'
    b'"2","5","Mon May 11 03:18:54 UTC 2009","kindle2","chadfowler","Ok, first assesment of the #kindle2 ...it fucking rocks!!!"\n'
    b'"0","6","Mon May 11 05:20:15 UTC 2009","aig","x","this is the worst, awful, I hate it so much"\n'
)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("platform")


@pytest.fixture(scope="module")
def trained(home: Path, sentiment140_dir: Path) -> TrainResult:
    with pytest.MonkeyPatch.context() as mp:
        for name in MLFLOW_VARIABLES:  # another module's store is not this one's
            mp.delenv(name, raising=False)
        mp.setenv("AIRPARADIS_HOME", str(home))
        settings = TrainingSettings(data=[sentiment140_dir], max_rows=12_000, seed=3)
        return train("tfidf_lr", settings, PlatformSettings())


@pytest.fixture
def platform(home: Path, monkeypatch: pytest.MonkeyPatch) -> PlatformSettings:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("AIRPARADIS_HOME", str(home))
    return PlatformSettings()


def test_training_logs_params_metrics_table_and_fingerprint(
    trained: TrainResult, platform: PlatformSettings
) -> None:
    assert (platform.home / "mlflow.db").is_file()
    run = MlflowClient().get_run(trained.run_id)
    assert run.data.params["data.fingerprint"] == trained.fingerprint
    assert run.data.params["model.C"] == "2.0"
    assert run.data.metrics["data.rows_test"] == 1200
    # A 12k-tweet slice is far from the full data, but a working baseline is well above chance.
    assert run.data.metrics["test_accuracy"] > 0.70
    assert run.data.metrics["test_roc_auc"] > 0.78
    for key in ("f1_negative", "f1_positive", "precision_negative", "recall_positive"):
        assert 0 < run.data.metrics[f"test_{key}"] < 1
    table = mlflow.artifacts.load_text(f"runs:/{trained.run_id}/metrics_table.md")
    assert "| test | negative |" in table and "ROC-AUC" in table


def test_run_has_datasets_plots_and_descriptions(
    trained: TrainResult, platform: PlatformSettings
) -> None:
    """What the MLflow UI shows: the Dataset column, evaluation plots, and descriptions of
    the run, the registered model and the version (with the gate's decision)."""
    client = MlflowClient()
    run = client.get_run(trained.run_id)
    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"sentiment140-training", "sentiment140-validation", "sentiment140-test"}
    contexts = {name: {t.value for t in d.tags if t.key == "mlflow.data.context"}
                for name, d in inputs.items()}  # fmt: skip
    assert contexts["sentiment140-test"] == {"test"}
    assert json.loads(inputs["sentiment140-test"].dataset.profile)["num_rows"] == 1200
    plots = {a.path for a in client.list_artifacts(trained.run_id, "plots")}
    assert plots == {f"plots/{n}.png" for n in
                     ("confusion_matrix", "roc_curve", "pr_curve", "calibration_curve")}  # fmt: skip
    note = run.data.tags["mlflow.note.content"]
    assert "tfidf_lr" in note and trained.fingerprint[:12] in note and "ROC-AUC" in note
    assert trained.registered is not None
    version = client.get_model_version(platform.model_name, trained.registered.version)
    assert note in version.description and "Gate:" in version.description
    assert "champion" in client.get_registered_model(platform.model_name).description


def test_registered_as_champion_with_signature(
    trained: TrainResult, platform: PlatformSettings
) -> None:
    assert trained.registered is not None
    version = MlflowClient().get_model_version_by_alias(platform.model_name, "champion")
    assert str(version.version) == trained.registered.version
    assert version.tags["family"] == "tfidf_lr"
    info = mlflow.models.get_model_info(platform.champion_uri)
    assert info.signature.inputs.input_names() == ["text"]
    assert info.saved_input_example_info is not None


def test_registry_round_trip_gives_identical_predictions(
    trained: TrainResult, platform: PlatformSettings, tmp_path: Path
) -> None:
    tweets = ["best flight ever, thank you!", "lost my luggage, never again", "ok"]
    from_registry = load_bundle(download_model(platform.champion_uri, tmp_path / "dl"))
    pyfunc = mlflow.pyfunc.load_model(platform.champion_uri)
    out = pyfunc.predict(pd.DataFrame({"text": tweets}))
    np.testing.assert_allclose(out["probability"].to_numpy(), from_registry.predict_proba(tweets))
    assert list(out["label"]) == ["positive", "negative", out["label"][2]]


def test_evaluate_cli_json_on_manual_test_format(
    trained: TrainResult, platform: PlatformSettings, tmp_path: Path
) -> None:
    manual = tmp_path / "testdata.manual.2009.06.14.csv"
    manual.write_bytes(MANUAL_TEST_ROWS)
    result = CliRunner().invoke(app, ["evaluate", "--data", str(manual), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["n"] == 3
    assert metrics["neutral_left_out"] == 1
    for key in (
        "accuracy", "roc_auc", "f1_negative", "f1_positive", "precision_negative",
        "precision_positive", "recall_negative", "recall_positive",
    ):  # fmt: skip
        assert 0.0 <= metrics[key] <= 1.0


def test_evaluate_cli_names_the_problem(platform: PlatformSettings, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", "--data", str(tmp_path / "nope.csv"), "--json"])
    assert result.exit_code == 2
    assert "nope.csv: no such file" in result.stderr
    bad_model = CliRunner().invoke(
        app, ["evaluate", "--model-uri", str(tmp_path), "--data", str(tmp_path)]
    )
    assert bad_model.exit_code == 2
