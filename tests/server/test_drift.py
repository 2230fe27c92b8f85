"""The predictor's drift signals rise when live input moves away from the training reference."""

from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from airparadis.bundle import find_bundle
from airparadis.drift import load_reference
from tests.conftest import AIRLINE_FILE, CALIBRATION_ROWS, RunningServer, start_server
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
    assert before["label_shift"]["estimated_prior"] is None

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
    # Like its training data: the estimated positive share stays near the model's one half.
    assert steady["label_shift"]["training_prior"] == 0.5
    assert abs(steady["label_shift"]["estimated_prior"] - 0.5) < 0.15
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
        ServerSettings(drift={"window": 100, "min_tweets": 200})
    assert ServerSettings(drift={"window": 200, "min_tweets": 200}).drift.window == 200


def _airline(shared_dir: Path) -> pd.DataFrame:
    frame = pd.read_parquet(shared_dir / AIRLINE_FILE, columns=["text", "target"])
    frame = frame[frame["target"].notna()].reset_index(drop=True)
    return frame.astype({"target": int})


def _stream(frame: pd.DataFrame, positive_share: float, seed: int) -> list[str]:
    positives = round(WINDOW * positive_share)
    rng = np.random.default_rng(seed)
    pos = frame[frame["target"] == 1]["text"].to_numpy()
    neg = frame[frame["target"] == 0]["text"].to_numpy()
    tweets = [*rng.choice(pos, positives, replace=False),
              *rng.choice(neg, WINDOW - positives, replace=False)]  # fmt: skip
    rng.shuffle(tweets)
    return [str(t) for t in tweets]


def test_label_shift_estimate_follows_a_skewed_stream(
    tmp_path_factory: pytest.TempPathFactory,
    calibrated_bundle: Path,
    shared_dir: Path,
    sentiment140_dir: Path,
) -> None:
    from airparadis.bundle import read_info
    from airparadis.calibration import training_prior

    prior = training_prior(read_info(calibrated_bundle))
    server = start_server(
        tmp_path_factory.mktemp("label-shift-home"),
        str(calibrated_bundle),
        AIRPARADIS_SERVER_DRIFT_WINDOW=str(WINDOW),
        AIRPARADIS_SERVER_DRIFT_MIN_TWEETS="100",
    )
    try:
        empty = httpx.get(f"{server.url}/v1/drift").json()["label_shift"]
        assert empty["training_prior"] == pytest.approx(prior)  # the feedback's share
        assert empty["estimated_prior"] is None  # not enough tweets yet

        # Calibration changes the served probabilities, not the inputs: Sentiment140 traffic
        # still matches the (raw-scale) training reference.
        frame, _ = load_sources([sentiment140_dir])
        _send(server, stratified_sample(frame, WINDOW, seed=99)["text"].tolist())
        assert httpx.get(f"{server.url}/v1/drift").json()["psi_probability"] < 0.25

        later = _airline(shared_dir).iloc[CALIBRATION_ROWS:]
        _send(server, _stream(later, 0.5, seed=1))
        balanced = httpx.get(f"{server.url}/v1/drift").json()["label_shift"]["estimated_prior"]
        _send(server, _stream(later, 0.1, seed=2))
        drift = httpx.get(f"{server.url}/v1/drift").json()
        skewed = drift["label_shift"]["estimated_prior"]

        assert skewed < balanced - 0.2  # the estimate follows the stream
        assert abs(skewed - 0.1) < 0.12  # and lands near the truth (10 % positive)
        assert abs(skewed - 0.1) < abs(prior - 0.1)  # nearer than the model's own prior
        assert drift["label_shift"]["converged"] is True
        assert drift["label_shift"]["tweets"] == WINDOW

        metrics = httpx.get(f"{server.url}/metrics").text
        assert _metric(metrics, "airparadis_positive_prior", 'source="estimated"') == (
            pytest.approx(skewed)
        )
        assert _metric(metrics, "airparadis_positive_prior", 'source="training"') == (
            pytest.approx(prior)
        )
    finally:
        server.stop()
