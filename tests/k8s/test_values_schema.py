"""values.schema.json refuses, at `helm install` time, what the API server or a webhook would
refuse later (or what would run but never work)."""

from __future__ import annotations

import pytest

from .conftest import Renderer

CLAIM = ("--set", "jobs.data.existingClaim=sentiment140-data")


@pytest.mark.parametrize(
    ("args", "where"),
    [
        (("--set", "retraining.schedule=every sunday at 3"), "/retraining/schedule"),
        (("--set", "retraining.schedule=0 3 * *"), "/retraining/schedule"),
        (("--set", "retraining.schedule=61 3 * * 0"), "/retraining/schedule"),
        (("--set", "retraining.schedule=0 3 * * 0 2026"), "/retraining/schedule"),
        (("--set", "retraining.timeZone=Paris time"), "/retraining/timeZone"),
        (("--set", "retraining.timeZone=+02:00"), "/retraining/timeZone"),
        (("--set", "retraining.timeZone=europe/paris"), "/retraining/timeZone"),
        (("--set", "mlflow.podDisruptionBudget.maxUnavailable=lots"), "maxUnavailable"),
        (("--set", "dashboard.podDisruptionBudget.maxUnavailable=150%"), "maxUnavailable"),
        (
            (
                "-f",
                "charts/airparadis/ci/minimal-values.yaml",
                "--set",
                "modelServer.scaleTarget=150",
            ),
            "scaleTarget",
        ),
        (("--set", "podSecurityContext.runAsUser=0"), "runAsUser"),
        (("--set", "containerSecurityContext.runAsUser=0"), "runAsUser"),
        (("--set", "postgresql.containerSecurityContext.runAsUser=0"), "runAsUser"),
        (("--set", "containerSecurityContext.privileged=true"), "privileged"),
        (("--set", "nameOverride=AirParadis"), "/nameOverride"),
        (("--set", "fullnameOverride=Air_Paradis"), "/fullnameOverride"),
        (("--set", "training.enabled=true"), "/jobs/data/existingClaim"),
        (("--set", "retraining.enabled=true"), "/jobs/data/existingClaim"),
        (("--set", "tuning.enabled=true"), "/jobs/data/existingClaim"),
        (("--set", "modelServer.metrics.podMonitor.apiVersion=v1"), "apiVersion"),
        (("--set", "modelServer.knative.progressDeadline=forever"), "progressDeadline"),
    ],
)
def test_the_schema_refuses(renderer: Renderer, args: tuple[str, ...], where: str) -> None:
    message = renderer.fails(*args)
    assert "values don't meet the specifications of the schema" in message, message
    assert where in message, message


@pytest.mark.parametrize(
    "args",
    [
        ("--set", "retraining.schedule=@weekly"),
        ("--set", "retraining.schedule=*/15 2-4 * * MON-FRI"),
        ("--set", "retraining.schedule=0 3 1\\,15 * ?"),
        ("--set", "retraining.timeZone=Europe/Paris"),
        ("--set", "retraining.timeZone=America/Argentina/Buenos_Aires"),
        ("--set", "retraining.timeZone=Etc/GMT+2"),
        ("--set-string", "mlflow.podDisruptionBudget.maxUnavailable=25%"),
        ("--set", "mlflow.podDisruptionBudget.maxUnavailable=0"),
        ("--set", "nameOverride=sentiment"),
        ("--set", "training.enabled=true", *CLAIM),
        ("--set", "retraining.enabled=true", *CLAIM),
        ("--set", "modelServer.deploymentMode=Serverless"),
    ],
)
def test_the_schema_accepts(renderer: Renderer, args: tuple[str, ...]) -> None:
    assert renderer.docs(extra=args)
