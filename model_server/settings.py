"""Settings of the model server, read from ``AIRPARADIS_SERVER_*`` variables."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AIRPARADIS_SERVER_", extra="ignore")

    model_uri: str | None = Field(
        default=None,
        description="MLflow model URI or local bundle path; unset means models:/<name>@champion.",
    )
    served_name: str | None = Field(
        default=None, description="Name in the KServe routes; unset means the registered name."
    )
    host: str = Field(default="127.0.0.1", description="Interface to bind; 0.0.0.0 in a pod.")
    http_port: int = Field(default=8080, ge=1, le=65535)
    feedback_db_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the feedback store; unset means SQLite under the home dir.",
    )
    max_tweet_chars: int = Field(default=1000, ge=1, description="Longest accepted tweet.")
    max_instances: int = Field(default=2000, ge=1, description="Most tweets in one request.")
    alert_threshold: int = Field(
        default=3, ge=1, description="Wrong-prediction feedbacks within the window that alert."
    )
    alert_window_seconds: int = Field(default=300, ge=1, description="Alert window, seconds.")
    applicationinsights_connection_string: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "APPLICATIONINSIGHTS_CONNECTION_STRING",
            "AIRPARADIS_SERVER_APPLICATIONINSIGHTS_CONNECTION_STRING",
        ),
        description="Azure Monitor connection string; unset means no exporter.",
    )
