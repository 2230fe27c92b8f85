"""The JSON the model server answers, as pydantic models shared by the server and its clients.

They live in the core so that the server (which declares them as response models, and so
describes them in its OpenAPI schema), `airparadis.client` and the dashboard read one
definition. A value the server cannot compute yet (a PSI before the window fills, NaN in a
metric) is null in JSON and None here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Label = Literal["negative", "positive"]


class _Answer(BaseModel):
    # A newer server may add fields: an older client keeps working and ignores them.
    # A model version may come as a number from an older server.
    model_config = ConfigDict(extra="ignore", protected_namespaces=(), coerce_numbers_to_str=True)


class Prediction(_Answer):
    """One tweet's prediction in a v1 `:predict` answer."""

    label: Label
    probability: float = Field(description="P(positive), calibrated when the model is.")
    model_version: str | None = Field(default=None, description="Registry version served.")


class PredictAnswer(_Answer):
    predictions: list[Prediction]


class FeedbackReceipt(_Answer):
    """What `POST /v1/feedback` answers once the verdict is stored."""

    id: str = Field(description="The stored record's id.")
    feedback_id: str | None = Field(default=None, description="The client's id, if it gave one.")
    created_at: str
    duplicate: bool = Field(description="True when this feedback_id was already stored.")
    alert: dict[str, Any] | None = Field(default=None, description="The alert it fired, if any.")


class Limits(_Answer):
    """What one request may hold, as the server enforces it (a 4xx beyond): declared once, in
    the server's settings, and read from here by its clients (the dashboard checks a tweet's
    length before sending it)."""

    max_tweet_chars: int = Field(description="Longest tweet accepted, in characters.")
    max_instances: int = Field(description="Most tweets in one predict request.")
    max_explain_instances: int = Field(description="Most tweets in one `:explain` request.")


class ModelInfo(_Answer):
    """`GET /v1/info`: which model is served, under which name, and what a request may hold."""

    name: str = Field(description="Name in the KServe routes.")
    ready: bool
    model_uri: str
    registered_name: str | None = None
    version: str | None = Field(default=None, description="Registry version; None for a path.")
    aliases: list[str] = Field(default_factory=list)
    family: str | None = None
    format: str | None = None
    metrics: dict[str, float | None] = Field(
        default_factory=dict, description="Test metrics recorded at training."
    )
    threshold: float | None = Field(default=None, description="P(positive) from which positive.")
    calibration: dict[str, Any] | None = Field(
        default=None, description="Learned from feedback; None when uncalibrated."
    )
    training_prior: float | None = Field(
        default=None, description="Positive share the model's probabilities assume."
    )
    error: str | None = Field(default=None, description="Why the model is not loaded.")
    started_at: datetime | None = Field(
        default=None,
        description="When the server process started (UTC): its counters count from then.",
    )
    limits: Limits | None = Field(
        default=None, description="The server's request limits; None from an older server."
    )


class InputStatsOut(_Answer):
    """Statistics of a set of tweets (the live window, or the training reference)."""

    count: int
    mean_tokens: float | None = None
    oov_share: float | None = None
    positive_share: float | None = None
    length_shares: list[float | None]
    proba_shares: list[float | None]


class LabelShift(_Answer):
    """The positive share: assumed by the model, and estimated on live traffic by EM."""

    training_prior: float | None = None
    estimated_prior: float | None = Field(
        default=None, description="None until the window holds min_tweets."
    )
    tweets: int = 0
    iterations: int | None = None
    converged: bool | None = None


class DriftSummary(_Answer):
    """`GET /v1/drift`: live inputs against the served model's training reference.

    Without a reference (`tracked` false) only `reason` says more; PSIs are None until the
    window holds `min_tweets`.
    """

    tracked: bool
    window: int
    min_tweets: int
    psi_threshold: float
    label_shift: LabelShift | None = None
    reason: str | None = None
    enough_tweets: bool = False
    drifting: bool = False
    psi_probability: float | None = None
    psi_length: float | None = None
    live: InputStatsOut | None = None
    reference: InputStatsOut | None = None
    proba_edges: list[float] = Field(default_factory=list)
    length_edges: list[float] = Field(default_factory=list)


class AlertRecord(_Answer):
    """One alert fired by a feedback rule."""

    id: int
    fired_at: datetime
    rule: str
    count: int
    threshold: int = Field(
        description="Count for the negative-feedback rule; percent for the rate."
    )
    window_seconds: int
    model_version: str | None = None
    client_id: str | None = Field(default=None, description="The client whose verdict fired it.")
    verdicts: int | None = Field(
        default=None,
        description="Verdicts in the window when it fired; None for alerts recorded before.",
    )
    clients: list[str] = Field(
        default_factory=list,
        description="The distinct clients that sent wrong verdicts in the window, latest first.",
    )

    @field_validator("fired_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        """Alerts are stored in UTC; SQLite gives the time back without its zone."""
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class MispredictionRule(_Answer):
    """The rate rule: the wrong-prediction rate that alerts, over its window."""

    threshold: float = Field(description="Wrong-prediction rate (0 to 1) that alerts.")
    window_seconds: int
    min_feedback: int
    min_distinct_clients: int = Field(
        default=1, description="Distinct clients with a wrong verdict needed to alert."
    )


class AlertsAnswer(_Answer):
    """`GET /v1/alerts`: the rules and the alerts they fired, newest first."""

    threshold: int = Field(description="Wrong verdicts within the window that alert.")
    window_seconds: int
    min_distinct_clients: int = Field(
        default=1, description="Distinct clients with a wrong verdict needed to alert."
    )
    misprediction: MispredictionRule
    alerts: list[AlertRecord]
