"""Retraining from feedback: verdicts become examples, training uses them, the gate decides."""

import json
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
    settings = TrainingSettings(
        data=[sentiment140_dir], max_rows=4000, seed=3, feedback={"weight": 5},
        retrain_refit_generic=True,
    )  # fmt: skip
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


def test_feedback_is_ordered_by_its_latest_verdict_and_the_latest_slice_is_the_gates() -> None:
    from datetime import UTC, datetime, timedelta

    from training_jobs.retrain import split_feedback

    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        {**_row(f"tweet {i}", "positive", "correct"), "created_at": start + timedelta(minutes=i)}
        for i in range(100)
    ]
    rows.reverse()  # the store's order does not matter, the time does
    rows.append({**_row("tweet 3", "positive", "correct"), "created_at": start + timedelta(days=1)})
    frame, _ = feedback_examples(rows)
    assert frame["text"].tolist()[:3] == ["tweet 0", "tweet 1", "tweet 2"]
    assert frame["text"].iloc[-1] == "tweet 3"  # confirmed again, latest
    earlier, gate = split_feedback(frame, share=0.2)
    assert len(gate) == 20 and len(earlier) == 80
    assert gate["created_at"].min() > earlier["created_at"].max()
    _, none = split_feedback(frame, min_rows=30)
    assert none.empty


def test_gate_refuses_an_in_domain_gain_with_a_generic_regression() -> None:
    from training_jobs.gate import DomainCheck, decide_with_domain

    platform = PlatformSettings()

    def check(candidate: float) -> DomainCheck:
        return DomainCheck("macro_f1", 0.0, 0.005, 200, candidate, 0.70)

    regression = decide_with_domain(0.790, 0.800, check(0.85), "accuracy", platform, "4")
    assert (regression.alias, regression.promoted) == ("challenger", False)
    assert "beyond" in regression.reason
    summary = regression.summary()
    assert "in-domain macro_f1" in summary and "0.8500 vs 0.7000" in summary
    assert "generic accuracy at the generic prior candidate 0.7900" in summary
    holds = decide_with_domain(0.797, 0.800, check(0.85), "accuracy", platform, "4")
    assert (holds.alias, holds.promoted) == ("champion", True)
    no_gain = decide_with_domain(0.810, 0.800, check(0.70), "accuracy", platform, "4")
    assert (no_gain.alias, no_gain.promoted) == ("challenger", False)


def test_gate_refuses_a_domain_gain_that_reorders_generic_tweets() -> None:
    from training_jobs.gate import DomainCheck, decide_prior, decide_with_domain

    platform = PlatformSettings()

    def check(served: float) -> DomainCheck:
        return DomainCheck("macro_f1", 0.0, 0.005, 200, 0.85, 0.70, served, 0.886, 0.01)

    # Generic accuracy at the generic prior holds but the served ranking of generic tweets
    # lost 0.036 ROC-AUC: refused.
    reordered = decide_with_domain(0.800, 0.800, check(0.850), "accuracy", platform, "4")
    assert (reordered.alias, reordered.promoted) == ("challenger", False)
    assert "served generic roc_auc -0.0360 (beyond -0.01)" in reordered.reason
    assert "served generic roc_auc 0.8500 vs 0.8860" in reordered.summary()
    holds = decide_with_domain(0.800, 0.800, check(0.880), "accuracy", platform, "4")
    assert (holds.alias, holds.promoted) == ("champion", True)
    assert holds.as_dict()["generic_served_max_drop"] == 0.01
    # A prior correction with no labels is judged on the raw generic score alone.
    assert decide_prior(0.800, 0.800, 0.005, "accuracy", platform, "4").promoted
    assert not decide_prior(0.780, 0.800, 0.005, "accuracy", platform, "4").promoted


