"""The champion/challenger view shows each version's model card, read from a real embedded
MLflow store; a version registered before model cards shows none, and nothing breaks."""

from __future__ import annotations

import asyncio
import functools

import pytest

from airparadis.model_card import (
    CARD_JSON,
    GENERIC,
    IN_DOMAIN,
    BehaviourCheck,
    CalibrationSummary,
    ModelCard,
    TrainingData,
)
from airparadis.settings import PlatformSettings
from dashboard.connection import ServerConnection
from dashboard.ops import OpsPage
from dashboard.registry import read_aliases, read_card
from tests.dashboard.conftest import dead_url, settings_for

# An embedded MLflow store is created per module (its schema migrations take tens of seconds).
pytestmark = pytest.mark.slow

CARD = ModelCard(
    model_name="air-paradis-sentiment", version="1", alias="champion", family="tfidf_lr",
    format="sklearn", stage="retrain", created_at="2026-12-01T10:00:00+00:00",
    data=TrainingData(sources="s140.csv", fingerprint="ab12cd34ef56", rows_train=900),
    metrics={GENERIC: {"n": 100.0, "accuracy": 0.81}, IN_DOMAIN: {"n": 40.0, "macro_f1": 0.734}},
    calibration=CalibrationSummary(kind="platt", threshold=0.62, brier=0.15, ece=0.04),
    behaviour=[
        BehaviourCheck(name="clear positives are positive", kind="minimum functionality",
                       cases=5),
        BehaviourCheck(name="negation lowers P(positive)", kind="direction", cases=4,
                       failures=["this is good / this is not good"]),
    ],
)  # fmt: skip


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> PlatformSettings:
    """Version 1 (@champion) whose run logged a card; version 2 (@challenger) without one."""
    from mlflow import MlflowClient

    home = tmp_path_factory.mktemp("registry")
    platform = PlatformSettings(home=home, tracking_uri=None, registry_uri=None)
    uri = platform.resolved_tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment(
        platform.experiment, artifact_location=platform.artifact_root.as_uri()
    )
    client.create_registered_model(platform.model_name)
    for alias, card in (("champion", CARD), ("challenger", None)):
        run = client.create_run(experiment)
        if card is not None:
            client.log_dict(run.info.run_id, card.model_dump(mode="json"), CARD_JSON)
        version = client.create_model_version(
            platform.model_name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id
        )
        client.set_registered_model_alias(platform.model_name, alias, version.version)
    return platform


def test_the_registry_reads_each_versions_card(platform: PlatformSettings) -> None:
    champion, challenger = read_aliases(platform)
    assert champion.card == CARD
    assert challenger.version == "2" and challenger.card is None


def test_a_card_that_does_not_validate_is_left_out(platform: PlatformSettings) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=platform.resolved_tracking_uri)
    experiment = client.get_experiment_by_name(platform.experiment)
    assert experiment is not None
    run_id = client.create_run(experiment.experiment_id).info.run_id
    assert read_card(client, run_id) is None  # no card at all
    client.log_dict(run_id, {"version": "2", "family": "tfidf_lr"}, CARD_JSON)  # fields missing
    assert read_card(client, run_id) is None
    client.log_dict(run_id, CARD.model_dump(mode="json"), CARD_JSON)
    assert read_card(client, run_id) == CARD


def test_the_ops_page_shows_the_cards_under_champion_and_challenger(
    platform: PlatformSettings,
) -> None:
    settings = settings_for(dead_url())
    page = OpsPage(
        ServerConnection(settings),
        settings,
        read_registry=functools.partial(read_aliases, platform),
    )
    snap = asyncio.run(page.refresh())
    assert snap is not None and "models" not in snap.notes
    assert set(snap.cards) == {"champion"}
    view = page._model_cards
    assert "@champion v1 (tfidf_lr): behavioural checks 1/2 pass" in view.summary
    assert "calibration platt, threshold 0.62" in view.summary
    assert "in-domain macro-F1 0.734 on 40 feedbacks" in view.summary
    ((title, text),) = view.markdown.items()
    assert title == "Model card: @champion v1"
    assert "ab12cd34ef56" in text and "FAIL: this is good / this is not good" in text
