"""The model card written at registration: trained on tiny data the test writes, into a real
embedded MLflow store, read back as the artifacts the UI and the dashboard read."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from airparadis.behaviour import run_checks
from airparadis.bundle import load_bundle
from airparadis.model_card import CARD_JSON, CARD_MARKDOWN, GENERIC, IN_DOMAIN, ModelCard
from airparadis.settings import PlatformSettings
from airparadis.tracking import download_model
from tests.training.tiny_data import feedback, write_sentiment140
from training_jobs.feedback_fit import DomainFeedback
from training_jobs.settings import TrainingSettings
from training_jobs.train import train

pytestmark = pytest.mark.slow  # two trainings and registrations, with plots (about a minute)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sentiment140(tmp_path_factory.mktemp("data") / "tiny.csv")


@pytest.fixture(scope="module")
def platform_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


def _settings(data: Path) -> TrainingSettings:
    return TrainingSettings(data=[data], seed=5, feedback={"weight_grid": [2.0]})


def _card(run_id: str) -> tuple[ModelCard, str]:
    raw = mlflow.artifacts.load_dict(f"runs:/{run_id}/{CARD_JSON}")
    return ModelCard.model_validate(raw), mlflow.artifacts.load_text(
        f"runs:/{run_id}/{CARD_MARKDOWN}"
    )


def test_registering_a_version_writes_its_card(
    data: Path, platform_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIRPARADIS_HOME", str(platform_env))
    platform = PlatformSettings()
    result = train("tfidf_lr", _settings(data), platform, params={"min_df": 1})
    assert result.registered is not None
    card, markdown = _card(result.run_id)

    assert (card.model_name, card.version) == (platform.model_name, result.registered.version)
    assert card.alias == "champion" and card.family == "tfidf_lr" and card.run_id == result.run_id
    assert "social-media analysts" in card.users and "neutral" in card.out_of_scope
    assert card.data.fingerprint == result.fingerprint and card.data.rows_test == 60
    assert str(data) in (card.data.sources or "")
    generic = card.metrics[GENERIC]
    assert generic["accuracy"] == pytest.approx(result.metrics["test"]["accuracy"])
    assert generic["n"] == 60 and IN_DOMAIN not in card.metrics
    assert card.calibration.kind == "none" and card.calibration.threshold == 0.5
    assert card.calibration.brier == pytest.approx(result.metrics["test"]["brier"])
    assert any("arcasm" in item for item in card.limitations)
    assert any("egation" in item for item in card.limitations)
    assert any("prior" in item for item in card.limitations)
    # The checks ran on the registered artifact: the same results when run again on it.
    served = load_bundle(download_model(platform.champion_uri, tmp_path / "dl"))
    again = {c.name: c.failures for c in run_checks(served)}
    assert {c.name: c.failures for c in card.behaviour} == again and len(again) == 5
    assert f"{card.behaviour_passed} of 5 pass" in markdown
    assert result.fingerprint in markdown and "No held-out in-domain feedback" in markdown
    version = MlflowClient().get_model_version(platform.model_name, card.version)
    assert f"runs:/{result.run_id}/{CARD_MARKDOWN}" in version.description


def test_the_card_of_a_version_with_feedback_has_its_in_domain_metrics(
    data: Path, platform_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRPARADIS_HOME", str(platform_env))
    platform = PlatformSettings()
    domain = DomainFeedback(
        fit=feedback(80, 10), select=feedback(80, 20), gate=feedback(40, 30), weights=(2.0,)
    )
    result = train("tfidf_lr", _settings(data), platform, params={"min_df": 1}, domain=domain)
    assert result.registered is not None and result.gate is not None
    card, markdown = _card(result.run_id)

    in_domain = card.metrics[IN_DOMAIN]
    assert in_domain["n"] == 40
    assert in_domain["macro_f1"] == pytest.approx(result.metrics["feedback_gate"]["macro_f1"])
    assert in_domain["macro_f1"] == pytest.approx(result.gate.domain_candidate)
    assert result.calibration is not None
    assert card.calibration.kind == result.calibration.method
    assert card.calibration.threshold == pytest.approx(result.calibration.threshold)
    assert card.calibration.labels == result.calibration.labels
    assert card.calibration.measured_on == "feedback, out of fold"
    assert IN_DOMAIN in markdown and f"calibrator: {result.calibration.method}" in markdown
    assert card.gate is not None and "in-domain" in card.gate
    assert json.loads(card.model_dump_json())["metrics"][IN_DOMAIN]["n"] == 40
