"""Run an ``airparadis`` command as a Kubernetes Job next to the in-cluster MLflow.

``build_job`` turns CLI arguments (``["train", "--family", "tfidf_lr"]``) into a ``V1Job``
shaped like the Helm chart's Jobs: same image, labels, security context, scratch volumes and
MLflow address, so the chart's NetworkPolicies let it reach MLflow and PostgreSQL.
``job_to_yaml`` prints it (``--dry-run``) and ``submit_job`` creates it with ``BatchV1Api``,
using the in-cluster ServiceAccount (the chart's ``<release>-launcher``) or the local kubeconfig.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import yaml
from kubernetes import client, config
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from airparadis.settings import refuse_retired

COMMANDS_WITH_COMPONENT = {"train", "tune", "retrain", "score", "evaluate"}
SCRATCH_HOME = "/var/lib/airparadis"
DATA_MOUNT_PATH = "/data"
"""Where a Job mounts the data claim, read-only, and so the AIRPARADIS_TRAIN_DATA it gets:
both ends are inside the Job's own pod, so no one outside it has a reason to move it."""
DEFAULT_REQUESTS = {"cpu": "1", "memory": "4Gi"}
DEFAULT_LIMITS = {"cpu": "2", "memory": "8Gi"}
RETIRED = {
    **{
        f"AIRPARADIS_K8S_{kind}_{bound}": f"set AIRPARADIS_K8S_RESOURCES_{bound}S, a JSON object "
        f'of quantities, e.g. {{"{kind.lower()}": "..."}}'
        for kind in ("CPU", "MEMORY")
        for bound in ("REQUEST", "LIMIT")
    },
    "AIRPARADIS_K8S_DATA_MOUNT_PATH": f"the Job mounts the data claim at {DATA_MOUNT_PATH} and "
    "gives that path as AIRPARADIS_TRAIN_DATA itself; unset it",
}
"""The launcher's former variables, and what replaced them: one still set would be ignored
and the Job would run with other resources than asked for, so the launcher refuses it."""


class JobResources(BaseModel):
    """Requests and limits of a Job's container, in Kubernetes' own shape (the chart's
    `jobs.resources`), one JSON object each (``AIRPARADIS_K8S_RESOURCES_LIMITS``). Each
    quantity given replaces the default's and the others stay, so ``{"memory": "16Gi"}`` as
    the limits keeps the CPU limit; any resource name goes, ``nvidia.com/gpu`` included."""

    model_config = ConfigDict(extra="forbid")

    requests: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_REQUESTS),
        description="Quantities reserved for the container, a JSON object; each one given "
        'replaces the default\'s, e.g. {"memory": "6Gi"}.',
    )
    limits: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_LIMITS),
        description="Ceiling of the container, a JSON object; each one given replaces the "
        'default\'s, e.g. {"memory": "16Gi", "nvidia.com/gpu": "1"}.',
    )

    @field_validator("requests", mode="before")
    @classmethod
    def _over_default_requests(cls, value: object) -> object:
        return {**DEFAULT_REQUESTS, **value} if isinstance(value, dict) else value

    @field_validator("limits", mode="before")
    @classmethod
    def _over_default_limits(cls, value: object) -> object:
        return {**DEFAULT_LIMITS, **value} if isinstance(value, dict) else value


class SecretRef(BaseModel):
    """A key of a Secret (``AIRPARADIS_K8S_OPTUNA_STORAGE_SECRET`` and ``..._SECRET_KEY``)."""

    model_config = ConfigDict(extra="forbid")

    secret: str | None = Field(
        default=None, description="Secret holding the Optuna storage URL; unset: none is given."
    )
    secret_key: str = Field(default="url", description="Key of the URL in that Secret.")


