"""The domain head's sentence-embedding features: chosen by cross-validation when they
generalise where n-grams cannot, carried in the bundle (no hub at run time), and computed by
the same encoder in fitting and serving."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from airparadis.bundle import BundleError, load_bundle, read_info
from airparadis.calibration import save_calibration
from airparadis.calibration_fit import GenericSample, fit_calibration
from airparadis.domain_head import EMBEDDING_TOKEN, HEAD_FILE
from airparadis.embedding import ENCODER_FILE, ENCODER_TOKENIZER_FILE, exported_encoder
from model_server.model import explain_tweet

GOOD = ["wonderful", "fantastic", "superb", "lovely", "brilliant", "delightful", "excellent",
        "terrific", "splendid", "marvellous", "outstanding", "pleasant", "amazing", "great",
        "perfect", "awesome", "magnificent", "fabulous", "stellar", "smooth"]  # fmt: skip
BAD = ["awful", "terrible", "horrible", "dreadful", "miserable", "appalling", "atrocious",
       "lousy", "abysmal", "disgusting", "pathetic", "shameful", "nasty", "horrendous",
       "unbearable", "ghastly", "wretched", "rotten", "infuriating", "disastrous"]  # fmt: skip
NOUNS = ["flight", "crew", "trip", "service", "landing", "boarding", "seat", "journey"]


def synonyms(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Tweets whose sentiment lies in one of 40 adjectives, scored by a generic model that
    knows little about them (a weak, noisy lean the right way)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    words = [GOOD[i % 20] if label else BAD[(i * 3) % 20] for i, label in enumerate(y)]
    texts = [f"what a {w} {NOUNS[int(rng.integers(8))]} #{i}" for i, w in enumerate(words)]
    z = 0.3 * (2 * y - 1) + rng.normal(0.0, 1.0, n)
    return 1 / (1 + np.exp(-z)), y, texts


@pytest.mark.slow
def test_embedding_features_win_travel_in_the_bundle_and_explain_exactly(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    encoder_dir = exported_encoder()  # exported once from the packaged MiniLM, then cached
    p_raw, y, texts = synonyms(160, seed=1)
    generic = GenericSample(
        ["i love it", "i hate it"] * 20, np.full(40, 0.5), np.array([1, 0] * 20)
    )
    calibration = fit_calibration(
        p_raw, y, texts=texts, methods=("platt", "domain_head"), generic=generic,
        encoder_dir=encoder_dir,
    )  # fmt: skip
    assert calibration.method == "domain_head" and calibration.head is not None
    assert calibration.head_features in ("ngram+embedding", "ngram+embedding+direction")
    assert calibration.head_generic_rows == 40
    held = calibration.heldout["calibrated"]["macro_f1"]
    assert held is not None and held > 0.9  # out of fold: unseen adjectives are understood
    raw = load_bundle(tiny_bundle)
    target = tmp_path / "head"
    shutil.copytree(tiny_bundle, target)
    save_calibration(target, read_info(target), calibration)
    for name in (HEAD_FILE, ENCODER_FILE, ENCODER_TOKENIZER_FILE):
        assert (target / name).is_file()
    stored = json.loads((target / "bundle.json").read_text())["calibration"]
    assert stored["head_features"] == calibration.head_features
    assert stored["head_generic_rows"] == 40
    model = load_bundle(target)
    tweets = ["what a gorgeous flight", "what a hideous crew", "@united my bag is lost"]
    expected = calibration.apply(raw.predict_proba(tweets), tweets)
    # Float32 batches are padded and masked: alone or batched, a tweet reads the same, to
    # rounding.
    assert model.predict_proba(tweets) == pytest.approx(expected, abs=1e-6)
    assert expected[0] > 0.5 > expected[1]  # adjectives it never saw, by their meaning
    for tweet, p in zip(tweets, expected, strict=True):
        assert model.score_tweet(tweet) == pytest.approx(p, abs=1e-6)  # type: ignore[attr-defined]
        explanation = explain_tweet(model, tweet, 64)
        tokens = {t["token"] for t in explanation["tokens"]}
        assert EMBEDDING_TOKEN in tokens
        logit = explanation["bias"] + sum(t["contribution"] for t in explanation["tokens"])
        assert 1 / (1 + math.exp(-logit)) == pytest.approx(p, abs=1e-6)
    # Another encoder than the one the head was fitted with is refused, not served.
    (target / ENCODER_FILE).write_bytes(b"not the encoder")
    with pytest.raises(BundleError, match="calibration"):
        load_bundle(target)
    # A plain map in its place removes the head and the encoder's files.
    save_calibration(target, read_info(target), fit_calibration(p_raw, y, methods=("platt",)))
    assert not (target / ENCODER_FILE).exists() and not (target / HEAD_FILE).exists()


@pytest.mark.slow
def test_bulk_embeddings_equal_served_ones_and_are_read_back_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training's runtime (every core, a disk cache) gives the embeddings serving computes; a
    second encoder over the same graph reads them back without running it, and another
    tweet list is computed."""
    from airparadis.embedding import EncoderRuntime, SentenceEncoder

    runtime = EncoderRuntime(threads=2, cache=tmp_path / "embeddings")
    texts = ["flight delayed again, no crew", "lovely landing, thanks", "lost my bag"]
    served = SentenceEncoder.load(exported_encoder()).embed(texts)
    bulk = SentenceEncoder.load(exported_encoder(), runtime).embed(texts)
    np.testing.assert_allclose(bulk, served, atol=1e-5)
    assert any((tmp_path / "embeddings").rglob("output.pkl"))

    def not_run(self: SentenceEncoder, cleaned: list[str]) -> np.ndarray:
        raise AssertionError(f"embedded again: {cleaned}")

    monkeypatch.setattr(SentenceEncoder, "run", not_run)
    again = SentenceEncoder.load(exported_encoder(), runtime)
    np.testing.assert_array_equal(again.embed(texts), bulk)
    with pytest.raises(AssertionError, match="embedded again"):
        again.embed(["a tweet nobody embedded"])
