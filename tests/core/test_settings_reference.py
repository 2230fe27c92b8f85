"""Documented settings and the settings classes agree, in both directions: docs/settings.md is
generated from the classes (and must be current), every field says what it does, and every
`AIRPARADIS_*` variable the docs mention exists."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO_ROOT, server_env

NOT_SETTINGS = {
    "AIRPARADIS_PURE_PYTHON": "read by airparadis.fastpath before any settings object exists",
    "AIRPARADIS_CHROMIUM": "the browser tests' Chromium binary (tests only)",
    "AIRPARADIS_UPDATE_SCREENSHOTS": "the browser tests rewrite docs/images (tests only)",
}


def _reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "settings_reference", REPO_ROOT / "scripts" / "settings_reference.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REFERENCE = _reference()


def test_settings_page_is_current() -> None:
    assert REFERENCE.PAGE.read_text(encoding="utf-8") == REFERENCE.render(), (
        "docs/settings.md is stale; run: .venv/bin/python scripts/settings_reference.py"
    )


def test_every_setting_says_what_it_does() -> None:
    undescribed = [
        f"{cls.__name__}: {names}"
        for _, cls in REFERENCE.settings_classes()
        for names, field in REFERENCE.settings_fields(cls)
        if not (field.description or "").strip()
    ]
    assert undescribed == []


def test_a_family_parameter_is_documented_as_the_variable_that_sets_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each documented variable of a nested params model reaches that field: the page and
    pydantic-settings agree on the names (AIRPARADIS_TRAIN_RNN_EMBEDDING_DIM is rnn.embedding_dim)."""
    from training_jobs.settings import TrainingSettings

    rows = [names for names, _ in REFERENCE.settings_fields(TrainingSettings)]
    for field in ("rnn", "transformer"):
        model = type(getattr(TrainingSettings(), field))
        for name, sub in model.model_fields.items():
            variable = f"AIRPARADIS_TRAIN_{field}_{name}".upper()
            assert [variable] in rows
            if sub.annotation is int:
                monkeypatch.setenv(variable, str(sub.default + 1))
                assert getattr(getattr(TrainingSettings(), field), name) == sub.default + 1
                monkeypatch.delenv(variable)


def test_every_documented_variable_exists() -> None:
    """Every AIRPARADIS_* variable the docs name is a setting, or a retired one that the docs
    name as refused."""
    from dashboard.settings import RETIRED as DASHBOARD_RETIRED
    from training_jobs.launcher import RETIRED as LAUNCHER_RETIRED

    known = (
        {
            variable
            for _, cls in REFERENCE.settings_classes()
            for names, _ in REFERENCE.settings_fields(cls)
            for variable in names
        }
        | set(DASHBOARD_RETIRED)
        | set(LAUNCHER_RETIRED)
    )
    pages = [REPO_ROOT / "README.md", REPO_ROOT / "charts" / "airparadis" / "README.md",
             *sorted((REPO_ROOT / "docs").glob("*.md"))]  # fmt: skip
    unknown = set()
    for page in pages:
        for variable in re.findall(r"\bAIRPARADIS_[A-Z0-9_]+", page.read_text()):
            if variable.endswith("_"):  # a prefix, as in "AIRPARADIS_K8S_*"
                if not any(k.startswith(variable) for k in known):
                    unknown.add(f"{page.name}: {variable}*")
            elif variable not in known and variable not in NOT_SETTINGS:
                unknown.add(f"{page.name}: {variable}")
    assert sorted(unknown) == []


MAX_TOP_LEVEL_FIELDS = 100
"""Issue #15's bound on the settings of all components together. A nested group (a family's
parameters, the gate, the alert rule) counts once: its fields are still set one variable each,
and the reference page lists every one."""

SAME_NAME_OTHER_MEANING = {
    "host": "each process binds its own interface",
    "server_url": "each client (the dashboard, `feedback replay`) names the server it calls",
    "threads": "each runtime's own worker threads (dashboard I/O, TFLite, ONNX Runtime)",
}
"""Field names declared by two components that do not mean one thing; any other name found in
two components is a value both ends must agree on, declared twice."""


def _declared_by() -> dict[str, set[str]]:
    """Each field name (nested fields included) and the components that declare it."""
    from airparadis.settings import nested_model

    owners: dict[str, set[str]] = {}
    for _, cls in REFERENCE.settings_classes():
        for name, field in cls.model_fields.items():
            owners.setdefault(name, set()).add(cls.__name__)
            nested = nested_model(field)
            for sub in nested.model_fields if nested else ():
                owners.setdefault(sub, set()).add(cls.__name__)
    return owners


def test_at_most_100_settings_fields() -> None:
    counts = {cls.__name__: len(cls.model_fields) for _, cls in REFERENCE.settings_classes()}
    assert sum(counts.values()) <= MAX_TOP_LEVEL_FIELDS, counts


def test_no_value_is_declared_by_two_components() -> None:
    """The dashboard reads the model's name and the tweet limit from the server's /v1/info."""
    owners = _declared_by()
    shared = {name: sorted(by) for name, by in owners.items() if len(by) > 1}
    assert set(shared) == set(SAME_NAME_OTHER_MEANING), shared
    assert owners["max_tweet_chars"] == {"ServerSettings"}
    assert owners["served_name"] == {"ServerSettings"}
    assert owners["model_name"] == {"PlatformSettings"}  # the registered name, all components


def test_a_bad_value_is_named_by_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from airparadis.settings import settings_problems
    from model_server.settings import ServerSettings
    from training_jobs.settings import TrainingSettings

    monkeypatch.setenv("AIRPARADIS_TRAIN_RNN_CELL", "cnn")
    monkeypatch.setenv("AIRPARADIS_TRAIN_GATE_MARGIN", "-1")
    with pytest.raises(ValidationError) as caught:
        TrainingSettings()
    problems = settings_problems(caught.value)
    assert "AIRPARADIS_TRAIN_RNN_CELL (rnn.cell): Input should be 'rnn', 'gru' or" in problems
    assert "AIRPARADIS_TRAIN_GATE_MARGIN (gate.margin): Input should be greater" in problems
    monkeypatch.setenv("AIRPARADIS_SERVER_DRIFT_MIN_TWEETS", "5000")
    with pytest.raises(ValidationError) as caught:
        ServerSettings()
    assert settings_problems(caught.value).startswith(
        "AIRPARADIS_SERVER_DRIFT_* (drift): Value error, AIRPARADIS_SERVER_DRIFT_MIN_TWEETS (5000)"
    )


@pytest.mark.parametrize(
    ("old", "replacement"),
    [
        ("AIRPARADIS_DASHBOARD_MODEL_NAME", "AIRPARADIS_SERVER_SERVED_NAME"),
        ("AIRPARADIS_DASHBOARD_MAX_TWEET_CHARS", "AIRPARADIS_SERVER_MAX_TWEET_CHARS"),
    ],
)
def test_a_retired_dashboard_variable_is_a_usage_error_naming_the_server_setting(
    old: str, replacement: str, tmp_path: Path
) -> None:
    """Ignored, it could differ from what the server enforces."""
    result = subprocess.run(
        [sys.executable, "-m", "airparadis", "dashboard"],
        cwd=tmp_path, env=server_env(tmp_path / "home", **{old: "280"}), capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert f"{old} is no longer read" in result.stderr and replacement in result.stderr
