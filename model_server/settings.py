"""Settings of the model server, read from ``AIRPARADIS_SERVER_*`` variables."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

RouteName = Literal[
    "predict", "info", "openapi", "feedback", "recent_feedback", "alerts", "drift", "metrics"
]


class AlertSettings(BaseModel):
    """The rule that alerts on wrong-prediction feedbacks (``AIRPARADIS_SERVER_ALERT_*``); the
    chart's `alerting` values and the Azure Monitor rule use the same numbers."""

    model_config = ConfigDict(extra="forbid")

    threshold: int = Field(
        default=3, ge=1, description="Wrong-prediction feedbacks within the window that alert."
    )
    window_seconds: int = Field(default=300, ge=1, description="Alert window, seconds.")
    min_distinct_clients: int = Field(
        default=2,
        ge=1,
        description="Distinct clients that must have sent a wrong verdict within a rule's "
        "window for either wrong-prediction rule to alert, so that one user cannot page ops "
        "alone; 1 counts verdicts whoever sent them.",
    )
    sync_seconds: float = Field(
        default=5.0,
        gt=0,
        le=120,
        description="How often the rolling feedback counts take in other replicas' feedback "
        "from the shared store.",
    )


class MispredictionSettings(BaseModel):
    """The rule that alerts on the rolling wrong-prediction rate
    (``AIRPARADIS_SERVER_MISPREDICTION_*``)."""

    model_config = ConfigDict(extra="forbid")

    window_seconds: int = Field(
        default=3600, ge=1, description="Window of the rolling wrong-prediction rate."
    )
    threshold: float = Field(
        default=0.3, gt=0, le=1, description="Wrong-prediction rate that raises an alert."
    )
    min_feedback: int = Field(
        default=20, ge=1, description="Verdicts needed in the window before the rate counts."
    )


class DriftSettings(BaseModel):
    """Live inputs against the training reference (``AIRPARADIS_SERVER_DRIFT_*``)."""

    model_config = ConfigDict(extra="forbid")

    window: int = Field(
        default=2000, ge=10, description="Latest live tweets compared with the drift reference."
    )
    min_tweets: int = Field(
        default=200, ge=1, description="Tweets in the window before PSI is reported."
    )
    psi_threshold: float = Field(
        default=0.25, gt=0, description="PSI above which /v1/drift reports drifting."
    )

    @model_validator(mode="after")
    def _window_holds_enough(self) -> DriftSettings:
        if self.min_tweets > self.window:
            raise ValueError(
                f"AIRPARADIS_SERVER_DRIFT_MIN_TWEETS ({self.min_tweets}) exceeds "
                f"AIRPARADIS_SERVER_DRIFT_WINDOW ({self.window}): PSI would never be reported"
            )
        return self


