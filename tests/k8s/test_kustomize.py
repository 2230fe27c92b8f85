"""Raw manifests in k8s/: the base is the chart's render, the overlays match chart renders."""

from __future__ import annotations

import difflib
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from .conftest import REPO_ROOT, Renderer, Tools, parse_docs, pod_spec, validate_all

# overlay -> (namespace, values file, extra helm args) of the chart render it must equal
OVERLAYS = {
    "overlays/dev": ("airparadis-dev", "minimal-values.yaml", ("--set", "dashboard.enabled=true")),
    "overlays/aks": ("airparadis", "aks-values.yaml", ()),
}


def _render_base_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "render_base", REPO_ROOT / "k8s" / "render_base.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RENDER_BASE = _render_base_module()


def _comparable(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Objects by kind/name without Helm-only metadata; env and volumes order-insensitive."""

    def sort_named(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in {"env", "volumes", "volumeMounts"} and isinstance(value, list):
                    value.sort(key=lambda item: item.get("name", item.get("mountPath", "")))
                sort_named(value)
        elif isinstance(node, list):
            for value in node:
                sort_named(value)

    out = {}
    for doc in filter(RENDER_BASE.in_base, docs):
        doc = RENDER_BASE.normalise(doc)
        sort_named(doc)
        out[(doc["kind"], doc["metadata"]["name"])] = doc
    return out


def test_base_is_the_current_chart_render(tools: Tools) -> None:
    files = RENDER_BASE.build_files(RENDER_BASE.render_chart(tools.helm))
    base = REPO_ROOT / "k8s" / "base"
    current = {p.name: p.read_text(encoding="utf-8") for p in base.glob("*.yaml")}
    stale = sorted(set(files) ^ set(current) | {n for n in files if files[n] != current.get(n)})
    assert not stale, f"k8s/base is stale ({stale}); run: .venv/bin/python k8s/render_base.py"


@pytest.mark.parametrize("overlay", ["base", *OVERLAYS])
def test_overlay_renders_and_validates(kustomize: Any, isvc_validator: Any, overlay: str) -> None:
    docs = kustomize(overlay)
    assert validate_all(docs, isvc_validator) == len(docs) > 10
    if overlay in OVERLAYS:
        namespace = OVERLAYS[overlay][0]
        assert {d["metadata"].get("namespace") for d in docs} == {namespace}


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_overlay_matches_the_chart(kustomize: Any, tools: Tools, overlay: str) -> None:
    namespace, values, extra = OVERLAYS[overlay]
    chart_yaml = tools.run(
        "helm",
        "template",
        "airparadis",
        "charts/airparadis",
        "--namespace",
        namespace,
        "-f",
        f"charts/airparadis/ci/{values}",
        *extra,
    ).stdout
    chart = _comparable(parse_docs(chart_yaml))
    kustomized = _comparable(kustomize(overlay))
    assert sorted(chart) == sorted(kustomized), "objects differ"
    diffs = []
    for key in sorted(chart):
        if chart[key] != kustomized[key]:
            diffs.append(
                "".join(
                    difflib.unified_diff(
                        yaml.safe_dump(chart[key], sort_keys=True).splitlines(True),
                        yaml.safe_dump(kustomized[key], sort_keys=True).splitlines(True),
                        f"chart {key}",
                        f"{overlay} {key}",
                    )
                )
            )
    assert not diffs, "\n".join(diffs)


def test_overlay_images_point_at_acr(kustomize: Any) -> None:
    images = {
        container["image"]
        for doc in kustomize("overlays/aks")
        if doc["kind"] in {"Deployment", "CronJob", "InferenceService"}
        for container in pod_spec(doc)["containers"]
    }
    project = {i for i in images if i.rsplit("/", 1)[-1].startswith("airparadis-")}
    assert len(project) == 3, images
    assert all(i.startswith("airparadisacr.azurecr.io/") for i in project), images


def test_kustomizations_reference_existing_files() -> None:
    for path in (REPO_ROOT / "k8s").rglob("kustomization.yaml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for entry in data.get("resources", []):
            assert (path.parent / entry).exists(), f"{path}: {entry}"
        for patch in data.get("patches", []):
            if "path" in patch:
                assert (path.parent / Path(patch["path"])).is_file(), f"{path}: {patch['path']}"


def test_renderer_fixture_is_consistent_with_base(renderer: Renderer, kustomize: Any) -> None:
    """The base holds exactly the objects of the default chart render."""
    chart = _comparable(renderer.docs())
    base = _comparable(kustomize("base"))
    assert chart == base
