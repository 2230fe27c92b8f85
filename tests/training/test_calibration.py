"""Calibration from feedback: it recovers known maps, refuses too little evidence, travels in
the bundle, and every metric reaches JSON without NaN."""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from airparadis.bundle import load_bundle, read_info, write_info
from airparadis.calibration import (
    CALIBRATION_FORMAT,
    Calibration,
    CalibrationError,
    raw_threshold,
    save_calibration,
    training_prior,
    with_calibration,
)
from airparadis.calibration_fit import fit_calibration
from airparadis.domain_head import HEAD_FILE
from airparadis.metrics import binary_metrics, json_safe
from airparadis_cli.app import app
from model_server.model import explain_tweet

TWEETS = [
    "@united my bag is lost again and nobody answers",
    "thank you so much for the upgrade, lovely crew!",
    "flight delayed three hours, great job",
    "the gate agent was very kind today http://t.co/x",
]


def synthetic(
    slope: float, intercept: float, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw scores whose true calibrated logit is ``slope * logit(p) + intercept``."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.5, n)
    truth = 1 / (1 + np.exp(-(slope * z + intercept)))
    return 1 / (1 + np.exp(-z)), (rng.random(n) < truth).astype(int), truth


def test_recovers_a_known_temperature() -> None:
    p_raw, y, _ = synthetic(0.5, 0.0, 4000, seed=1)
    calibration = fit_calibration(p_raw, y, methods=("identity", "temperature"))
    assert calibration.method == "temperature"
    assert calibration.slope == pytest.approx(0.5, abs=0.05)
    assert calibration.intercept == 0.0


def test_recovers_a_known_prior_shift_and_picks_platt() -> None:
    # A model trained at 50/50 meets a domain where positives are far rarer (logit - 1.5).
    p_raw, y, truth = synthetic(1.0, -1.5, 4000, seed=2)
    calibration = fit_calibration(p_raw, y)
    assert calibration.method == "platt"
    assert calibration.slope == pytest.approx(1.0, abs=0.1)
    assert calibration.intercept == pytest.approx(-1.5, abs=0.15)
    assert calibration.prior == pytest.approx(y.mean())
    assert calibration.prior == pytest.approx(truth.mean(), abs=0.02)
    assert np.abs(calibration.apply(p_raw) - truth).mean() < 0.02
    held = calibration.heldout
    assert held["calibrated"]["macro_f1"] > held["raw"]["macro_f1"]  # type: ignore[operator]
    assert held["calibrated"]["ece"] < held["raw"]["ece"]  # type: ignore[operator]
    assert sum(int(b["count"]) for b in calibration.reliability) == len(y)


def test_an_already_calibrated_model_keeps_its_map() -> None:
    p_raw, y, _ = synthetic(1.0, 0.0, 3000, seed=3)
    calibration = fit_calibration(p_raw, y)
    assert calibration.slope == pytest.approx(1.0, abs=0.1)
    assert abs(calibration.intercept) < 0.15


def test_held_out_figures_skip_the_feedback_a_tuned_encoder_was_trained_on() -> None:
    """The head's scores on tweets its encoder was fine-tuned on separate the classes as it
    was fitted to: its stored figures and reliability curve read only the later feedback. A
    map of the logit reads no encoder, so its figures keep every row."""
    p_raw, y, _ = synthetic(1.0, -0.5, 600, seed=5)
    seen = 400
    p_raw[:seen] = np.where(y[:seen] == 1, 0.97, 0.03)  # the memorised first rows
    texts = [f"flight {i} seat {i % 7}" for i in range(len(y))]
    later = binary_metrics(y[seen:], p_raw[seen:], 0.5)
    honest = fit_calibration(p_raw, y, texts=texts, methods=("domain_head",), encoder_seen=seen)
    optimistic = fit_calibration(p_raw, y, texts=texts, methods=("domain_head",))
    assert honest.method == "domain_head" and honest.labels == len(y)
    assert honest.heldout["raw"]["n"] == honest.heldout["calibrated"]["n"] == len(y) - seen
    assert honest.heldout["raw"]["macro_f1"] == pytest.approx(later["macro_f1"])
    assert optimistic.heldout["raw"]["macro_f1"] > later["macro_f1"] + 0.05
    assert (
        optimistic.heldout["calibrated"]["macro_f1"]
        > honest.heldout["calibrated"]["macro_f1"] + 0.05
    )
    assert sum(int(b["count"]) for b in honest.reliability) == len(y) - seen
    mapped = fit_calibration(p_raw, y, methods=("platt",), encoder_seen=seen)
    assert mapped.heldout["calibrated"]["n"] == len(y)


def test_below_the_minimum_nothing_is_fitted() -> None:
    p_raw, y, _ = synthetic(1.0, -1.0, 40, seed=4)
    with pytest.raises(CalibrationError, match="needs 50"):
        fit_calibration(p_raw, y, min_labels=50)
    with pytest.raises(CalibrationError, match="each class"):
        fit_calibration(np.full(60, 0.3), np.zeros(60, dtype=int), min_labels=50)


def calibrated_copy(bundle: Path, target: Path, slope: float, intercept: float) -> Calibration:
    """A copy of `bundle` serving a calibration with a known map (threshold 0.3)."""
    shutil.copytree(bundle, target)
    info = read_info(target)
    calibration = Calibration("platt", slope, intercept, 0.3, 0.2, 100)
    write_info(target, with_calibration(info, calibration))
    return calibration


def test_the_calibration_travels_in_the_bundle(tiny_bundle: Path, tmp_path: Path) -> None:
    raw = load_bundle(tiny_bundle)
    calibration = calibrated_copy(tiny_bundle, tmp_path / "calibrated", 0.7, -1.2)
    stored = json.loads((tmp_path / "calibrated" / "bundle.json").read_text())
    assert stored["calibration"]["version"] == CALIBRATION_FORMAT and stored["threshold"] == 0.3
    model = load_bundle(tmp_path / "calibrated")
    expected = calibration.apply(raw.predict_proba(TWEETS))
    assert model.predict_proba(TWEETS) == pytest.approx(expected, abs=1e-9)
    assert model.predict_raw_proba(TWEETS) == pytest.approx(raw.predict_proba(TWEETS))  # type: ignore[attr-defined]
    assert model.info.threshold == 0.3 and raw_threshold(model.info) == raw.info.threshold
    assert training_prior(model.info) == 0.2
    # The single-tweet fast path and the exact explanation agree with the batch path.
    assert model.score_tweet(TWEETS[0]) == pytest.approx(expected[0], abs=1e-9)  # type: ignore[attr-defined]
    explanation = explain_tweet(model, TWEETS[1], 64)
    assert explanation["method"] == "exact-linear"
    assert explanation["probability"] == pytest.approx(expected[1], abs=1e-9)
    logit = explanation["bias"] + sum(t["contribution"] for t in explanation["tokens"])
    assert 1 / (1 + math.exp(-logit)) == pytest.approx(expected[1], abs=1e-9)
    raw_parts = raw.explain(TWEETS[1])[1]  # type: ignore[attr-defined]
    assert [t["contribution"] for t in explanation["tokens"]] == pytest.approx(
        [0.7 * part for part in raw_parts]
    )
    # Removing the calibration gives the raw model back, threshold included.
    back = with_calibration(model.info, None)
    assert back.calibration is None and back.threshold == raw.info.threshold


def test_an_unknown_calibration_format_is_a_bundle_error(tiny_bundle: Path, tmp_path: Path) -> None:
    from airparadis.bundle import BundleError

    calibrated_copy(tiny_bundle, tmp_path / "b", 1.0, 0.0)
    info = read_info(tmp_path / "b")
    assert info.calibration is not None
    info.calibration["version"] = 99
    write_info(tmp_path / "b", info)
    with pytest.raises(BundleError, match="calibration"):
        load_bundle(tmp_path / "b")


def test_metrics_for_an_imbalanced_domain() -> None:
    y = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.6, 0.7, 0.1, 0.2, 0.3, 0.1, 0.8, 0.4])
    m = binary_metrics(y, p, 0.5)
    assert m["recall_negative"] == pytest.approx(6 / 8)  # complaints caught
    assert m["precision_positive"] == pytest.approx(1 / 3)
    assert m["balanced_accuracy"] == pytest.approx((6 / 8 + 1 / 2) / 2)
    assert m["macro_f1"] == pytest.approx((m["f1_negative"] + m["f1_positive"]) / 2)
    assert m["brier"] == pytest.approx(float(np.mean((p - y) ** 2)))
    assert 0 <= m["ece"] <= 1
    # Other thresholds change label metrics, not the calibration ones.
    assert binary_metrics(y, p, 0.25)["recall_negative"] == pytest.approx(5 / 8)


