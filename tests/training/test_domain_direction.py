"""The generic sentiment direction: with few domain labels, a head that starts from the
generic sample's own sentiment axis in embedding space generalises where a head shrinking
every embedding coefficient toward zero cannot, and the saved (folded) head reads the same
logit the fit learned."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from airparadis.domain_head import (
    DIRECTION_FEATURES,
    EMBEDDING_SCALE,
    INDICATOR_SCALE,
    HeadRows,
    fit_head,
    generic_direction,
    head_logit,
)

DIM = 32


def rows(n: int, axis: np.ndarray, in_domain: bool, seed: int) -> HeadRows:
    """Unit-norm embeddings labelled by their side of `axis`; the generic logit knows nothing
    and every text is unique, so only the embedding can carry the sentiment."""
    rng = np.random.default_rng(seed)
    embeddings = rng.normal(size=(n, DIM))
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    y = (embeddings @ axis + rng.normal(0.0, 0.05, n) > 0).astype(np.int64)
    cleaned = [f"tweet{seed}x{i}" for i in range(n)]
    return HeadRows(cleaned, rng.normal(0.0, 0.1, n), y, np.full(n, in_domain), embeddings)


@pytest.fixture
def axis() -> np.ndarray:
    vector = np.random.default_rng(0).normal(size=DIM)
    return vector / np.linalg.norm(vector)


def test_the_direction_generalises_from_few_labels(axis: np.ndarray) -> None:
    generic = rows(1000, axis, in_domain=False, seed=1)
    feedback = rows(30, axis, in_domain=True, seed=2).join(generic)
    held = rows(2000, axis, in_domain=True, seed=3)
    direction = generic_direction(feedback)
    assert direction is not None
    plain = fit_head(feedback, 1.0, "ngram+embedding")
    directed = fit_head(feedback, 1.0, DIRECTION_FEATURES, direction=direction)
    plain_auc = roc_auc_score(held.y, head_logit(plain, held))
    directed_auc = roc_auc_score(held.y, head_logit(directed, held))
    assert directed_auc > plain_auc + 0.02 and directed_auc > 0.95


def test_the_folded_head_reads_the_logit_it_was_fitted_with(axis: np.ndarray) -> None:
    """Folding the direction's weight into the embedding coefficients and both intercepts
    changes no prediction: refitting the same columns by hand gives the same logits."""
    from sklearn.linear_model import LogisticRegression

    fitting = rows(60, axis, in_domain=True, seed=4).join(rows(200, axis, False, seed=5))
    direction = generic_direction(fitting)
    assert direction is not None and fitting.embeddings is not None
    fitted = fit_head(fitting, 3.0, DIRECTION_FEATURES, direction=direction)
    assert not fitted.head.vocabulary  # unique texts: no n-gram seen twice
    columns = np.column_stack([
        EMBEDDING_SCALE * fitting.embeddings, direction.logit(fitting.embeddings),
        INDICATOR_SCALE * fitting.domain, fitting.z,
    ])  # fmt: skip
    weights = np.where(fitting.domain, 1.0, 0.5 * 60 / 200)
    reference = LogisticRegression(
        C=3.0, solver="liblinear", intercept_scaling=10.0, max_iter=1000
    ).fit(columns, fitting.y, sample_weight=weights)
    expected = reference.decision_function(columns)
    domain = fitting.take(np.flatnonzero(fitting.domain))
    assert head_logit(fitted, domain) == pytest.approx(expected[fitting.domain], abs=1e-6)
    generic = fitting.take(np.flatnonzero(~fitting.domain))
    at_generic_prior = head_logit(fitted, generic) - fitted.intercept + fitted.generic_intercept
    assert at_generic_prior == pytest.approx(expected[~fitting.domain], abs=1e-6)


def test_no_direction_without_both_classes_among_generic_rows(axis: np.ndarray) -> None:
    feedback = rows(30, axis, in_domain=True, seed=6)
    assert generic_direction(feedback) is None  # feedback alone: no generic rows
    one_class = rows(50, axis, in_domain=False, seed=7)
    one_class = one_class.take(np.flatnonzero(one_class.y == 1))
    assert generic_direction(feedback.join(one_class)) is None
    with pytest.raises(ValueError, match="generic direction"):
        fit_head(feedback, 1.0, DIRECTION_FEATURES)


@pytest.mark.slow
def test_the_generic_direction_is_embedded_once_per_sample_and_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fitted on real MiniLM embeddings of a generic sample it reads sentiment; a second run
    on the same sample reads it back without embedding anything; another sample is another
    entry."""
    from airparadis.embedding import ENCODER_FILE, ENCODER_TOKENIZER_FILE, exported_encoder
    from training_jobs.generic_direction import DIRECTIONS_DIR, cached_direction
    from training_jobs.settings import TrainingSettings

    encoder_dir = tmp_path / "encoder"
    encoder_dir.mkdir()
    for name in (ENCODER_FILE, ENCODER_TOKENIZER_FILE):
        (encoder_dir / name).symlink_to(exported_encoder() / name)
    good = ["i love this", "what a great day", "so happy right now", "this is wonderful"]
    bad = ["i hate this", "what an awful day", "so sad right now", "this is terrible"]
    train = pd.DataFrame({
        "text": [f"{t} {i}" for i in range(16) for t in (*good, *bad)],
        "label": [1, 1, 1, 1, 0, 0, 0, 0] * 16,
    })  # fmt: skip
    settings = TrainingSettings(head_direction_rows=48, seed=1)
    direction = cached_direction(train, settings, encoder_dir)
    assert direction is not None
    assert len(list((encoder_dir / DIRECTIONS_DIR).glob("*.npz"))) == 1
    from airparadis.embedding import SentenceEncoder

    probes = SentenceEncoder.load(encoder_dir).embed(["a lovely flight", "a horrible flight"])
    lovely, horrible = direction.logit(probes)
    assert lovely > horrible

    def no_embedding(directory: Path, runtime: object = None) -> SentenceEncoder:
        raise AssertionError("the cached direction was embedded again")

    monkeypatch.setattr(SentenceEncoder, "load", no_embedding)
    again = cached_direction(train, settings, encoder_dir)
    assert again is not None and np.array_equal(again.weights, direction.weights)
    monkeypatch.undo()
    other = cached_direction(train, TrainingSettings(head_direction_rows=40, seed=1), encoder_dir)
    assert other is not None and not np.array_equal(other.weights, direction.weights)
    assert len(list((encoder_dir / DIRECTIONS_DIR).glob("*.npz"))) == 2
    assert cached_direction(train, TrainingSettings(head_direction_rows=0), encoder_dir) is None


def test_the_generic_rows_grow_with_the_feedback_apart_from_the_direction_sample() -> None:
    """At least `head_generic_rows`, two per feedback when that is more; never the
    direction's tweets; a larger sample starts with the smaller one (its cached embeddings
    are reused); 0 fits on feedback alone."""
    from training_jobs.generic_direction import direction_sample, head_generic_rows
    from training_jobs.settings import TrainingSettings

    train = pd.DataFrame({"text": [f"tweet {i}" for i in range(1000)], "label": [0, 1] * 500})
    settings = TrainingSettings(head_generic_rows=100, head_direction_rows=300, seed=3)
    direction = set(direction_sample(train, settings)["text"])
    few = head_generic_rows(train, settings, feedback_rows=40)
    many = head_generic_rows(train, settings, feedback_rows=125)
    assert len(direction) == 300 and len(few) == 100 and len(many) == 250
    assert not direction & set(many["text"])
    assert many["text"].tolist()[:100] == few["text"].tolist()
    assert len(head_generic_rows(train, settings, feedback_rows=5000)) == 700  # what is left
    assert head_generic_rows(train, TrainingSettings(head_generic_rows=0), 250).empty
