"""A family's parameters are declared once (`training_jobs.families.params`) and every way in
goes through that model: the AIRPARADIS_TRAIN_<FAMILY>_* variables, explicit parameters and
Optuna trials reach the family validated, and a bad value is a named usage error (exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from tests.conftest import server_env
from training_jobs.families import get_family
from training_jobs.families.params import ParamsError, RnnParams, validate_params
from training_jobs.run_inputs import resolve_params
from training_jobs.settings import TrainingSettings


def test_the_documented_variables_reach_the_families(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRPARADIS_TRAIN_RNN_CELL", "lstm")
    monkeypatch.setenv("AIRPARADIS_TRAIN_RNN_EMBEDDING_DIM", "64")
    monkeypatch.setenv("AIRPARADIS_TRAIN_TRANSFORMER_MAX_LEN", "48")
    monkeypatch.setenv("AIRPARADIS_TRAIN_TRANSFORMER_CHECKPOINT", "/weights/finetuned.safetensors")
    monkeypatch.setenv("AIRPARADIS_TRAIN_NORMALISATION", "stem")
    settings = TrainingSettings()
    rnn = resolve_params(get_family("rnn"), settings, None)
    assert (rnn["cell"], rnn["embedding_dim"], rnn["normalisation"]) == ("lstm", 64, "stem")
    assert rnn["units"] == RnnParams().units  # untouched parameters keep the one default
    transformer = resolve_params(get_family("transformer"), settings, None)
    assert transformer["max_len"] == 48
    assert transformer["checkpoint"] == "/weights/finetuned.safetensors"
    assert resolve_params(get_family("tfidf_lr"), settings, None)["normalisation"] == "stem"

    from training_jobs.families.rnn import build_network

    network = build_network(rnn, vocab_size=200)
    assert network.get_layer("bidirectional").forward_layer.__class__.__name__ == "LSTM"


def test_explicit_parameters_win_over_settings_and_are_validated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRPARADIS_TRAIN_RNN_CELL", "lstm")
    family = get_family("rnn")
    assert resolve_params(family, TrainingSettings(), {"cell": "rnn"})["cell"] == "rnn"
    with pytest.raises(ParamsError, match=r"invalid rnn parameters: max_len: .*less than or"):
        resolve_params(family, TrainingSettings(), {"max_len": 10_000})
    with pytest.raises(ParamsError, match="units_typo: Extra inputs are not permitted"):
        validate_params("rnn", {"units_typo": 3})


def test_fit_refuses_a_bad_choice_through_the_params_model_alone() -> None:
    """`RnnParams` is the one check of the embedding choices: fit says what its Literal says."""
    import pandas as pd

    frame = pd.DataFrame({"text": ["good", "bad"], "label": [1, 0]})
    with pytest.raises(ParamsError, match=r"embedding: Input should be 'learned', 'word2vec'"):
        get_family("rnn").fit(frame, frame, {"embedding": "glove"}, seed=0)
    with pytest.raises(ParamsError, match=r"embedding_mode: Input should be 'fine-tuned'"):
        get_family("rnn").fit(frame, frame, {"embedding_mode": "thawed"}, seed=0)


@pytest.mark.parametrize("name", ["tfidf_lr", "rnn", "transformer"])
def test_every_optuna_trial_is_a_valid_parameter_set(name: str) -> None:
    family = get_family(name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        params = resolve_params(family, TrainingSettings(), family.search_space(study.ask()))
        assert validate_params(name, params) == params


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        (
            {"AIRPARADIS_TRAIN_RNN_CELL": "cnn"},
            [],
            "AIRPARADIS_TRAIN_RNN_CELL (rnn.cell): Input should be",
        ),
        (
            {"AIRPARADIS_TRAIN_TRANSFORMER_MAX_LEN": "2"},
            [],
            "AIRPARADIS_TRAIN_TRANSFORMER_MAX_LEN (transformer.max_len): Input",
        ),
        ({}, ["--param", "cell=cnn"], "invalid rnn parameters: cell: Input should be"),
    ],
)
def test_a_bad_parameter_is_a_usage_error(
    env: dict[str, str], args: list[str], message: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airparadis", "train", "--family", "rnn", *args],
        cwd=tmp_path, env=server_env(tmp_path / "home", **env), capture_output=True, text=True,
        timeout=180,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert message in result.stderr
