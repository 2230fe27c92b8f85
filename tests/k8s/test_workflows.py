"""GitHub Actions: pinned actions, least privilege, time limits, OIDC deployment."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
USES = re.compile(r"^\s*(?:-\s*)?uses:\s*(\S+)(.*)$", re.M)


def _load(path: Path) -> dict[str, Any]:
    # PyYAML reads the key `on` as True.
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in data:
        data["on"] = data.pop(True)
    return dict(data)


def test_both_workflows_exist() -> None:
    assert {p.name for p in FILES} == {"ci.yml", "deploy.yml"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_actions_are_pinned_to_commit_shas(path: Path) -> None:
    uses = USES.findall(path.read_text(encoding="utf-8"))
    assert uses
    for ref, comment in uses:
        if ref.startswith(("$/", "./")):
            continue  # this repository's own workflow, at this very commit
        assert re.fullmatch(r"[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}", ref), (
            f"{ref} is not pinned"
        )
        assert re.search(r"#\s*v\d+", comment), f"{ref} lacks a version comment"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_least_privilege_timeouts_and_concurrency(path: Path) -> None:
    data = _load(path)
    assert data["permissions"] == {"contents": "read"}
    assert "group" in data["concurrency"]
    for name, job in data["jobs"].items():
        if "uses" in job:  # a reusable workflow: its own jobs carry the limits
            assert job["uses"].startswith("$/.github/workflows/"), name
            continue
        assert isinstance(job.get("timeout-minutes"), int), f"{name} has no timeout-minutes"
        for scope, level in job.get("permissions", {}).items():
            assert (scope, level) in {("contents", "read"), ("id-token", "write")}, (name, scope)


def test_ci_runs_lint_types_tests_and_chart_checks() -> None:
    data = _load(WORKFLOWS / "ci.yml")
    assert "pull_request" in data["on"]
    text = (WORKFLOWS / "ci.yml").read_text(encoding="utf-8")
    for needle in (
        "make lint",
        "make typecheck",
        "make test",
        "helm lint --strict",
        "helm template",
    ):
        assert needle in text, needle
    assert data["concurrency"]["cancel-in-progress"] is True


def test_deploy_uses_oidc_and_a_protected_environment() -> None:
    data = _load(WORKFLOWS / "deploy.yml")
    assert data["on"]["push"]["branches"] == ["main"]
    assert data["concurrency"]["cancel-in-progress"] is False
    jobs = data["jobs"]
    helm = jobs["helm"]
    assert helm["environment"] == "production"
    assert helm["needs"] == "images"
    for job in (j for j in jobs.values() if "uses" not in j):
        assert job["permissions"]["id-token"] == "write"
        steps = " ".join(str(s.get("uses", "")) + str(s.get("run", "")) for s in job["steps"])
        assert "azure/login@" in steps
        logins = [s for s in job["steps"] if str(s.get("uses", "")).startswith("azure/login@")]
        assert set(logins[0]["with"]) == {"client-id", "tenant-id", "subscription-id"}
    text = (WORKFLOWS / "deploy.yml").read_text(encoding="utf-8")
    assert "helm upgrade --install" in text and "--atomic" in text
    assert "secrets." not in text, "OIDC only: no stored credentials"


def _tool(name: str) -> str | None:
    return shutil.which(name) or (
        str(REPO_ROOT / ".venv" / "bin" / name)
        if (REPO_ROOT / ".venv" / "bin" / name).exists()
        else None
    )


def test_workflows_match_the_github_schema() -> None:
    result = subprocess.run(
        [
            str(_tool("check-jsonschema")),
            "--builtin-schema",
            "vendor.github-workflows",
            *map(str, FILES),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing() -> None:
    result = subprocess.run(
        [str(_tool("zizmor")), "--offline", "--no-progress", str(WORKFLOWS)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_is_gated_on_ci_and_deploys_by_digest() -> None:
    data = _load(WORKFLOWS / "deploy.yml")
    jobs = data["jobs"]
    # CI runs on the very commit first, as a reusable workflow; images wait for it.
    assert jobs["ci"]["uses"] == "$/.github/workflows/ci.yml"  # GitHub's self-repository form
    assert "workflow_call" in _load(WORKFLOWS / "ci.yml")["on"]
    assert jobs["images"]["needs"] == "ci"
    # Each image's digest, from the step that pushed it, goes to the chart.
    outputs = jobs["images"]["outputs"]
    steps = {s.get("id"): s for s in jobs["images"]["steps"]}
    for image in ("model-server", "training", "dashboard"):
        assert outputs[image] == f"${{{{ steps.{image}.outputs.digest }}}}"
        assert steps[image]["with"]["push"] is True
    helm_step = next(s for s in jobs["helm"]["steps"] if "helm upgrade" in str(s.get("run")))
    for value in ("modelServer.image.digest", "jobs.image.digest", "dashboard.image.digest"):
        assert f"--set-string {value}=" in helm_step["run"]
    for name in ("MODEL_SERVER_DIGEST", "TRAINING_DIGEST", "DASHBOARD_DIGEST"):
        assert helm_step["env"][name].startswith("${{ needs.images.outputs.")


def test_deploy_waits_for_the_inferenceservice_and_runs_helm_test() -> None:
    """helm --wait ignores custom resources: the InferenceService's Ready condition is waited
    for explicitly, after the upgrade, with a rollback when it never comes."""
    steps = _load(WORKFLOWS / "deploy.yml")["jobs"]["helm"]["steps"]
    runs = [str(s.get("run", "")) for s in steps]
    upgrade = next(i for i, r in enumerate(runs) if "helm upgrade --install" in r)
    wait = next(i for i, r in enumerate(runs) if "kubectl" in r and "wait" in r)
    assert wait > upgrade
    assert "--for=condition=Ready" in runs[wait] and "inferenceservice/airparadis" in runs[wait]
    assert "helm rollback" in runs[wait] and "helm test airparadis" in runs[wait]
