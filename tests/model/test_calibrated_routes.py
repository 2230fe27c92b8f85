"""A calibrated bundle behind the real server on loopback: v1, v2, :explain and `score` all
serve the calibrated probabilities and the calibrated threshold's labels, for a plain Platt
map and for a domain head (which also reads the tweets' n-grams)."""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from airparadis.bundle import load_bundle, read_info
from airparadis.calibration import Calibration, save_calibration
from airparadis.calibration_fit import fit_calibration
from airparadis_cli.app import app
from tests.conftest import MODEL_NAME, RunningServer, start_server

TWEETS = [
    "@united my bag is lost again and nobody answers",
    "thank you so much for the upgrade, lovely crew!",
    "flight delayed three hours, great job",
    "ok",
    "quibbly seat again, thanks crew",
]


def domain_head(tiny_bundle: Path) -> Calibration:
    """A domain head fitted on feedback where "quibbly" tweets are complaints."""
    words = ["seat", "crew", "gate", "meal"]
    texts = [f"{'quibbly ' if i % 3 == 0 else ''}{words[i % 4]} thanks {i}" for i in range(150)]
    labels = np.array([0 if i % 3 == 0 else int(i % 2 == 0) for i in range(150)])
    raw = load_bundle(tiny_bundle).predict_proba(texts)
    return fit_calibration(raw, labels, methods=("domain_head",), texts=texts)


@pytest.fixture(scope="module", params=["platt", "domain_head"])
def calibration(request: pytest.FixtureRequest, tiny_bundle: Path) -> Calibration:
    if request.param == "platt":  # a strong, known map: a prior far below one half
        return Calibration("platt", 1.3, -1.4, 0.42, 0.2, 200)
    head = domain_head(tiny_bundle)
    assert head.method == "domain_head" and head.head is not None
    return head


@pytest.fixture(scope="module")
def calibrated_bundle(
    tiny_bundle: Path, calibration: Calibration, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    directory = tmp_path_factory.mktemp("calibrated") / "bundle"
    shutil.copytree(tiny_bundle, directory)
    save_calibration(directory, read_info(directory), calibration)
    return directory


@pytest.fixture(scope="module")
def calibrated_server(
    calibrated_bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("calibrated-home"), str(calibrated_bundle))
    yield server
    server.stop()


def expected(
    calibration: Calibration, calibrated_bundle: Path, tiny_bundle: Path
) -> tuple[list[float], list[str]]:
    proba = calibration.apply(load_bundle(tiny_bundle).predict_proba(TWEETS), TWEETS).tolist()
    assert load_bundle(calibrated_bundle).predict_proba(TWEETS).tolist() == pytest.approx(proba)
    threshold = calibration.threshold
    return proba, ["positive" if p >= threshold else "negative" for p in proba]


def test_every_route_serves_calibrated_output(
    calibrated_server: RunningServer,
    calibration: Calibration,
    calibrated_bundle: Path,
    tiny_bundle: Path,
    tmp_path: Path,
) -> None:
    proba, labels = expected(calibration, calibrated_bundle, tiny_bundle)
    raw = load_bundle(tiny_bundle).predict_proba(TWEETS).tolist()
    assert any(abs(p - r) > 0.05 for p, r in zip(proba, raw, strict=True))

    # v1, batched and one tweet at a time (the single-tweet fast path).
    batch = httpx.post(calibrated_server.predict_url, json={"instances": TWEETS}).json()
    assert [p["probability"] for p in batch["predictions"]] == pytest.approx(proba, abs=1e-9)
    assert [p["label"] for p in batch["predictions"]] == labels
    for tweet, p in zip(TWEETS, proba, strict=True):
        one = httpx.post(calibrated_server.predict_url, json={"instances": [tweet]}).json()
        assert one["predictions"][0]["probability"] == pytest.approx(p, abs=1e-9)

    # v2 (open inference protocol).
    body = {
        "inputs": [{"name": "text", "shape": [len(TWEETS)], "datatype": "BYTES", "data": TWEETS}]
    }
    v2 = httpx.post(f"{calibrated_server.url}/v2/models/{MODEL_NAME}/infer", json=body).json()
    outputs = {o["name"]: o["data"] for o in v2["outputs"]}
    assert outputs["probability"] == pytest.approx(proba, abs=1e-9)
    assert outputs["label"] == labels

    # :explain: calibrated probability and label; logit parts plus bias give it back.
    explained = httpx.post(
        f"{calibrated_server.url}/v1/models/{MODEL_NAME}:explain", json={"instances": TWEETS}
    ).json()["explanations"]
    for explanation, p, label in zip(explained, proba, labels, strict=True):
        assert explanation["probability"] == pytest.approx(p, abs=1e-9)
        assert explanation["label"] == label
        logit = explanation["bias"] + sum(t["contribution"] for t in explanation["tokens"])
        assert 1 / (1 + math.exp(-logit)) == pytest.approx(p, abs=1e-9)
    if calibration.head is not None:  # the head's own n-grams explain the domain word
        parts = {t["token"]: t["contribution"] for t in explained[-1]["tokens"]}
        assert parts["quibbly"] < 0

    # `airparadis score` (batch scoring of a Parquet file).
    source, output = tmp_path / "in.parquet", tmp_path / "out.parquet"
    pd.DataFrame({"text": TWEETS}).to_parquet(source)
    result = CliRunner().invoke(
        app,
        ["score", "--input", str(source), "--output", str(output),
         "--model-uri", str(calibrated_bundle)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    scored = pd.read_parquet(output)
    assert scored["probability"].tolist() == pytest.approx(proba, abs=1e-9)
    assert scored["label"].tolist() == labels
