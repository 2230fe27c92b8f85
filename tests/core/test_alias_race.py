"""A promotion between resolving the alias and downloading the files cannot mislabel a model.

The predictor resolves ``models:/name@champion`` to version N (its label), then downloads;
here the alias moves to N+1 during that download, in a real MLflow store.
"""

import json
import shutil
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from airparadis.settings import PlatformSettings
from airparadis.tracking import connect
from model_server.model import SentimentModel
from model_server.settings import ServerSettings

NAME = "alias-race"


def _register(bundle: Path, tmp_path: Path, tag: str) -> str:
    """A copy of the bundle, told apart by a parameter, as a new registered version."""
    copy = tmp_path / tag
    shutil.copytree(bundle, copy)
    info = json.loads((copy / "bundle.json").read_text())
    info["params"] = {**info["params"], "which": tag}
    (copy / "bundle.json").write_text(json.dumps(info))
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(copy), "bundle")
    client = MlflowClient()
    if not client.search_registered_models(f"name = '{NAME}'"):
        client.create_registered_model(NAME)
    source = f"{run.info.artifact_uri}/bundle"
    return str(client.create_model_version(NAME, source, run_id=run.info.run_id).version)


def test_the_served_files_are_the_resolved_version(
    tiny_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRPARADIS_HOME", str(tmp_path / "home"))
    connect(PlatformSettings())
    first, second = _register(tiny_bundle, tmp_path, "v1"), _register(tiny_bundle, tmp_path, "v2")
    client = MlflowClient()
    client.set_registered_model_alias(NAME, "champion", first)

    download = mlflow.artifacts.download_artifacts
    promoted: list[str] = []

    def promote_then_download(**kwargs):  # type: ignore[no-untyped-def]
        """The promotion lands after the predictor resolved the alias, before the files."""
        if not promoted:
            client.set_registered_model_alias(NAME, "champion", second)
            promoted.append(str(kwargs.get("artifact_uri")))
        return download(**kwargs)

    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", promote_then_download)
    model = SentimentModel(
        NAME, f"models:/{NAME}@champion", ServerSettings(reload_interval_seconds=0)
    )
    assert model.load(), model.load_error
    assert promoted  # the promotion really happened mid-load
    assert model.ref is not None and model.ref.version == first
    assert model.classifier is not None
    assert model.classifier.info.params["which"] == "v1"  # the files of the labelled version
    # The next load serves the new champion, under its own label.
    assert model.load(), model.load_error
    assert model.ref is not None and model.ref.version == second
    assert model.classifier is not None and model.classifier.info.params["which"] == "v2"
