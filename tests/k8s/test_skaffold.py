"""skaffold.yaml: valid against the v4beta14 schema, and wired to files and values that exist."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from .conftest import CHART, REPO_ROOT, Tools, parse_docs

SKAFFOLD = yaml.safe_load((REPO_ROOT / "skaffold.yaml").read_text(encoding="utf-8"))
IMAGES = {"airparadis-model-server", "airparadis-training", "airparadis-dashboard"}


@pytest.fixture(scope="module")
def validator(shared_dir: Path) -> jsonschema.Draft7Validator:
    schema = json.loads((shared_dir / "schemas" / "skaffold-v4beta14.json").read_text())
    return jsonschema.Draft7Validator(schema)


def _sections() -> list[tuple[str, dict[str, Any]]]:
    return [("top", SKAFFOLD)] + [(p["name"], p) for p in SKAFFOLD["profiles"]]


def test_validates_against_the_schema(validator: jsonschema.Draft7Validator) -> None:
    assert SKAFFOLD["apiVersion"] == "skaffold/v4beta14"
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(SKAFFOLD)]
    assert not errors, errors


def test_schema_catches_a_typo(validator: jsonschema.Draft7Validator) -> None:
    broken = yaml.safe_load(yaml.safe_dump(SKAFFOLD))
    broken["build"]["artifacts"][0]["docker"]["dockerfil"] = "x"
    assert list(validator.iter_errors(broken))


def test_profiles() -> None:
    assert {p["name"] for p in SKAFFOLD["profiles"]} == {"dev", "aks"}


@pytest.mark.parametrize(("name", "section"), _sections(), ids=[n for n, _ in _sections()])
def test_builds_the_three_images_from_the_repo_root(name: str, section: dict[str, Any]) -> None:
    artifacts = section["build"]["artifacts"]
    assert {a["image"] for a in artifacts} == IMAGES, name
    for artifact in artifacts:
        assert artifact["context"] == "."
        assert (REPO_ROOT / artifact["docker"]["dockerfile"]).is_file()


@pytest.mark.parametrize(("name", "section"), _sections(), ids=[n for n, _ in _sections()])
def test_deploys_the_chart_with_existing_values(name: str, section: dict[str, Any]) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    (release,) = section["deploy"]["helm"]["releases"]
    assert (REPO_ROOT / release["chartPath"]).resolve() == CHART
    for path in release.get("valuesFiles", []):
        assert (REPO_ROOT / path).is_file(), path
    keys = {**release.get("setValues", {}), **release.get("setValueTemplates", {})}
    for dotted in keys:
        node: Any = values
        for part in dotted.split("."):
            assert isinstance(node, dict) and part in node, f"{name}: {dotted} is not a chart value"
            node = node[part]
    templates = release["setValueTemplates"]
    for image in IMAGES:
        token = image.replace("-", "_")
        assert f"{{{{.IMAGE_REPO_{token}}}}}" in templates.values(), (name, image)


@pytest.mark.parametrize(("name", "section"), _sections(), ids=[n for n, _ in _sections()])
def test_each_profile_deploys_an_inferenceservice_kserve_admits(
    tools: Tools, name: str, section: dict[str, Any]
) -> None:
    """`skaffold -p <profile>` renders the chart with these values files and values: KServe's
    webhook (tests/k8s/kserve_rules.py) must admit the result, on install and on upgrade."""
    from . import kserve_rules

    (release,) = section["deploy"]["helm"]["releases"]
    args = ["template", release["name"], str(REPO_ROOT / release["chartPath"])]
    for path in release.get("valuesFiles", []):
        args += ["-f", str(REPO_ROOT / path)]
    for key, value in release.get("setValues", {}).items():
        args += ["--set", f"{key}={value}"]
    for key, template in release.get("setValueTemplates", {}).items():
        # What skaffold puts there: the built image's repository and tag.
        args += ["--set", f"{key}={'airparadis-built' if 'REPO' in template else 'abc123'}"]
    docs = parse_docs(tools.run("helm", *args).stdout)
    (isvc,) = [d for d in docs if d["kind"] == "InferenceService"]
    kserve_rules.validate_create(isvc)
    kserve_rules.validate_update(kserve_rules.status_mode(isvc), isvc)
