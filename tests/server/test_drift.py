"""The predictor's drift signals rise when live input moves away from the training reference."""

from pathlib import Path

import httpx
import pytest

from airparadis.bundle import find_bundle
from airparadis.drift import load_reference
from tests.conftest import RunningServer, start_server
from training_jobs.data import load_sources
from training_jobs.split import stratified_sample

WINDOW = 300
SHIFTED = [
    f"vol {i} annulé encore une fois, bagages perdus et service client injoignable depuis "
    f"trois jours, remboursement refusé, je suis furieux contre cette compagnie #{i}"
    for i in range(WINDOW)
]


def _metric(text: str, name: str, labels: str) -> float:
    prefix = f"{name}{{{labels}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    raise AssertionError(f"{prefix!r} is not on /metrics")


@pytest.fixture(scope="module")
def drift_server(tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path) -> RunningServer:
    server = start_server(
        tmp_path_factory.mktemp("drift-home"),
        str(tiny_bundle),
        AIRPARADIS_SERVER_DRIFT_WINDOW=str(WINDOW),
        AIRPARADIS_SERVER_DRIFT_MIN_TWEETS="100",
    )
    yield server  # type: ignore[misc]
    server.stop()


def _send(server: RunningServer, tweets: list[str]) -> None:
    for start in range(0, len(tweets), 50):
        chunk = tweets[start : start + 50]
        response = httpx.post(server.predict_url, json={"instances": chunk})
        assert response.status_code == 200


def test_drift_rises_under_shifted_input(
    drift_server: RunningServer, sentiment140_dir: Path, tiny_bundle: Path
) -> None:
    before = httpx.get(f"{drift_server.url}/v1/drift").json()
    assert before["tracked"] is True
    assert before["enough_tweets"] is False
    assert before["psi_probability"] is None

    # Live traffic like the training data: rows of the same source (seed differs from the
    # bundle's slice, so most of them were never trained on).
    frame, _ = load_sources([sentiment140_dir])
    steady_tweets = stratified_sample(frame, WINDOW, seed=99)["text"].tolist()
    _send(drift_server, steady_tweets)
    steady = httpx.get(f"{drift_server.url}/v1/drift").json()
    assert steady["enough_tweets"] is True
    assert steady["live"]["count"] == WINDOW
    assert steady["psi_probability"] < 0.25
    assert steady["psi_length"] < 0.25
    assert steady["drifting"] is False
    reference = load_reference(find_bundle(tiny_bundle))
    assert reference is not None
    assert steady["reference"]["oov_share"] == pytest.approx(reference.stats.oov_share)

    _send(drift_server, SHIFTED)
    shifted = httpx.get(f"{drift_server.url}/v1/drift").json()
    assert shifted["live"]["count"] == WINDOW  # the window rolled over to the new traffic
    assert shifted["psi_length"] > 0.25
    assert shifted["psi_probability"] > 0.25
    assert shifted["live"]["oov_share"] > steady["live"]["oov_share"] + 0.2
    assert shifted["drifting"] is True

    metrics = httpx.get(f"{drift_server.url}/metrics").text
    assert _metric(metrics, "airparadis_drift_psi", 'signal="length"') == pytest.approx(
        shifted["psi_length"]
    )
    assert _metric(metrics, "airparadis_drift_oov_share", 'source="live"') == pytest.approx(
        shifted["live"]["oov_share"]
    )
    assert _metric(metrics, "airparadis_drift_window_tweets", "") == WINDOW


def test_server_settings_refuse_a_window_smaller_than_its_minimum() -> None:
    from pydantic import ValidationError

    from model_server.settings import ServerSettings

    with pytest.raises(ValidationError, match="PSI would never be reported"):
        ServerSettings(drift_window=100, drift_min_tweets=200)
    assert ServerSettings(drift_window=200, drift_min_tweets=200).drift_window == 200
