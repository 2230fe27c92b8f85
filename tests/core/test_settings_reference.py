"""Documented settings and the settings classes agree, in both directions: docs/settings.md is
generated from the classes (and must be current), every field says what it does, and every
`AIRPARADIS_*` variable the docs mention exists."""

from __future__ import annotations

import importlib.util
import re
from types import ModuleType

import pytest

from tests.conftest import REPO_ROOT

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
    known = {
        variable
        for _, cls in REFERENCE.settings_classes()
        for names, _ in REFERENCE.settings_fields(cls)
        for variable in names
    }
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
