"""Champion and challenger from the MLflow registry, with the test metrics and the model card
(`model_card.json`, written at registration) of their runs."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airparadis.model_card import CARD_JSON, ModelCard
from airparadis.settings import PlatformSettings

logger = logging.getLogger(__name__)

# Metrics of a run shown beside each version, in this order, when the run logged them.
SHOWN_METRICS = (
    "test_accuracy", "test_macro_f1", "test_recall_negative", "test_roc_auc",
    "test_f1_negative", "test_f1_positive",
)  # fmt: skip


class RegistryUnavailable(RuntimeError):
    """The registry could not be read; the ops page says why and goes on."""


@dataclass(frozen=True)
class AliasedVersion:
    alias: str
    version: str | None
    run_id: str | None = None
    family: str | None = None
    created: datetime | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    card: ModelCard | None = None
    """None for a version registered before model cards, or whose card cannot be read."""


def read_aliases(
    platform: PlatformSettings, aliases: list[str] | None = None
) -> list[AliasedVersion]:
    """One entry per alias (champion, challenger by default); version None where it is unset.

    The embedded SQLite store is only read, never created: a missing file raises
    RegistryUnavailable rather than creating an empty registry beside the dashboard.
    """
    aliases = aliases or [platform.champion_alias, platform.challenger_alias]
    uri = platform.resolved_tracking_uri
    if platform.embedded and not Path(platform.home, "mlflow.db").is_file():
        raise RegistryUnavailable(f"no MLflow store at {Path(platform.home, 'mlflow.db')}")
    try:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException
    except ImportError as exc:  # pragma: no cover - mlflow is a base dependency
        raise RegistryUnavailable("mlflow is not installed") from exc

    client = MlflowClient(tracking_uri=uri, registry_uri=platform.registry_uri or uri)
    out: list[AliasedVersion] = []
    for alias in aliases:
        try:
            version = client.get_model_version_by_alias(platform.model_name, alias)
        except MlflowException as exc:
            if _not_found(exc):
                out.append(AliasedVersion(alias, None))
                continue
            raise RegistryUnavailable(f"MLflow registry: {_short(exc)}") from exc
        except Exception as exc:
            raise RegistryUnavailable(f"MLflow registry: {_short(exc)}") from exc
        metrics: dict[str, float] = {}
        if version.run_id:
            try:
                metrics = dict(client.get_run(version.run_id).data.metrics)
            except Exception as exc:  # noqa: BLE001 - a deleted run still shows its version
                logger.warning("run %s of version %s: %s", version.run_id, version.version, exc)
        out.append(
            AliasedVersion(
                alias=alias,
                version=str(version.version),
                run_id=version.run_id,
                family=_tags(version).get("family"),
                created=_timestamp(version.creation_timestamp),
                metrics=metrics,
                card=read_card(client, version.run_id) if version.run_id else None,
            )
        )
    return out


def read_card(client: Any, run_id: str) -> ModelCard | None:
    """The run's model card; None (logged) when it has none or it cannot be read."""
    import tempfile

    from mlflow.exceptions import MlflowException
    from pydantic import ValidationError

    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, CARD_JSON, tmp)
            return ModelCard.model_validate_json(Path(path).read_text())
        except (MlflowException, OSError, ValidationError) as exc:
            logger.info("run %s has no readable model card: %s", run_id, _short(exc))
            return None


def _tags(version: Any) -> dict[str, str]:
    tags = getattr(version, "tags", None)
    return dict(tags) if isinstance(tags, dict) else {}


def _timestamp(millis: int | None) -> datetime | None:
    return None if millis is None else datetime.fromtimestamp(millis / 1000, UTC)


def _not_found(exc: Exception) -> bool:
    code = str(getattr(exc, "error_code", ""))
    return "RESOURCE_DOES_NOT_EXIST" in code or "not found" in str(exc).lower()


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else exc.__class__.__name__
