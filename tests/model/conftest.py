"""Each family trained here on a small stratified slice of the shared data, saved as the bundle
that serving loads; the behavioural tests run against those served artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airparadis.bundle import SentimentClassifier, load_bundle

SLICES: dict[str, tuple[int, dict[str, Any]]] = {
    # family: (rows sampled, parameters): small enough for a CPU, big enough to learn words.
    "tfidf_lr": (12_000, {}),
    "rnn": (12_000, {"epochs": 3, "units": 32, "embedding_dim": 64, "vocab_size": 8000}),
    "transformer": (3_000, {"mode": "frozen", "head_epochs": 30}),
}


@pytest.fixture(scope="session", params=sorted(SLICES))
def served_model(
    request: pytest.FixtureRequest,
    sentiment140_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> SentimentClassifier:
    from training_jobs.data import load_sources
    from training_jobs.families import get_family
    from training_jobs.split import split_data, stratified_sample

    name: str = request.param
    rows, params = SLICES[name]
    frame, _ = load_sources([sentiment140_dir])
    split = split_data(stratified_sample(frame, rows, seed=11), 0.1, 0.1, seed=11)
    family = get_family(name)
    model = family.fit(split.train, split.validation, params, seed=11)
    directory = tmp_path_factory.mktemp(f"served-{name}") / "bundle"
    family.save(model, directory)
    return load_bundle(directory)