def test_json_never_carries_nan(caplog: pytest.LogCaptureFixture) -> None:
    one_class = binary_metrics(np.zeros(5, dtype=int), np.full(5, 0.2))
    assert math.isnan(one_class["roc_auc"])
    with caplog.at_level(logging.WARNING):
        safe = json_safe({"metrics": one_class, "rows": [float("inf")]})
    text = json.dumps(safe, allow_nan=False)
    assert '"roc_auc": null' in text and "NaN" not in text
    assert "roc_auc" in caplog.text


def test_evaluate_json_on_a_one_class_file(tiny_bundle: Path, tmp_path: Path) -> None:
    data = tmp_path / "complaints.parquet"
    pd.DataFrame({"text": TWEETS[:3], "label": ["negative"] * 3}).to_parquet(data)
    result = CliRunner().invoke(
        app, ["evaluate", "--model-uri", str(tiny_bundle), "--data", str(data), "--json"]
    )
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stdout.splitlines() if x.startswith("{"))
    metrics = json.loads(line)
    assert metrics["roc_auc"] is None and metrics["n"] == 3
    for key in ("macro_f1", "recall_negative", "precision_positive", "brier", "ece"):
        assert key in metrics
    assert "NaN" not in line


def flipped_domain(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Raw scores that rank the generic way, except that tweets naming "quibbly" (a domain
    word the generic model never saw) are complaints whatever their score."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, n)
    domain = rng.random(n) < 0.4
    y = np.where(domain, 0, (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int))
    fillers = ["seat", "crew", "gate", "bag", "meal", "wifi"]
    texts = [
        f"{'quibbly ' if d else ''}the {fillers[i % 6]} today {fillers[(i * 7) % 6]}"
        for i, d in enumerate(domain)
    ]
    return 1 / (1 + np.exp(-z)), y.astype(int), texts


def test_the_domain_head_learns_a_word_that_flips_the_label_and_platt_cannot() -> None:
    p_raw, y, texts = flipped_domain(600, seed=5)
    platt = fit_calibration(p_raw, y, methods=("platt",))
    head = fit_calibration(p_raw, y, texts=texts)
    assert head.method == "domain_head" and head.head is not None
    assert head.head_file == HEAD_FILE and head.head_c is not None
    weights = dict(zip(head.head.vocabulary, head.head.coef, strict=True))
    assert weights["quibbly"] < -1.0 < 0.5 < head.slope  # the word, and the generic ranking
    # Judged on fresh tweets of the same domain: the head separates them, Platt cannot.
    p_new, y_new, texts_new = flipped_domain(400, seed=6)
    head_f1 = binary_metrics(y_new, head.apply(p_new, texts_new), head.threshold)["macro_f1"]
    platt_f1 = binary_metrics(y_new, platt.apply(p_new), platt.threshold)["macro_f1"]
    assert head_f1 > platt_f1 + 0.1
    stored_f1 = head.heldout["calibrated"]["macro_f1"]
    assert stored_f1 is not None and stored_f1 > platt.heldout["calibrated"]["macro_f1"]  # type: ignore[operator]
    # Without texts the head cannot compete; below the minimum nothing is fitted at all.
    assert fit_calibration(p_raw, y).method != "domain_head"
    with pytest.raises(CalibrationError, match="needs 50"):
        fit_calibration(p_raw[:49], y[:49], texts=texts[:49])


def test_the_domain_head_travels_in_the_bundle_and_explains_exactly(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    raw = load_bundle(tiny_bundle)
    _, y, texts = flipped_domain(300, seed=7)
    calibration = fit_calibration(raw.predict_proba(texts), y, texts=texts)
    assert calibration.method == "domain_head"
    target = tmp_path / "head"
    shutil.copytree(tiny_bundle, target)
    save_calibration(target, read_info(target), calibration)
    stored = json.loads((target / "bundle.json").read_text())["calibration"]
    assert stored["method"] == "domain_head" and stored["head_file"] == HEAD_FILE
    assert "head" not in stored  # the arrays live in the .npz, not in JSON
    with np.load(target / HEAD_FILE, allow_pickle=False) as data:  # plain arrays, no pickle
        assert set(data.files) == {
            "format", "vocabulary", "idf", "coef", "embedding_coef", "encoder_sha256",
        }  # fmt: skip
        assert data["embedding_coef"].size == 0  # no embeddings offered: n-grams only
    model = load_bundle(target)
    tweets = [*TWEETS, "quibbly the crew today", "QUIBBLY!!! the gate today http://t.co/q"]
    expected = calibration.apply(raw.predict_proba(tweets), tweets)
    assert model.predict_proba(tweets) == pytest.approx(expected, abs=1e-9)
    assert model.predict_raw_proba(tweets) == pytest.approx(raw.predict_proba(tweets))  # type: ignore[attr-defined]
    assert expected[-2] < model.predict_raw_proba(tweets)[-2]  # type: ignore[attr-defined]
    for tweet, p in zip(tweets, expected, strict=True):
        assert model.score_tweet(tweet) == pytest.approx(p, abs=1e-9)  # type: ignore[attr-defined]
        explanation = explain_tweet(model, tweet, 64)
        assert explanation["method"] == "exact-linear"
        logit = explanation["bias"] + sum(t["contribution"] for t in explanation["tokens"])
        assert 1 / (1 + math.exp(-logit)) == pytest.approx(p, abs=1e-9)
    # Cleaning goes through airparadis.text: the shouted, linked variant hits the same n-gram.
    parts = {t["token"]: t["contribution"] for t in explain_tweet(model, tweets[-1], 64)["tokens"]}
    assert parts["quibbly"] < 0
    # A head whose file went missing is a clear bundle error, not a silent raw model.
    from airparadis.bundle import BundleError

    (target / HEAD_FILE).unlink()
    with pytest.raises(BundleError, match="calibration"):
        load_bundle(target)
    # Replacing it by a plain map removes nothing but the head.
    save_calibration(target, read_info(target), fit_calibration(raw.predict_proba(texts), y))
    assert load_bundle(target).predict_proba(tweets).shape == (len(tweets),)


def test_a_head_that_inverts_the_generic_model_is_not_used() -> None:
    # Feedback that contradicts the generic ranking: no head may serve the generic logit
    # upside down; a monotone map of it is kept instead.
    rng = np.random.default_rng(9)
    z = rng.normal(0.0, 3.0, 300)
    y = (z < 0).astype(int)
    texts = [f"tweet number {i % 7} today" for i in range(300)]
    calibration = fit_calibration(1 / (1 + np.exp(-z)), y, texts=texts)
    assert calibration.method != "domain_head" and calibration.slope > 0


def shifted_domain(
    n: int, seed: int, shift: float, word: str = "quibbly"
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Raw scores ranked the generic way whose labels sit `shift` log-odds off the generic
    prior; a third of the tweets name `word`, a complaint whatever the score."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, n)
    marked = rng.random(n) < 1 / 3
    y = np.where(marked, 0, (rng.random(n) < 1 / (1 + np.exp(-(z + shift)))).astype(int))
    fillers = ["seat", "crew", "gate", "bag", "meal", "wifi"]
    texts = [
        f"{word + ' ' if m else ''}the {fillers[i % 6]} today {fillers[(i * 5) % 6]}"
        for i, m in enumerate(marked)
    ]
    return 1 / (1 + np.exp(-z)), y.astype(int), texts


def test_the_head_keeps_its_generic_intercept_apart_from_the_domain_prior() -> None:
    from airparadis.calibration import GENERIC_THRESHOLD
    from airparadis.calibration_fit import GenericSample

    p_dom, y_dom, texts_dom = shifted_domain(600, seed=11, shift=-2.0)
    p_gen, y_gen, _ = shifted_domain(600, seed=12, shift=0.0)
    y_gen = (np.random.default_rng(13).random(600) < p_gen).astype(int)  # no word, no shift
    texts_gen = [f"ordinary tweet {i % 9} about lunch" for i in range(600)]
    calibration = fit_calibration(
        p_dom, y_dom, texts=texts_dom, generic=GenericSample(texts_gen, p_gen, y_gen),
        methods=("domain_head",),
    )  # fmt: skip
    assert calibration.method == "domain_head" and calibration.head_generic_rows == 600
    assert calibration.generic_intercept is not None
    # The served intercept carries the domain's low prior; the generic one does not.
    assert calibration.intercept < calibration.generic_intercept - 1.0
    generic = calibration.at_generic_prior()
    assert generic.intercept == calibration.generic_intercept
    assert generic.threshold == GENERIC_THRESHOLD and generic.head is calibration.head
    # On fresh generic tweets the generic view decides as well as the raw model; the served
    # one, at the domain's prior, calls too many of them negative.
    p_new = 1 / (1 + np.exp(-np.random.default_rng(14).normal(0.0, 2.0, 2000)))
    y_new = (np.random.default_rng(15).random(2000) < p_new).astype(int)
    texts_new = [f"ordinary tweet {i % 9} about lunch" for i in range(2000)]
    raw_acc = binary_metrics(y_new, p_new, 0.5)["accuracy"]
    at_prior = binary_metrics(y_new, generic.apply(p_new, texts_new), 0.5)["accuracy"]
    served = binary_metrics(
        y_new, calibration.apply(p_new, texts_new), calibration.threshold
    )["accuracy"]  # fmt: skip
    assert abs(at_prior - raw_acc) < 0.02 and served < at_prior - 0.03
    # It travels in the dict; a v3 dict (no generic intercept) reads it as the intercept.
    stored = calibration.to_dict()
    assert Calibration.from_dict(stored).generic_intercept == calibration.generic_intercept
    older = {k: v for k, v in stored.items() if k != "generic_intercept"} | {"version": 3}
    read = Calibration.from_dict(older)
    assert read.generic_intercept == read.intercept and read.version == CALIBRATION_FORMAT
    # Without generic rows nothing tells the prior apart: the generic intercept is the intercept.
    alone = fit_calibration(p_dom, y_dom, texts=texts_dom, methods=("domain_head",))
    assert alone.generic_intercept == alone.intercept and alone.head_generic_rows == 0
    platt = fit_calibration(p_dom, y_dom, methods=("platt",))
    assert platt.generic_intercept == platt.intercept