class LauncherSettings(BaseSettings):
    """Where and how Jobs run, read from ``AIRPARADIS_K8S_*`` variables."""

    model_config = SettingsConfigDict(
        env_prefix="AIRPARADIS_K8S_",
        extra="ignore",
        # AIRPARADIS_K8S_RESOURCES_LIMITS is `resources.limits`: one split, after the group.
        env_nested_delimiter="_",
        env_nested_max_split=1,
    )

    namespace: str = Field(default="airparadis", description="Namespace of the Jobs.")
    release: str = Field(
        default="airparadis",
        description="Helm release the Jobs belong to (app.kubernetes.io/instance label).",
    )
    image: str = Field(default="airparadis-training:0.1.0", description="Training image reference.")
    image_pull_policy: str = Field(default="IfNotPresent", description="Job image pull policy.")
    service_account: str = Field(
        default="airparadis", description="ServiceAccount the Job's pod runs as."
    )
    mlflow_tracking_uri: str = Field(
        default="http://airparadis-mlflow:5000", description="In-cluster MLflow URL."
    )
    resources: JobResources = Field(
        default_factory=JobResources,
        description="Requests and limits of the Job's container, one variable each.",
    )
    backoff_limit: int = Field(default=2, ge=0, description="Retries of a failed Job pod.")
    ttl_seconds_after_finished: int = Field(
        default=86400, ge=0, description="Finished Jobs are deleted after this many seconds."
    )
    active_deadline_seconds: int = Field(
        default=43200, ge=1, description="A Job running longer is stopped."
    )
    run_as_user: int = Field(default=10001, ge=1, description="Non-root uid of the image.")
    data_claim: str | None = Field(
        default=None,
        description=f"PersistentVolumeClaim with the training data, mounted read-only at "
        f"{DATA_MOUNT_PATH} (the Job's AIRPARADIS_TRAIN_DATA).",
    )
    optuna_storage: SecretRef = Field(
        default_factory=SecretRef,
        description="The Secret holding the Optuna storage URL of tune Jobs (OPTUNA_STORAGE), "
        "one variable each (the chart's tuning.storage).",
    )
    extra_env: dict[str, str] = Field(
        default_factory=dict, description="Extra plain variables, as a JSON object."
    )

    @model_validator(mode="after")
    def _no_retired_variable(self) -> LauncherSettings:
        refuse_retired(RETIRED)
        return self


def _component(command_args: list[str]) -> str:
    if command_args and command_args[0] in COMMANDS_WITH_COMPONENT:
        return command_args[0]
    return "job"


def job_name(release: str, component: str) -> str:
    """A unique, DNS-1123 Job name such as ``airparadis-train-5f3a9c``."""
    base = re.sub(r"[^a-z0-9-]+", "-", f"{release}-{component}".lower()).strip("-")
    return f"{base[:55].rstrip('-')}-{secrets.token_hex(3)}"


def _labels(settings: LauncherSettings, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "airparadis",
        "app.kubernetes.io/instance": settings.release,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "airparadis",
        "app.kubernetes.io/managed-by": "airparadis-launcher",
        # The chart's NetworkPolicy for batch pods selects this label.
        "airparadis.io/workload": "job",
    }


def _env(settings: LauncherSettings, component: str) -> list[client.V1EnvVar]:
    env = [
        client.V1EnvVar(name="MLFLOW_TRACKING_URI", value=settings.mlflow_tracking_uri),
        client.V1EnvVar(name="AIRPARADIS_HOME", value=SCRATCH_HOME),
        client.V1EnvVar(name="HOME", value="/tmp"),  # noqa: S108 - an emptyDir in the pod
        client.V1EnvVar(name="MPLCONFIGDIR", value="/tmp/matplotlib"),  # noqa: S108
    ]
    if settings.data_claim:
        env.append(client.V1EnvVar(name="AIRPARADIS_TRAIN_DATA", value=DATA_MOUNT_PATH))
    storage = settings.optuna_storage
    if component == "tune" and storage.secret:
        env.append(
            client.V1EnvVar(
                name="OPTUNA_STORAGE",
                value_from=client.V1EnvVarSource(
                    secret_key_ref=client.V1SecretKeySelector(
                        name=storage.secret, key=storage.secret_key
                    )
                ),
            )
        )
    env.extend(client.V1EnvVar(name=k, value=v) for k, v in sorted(settings.extra_env.items()))
    return env


