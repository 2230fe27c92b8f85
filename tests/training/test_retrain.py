"""Retraining from feedback: verdicts become examples, training uses them, the gate decides."""

from pathlib import Path

import pytest
from mlflow import MlflowClient

from airparadis.bundle import load_bundle
from airparadis.settings import PlatformSettings
from airparadis.tracking import download_model
from model_server.feedback import FeedbackStore, default_sqlite_url
from training_jobs.retrain import feedback_examples, retrain
from training_jobs.settings import TrainingSettings
from training_jobs.train import train


def _row(tweet: str, predicted: str, verdict: str, correct: str | None = None) -> dict[str, object]:
    return {
        "tweet": tweet,
        "predicted_label": predicted,
        "verdict": verdict,
        "correct_label": correct,
    }


def test_feedback_becomes_examples_by_the_stated_rule() -> None:
    frame, contradictions = feedback_examples(
        [
            _row("kept", "positive", "correct"),
            _row("corrected", "positive", "wrong", "negative"),
            _row("bare wrong", "negative", "wrong"),
            _row("majority", "positive", "correct"),
            _row("majority", "positive", "correct"),
            _row("majority", "positive", "wrong"),
            _row("tie", "positive", "correct"),
            _row("tie", "positive", "wrong"),
        ]
    )
    assert dict(zip(frame["text"], frame["label"], strict=True)) == {
        "kept": 1, "corrected": 0, "bare wrong": 1, "majority": 1,
    }  # fmt: skip
    assert contradictions == 1


def test_retrain_learns_a_correction_and_goes_through_the_gate(
    tmp_path: Path, sentiment140_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("AIRPARADIS_HOME", str(tmp_path))
    platform = PlatformSettings()
    settings = TrainingSettings(data=[sentiment140_dir], max_rows=4000, seed=3, feedback_weight=5)
    first = train("tfidf_lr", settings, platform)
    assert first.registered is not None and first.registered.alias == "champion"
    # Users keep correcting the same systematic error: "zorblax" tweets are good news.
    tweets = [f"zorblax flight number {i} today" for i in range(40)]
    before = load_bundle(download_model(platform.champion_uri, tmp_path / "v1")).predict_proba(
        tweets
    )
    store = FeedbackStore(default_sqlite_url(tmp_path))
    for tweet in tweets:
        store.add({"tweet": tweet, "predicted_label": "negative", "verdict": "wrong",
                   "correct_label": "positive"})  # fmt: skip
    result = retrain("tfidf_lr", settings, platform, tmp_path / "work")
    assert result.gate is not None and result.registered is not None
    assert result.registered.version == "2"
    assert result.gate.promoted == (result.registered.alias == "champion")
    run = MlflowClient().get_run(result.run_id)
    assert run.data.metrics["feedback.examples"] == 40
    assert run.data.tags["stage"] == "retrain"
    retrained = load_bundle(download_model(f"models:/{platform.model_name}/2", tmp_path / "v2"))
    assert retrained.predict_proba(tweets).mean() > before.mean() + 0.1
