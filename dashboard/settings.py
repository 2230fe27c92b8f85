"""Settings of the dashboard, read from ``AIRPARADIS_DASHBOARD_*`` variables."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from airparadis.settings import refuse_retired

RETIRED = {
    "AIRPARADIS_DASHBOARD_MODEL_NAME": "the dashboard reads the model's name from the server's "
    "/v1/info; set it once, on the server, as AIRPARADIS_SERVER_SERVED_NAME",
    "AIRPARADIS_DASHBOARD_MAX_TWEET_CHARS": "the dashboard reads the longest tweet from the "
    "server's /v1/info; set it once, on the server, as AIRPARADIS_SERVER_MAX_TWEET_CHARS",
}
"""Variables the dashboard no longer reads, and what replaced them: one still set would be
ignored while its value may differ from the server's, so the dashboard refuses to start."""


class ExplainSettings(BaseModel):
    """Which words of a tweet the user page highlights (``AIRPARADIS_DASHBOARD_EXPLAIN_*``)."""

    model_config = ConfigDict(extra="forbid")

    top_k: int = Field(default=6, ge=1, le=50, description="Most highlighted words per tweet.")
    min_share: float = Field(
        default=0.15,
        ge=0,
        le=1,
        description="A word is highlighted only when its push is at least this share of the "
        "tweet's strongest one.",
    )


class AzureMonitorSettings(BaseModel):
    """Fired alerts read from Azure Monitor, optional (``AIRPARADIS_DASHBOARD_AZURE_MONITOR_*``):
    on when a workspace or a resource is named."""

    model_config = ConfigDict(extra="forbid")

    workspace_id: str | None = Field(
        default=None, description="Log Analytics workspace id to query for fired alerts."
    )
    resource_id: str | None = Field(
        default=None,
        description="Azure resource id (Application Insights) to query instead of a workspace.",
    )
    query: str | None = Field(
        default=None, description="KQL query of the alerts; unset means the default for the target."
    )
    timespan_hours: float = Field(
        default=24.0, gt=0, le=24 * 30, description="How far back the Azure Monitor query looks."
    )

    @property
    def enabled(self) -> bool:
        return bool(self.workspace_id or self.resource_id)


class DashboardSettings(BaseSettings):
    """The model's name and the request limits are not here: the server declares them and the
    dashboard reads them from its ``/v1/info`` (`dashboard.client.ModelServerClient`)."""

    model_config = SettingsConfigDict(
        env_prefix="AIRPARADIS_DASHBOARD_",
        extra="ignore",
        # AIRPARADIS_DASHBOARD_AZURE_MONITOR_WORKSPACE_ID is `azure_monitor.workspace_id`.
        env_nested_delimiter="_",
        env_nested_max_split=1,
    )

    # -- model server ------------------------------------------------------------------------
    server_url: str = Field(
        default="http://127.0.0.1:8080",
        description="Base URL of the model server or of the InferenceService.",
    )
    auth_header: SecretStr | None = Field(
        default=None,
        description="Value of the Authorization header sent to the server, if it needs one.",
    )
    host_header: str | None = Field(
        default=None,
        description="Host header for an InferenceService reached through the ingress gateway's IP.",
    )
    timeout_seconds: float = Field(
        default=10.0, gt=0, description="Timeout of each call to the model server."
    )

    # -- web server --------------------------------------------------------------------------
    host: str = Field(default="127.0.0.1", description="Interface to bind.")
    port: int = Field(default=5006, ge=1, le=65535, description="Port the dashboard listens on.")
    websocket_origins: list[str] = Field(
        default_factory=list,
        description="Extra host[:port] the browser may open the websocket from (behind a proxy).",
    )

    threads: int = Field(
        default=8,
        ge=1,
        le=64,
        description="Worker threads of the calls to the server and the registry (all sessions).",
    )

    # -- user page ---------------------------------------------------------------------------
    max_tweets: int = Field(
        default=50,
        ge=1,
        description="Most tweets classified at once (never more than the server accepts).",
    )
    health_check_seconds: float = Field(
        default=10.0, ge=1, description="How often a page checks the server is ready."
    )
    uncertain_band: float = Field(
        default=0.15,
        ge=0,
        lt=0.5,
        description="A prediction whose P(positive) lies within this distance of the served "
        "threshold is shown as uncertain.",
    )
    explain: ExplainSettings = Field(
        default_factory=ExplainSettings, description="Word highlighting, one variable each."
    )
    airline_words: list[str] = Field(
        default_factory=lambda: ["air", "paradis", "airparadis"],
        description="Cleaned words of the airline's own name, never highlighted.",
    )
    feedback_undo_seconds: float = Field(
        default=10.0,
        ge=0,
        le=120,
        description="How long a feedback can be undone; it is sent when this time has passed "
        "(0 sends at once).",
    )

    # -- ops page ----------------------------------------------------------------------------
    refresh_seconds: float = Field(
        default=15.0, ge=2, description="Period of the ops page refresh."
    )
    feedback_window_seconds: int = Field(
        default=3600, ge=60, le=30 * 86400, description="Default feedback window of the ops page."
    )
    runbook_url: str = Field(
        default="https://github.com/air-paradis/airparadis-sentiment/blob/main/docs/operations.md",
        description="The operations runbook (docs/operations.md) that the ops page's action "
        "lines link to, each at its section; point it at your own copy or wiki.",
    )
    registry_enabled: bool = Field(
        default=True,
        description="Read champion and challenger from MLflow (AIRPARADIS_HOME, MLFLOW_*).",
    )

    # -- Azure Monitor (optional) ------------------------------------------------------------
    azure_monitor: AzureMonitorSettings = Field(
        default_factory=AzureMonitorSettings,
        description="Fired alerts from Azure Monitor, one variable each.",
    )

    # -- authentication (optional): Panel reads PANEL_OAUTH_* itself (see dashboard.auth) -----
    ops_group: str | None = Field(
        default=None,
        description="Group (name or object id) whose members may open the ops page, when "
        "Panel's login is on (PANEL_OAUTH_PROVIDER).",
    )
    groups_claim: str = Field(
        default="groups", description="Claim of the id token that lists the user's groups."
    )

    @model_validator(mode="after")
    def _no_retired_variable(self) -> DashboardSettings:
        refuse_retired(RETIRED)
        return self
