"""training_jobs/launcher.py: the Job it builds is valid and shaped like the chart's Jobs."""

from __future__ import annotations

import os
from typing import Any
from unittest import mock

import pytest
import yaml
from kubernetes import client
from pydantic import ValidationError

from training_jobs import launcher
from training_jobs.launcher import (
    LauncherSettings,
    SecretRef,
    build_job,
    job_to_yaml,
    submit_job,
)

from .conftest import CHART, Renderer, pod_spec, validate_builtin


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> LauncherSettings:
    for name in list(os.environ):
        if name.startswith("AIRPARADIS_K8S_"):
            monkeypatch.delenv(name)
    return LauncherSettings()


def _manifest(job: client.V1Job) -> dict[str, Any]:
    return dict(yaml.safe_load(job_to_yaml(job)))


def test_train_job_is_a_valid_job(settings: LauncherSettings) -> None:
    doc = _manifest(build_job(["train", "--family", "tfidf_lr"], settings))
    validate_builtin(doc)
    assert doc["kind"] == "Job" and doc["metadata"]["namespace"] == "airparadis"
    assert doc["metadata"]["name"].startswith("airparadis-train-")
    spec = doc["spec"]
    assert spec["backoffLimit"] == 2 and spec["ttlSecondsAfterFinished"] == 86400
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["airparadis"]
    assert container["args"] == ["train", "--family", "tfidf_lr"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MLFLOW_TRACKING_URI"] == "http://airparadis-mlflow:5000"
    assert container["resources"] == {
        "requests": {"cpu": "1", "memory": "4Gi"},
        "limits": {"cpu": "2", "memory": "8Gi"},
    }
    assert pod["restartPolicy"] == "Never"
    assert pod["serviceAccountName"] == "airparadis"


def test_indexed_tune_job_with_storage_and_data(settings: LauncherSettings) -> None:
    custom = settings.model_copy(
        update={
            "optuna_storage": SecretRef(secret="airparadis-optuna"),
            "data_claim": "sentiment140",
        }
    )
    args = ["tune", "--family", "tfidf_lr", "--trials", "5", "--workers", "1"]
    doc = _manifest(build_job(args, custom, completions=4, parallelism=2))
    validate_builtin(doc)
    assert doc["spec"]["completionMode"] == "Indexed"
    assert (doc["spec"]["completions"], doc["spec"]["parallelism"]) == (4, 2)
    container = doc["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["OPTUNA_STORAGE"]["valueFrom"]["secretKeyRef"] == {
        "name": "airparadis-optuna",
        "key": "url",
    }
    assert env["AIRPARADIS_TRAIN_DATA"]["value"] == "/data"
    assert {"mountPath": "/data", "name": "data", "readOnly": True} in container["volumeMounts"]


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRPARADIS_K8S_NAMESPACE", "ml")
    monkeypatch.setenv("AIRPARADIS_K8S_IMAGE", "acr.example/airparadis-training:1.0")
    monkeypatch.setenv(
        "AIRPARADIS_K8S_RESOURCES_LIMITS", '{"memory": "16Gi", "nvidia.com/gpu": "1"}'
    )
    monkeypatch.setenv("AIRPARADIS_K8S_OPTUNA_STORAGE_SECRET_KEY", "storage-url")
    monkeypatch.setenv("AIRPARADIS_K8S_EXTRA_ENV", '{"AIRPARADIS_TRAIN_MAX_ROWS": "1000"}')
    doc = _manifest(build_job(["train"], LauncherSettings()))
    validate_builtin(doc)
    container = doc["spec"]["template"]["spec"]["containers"][0]
    assert doc["metadata"]["namespace"] == "ml"
    assert container["image"] == "acr.example/airparadis-training:1.0"
    # Each quantity given replaces the default's; the others keep theirs.
    assert container["resources"] == {
        "requests": {"cpu": "1", "memory": "4Gi"},
        "limits": {"cpu": "2", "memory": "16Gi", "nvidia.com/gpu": "1"},
    }
    assert LauncherSettings().optuna_storage == SecretRef(secret_key="storage-url")
    assert {"name": "AIRPARADIS_TRAIN_MAX_ROWS", "value": "1000"} in container["env"]


def test_default_resources_are_the_chart_jobs_resources(settings: LauncherSettings) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert settings.resources.model_dump() == values["jobs"]["resources"]


@pytest.mark.parametrize(
    ("old", "replacement"),
    [
        ("AIRPARADIS_K8S_MEMORY_LIMIT", "AIRPARADIS_K8S_RESOURCES_LIMITS"),
        ("AIRPARADIS_K8S_CPU_REQUEST", "AIRPARADIS_K8S_RESOURCES_REQUESTS"),
        ("AIRPARADIS_K8S_DATA_MOUNT_PATH", "AIRPARADIS_TRAIN_DATA"),
    ],
)
def test_a_retired_variable_is_refused_naming_its_replacement(
    settings: LauncherSettings, monkeypatch: pytest.MonkeyPatch, old: str, replacement: str
) -> None:
    """Ignored, it would run the Job with other resources than asked for."""
    monkeypatch.setenv(old, "16Gi")
    with pytest.raises(ValidationError, match=rf"{old} is no longer read: .*{replacement}"):
        LauncherSettings()


def test_same_security_context_and_labels_as_the_chart_jobs(
    renderer: Renderer, settings: LauncherSettings
) -> None:
    chart_job = next(
        d
        for d in renderer.docs(
            extra=("--set", "training.enabled=true", "--set", "jobs.data.existingClaim=data")
        )
        if d["kind"] == "Job" and d["metadata"]["labels"]["app.kubernetes.io/component"] == "train"
    )
    chart_pod = pod_spec(chart_job)
    doc = _manifest(build_job(["train"], settings.model_copy(update={"data_claim": "data"})))
    pod = doc["spec"]["template"]["spec"]
    assert pod["securityContext"] == chart_pod["securityContext"]
    assert pod["containers"][0]["securityContext"] == chart_pod["containers"][0]["securityContext"]
    assert pod["automountServiceAccountToken"] is False
    assert {v["name"] for v in pod["volumes"]} == {v["name"] for v in chart_pod["volumes"]}
    # The chart's NetworkPolicy for batch pods must select launcher pods too.
    (policy,) = [
        d
        for d in renderer.docs()
        if d["kind"] == "NetworkPolicy" and d["metadata"]["name"].endswith("-jobs")
    ]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= doc["spec"]["template"]["metadata"]["labels"].items()


def test_job_names_are_unique_dns_labels(settings: LauncherSettings) -> None:
    names = {build_job(["tune"], settings).metadata.name for _ in range(20)}
    assert len(names) == 20
    long = settings.model_copy(update={"release": "A" * 80})
    name = build_job(["retrain"], long).metadata.name
    assert len(name) <= 63 and name == name.lower()
    with pytest.raises(ValueError, match="subcommand"):
        build_job([], settings)


def test_submit_uses_in_cluster_config_then_kubeconfig(settings: LauncherSettings) -> None:
    job = build_job(["train"], settings)
    created = client.V1Job(metadata=client.V1ObjectMeta(name="airparadis-train-abc123"))
    with (
        mock.patch.object(
            launcher.config, "load_incluster_config", side_effect=launcher.config.ConfigException
        ) as incluster,
        mock.patch.object(launcher.config, "load_kube_config") as kubeconfig,
        mock.patch.object(launcher.client, "BatchV1Api") as api,
    ):
        api.return_value.create_namespaced_job.return_value = created
        assert submit_job(job, "airparadis") == "airparadis-train-abc123"
    incluster.assert_called_once()
    kubeconfig.assert_called_once()
    api.return_value.create_namespaced_job.assert_called_once_with(namespace="airparadis", body=job)
