"""Every bundle format the predictor serves, loaded and scored inside the serving image.

The serving image is pruned (no pip, grpcio-tools, hf-xet or kubernetes.aio; shared objects
stripped of their symbol tables), so this proves each family's runtime still works there:
scikit-learn (TF-IDF + LR), LiteRT (a recurrent network exported to TFLite) and ONNX Runtime with
`tokenizers` (an ONNX graph with the transformer bundle's inputs and outputs). The image's
probabilities must equal the host's for the same bundle; the container runs as the pod does
(read-only root, user 10001, no capabilities, no privilege escalation, no network).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from airparadis.bundle import BundleInfo, load_bundle, write_info
from tests.containers.kube import docker

IMAGE = "airparadis-model-server:dev"
TEXTS = [
    "@united best crew ever, thanks! http://bit.ly/x",
    "flight delayed again :( so tired",
    "ok",
    "",
    "lost my bag, awful awful service " * 20,
]
SCRIPT = (
    "import json, sys; from pathlib import Path; from airparadis.bundle import load_bundle; "
    "texts = json.loads(sys.argv[1]); "
    "print(json.dumps({p.name: load_bundle(p).predict_proba(texts).tolist() "
    "for p in sorted(Path('/models').iterdir())}))"
)


def _onnx_bundle(directory: Path) -> None:
    """A word-level tokenizer and a small ONNX graph: P = sigmoid(mean of the token weights)."""
    import onnx
    from onnx import TensorProto, helper
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    words = ["[UNK]", "best", "crew", "thanks", "delayed", "tired", "lost", "awful", "service"]
    tokenizer = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    directory.mkdir(parents=True)
    tokenizer.save(str(directory / "tokenizer.json"))
    weights = np.array([0.0, 2.0, 1.0, 1.5, -1.0, -1.5, -2.0, -2.5, -0.5], dtype=np.float32)
    nodes = [
        helper.make_node("Gather", ["weights", "input_ids"], ["w"]),
        helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["w", "m"], ["wm"]),
        helper.make_node("ReduceSum", ["wm", "axis"], ["total"], keepdims=0),
        helper.make_node("ReduceSum", ["m", "axis"], ["count"], keepdims=0),
        helper.make_node("Max", ["count", "one"], ["safe"]),
        helper.make_node("Div", ["total", "safe"], ["mean"]),
        helper.make_node("Sigmoid", ["mean"], ["p_positive"]),
    ]
    graph = helper.make_graph(
        nodes,
        "bag_of_words",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("p_positive", TensorProto.FLOAT, ["batch"])],
        initializer=[
            helper.make_tensor("weights", TensorProto.FLOAT, [len(words)], weights.tolist()),
            helper.make_tensor("axis", TensorProto.INT64, [1], [1]),
            helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(directory / "model.onnx"))
    write_info(directory, BundleInfo(family="transformer", format="onnx", params={"max_len": 32}))


def _tflite_bundle(directory: Path, sentiment140_dir: Path) -> None:
    """The recurrent family's own export, trained for one epoch on a small slice."""
    from training_jobs.data import load_sources
    from training_jobs.families import get_family
    from training_jobs.split import split_data, stratified_sample

    frame, _ = load_sources([sentiment140_dir])
    split = split_data(stratified_sample(frame, 1200, seed=5), 0.1, 0.1, seed=5)
    family = get_family("rnn")
    params = {"epochs": 1, "units": 4, "embedding_dim": 8, "dense_units": 4, "max_len": 16}
    family.save(family.fit(split.train, split.validation, params, seed=5), directory)


@pytest.fixture(scope="module")
def bundles(
    tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path, sentiment140_dir: Path
) -> Path:
    """sklearn, tflite and onnx bundles in one folder the containers' user can read."""
    root = tmp_path_factory.mktemp("families")
    shutil.copytree(tiny_bundle, root / "sklearn")
    _tflite_bundle(root / "tflite", sentiment140_dir)
    _onnx_bundle(root / "onnx")
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


def test_each_bundle_format_scores_in_the_serving_image_as_on_the_host(
    project_images: None, bundles: Path
) -> None:
    formats = {
        p.name: json.loads((p / "bundle.json").read_text())["format"] for p in bundles.iterdir()
    }
    assert formats == {"sklearn": "sklearn", "tflite": "tflite", "onnx": "onnx"}
    result = docker(
        "run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp",
        "--user", "10001:10001", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "-v", f"{bundles}:/models:ro", "--entrypoint", "python", IMAGE,
        "-c", SCRIPT, json.dumps(TEXTS),
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    in_image = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(in_image) == ["onnx", "sklearn", "tflite"]
    for name, probabilities in in_image.items():
        expected = load_bundle(bundles / name).predict_proba(TEXTS)
        assert len(probabilities) == len(TEXTS), name
        np.testing.assert_allclose(probabilities, expected, atol=1e-5, err_msg=name)
        # A model that scores every tweet alike would hide a broken runtime.
        assert np.ptp(probabilities) > 1e-4, f"{name}: {probabilities}"
