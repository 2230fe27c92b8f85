"""Retraining is triggered from outside the predictor (the CronJob, or an alert that creates a
Job from it): the predictor has no Kubernetes credentials, so it holds no launch path."""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import REPO_ROOT, Renderer, by_kind, pod_spec


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_predictor_imports_no_launcher_and_no_kubernetes_client() -> None:
    """Layers import downwards: serving never reaches into training (nor the Kubernetes API)."""
    for path in sorted((REPO_ROOT / "model_server").glob("*.py")):
        for name in _imports(path):
            root = name.split(".")[0]
            assert root not in {"training_jobs", "dashboard", "kubernetes"}, f"{path.name}: {name}"


def test_no_retrain_on_alert_setting() -> None:
    from model_server.settings import ServerSettings

    assert not [name for name in ServerSettings.model_fields if "retrain" in name]


def test_the_predictor_has_no_kubernetes_credentials(renderer: Renderer) -> None:
    docs = renderer.docs(
        "full-values.yaml", extra=("--set", "retraining.enabled=true")
    )  # fmt: skip
    (isvc,) = by_kind(docs, "InferenceService").values()
    account = pod_spec(isvc)["serviceAccountName"]
    assert pod_spec(isvc)["automountServiceAccountToken"] is False
    for binding in by_kind(docs, "RoleBinding").values():
        assert account not in {s["name"] for s in binding["subjects"]}
    # The external trigger's target: `kubectl create job --from=cronjob/<fullname>-retrain`.
    assert "airparadis-ap-retrain" in by_kind(docs, "CronJob")