class ServerSettings(BaseSettings):
    """The model's name in the routes (`served_name`) and the request limits are declared here
    only: clients (the dashboard) read them from ``/v1/info``."""

    model_config = SettingsConfigDict(
        env_prefix="AIRPARADIS_SERVER_",
        extra="ignore",
        # AIRPARADIS_SERVER_ALERT_WINDOW_SECONDS is `alert.window_seconds`: one split, after
        # the group.
        env_nested_delimiter="_",
        env_nested_max_split=1,
    )

    model_uri: str | None = Field(
        default=None,
        description="MLflow model URI or local bundle path; unset means models:/<name>@champion.",
    )
    served_name: str | None = Field(
        default=None, description="Name in the KServe routes; unset means the registered name."
    )
    reload_interval_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How often to check the served alias for a new version; 0 turns it off.",
    )
    host: str = Field(default="127.0.0.1", description="Interface to bind; 0.0.0.0 in a pod.")
    http_port: int = Field(default=8080, ge=1, le=65535, description="Port of the HTTP (REST) API.")
    grpc_port: int = Field(
        default=8081,
        ge=0,
        le=65535,
        description="Port of the v2 Open Inference Protocol over gRPC; 0 turns gRPC off.",
    )
    feedback_db_pool_size: int = Field(
        default=10,
        ge=1,
        le=100,
        description="Connections to the feedback store kept open by each replica (no overflow: "
        "a feedback beyond them waits, and after 10 s is a 503). Replicas times this must fit "
        "the database's connection limit.",
    )
    max_tweet_chars: int = Field(default=1000, ge=1, description="Longest accepted tweet.")
    max_instances: int = Field(default=2000, ge=1, description="Most tweets in one request.")
    max_body_bytes: int = Field(
        default=2_000_000, ge=1024, description="Largest accepted request body (413 beyond)."
    )
    max_pending_tweets: int = Field(
        default=20_000,
        ge=1,
        description="Tweets admitted and waiting for the model; beyond it, 503 with Retry-After.",
    )
    max_in_flight_requests: int = Field(
        default=256, ge=1, description="Predict requests in progress; beyond it, 503 at once."
    )
    inline_budget_us: float = Field(
        default=300.0,
        ge=0,
        description="Run a request on the event loop when its estimated model time is below "
        "this; anything longer goes to a worker thread (or the micro-batcher).",
    )
    batching: bool = Field(default=True, description="Combine concurrent requests.")
    max_batch_size: int = Field(default=64, ge=1, description="Most tweets in one model call.")
    max_batch_wait_ms: float = Field(
        default=2.0, ge=0, description="Longest a request waits for others to join its batch."
    )
    request_logging: bool = Field(
        default=False,
        description="Log a line per request (uvicorn's access log, kserve's timing trace); "
        "off by default: under load it costs as much as the model, and /metrics has the same.",
    )
    api_docs: bool = Field(
        default=True,
        description="Serve the API page: Swagger UI at /docs and ReDoc at /redoc (the chart's "
        "production profiles turn it off); /openapi.json stays.",
    )
    alert: AlertSettings = Field(
        default_factory=AlertSettings,
        description="The wrong-feedback count rule, one variable each.",
    )
    misprediction: MispredictionSettings = Field(
        default_factory=MispredictionSettings,
        description="The wrong-prediction rate rule, one variable each.",
    )
    drift: DriftSettings = Field(
        default_factory=DriftSettings, description="Input drift, one variable each."
    )
    auth_required: bool = Field(
        default=False, description="Feedback needs an API key or a bearer token (chart: on)."
    )
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default=[], description="Comma-separated API keys accepted in X-API-Key."
    )
    jwks_url: str | None = Field(default=None, description="JWKS of the token issuer.")
    jwt_issuer: str | None = Field(default=None, description="Required `iss` of bearer tokens.")
    jwt_audience: str | None = Field(default=None, description="Required `aud` of tokens.")
    feedback_per_minute: int = Field(
        default=120, ge=1, description="Feedbacks one client may post per minute (429 beyond)."
    )
    open_routes: Annotated[list[RouteName], NoDecode] = Field(
        default=["predict", "info", "openapi"],
        description="Comma-separated routes that stay open when auth_required is on; the "
        "others (of feedback, recent_feedback, alerts, drift, metrics) need a key or token. "
        "Health probes are always open.",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="Comma-separated addresses (or CIDRs) of the proxies whose X-Forwarded-For "
        "names the client (the ingress); empty means the peer address is the client.",
    )
    applicationinsights_connection_string: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "APPLICATIONINSIGHTS_CONNECTION_STRING",
            "AIRPARADIS_SERVER_APPLICATIONINSIGHTS_CONNECTION_STRING",
        ),
        description="Azure Monitor connection string; unset means no exporter.",
    )

    @field_validator("api_keys", "open_routes", "trusted_proxies", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @model_validator(mode="after")
    def _ports_differ(self) -> ServerSettings:
        if self.grpc_port == self.http_port:
            raise ValueError(f"grpc_port and http_port are both {self.http_port}")
        return self