def _volumes(
    settings: LauncherSettings,
) -> tuple[list[client.V1Volume], list[client.V1VolumeMount]]:
    volumes = [
        client.V1Volume(name="tmp", empty_dir=client.V1EmptyDirVolumeSource(size_limit="1Gi")),
        client.V1Volume(name="home", empty_dir=client.V1EmptyDirVolumeSource(size_limit="2Gi")),
    ]
    mounts = [
        client.V1VolumeMount(name="tmp", mount_path="/tmp"),  # noqa: S108
        client.V1VolumeMount(name="home", mount_path=SCRATCH_HOME),
    ]
    if settings.data_claim:
        volumes.append(
            client.V1Volume(
                name="data",
                persistent_volume_claim=client.V1PersistentVolumeClaimVolumeSource(
                    claim_name=settings.data_claim, read_only=True
                ),
            )
        )
        mounts.append(client.V1VolumeMount(name="data", mount_path=DATA_MOUNT_PATH, read_only=True))
    return volumes, mounts


def build_job(
    command_args: list[str],
    settings: LauncherSettings,
    *,
    name: str | None = None,
    completions: int | None = None,
    parallelism: int | None = None,
) -> client.V1Job:
    """Describe ``airparadis <command_args>`` as a Job.

    ``completions`` (with optional ``parallelism``) makes an Indexed Job of that many pods,
    e.g. Optuna workers sharing one study.
    """
    if not command_args:
        raise ValueError("command_args must hold at least the subcommand, e.g. ['train']")
    component = _component(command_args)
    labels = _labels(settings, component)
    volumes, mounts = _volumes(settings)
    uid = settings.run_as_user
    container = client.V1Container(
        name=component,
        image=settings.image,
        image_pull_policy=settings.image_pull_policy,
        command=["airparadis"],
        args=list(command_args),
        env=_env(settings, component),
        resources=client.V1ResourceRequirements(
            requests=dict(settings.resources.requests), limits=dict(settings.resources.limits)
        ),
        security_context=client.V1SecurityContext(
            run_as_non_root=True,
            run_as_user=uid,
            run_as_group=uid,
            allow_privilege_escalation=False,
            read_only_root_filesystem=True,
            capabilities=client.V1Capabilities(drop=["ALL"]),
            seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
        ),
        volume_mounts=mounts,
    )
    pod_spec = client.V1PodSpec(
        service_account_name=settings.service_account,
        automount_service_account_token=False,
        restart_policy="Never",
        security_context=client.V1PodSecurityContext(
            run_as_non_root=True,
            run_as_user=uid,
            run_as_group=uid,
            fs_group=uid,
            seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
        ),
        containers=[container],
        volumes=volumes,
    )
    spec = client.V1JobSpec(
        backoff_limit=settings.backoff_limit,
        ttl_seconds_after_finished=settings.ttl_seconds_after_finished,
        active_deadline_seconds=settings.active_deadline_seconds,
        template=client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(labels=labels), spec=pod_spec
        ),
    )
    if completions is not None:
        spec.completion_mode = "Indexed"
        spec.completions = completions
        spec.parallelism = parallelism or completions
    return client.V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=client.V1ObjectMeta(
            name=name or job_name(settings.release, component),
            namespace=settings.namespace,
            labels=labels,
        ),
        spec=spec,
    )


def job_to_dict(job: client.V1Job) -> dict[str, Any]:
    """The Job as the plain JSON-able mapping the API server receives."""
    data: dict[str, Any] = client.ApiClient().sanitize_for_serialization(job)
    return data


def job_to_yaml(job: client.V1Job) -> str:
    """The Job as a YAML manifest, e.g. for ``--dry-run`` or ``kubectl apply -f -``."""
    return str(yaml.safe_dump(job_to_dict(job), sort_keys=False))


def load_kube_config() -> None:
    """In a pod use its ServiceAccount; elsewhere the current kubeconfig context."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()


def submit_job(job: client.V1Job, namespace: str) -> str:
    """Create the Job and return its name."""
    load_kube_config()
    created = client.BatchV1Api().create_namespaced_job(namespace=namespace, body=job)
    if created.metadata is None or not created.metadata.name:
        raise RuntimeError("the API server returned a Job without a name")
    return str(created.metadata.name)
