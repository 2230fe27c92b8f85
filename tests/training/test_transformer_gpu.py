"""The transformer's GPU entry point runs where only torch, transformers and pandas are
installed: on a copy of the project's source without the compiled core, with the rest of
the project's environment (MLflow, pydantic, scikit-learn, SciPy, Optuna, ...) and the other
layers made unimportable."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BARE_GPU_MACHINE = textwrap.dedent(
    """
    import sys
    BLOCKED = {"mlflow", "pydantic", "pydantic_settings", "sklearn", "scipy", "optuna",
               "tensorflow", "keras", "onnxruntime", "sqlalchemy", "typer", "kserve", "panel",
               "model_server", "dashboard", "airparadis_cli"}
    from importlib.machinery import PathFinder
    class Bare(PathFinder):  # finds none of the blocked packages: as if not installed
        @classmethod
        def find_spec(cls, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                return None
            return super().find_spec(name, path, target)
    # Not installed there either: the project (no editable-install finder mapping it).
    sys.meta_path = [
        Bare if f is PathFinder else f
        for f in sys.meta_path
        if not getattr(f, "__module__", "").startswith("__editable__")
    ]
    import runpy
    import airparadis, airparadis.fastpath
    from pathlib import Path
    assert Path(airparadis.__file__).parent == Path.cwd() / "airparadis", airparadis.__file__
    sys.argv = ["transformer_gpu", *sys.argv[1:]]
    try:
        runpy.run_module("training_jobs.families.transformer_gpu", run_name="__main__")
    except SystemExit as stop:
        if stop.code:
            raise
    assert "airparadis._fastpath" not in sys.modules
    assert not airparadis.fastpath.use_compiled()
    print("MODULES", sorted({m.split(".")[0] for m in sys.modules} & BLOCKED))
    """
)


def _bare_copy(tmp_path: Path) -> Path:
    """The project's source as a GPU machine gets it: the two folders, no compiled code."""
    skip = shutil.ignore_patterns("*.so", "*.c", "__pycache__", "Dockerfile")
    for package in ("airparadis", "training_jobs"):
        shutil.copytree(REPO_ROOT / package, tmp_path / package, ignore=skip)
    return tmp_path


def _run(where: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.pop("AIRPARADIS_PURE_PYTHON", None)  # the copy has no extension: nothing to turn off
    return subprocess.run(
        [sys.executable, "-c", BARE_GPU_MACHINE, *args],
        cwd=where, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def test_the_gpu_entry_point_imports_without_the_compiled_core(tmp_path: Path) -> None:
    done = _run(_bare_copy(tmp_path), "--help")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "--encoder-dir" in done.stdout
    assert "MODULES []" in done.stdout


@pytest.mark.slow
def test_the_gpu_entry_point_fine_tunes_a_prepared_split(tmp_path: Path) -> None:
    from training_jobs.families.transformer_model import encoder_dir
    from training_jobs.remote_gpu import write_params
    from training_jobs.settings import TrainingSettings

    texts = ["love this flight", "great crew thanks", "worst delay ever", "lost my bag again"]
    rows = [
        {"text": f"{text} {i}", "label": int(j < 2), "split": split}
        for split, count in (("train", 4), ("validation", 2), ("test", 2))
        for i in range(count)
        for j, text in enumerate(texts)
    ]
    where = _bare_copy(tmp_path / "src")
    pd.DataFrame(rows).to_parquet(tmp_path / "split.parquet")
    defaults = write_params(tmp_path / "params.json", TrainingSettings())
    params = {"epochs": 1, "batch_size": 8, "max_len": 16, "evals_per_epoch": 1}
    done = _run(where, "--split", str(tmp_path / "split.parquet"), "--encoder-dir",
                str(encoder_dir()), "--defaults", str(defaults), "--out", str(tmp_path / "out"),
                "--params", json.dumps(params))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert metrics["best_epoch"] > 0
    assert (tmp_path / "out" / "finetuned.safetensors").stat().st_size > 1_000_000