def test_retrain_keeps_the_latest_feedback_for_the_gate_and_calibrates(
    tmp_path: Path, sentiment140_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("AIRPARADIS_HOME", str(tmp_path))
    platform = PlatformSettings()
    settings = TrainingSettings(
        data=[sentiment140_dir], max_rows=4000, seed=3, calibration_min_labels=20,
        feedback={"weight_grid": [3.0, 30.0]}, retrain_refit_generic=True,
    )  # fmt: skip
    train("tfidf_lr", settings, platform)
    store = FeedbackStore(default_sqlite_url(tmp_path))
    # 96 older feedbacks, mostly complaints; then the latest 24, all complaints about "quibbly".
    for i in range(96):
        good = i % 4 == 0
        store.add({"tweet": f"@airline {'lovely crew thanks' if good else 'lost my bag'} {i}",
                   "predicted_label": "positive", "verdict": "correct" if good else "wrong"})  # fmt: skip
    for i in range(24):
        store.add({"tweet": f"quibbly seat again {i}", "predicted_label": "positive",
                   "verdict": "wrong", "correct_label": "negative"})  # fmt: skip
    # Optuna picks the weight (two trials: the configured grid, queued first).
    result = retrain("tfidf_lr", settings, platform, tmp_path / "work", tune_trials=2)
    assert result.gate is not None and result.gate.domain_rows == 24
    assert result.gate.domain_candidate is not None and result.gate.domain_metric == "macro_f1"
    run = MlflowClient().get_run(result.run_id)
    metrics = run.data.metrics
    assert metrics["feedback_gate_n"] == 24 and metrics["feedback_gate_support_negative"] == 24
    assert (metrics["feedback.fit"], metrics["feedback.select"]) == (72, 24)
    assert run.data.params["feedback.weight"] in ("3.0", "30.0")
    assert result.calibration is not None and result.calibration.labels == 24
    assert "test_raw_accuracy" in metrics  # generic quality on the raw score
    retrained = load_bundle(download_model(f"models:/{platform.model_name}/2", tmp_path / "v2"))
    assert retrained.info.calibration == result.calibration.to_dict()


def test_calibrate_registers_the_same_weights_with_a_calibration(
    tmp_path: Path, sentiment140_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from airparadis_cli.app import app

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("AIRPARADIS_HOME", str(tmp_path))
    monkeypatch.setenv("AIRPARADIS_TRAIN_DATA", str(sentiment140_dir))
    monkeypatch.setenv("AIRPARADIS_TRAIN_MAX_ROWS", "3000")
    platform = PlatformSettings()
    train("tfidf_lr", TrainingSettings(), platform)
    champion = load_bundle(download_model(platform.champion_uri, tmp_path / "v1"))
    store = FeedbackStore(default_sqlite_url(tmp_path))
    runner = CliRunner()
    for i in range(30):
        store.add({"tweet": f"@airline lost bag {i}", "predicted_label": "positive",
                   "verdict": "wrong"})  # fmt: skip
    few = runner.invoke(app, ["calibrate", "--workdir", str(tmp_path / "c0")])
    assert few.exit_code == 0 and "nothing changes" in few.output  # below the minimum
    for i in range(120):
        good = i % 5 == 0
        store.add({"tweet": f"@airline {'thanks, great crew' if good else 'my flight is late'} {i}",
                   "predicted_label": "positive", "verdict": "correct" if good else "wrong"})  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the work folder follows AIRPARADIS_HOME, not the directory
    result = runner.invoke(app, ["calibrate"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "calibrate").is_dir() and not any(elsewhere.iterdir())
    assert "calibration:" in result.output and "gate: in-domain macro_f1" in result.output
    version = MlflowClient().get_model_version(platform.model_name, "2")
    assert version.tags["stage"] == "calibrate" and "in-domain" in version.tags["gate"]
    run = MlflowClient().get_run(version.run_id)  # lineage: the feedback it was fitted on
    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"feedback-calibration", "feedback-gate"}
    calibrated_on = json.loads(inputs["feedback-calibration"].dataset.profile)["num_rows"]
    assert calibrated_on == run.data.metrics["feedback.fit"]
    calibrated = load_bundle(download_model(f"models:/{platform.model_name}/2", tmp_path / "v2"))
    assert calibrated.info.calibration is not None
    tweets = ["my flight is late again", "thanks, great crew"]
    raw = calibrated.predict_raw_proba(tweets)  # type: ignore[attr-defined]
    assert raw.tolist() == pytest.approx(champion.predict_proba(tweets).tolist())
    assert calibrated.predict_proba(tweets).mean() < raw.mean()  # mostly complaints


def test_weighted_candidates_are_reproducible_and_weights_count(sentiment140_dir: Path) -> None:
    import numpy as np
    import pandas as pd

    from training_jobs.data import load_sources
    from training_jobs.families.tfidf_lr import TfidfLogisticRegression
    from training_jobs.split import stratified_sample

    generic = stratified_sample(load_sources([sentiment140_dir])[0], 3000, seed=5)
    feedback = pd.DataFrame(
        {"text": [f"@airline zorblax seat {i}" for i in range(30)], "label": [1] * 30}
    )
    family = TfidfLogisticRegression()

    def coefficients() -> list[np.ndarray]:
        models = family.fit_weighted(generic, feedback, [1.0, 30.0], {}, seed=5)
        return [m.pipeline.named_steps["lr"].coef_.copy() for m in models]  # type: ignore[attr-defined]

    first, again = coefficients(), coefficients()
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    zorblax = family.fit_weighted(generic, feedback, [1.0, 30.0], {}, seed=5)
    light, heavy = (m.predict_proba(["zorblax"])[0] for m in zorblax)
    assert heavy > light


def test_retrain_registers_a_domain_head_without_refitting_the_generic_model(
    tmp_path: Path, sentiment140_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from training_jobs.retrain import CalibrateResult

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("AIRPARADIS_HOME", str(tmp_path))
    platform = PlatformSettings()
    settings = TrainingSettings(data=[sentiment140_dir], max_rows=3000, seed=3)
    first = train("tfidf_lr", settings, platform)
    assert first.registered is not None
    champion = load_bundle(download_model(platform.champion_uri, tmp_path / "v1"))
    store = FeedbackStore(default_sqlite_url(tmp_path))
    # The generic model calls these happy; in this domain "quibbly" means a broken seat.
    # Other feedback agrees with the generic model, so the head keeps its ranking.
    for i in range(240):
        if i % 3 == 0:
            store.add({"tweet": f"quibbly seat on flight {i} thanks", "predicted_label": "positive",
                       "verdict": "wrong"})  # fmt: skip
        elif i % 3 == 1:
            store.add({"tweet": f"lovely crew on flight {i} thanks", "predicted_label": "positive",
                       "verdict": "correct"})  # fmt: skip
        else:
            store.add({"tweet": f"awful rude staff on flight {i}, hate it",
                       "predicted_label": "negative", "verdict": "correct"})  # fmt: skip
    result = retrain("tfidf_lr", settings, platform, tmp_path / "work")
    assert isinstance(result, CalibrateResult) and result.calibration is not None
    assert result.calibration.method == "domain_head"
    assert result.registered is not None and result.registered.version == "2"
    assert result.gate is not None and result.gate.domain_rows > 0
    run = MlflowClient().get_run(str(result.run_id))
    assert run.data.tags["stage"] == "calibrate"
    assert "test_roc_auc" in run.data.metrics  # the served ranking on the generic split
    served = load_bundle(download_model(f"models:/{platform.model_name}/2", tmp_path / "v2"))
    tweets = ["quibbly seat on flight 999 thanks", "lovely crew on flight 999 thanks"]
    raw = served.predict_raw_proba(tweets)  # type: ignore[attr-defined]
    assert raw.tolist() == pytest.approx(champion.predict_proba(tweets).tolist())  # untouched
    labels = served.predict_proba(tweets) >= served.info.threshold
    assert labels.tolist() == [False, True]


@pytest.mark.slow
def test_retrain_tunes_the_head_encoder_on_feedback_and_the_bundle_carries_it(
    tmp_path: Path, sentiment140_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `head_encoder_tuning_min_labels` reached, MiniLM is fine-tuned on the feedback:
    unseen complaints in the domain's own words move toward unhappy tweets, and the registered
    bundle serves with that encoder, not the shipped one."""
    import numpy as np

    from airparadis.embedding import ENCODER_FILE, SentenceEncoder, exported_encoder, file_digest
    from training_jobs.encoder_tuning import holdout_size
    from training_jobs.retrain import CalibrateResult

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("AIRPARADIS_HOME", str(tmp_path))
    platform = PlatformSettings()
    settings = TrainingSettings(
        data=[sentiment140_dir], max_rows=3000, seed=3, head_encoder_tuning_min_labels=100,
        head_encoder_tuning_epochs=2, head_generic_rows=200, head_direction_rows=300,
    )  # fmt: skip
    assert train("tfidf_lr", settings, platform).registered is not None
    store = FeedbackStore(default_sqlite_url(tmp_path))
    # Complaints and praise about the seat in words no generic tweet uses.
    for i in range(240):
        store.add({"tweet": f"{'quibbly' if i % 2 else 'zorbly'} seat on flight {i}",
                   "predicted_label": "positive", "verdict": "wrong" if i % 2 else "correct"})  # fmt: skip
    result = retrain("tfidf_lr", settings, platform, tmp_path / "work")
    assert isinstance(result, CalibrateResult) and result.calibration is not None
    assert result.calibration.method == "domain_head", result.reason
    assert result.registered is not None and result.registered.version == "2"
    # 240 tweets: 48 for the gate, 192 fitted, of which the latest 19 the encoder never saw
    # and the stored held-out figures read.
    assert result.calibration.heldout["calibrated"]["n"] == holdout_size(192) == 19
    served_dir = download_model(f"models:/{platform.model_name}/2", tmp_path / "v2")
    served = load_bundle(served_dir)
    tuned_files = list(Path(served_dir).rglob(ENCODER_FILE))
    assert len(tuned_files) == 1
    assert file_digest(tuned_files[0]) != file_digest(exported_encoder() / ENCODER_FILE)

    tweets = [f"{'quibbly' if i % 2 else 'zorbly'} armrest in row {i}" for i in range(40)]
    complaint = np.array([i % 2 == 1 for i in range(40)])
    unhappy = ["awful, i hate it", "terrible service, never again", "worst day ever"]
    happy = ["wonderful, i love it", "great service, thank you", "best day ever"]

    def lean(encoder: SentenceEncoder) -> float:
        """How much nearer the unseen complaints sit to unhappy tweets than the praise does."""
        toward = encoder.embed(tweets) @ (encoder.embed(unhappy) - encoder.embed(happy)).mean(0)
        return float(toward[complaint].mean() - toward[~complaint].mean())

    tuned = lean(SentenceEncoder.load(tuned_files[0].parent))
    shipped = lean(SentenceEncoder.load(exported_encoder()))
    assert tuned > shipped + 0.05, (tuned, shipped)
    later = [f"{'quibbly' if i % 2 else 'zorbly'} seat on flight {1000 + i}" for i in range(40)]
    labels = served.predict_proba(later) >= served.info.threshold
    assert (labels == ~complaint).mean() >= 0.9, list(zip(later, labels, strict=True))


def test_the_encoder_is_not_tuned_when_its_held_out_feedback_lacks_a_class(
    tmp_path: Path, sentiment140_dir: Path
) -> None:
    """The held-out tenth is what the head is judged on after tuning: without two
    feedbacks of each class there, minutes of fine-tuning could not be checked, so the
    shipped encoder is kept (and nothing is written)."""
    import pandas as pd

    from airparadis.embedding import exported_encoder
    from training_jobs.retrain import HeadEncoder, head_encoder

    settings = TrainingSettings(data=[sentiment140_dir], head_encoder_tuning_min_labels=20)
    fitting = pd.DataFrame(
        {"text": [f"flight {i} was {'fine' if i < 25 else 'late'}" for i in range(40)],
         "label": [1 if i < 25 else 0 for i in range(40)]}
    )  # fmt: skip
    train_rows = pd.DataFrame({"text": ["good", "bad"], "label": [1, 0]})
    kept = head_encoder(fitting, train_rows, settings, tmp_path)
    assert kept == HeadEncoder(exported_encoder(), 0)
    assert not (tmp_path / "tuned-encoder").exists()
    below = head_encoder(fitting.head(19), train_rows, settings, tmp_path)
    assert below == HeadEncoder(exported_encoder(), 0)
