"""Settings every component shares: where state lives and how to reach the model registry."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PlatformSettings(BaseSettings):
    """From ``AIRPARADIS_*`` variables; ``MLFLOW_TRACKING_URI`` overrides the embedded store."""

    model_config = SettingsConfigDict(env_prefix="AIRPARADIS_", extra="ignore")

    home: Path = Field(
        default=Path(".airparadis"),
        description="State directory of the embedded mode: MLflow store, feedback, caches.",
    )
    tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "AIRPARADIS_TRACKING_URI"),
        description="MLflow tracking URI; unset means SQLite under `home`.",
    )
    registry_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MLFLOW_REGISTRY_URI", "AIRPARADIS_REGISTRY_URI"),
        description="MLflow registry URI; unset means the tracking URI.",
    )
    experiment: str = Field(default="air-paradis-sentiment", description="MLflow experiment.")
    model_name: str = Field(
        default="air-paradis-sentiment", description="Registered model name in MLflow."
    )
    champion_alias: str = Field(default="champion", description="Alias of the served model.")
    challenger_alias: str = Field(default="challenger", description="Alias of a runner-up.")
    feedback_db_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "AIRPARADIS_SERVER_FEEDBACK_DB_URL", "AIRPARADIS_FEEDBACK_DB_URL"
        ),
        description="SQLAlchemy URL of the feedback store the server writes and retraining "
        "reads; unset means SQLite under `home`.",
    )
    cache_dir: Path | None = Field(
        default=None,
        description="Caches kept between runs, such as the exported sentence encoder of the "
        "domain head; unset means ~/.cache/airparadis.",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="Logs of every component: text for a terminal, or one JSON object a line "
        "(time, level, logger, message, request id, trace id) for a log collector.",
    )

    @property
    def embedded_tracking_uri(self) -> str:
        return f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    @property
    def feedback_url(self) -> str:
        """The feedback store: `feedback_db_url`, else SQLite under `home` (created)."""
        if self.feedback_db_url:
            return self.feedback_db_url
        from airparadis.feedback_export import default_sqlite_url

        return default_sqlite_url(self.home)

    @property
    def resolved_tracking_uri(self) -> str:
        return self.tracking_uri or self.embedded_tracking_uri

    @property
    def embedded(self) -> bool:
        """The store under the home. MLflow exports the URI it is given as
        MLFLOW_TRACKING_URI, so a later read of the environment finds that same URI."""
        return self.resolved_tracking_uri == self.embedded_tracking_uri

    @property
    def artifact_root(self) -> Path:
        """Artifact directory used only by the embedded SQLite store."""
        return (self.home / "mlartifacts").resolve()

    @property
    def champion_uri(self) -> str:
        return f"models:/{self.model_name}@{self.champion_alias}"
