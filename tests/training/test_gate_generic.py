"""The two-criteria gate reads generic quality at the generic prior, on real fitted heads.

A TF-IDF + LR model is trained on synthetic "generic" tweets (sentiment words decide the
label); the "domain" is the same language with a low positive share and a word the generic
model never saw ("quibbly") that always marks a complaint. Both heads below learn the word
(an in-domain gain); the one fitted beside a generic sample keeps its generic intercept, the
one fitted on feedback alone cannot tell the domain's prior apart and regresses there.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airparadis.bundle import SentimentClassifier, load_bundle, read_info
from airparadis.calibration import generic_prior_proba, raw_threshold, save_calibration
from airparadis.calibration_fit import GenericSample, fit_calibration
from airparadis.settings import PlatformSettings
from training_jobs.gate import (
    DomainCheck,
    GateDecision,
    GenericReading,
    decide_with_domain,
    read_generic,
    score,
)
from training_jobs.settings import TrainingSettings

POSITIVE = ("good", "great")
NEGATIVE = ("bad", "sad")
FILLERS = ("seat", "lunch")


def tweets(n: int, seed: int, positive_share: float, marked_share: float = 0.0) -> pd.DataFrame:
    """Tweets of three sentiment words (each of the tweet's own polarity with probability 0.7)
    and a filler, labelled by that polarity, except that "quibbly" tweets are complaints;
    about `positive_share` of the others are positive."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        positive = bool(rng.random() < positive_share)
        words = [
            str(rng.choice(POSITIVE if (rng.random() < 0.7) == positive else NEGATIVE))
            for _ in range(3)
        ]
        words.append(str(rng.choice(FILLERS)))
        label = int(positive)
        if rng.random() < marked_share:
            words.append("quibbly")
            label = 0
        rows.append({"text": " ".join(words), "label": label})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def generic_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training_jobs.families.tfidf_lr import TfidfLogisticRegression

    family = TfidfLogisticRegression()
    model = family.fit(tweets(1500, 1, 0.5), tweets(300, 2, 0.5), {"min_df": 1}, seed=7)
    directory = tmp_path_factory.mktemp("generic") / "bundle"
    family.save(model, directory)
    return directory


def with_head(bundle: Path, target: Path, generic: bool) -> SentimentClassifier:
    """`bundle` calibrated with a domain head fitted on domain feedback (with a generic sample
    beside it when `generic`), loaded as served."""
    shutil.copytree(bundle, target)
    model = load_bundle(target)
    feedback = tweets(600, 3, 0.2, marked_share=0.3)
    sample = tweets(600, 4, 0.5)
    calibration = fit_calibration(
        model.predict_proba(feedback["text"].tolist()), feedback["label"].to_numpy(),
        raw_threshold(model.info), texts=feedback["text"].tolist(),
        generic=GenericSample(
            sample["text"].tolist(), model.predict_proba(sample["text"].tolist()),
            sample["label"].to_numpy(),
        ) if generic else None,
        methods=("domain_head",),
    )  # fmt: skip
    assert calibration.method == "domain_head"
    save_calibration(target, read_info(target), calibration)
    return load_bundle(target)


def judge(candidate: SentimentClassifier, champion: SentimentClassifier) -> GateDecision:
    """The gate's two-criteria decision, each model read as `gate_and_register` reads it."""
    settings = TrainingSettings()
    domain = tweets(400, 5, 0.2, marked_share=0.3)
    generic = tweets(2000, 6, 0.5)

    def read(model: SentimentClassifier) -> tuple[float, GenericReading]:
        return (
            score(model, domain["text"].tolist(), domain["label"].to_numpy(), "macro_f1"),
            read_generic(model, generic["text"].tolist(), generic["label"].to_numpy(),
                         settings.gate.metric, "roc_auc"),
        )  # fmt: skip

    (domain_candidate, generic_candidate), (domain_champion, generic_champion) = (
        read(candidate), read(champion)
    )  # fmt: skip
    check = DomainCheck(
        "macro_f1", settings.gate.domain_margin, settings.gate.generic_max_drop, len(domain),
        domain_candidate, domain_champion, generic_candidate.served, generic_champion.served,
        settings.gate.generic_served_max_drop, "roc_auc", generic_candidate.served_gate_metric,
    )  # fmt: skip
    return decide_with_domain(
        generic_candidate.at_generic_prior, generic_champion.at_generic_prior, check,
        settings.gate.metric, PlatformSettings(), "1",
    )  # fmt: skip


def test_the_gate_accepts_a_head_that_holds_at_the_generic_prior(
    generic_bundle: Path, tmp_path: Path
) -> None:
    champion = load_bundle(generic_bundle)
    candidate = with_head(generic_bundle, tmp_path / "head", generic=True)
    decision = judge(candidate, champion)
    assert decision.domain_candidate is not None and decision.domain_champion is not None
    assert decision.domain_candidate > decision.domain_champion + 0.05
    assert decision.champion_score is not None
    assert decision.champion_score - decision.candidate_score <= decision.margin
    assert (decision.alias, decision.promoted) == ("champion", True), decision.reason
    # It serves the domain's prior (its intercept), read apart from the generic one; the served
    # generic accuracy is reported, not judged.
    calibration = candidate.calibration  # type: ignore[attr-defined]
    assert calibration.intercept < calibration.generic_intercept - 1.0
    assert decision.generic_served_score is not None
    summary = decision.summary()
    assert "generic accuracy at the generic prior" in summary and "not judged" in summary


def test_the_gate_refuses_a_head_that_regresses_at_the_generic_prior(
    generic_bundle: Path, tmp_path: Path
) -> None:
    champion = load_bundle(generic_bundle)
    candidate = with_head(generic_bundle, tmp_path / "alone", generic=False)
    decision = judge(candidate, champion)
    assert decision.domain_candidate is not None and decision.domain_champion is not None
    assert decision.domain_candidate > decision.domain_champion + 0.05  # it gains in-domain
    assert decision.champion_score is not None
    assert decision.champion_score - decision.candidate_score > decision.margin
    assert (decision.alias, decision.promoted) == ("challenger", False)
    assert "generic at the generic prior" in decision.reason and "beyond" in decision.reason


def test_a_model_without_a_head_is_read_raw_at_the_generic_prior(
    generic_bundle: Path, tmp_path: Path
) -> None:
    raw = load_bundle(generic_bundle)
    texts = tweets(50, 8, 0.5)["text"].tolist()
    p, threshold = generic_prior_proba(raw, texts)
    assert p == pytest.approx(raw.predict_proba(texts)) and threshold == raw.info.threshold
    # A map of the logit fitted on feedback alone: its intercept is the domain's, so the
    # generic view is the raw model it maps.
    shutil.copytree(generic_bundle, tmp_path / "platt")
    feedback = tweets(300, 9, 0.2)
    platt = fit_calibration(raw.predict_proba(feedback["text"].tolist()),
                            feedback["label"].to_numpy(), methods=("platt",))  # fmt: skip
    save_calibration(tmp_path / "platt", read_info(tmp_path / "platt"), platt)
    mapped = load_bundle(tmp_path / "platt")
    p, threshold = generic_prior_proba(mapped, texts)
    assert p == pytest.approx(raw.predict_proba(texts)) and threshold == raw_threshold(mapped.info)
    assert not np.allclose(mapped.predict_proba(texts), p)
