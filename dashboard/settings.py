"""Settings of the dashboard, read from ``AIRPARADIS_DASHBOARD_*`` variables."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class DashboardSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AIRPARADIS_DASHBOARD_", extra="ignore")

    server_url: str = Field(
        default="http://127.0.0.1:8080",
        description="Base URL of the model server or of the InferenceService.",
    )
    model_name: str = Field(
        default="air-paradis-sentiment", description="Model name in the KServe routes."
    )
    auth_header: SecretStr | None = Field(
        default=None,
        description="Value of the Authorization header sent to the server, if it needs one.",
    )
    timeout_seconds: float = Field(default=10.0, gt=0)
    host: str = Field(default="127.0.0.1", description="Interface to bind.")
    port: int = Field(default=5006, ge=1, le=65535)
    max_tweet_chars: int = Field(default=1000, ge=1)
