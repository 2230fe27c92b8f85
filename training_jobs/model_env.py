"""What a registered pyfunc model carries so that it loads anywhere MLflow does: the core
package as code (`code_paths`) and pinned pip requirements, instead of MLflow inferring them
by loading the model in a subprocess of the training environment.

The code is the `airparadis` core only, without the compiled fast path (a build output of one
platform and Python): the core falls back to its pure-Python path, which gives the same
results (`airparadis.fastpath`). The pins are the versions installed here, which `make install`
takes from constraints.txt.
"""

from __future__ import annotations

import shutil
from importlib import metadata
from pathlib import Path

import airparadis
from airparadis.bundle_format import BundleInfo

CORE_REQUIREMENTS = (
    "mlflow-skinny", "cloudpickle", "numpy", "pandas", "scipy", "scikit-learn", "joblib",
    "pystemmer", "simplemma",
)  # fmt: skip
"""What `airparadis.pyfunc` and the bundle loaders import (the base install, less what only
settings, the client and tracking need)."""
ONNX_RUNTIME = ("onnxruntime", "tokenizers")
FORMAT_REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "sklearn": (),
    "tflite": ("ai-edge-litert",),
    "onnx": ONNX_RUNTIME,
}
COMPILED = ("*.so", "*.pyd", "*.c", "__pycache__")


def requirement_names(info: BundleInfo) -> list[str]:
    """The distributions the bundle needs at load time: the core's, its format's runtime,
    and ONNX Runtime for a domain head reading sentence embeddings."""
    names = [*CORE_REQUIREMENTS, *FORMAT_REQUIREMENTS.get(info.format, ())]
    features = (info.calibration or {}).get("head_features") or ""
    if "embedding" in features:
        names += ONNX_RUNTIME
    return list(dict.fromkeys(names))


def pinned(names: list[str]) -> list[str]:
    """``name==version`` of each installed distribution (a missing one is an error: a model
    logged without its runtime would not load anywhere)."""
    return [f"{name}=={metadata.version(name)}" for name in names]


def stage_core(directory: Path) -> Path:
    """A copy of the `airparadis` package under `directory`, without compiled artifacts,
    for `code_paths`."""
    source = Path(airparadis.__file__).parent
    target = directory / "airparadis"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*COMPILED))
    return target
