"""A registered model loads with `mlflow.pyfunc.load_model` in a fresh virtualenv holding only
the requirements it declares: its code travels with it, and without the compiled fast path
the core's pure-Python path answers the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from airparadis.settings import PlatformSettings
from tests.conftest import MLFLOW_VARIABLES, REPO_ROOT
from tests.training.tiny_data import write_sentiment140
from training_jobs.model_env import CORE_REQUIREMENTS
from training_jobs.settings import TrainingSettings
from training_jobs.train import train

pytestmark = pytest.mark.slow  # a virtualenv and a pip install of the model's requirements

TWEETS = ["love this crew so much, thanks!", "my bag is lost again, awful", "ok"]
LOAD = """
import json, sys
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
import airparadis, airparadis.fastpath  # importable now: the model put its code on sys.path
out = model.predict(pd.DataFrame({"text": json.loads(sys.argv[2])}))
print(json.dumps({"labels": out["label"].tolist(), "proba": out["probability"].tolist(),
                  "core": airparadis.__file__,
                  "compiled": airparadis.fastpath.use_compiled()}))
"""


def constraints() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "constraints.txt").read_text().splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep:
            pins[name.lower()] = version.strip()
    return pins


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny TF-IDF model trained and registered here, downloaded from the registry."""
    home = tmp_path_factory.mktemp("home")
    data = write_sentiment140(tmp_path_factory.mktemp("data") / "tiny.csv")
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("AIRPARADIS_HOME", str(home))
            platform = PlatformSettings()
            train("tfidf_lr", TrainingSettings(data=[data], seed=5), platform, params={"min_df": 1})
            return Path(
                mlflow.artifacts.download_artifacts(
                    platform.champion_uri, dst_path=str(tmp_path_factory.mktemp("model"))
                )
            )
    finally:
        # MLflow exports the store and experiment it was pointed at into os.environ; a module
        # fixture runs outside the per-test isolation, so later modules would inherit them.
        for name in MLFLOW_VARIABLES:
            os.environ.pop(name, None)


def test_the_model_declares_its_code_and_pinned_requirements(model_dir: Path) -> None:
    code = model_dir / "code" / "airparadis"
    assert (code / "pyfunc.py").is_file() and (code / "formats" / "sklearn.py").is_file()
    assert not [p for p in code.rglob("*") if p.suffix in (".so", ".pyd", ".c")]
    assert not (model_dir / "code" / "training_jobs").exists()
    requirements = [
        r for r in (model_dir / "requirements.txt").read_text().split() if not r.startswith("-")
    ]
    pins = dict(r.lower().split("==") for r in requirements)
    assert set(pins) == {*CORE_REQUIREMENTS}  # the sklearn format needs no other runtime
    wanted = constraints()
    assert {name: wanted.get(name) for name in pins} == pins


def test_load_model_in_a_fresh_virtualenv(model_dir: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # Only the machine's pip configuration (its index and certificates), none of ours.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONNOUSERSITE"] = "1"
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", "-r", str(model_dir / "requirements.txt")],
        env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    loaded = subprocess.run(
        [python, "-c", LOAD, str(model_dir), json.dumps(TWEETS)],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    answer = json.loads(loaded.stdout.strip().splitlines()[-1])

    assert Path(answer["core"]).is_relative_to(model_dir / "code")  # the model's own copy
    assert answer["compiled"] is False
    here = mlflow.pyfunc.load_model(str(model_dir)).predict(pd.DataFrame({"text": TWEETS}))
    assert answer["labels"] == here["label"].tolist()
    assert answer["proba"] == pytest.approx(here["probability"].tolist(), abs=1e-9)
    assert answer["labels"][:2] == ["positive", "negative"]
