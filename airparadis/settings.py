"""Settings every component shares: where state lives and how to reach the model registry."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict


def refuse_retired(retired: Mapping[str, str], environ: Mapping[str, str] | None = None) -> None:
    """Refuse a variable a component no longer reads, naming what replaced it.

    `retired` maps each old variable to its replacement. Once a setting is gone, pydantic would
    ignore its variable without a word, so a deployment that still sets it would run with
    another value than the one it asks for; a settings class calls this in a validator, so
    the command stops with a usage error (exit 2) instead.
    """
    env = os.environ if environ is None else environ
    found = [f"{name} is no longer read: {retired[name]}" for name in retired if env.get(name)]
    if found:
        raise ValueError("; ".join(found))


def nested_model(field: FieldInfo) -> type[BaseModel] | None:
    """The model of a nested field (a family's parameters, a group), read one variable per
    field; None for a plain field."""
    annotation = field.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def field_variables(cls: type[BaseSettings], name: str, field: FieldInfo) -> list[str]:
    """The environment variables a top-level field reads, as pydantic-settings resolves them."""
    alias = field.validation_alias
    if alias is not None:
        return [str(choice) for choice in getattr(alias, "choices", [alias])]
    return [(str(cls.model_config.get("env_prefix", "")) + name).upper()]


def settings_fields(cls: type[BaseSettings]) -> list[tuple[list[str], FieldInfo]]:
    """(variables, field) for every setting, a nested model's fields one by one: with
    ``env_nested_delimiter="_"`` and one split, `rnn.cell` reads ``<PREFIX>RNN_CELL``."""
    rows: list[tuple[list[str], FieldInfo]] = []
    for name, field in cls.model_fields.items():
        nested = nested_model(field)
        if nested is None:
            rows.append((field_variables(cls, name, field), field))
            continue
        delimiter = str(cls.model_config.get("env_nested_delimiter") or "")
        if not delimiter:
            raise TypeError(f"{cls.__name__}.{name} is a nested model without a delimiter")
        for variable in field_variables(cls, name, field):
            rows += [
                ([f"{variable}{delimiter}{sub}".upper()], sub_field)
                for sub, sub_field in nested.model_fields.items()
            ]
    return rows


def variable_of(cls: type[BaseSettings], loc: Sequence[str | int]) -> str | None:
    """The environment variable that sets the field at `loc` of `cls`: ``("rnn", "cell")`` of
    TrainingSettings is ``AIRPARADIS_TRAIN_RNN_CELL``, a whole group (``("drift",)``) is
    ``AIRPARADIS_SERVER_DRIFT_*``; None when `loc` names no field."""
    names = [part for part in loc if isinstance(part, str)]
    field = cls.model_fields.get(names[0]) if names else None
    if field is None:
        return None
    variable = field_variables(cls, names[0], field)[0]
    if nested_model(field) is not None:
        delimiter = str(cls.model_config.get("env_nested_delimiter") or "_")
        variable += delimiter + (names[1].upper() if len(names) > 1 else "*")
    return variable


def _loaded_settings_class(title: str) -> type[BaseSettings] | None:
    """The settings class named `title`; the one that raised is necessarily loaded."""
    classes = list(BaseSettings.__subclasses__())
    while classes:
        cls = classes.pop()
        if cls.__name__ == title:
            return cls
        classes.extend(cls.__subclasses__())
    return None


def settings_problems(exc: ValidationError) -> str:
    """What a settings class refused in its environment, each problem named by the variable
    that sets it (``AIRPARADIS_TRAIN_RNN_CELL (rnn.cell): Input should be ...``), for the
    CLI's usage error: an operator sets variables, not fields."""
    cls = _loaded_settings_class(exc.title)
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        variable = variable_of(cls, error["loc"]) if cls else None
        where = f"{variable} ({field})" if variable else field or exc.title
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)


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
