"""The served artifacts of the neural families: TFLite (builtin ops, no TensorFlow at serving)
and ONNX (+ tokenizers, no PyTorch at serving), checked against the in-memory models."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airparadis.bundle import load_bundle
from airparadis.formats.tflite import OOV_ID, PAD_ID, WordVocabulary
from training_jobs.data import load_sources
from training_jobs.families import get_family
from training_jobs.split import Split, split_data, stratified_sample

KERAS_TFLITE_TOLERANCE = 1e-4
"""Float32 TFLite vs Keras: the same arithmetic in another order, so round-off only."""
QUANTIZED_TOLERANCE = 0.05
"""Dynamic-range (int8 weights) TFLite vs Keras, largest |ΔP| on any tweet."""
ONNX_TOLERANCE = 1e-4
"""Float32 ONNX Runtime vs PyTorch."""

PROBES = [
    "@united best crew ever, thanks! http://bit.ly/x",
    "flight delayed again :( so tired",
    "ok",
    "",
    "word " * 200,
]


@pytest.fixture(scope="module")
def small_split(sentiment140_dir: Path) -> Split:
    frame, _ = load_sources([sentiment140_dir])
    return split_data(stratified_sample(frame, 2400, seed=5), 0.1, 0.1, seed=5)


def test_vocabulary_pads_truncates_and_knows_only_training_words() -> None:
    vocab = WordVocabulary.build(["a b c", "a b", "a"], size=10, max_len=4, min_count=1)
    assert vocab.tokens == ("a", "b", "c")
    assert vocab.encode_cleaned(["a zzz"]).tolist() == [[PAD_ID, PAD_ID, 2, OOV_ID]]
    post = WordVocabulary(vocab.tokens, 2, padding="post", truncating="pre")
    assert post.encode_cleaned(["a b c", "c"]).tolist() == [[3, 4], [4, PAD_ID]]
    pre = WordVocabulary(vocab.tokens, 2, padding="pre", truncating="post")
    assert pre.encode_cleaned(["a b c"]).tolist() == [[2, 3]]


@pytest.mark.parametrize(
    ("cell", "bidirectional", "quantization", "tolerance"),
    [
        ("gru", True, "none", KERAS_TFLITE_TOLERANCE),
        ("lstm", False, "none", KERAS_TFLITE_TOLERANCE),
        ("rnn", True, "dynamic", QUANTIZED_TOLERANCE),
        ("lstm", True, "float16", QUANTIZED_TOLERANCE),
    ],
)
def test_tflite_agrees_with_keras_and_uses_builtin_ops_only(
    small_split: Split,
    tmp_path: Path,
    cell: str,
    bidirectional: bool,
    quantization: str,
    tolerance: float,
) -> None:
    from ai_edge_litert.interpreter import Interpreter

    family = get_family("rnn")
    params = {
        "cell": cell,
        "bidirectional": bidirectional,
        "quantization": quantization,
        "epochs": 1,
        "units": 8,
        "embedding_dim": 16,
        "dense_units": 8,
        "max_len": 16,
    }
    model = family.fit(small_split.train, small_split.validation, params, seed=3)
    family.save(model, tmp_path)
    served = load_bundle(tmp_path)
    texts = PROBES + small_split.test["text"].tolist()[:200]
    gap = np.abs(served.predict_proba(texts) - model.predict_proba(texts))
    assert gap.max() <= tolerance, f"{cell}/{quantization}: max |ΔP| {gap.max():.2e}"

    interpreter = Interpreter(model_path=str(tmp_path / "model.tflite"))
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert not any(op.startswith("Flex") or op in ("DELEGATE", "CUSTOM") for op in ops), ops
    vocabulary = json.loads((tmp_path / "vocab.json").read_text())
    assert vocabulary["max_len"] == 16


def test_vocabulary_is_built_on_the_training_split_only_and_epochs_are_reported(
    small_split: Split,
) -> None:
    family = get_family("rnn")
    marker = "zzqxjunicornword"
    validation = small_split.validation.copy()
    validation.loc[:, "text"] = [f"{t} {marker} {marker}" for t in validation["text"]]
    epochs: list[int] = []
    model = family.fit(
        small_split.train, validation, {"epochs": 2, "units": 4, "embedding_dim": 8,
        "min_count": 1}, seed=3, report=lambda epoch, score: epochs.append(epoch),
    )  # fmt: skip
    assert epochs == [1, 2]  # one validation score per epoch, for the pruner
    assert marker not in model.vocabulary.tokens  # type: ignore[attr-defined]
    assert "xxuser" in model.vocabulary.tokens  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def transformer_bundle(small_split: Split, tmp_path_factory: pytest.TempPathFactory) -> Path:
    family = get_family("transformer")
    model = family.fit(
        small_split.train.head(600), small_split.validation.head(100),
        {"mode": "frozen", "head_epochs": 5, "quantization": "none"}, seed=3,
    )  # fmt: skip
    directory = tmp_path_factory.mktemp("onnx") / "bundle"
    family.save(model, directory)
    texts = PROBES + small_split.test["text"].tolist()[:100]
    reference = model.predict_proba(texts)
    (directory.parent / "reference.json").write_text(json.dumps(reference.tolist()))
    return directory


def test_onnx_agrees_with_pytorch(transformer_bundle: Path, small_split: Split) -> None:
    texts = PROBES + small_split.test["text"].tolist()[:100]
    reference = np.array(json.loads((transformer_bundle.parent / "reference.json").read_text()))
    served = load_bundle(transformer_bundle)
    gap = np.abs(served.predict_proba(texts) - reference)
    assert gap.max() <= ONNX_TOLERANCE, gap.max()
    # Dynamic padding: one tweet alone scores as it does inside a batch of long ones.
    alone = served.predict_proba([texts[0]])
    assert abs(alone[0] - served.predict_proba(texts)[0]) <= ONNX_TOLERANCE


def test_finetune_mode_trains_the_encoder_and_reports_steps(small_split: Split) -> None:
    import torch
    from safetensors import safe_open

    from training_jobs.families.transformer import encoder_dir

    with safe_open(str(encoder_dir() / "model.safetensors"), "pt") as shipped:
        before = shipped.get_tensor("embeddings.word_embeddings.weight").float()
    reported: list[tuple[int, float]] = []
    params = {"mode": "finetune", "epochs": 1, "batch_size": 16, "evals_per_epoch": 2,
              "max_len": 32, "quantization": "none"}  # fmt: skip
    model = get_family("transformer").fit(
        small_split.train.head(64), small_split.validation.head(16), params, seed=3,
        report=lambda step, score: reported.append((step, score)),
    )  # fmt: skip
    after = model.module.encoder.embeddings.word_embeddings.weight  # type: ignore[attr-defined]
    assert [step for step, _ in reported] == [2, 4]
    assert not torch.equal(before, after.detach())


BLOCK_FRAMEWORKS = textwrap.dedent(
    """
    import sys
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "tensorflow", "keras", "transformers"):
                raise ImportError(f"{name} is not in the serving install")
    sys.meta_path.insert(0, Block())
    from pathlib import Path
    from airparadis.bundle import load_bundle
    model = load_bundle(Path(sys.argv[1]))
    print(model.info.format, list(model.predict_proba(["love it", "hate it"])))
    """
)


def test_served_artifacts_load_without_torch_or_tensorflow(
    transformer_bundle: Path, small_split: Split, tmp_path: Path
) -> None:
    rnn = get_family("rnn")
    model = rnn.fit(small_split.train, small_split.validation, {"epochs": 1, "units": 4,
                    "embedding_dim": 8}, seed=3)  # fmt: skip
    rnn.save(model, tmp_path / "rnn")
    for bundle in (transformer_bundle, tmp_path / "rnn"):
        done = subprocess.run(
            [sys.executable, "-c", BLOCK_FRAMEWORKS, str(bundle)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.split()[0] in ("onnx", "tflite")


def test_frozen_transformer_on_a_slice_learns(small_split: Split, transformer_bundle: Path) -> None:
    served = load_bundle(transformer_bundle)
    frame: pd.DataFrame = small_split.test
    accuracy = np.mean((served.predict_proba(frame["text"].tolist()) >= 0.5) == frame["label"])
    assert accuracy > 0.6
