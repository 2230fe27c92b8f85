"""The drift statistics that training stores and the predictor compares against."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from airparadis.drift import (
    PROBA_EDGES,
    build_reference,
    compare,
    input_stats,
    load_reference,
    psi,
    save_reference,
    shares,
)
from airparadis.label_shift import HeldoutMap

TRAIN = ["great flight thanks", "lost my bag again", "the crew was great", "my bag is late"]


def test_psi_is_zero_for_the_same_distribution_and_grows_with_the_shift() -> None:
    base = shares(np.random.default_rng(0).uniform(size=5000), PROBA_EDGES)
    same = shares(np.random.default_rng(1).uniform(size=5000), PROBA_EDGES)
    skewed = shares(np.random.default_rng(2).beta(5, 1, size=5000), PROBA_EDGES)
    assert psi(base, base) == 0.0
    assert psi(base, same) < 0.01
    assert psi(base, skewed) > 0.25
    assert np.isfinite(psi(base, [1.0] + [0.0] * 9))


def test_shares_count_the_upper_edge_and_sum_to_one() -> None:
    result = shares(np.array([0.0, 0.5, 1.0, 1.0]), PROBA_EDGES)
    assert sum(result) == pytest.approx(1.0)
    assert result[-1] == 0.5


def test_input_stats_measure_length_oov_and_positive_share() -> None:
    vocabulary = frozenset({"great", "flight", "bag"})
    stats = input_stats(
        ["Great flight!", "bag zzz qqq"], np.array([0.9, 0.2]), vocabulary, threshold=0.5
    )
    assert stats.count == 2
    assert stats.mean_tokens == 2.5
    assert stats.oov_share == pytest.approx(2 / 5)
    assert stats.positive_share == 0.5


def test_reference_keeps_tokens_seen_twice_and_round_trips(tmp_path: Path) -> None:
    reference = build_reference(TRAIN, TRAIN, np.array([0.9, 0.1, 0.8, 0.2]), threshold=0.5)
    assert reference.vocabulary == frozenset({"great", "bag", "my"})
    save_reference(tmp_path, reference)
    loaded = load_reference(tmp_path)
    assert loaded == reference
    assert load_reference(tmp_path / "missing") is None


def test_the_heldout_map_travels_with_the_reference(tmp_path: Path) -> None:
    em_map = HeldoutMap(slope=1.7, intercept=-0.4, prior=0.52)
    reference = build_reference(
        TRAIN, TRAIN, np.array([0.9, 0.1, 0.8, 0.2]), threshold=0.5, em_map=em_map
    )
    save_reference(tmp_path, reference)
    assert load_reference(tmp_path) == reference
    older = tmp_path / "older"  # a reference written before the map existed
    older.mkdir()
    save_reference(older, replace(reference, em_map=None))
    loaded = load_reference(older)
    assert loaded is not None and loaded.em_map is None


def test_compare_reports_no_drift_on_reference_like_traffic_and_drift_on_shifted() -> None:
    reference = build_reference(TRAIN, TRAIN, np.array([0.9, 0.1, 0.8, 0.2]), threshold=0.5)
    steady = compare(reference, TRAIN, np.array([0.9, 0.1, 0.8, 0.2]))
    assert steady.psi_probability == pytest.approx(0.0)
    assert steady.psi_length == pytest.approx(0.0)
    shifted_texts = ["vol annulé encore une fois bagages perdus service client injoignable"] * 4
    shifted = compare(reference, shifted_texts, np.full(4, 0.02))
    assert shifted.psi_probability > 0.25
    assert shifted.psi_length > 0.25
    assert shifted.live.oov_share == 1.0 > steady.live.oov_share
