"""MLflow wiring shared by training, serving and the dashboard.

The embedded mode keeps a SQLite store and an artifact folder under the platform home; setting
``MLFLOW_TRACKING_URI`` points every component at a tracking server instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from airparadis.settings import PlatformSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelRef:
    """Which registered model version a bundle came from (absent for a local path)."""

    name: str
    version: str
    run_id: str | None
    aliases: tuple[str, ...]
    tags: dict[str, str]

    @property
    def version_uri(self) -> str:
        """``models:/name/N``: this exact version, whatever an alias points at meanwhile."""
        return f"models:/{self.name}/{self.version}"


DATA_REPORT_STAGE = "data-report"
"""The ``stage`` tag of the run `airparadis data report` logs; the dashboard finds it by it."""


def connect(settings: PlatformSettings) -> str:
    """Point MLflow's tracking and registry clients at the configured store."""
    import mlflow

    uri = settings.resolved_tracking_uri
    if settings.embedded:
        settings.home.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(settings.registry_uri or uri)
    return uri


def ensure_experiment(settings: PlatformSettings, name: str) -> str:
    """The id of experiment `name`, created if needed; in the embedded mode its artifacts go
    under the home (MLflow's own default would be ./mlruns in whatever the current folder is)."""
    import mlflow

    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = settings.artifact_root.as_uri() if settings.embedded else None
    return str(mlflow.create_experiment(name, artifact_location=location))


def configure_tracking(settings: PlatformSettings) -> str:
    """Connect, and make sure the experiment that runs log into exists."""
    import mlflow

    uri = connect(settings)
    ensure_experiment(settings, settings.experiment)
    mlflow.set_experiment(settings.experiment)
    return uri


def parse_alias_uri(uri: str) -> tuple[str, str] | None:
    """``models:/name@alias`` as (name, alias); None for any other URI."""
    if not uri.startswith("models:/") or "@" not in uri:
        return None
    name, alias = uri.removeprefix("models:/").split("@", 1)
    return name, alias


def resolve_model(uri: str) -> ModelRef | None:
    """Describe the registered version behind a ``models:/`` URI, or None for other URIs."""
    from mlflow import MlflowClient

    client = MlflowClient()
    alias_ref = parse_alias_uri(uri)
    if alias_ref is not None:
        version = client.get_model_version_by_alias(*alias_ref)
    elif uri.startswith("models:/"):
        name, number = uri.removeprefix("models:/").split("/", 1)
        version = client.get_model_version(name, number)
    else:
        return None
    return ModelRef(
        name=version.name,
        version=str(version.version),
        run_id=version.run_id,
        aliases=tuple(version.aliases),
        tags=dict(version.tags),
    )


def needs_registry(uri: str) -> bool:
    """Whether loading `uri` goes through MLflow (anything but a local folder)."""
    return "://" in uri or uri.startswith("models:/")


def download_model(uri: str, dest: Path | None = None) -> Path:
    """Local folder holding the model at `uri`: a path as is, anything else downloaded.

    An alias is resolved again here: a caller that has resolved it already (to label what it
    serves) downloads `ModelRef.version_uri` instead, so a promotion in between cannot swap
    the files under the label.
    """
    local = Path(uri)
    if not needs_registry(uri):
        if not local.exists():
            raise FileNotFoundError(f"model path {uri} does not exist")
        return local
    import mlflow

    if dest is not None:
        dest.mkdir(parents=True, exist_ok=True)
    path = mlflow.artifacts.download_artifacts(
        artifact_uri=uri, dst_path=str(dest) if dest else None
    )
    return Path(path)
