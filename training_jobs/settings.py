"""Settings of the training jobs, read from ``AIRPARADIS_TRAIN_*`` variables.

One class for the whole training component. A family's parameters, and each group of settings
of one stage, are nested models read one variable per field: ``AIRPARADIS_TRAIN_RNN_CELL=lstm``
sets ``rnn.cell`` (declared once in `training_jobs.families.params`),
``AIRPARADIS_TRAIN_GATE_MARGIN`` sets ``gate.margin``. Optuna's settings keep the ``tune_``
prefix as plain fields (its storage is also read as ``OPTUNA_STORAGE``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from airparadis.settings import PlatformSettings
from airparadis.text import Normalisation
from training_jobs.families.params import RnnParams, TransformerParams

OFFICIAL_ARCHIVE_URL = "http://cs.stanford.edu/people/alecmgo/trainingandtestdata.zip"
OFFICIAL_ARCHIVE_MD5 = "1647eb110dd2492512e27b9a70d5d1bc"

GateMetric = Literal["accuracy", "roc_auc"]
DomainMetric = Literal["macro_f1", "balanced_accuracy", "accuracy", "roc_auc"]
Pruner = Literal["median", "hyperband", "none"]


REMEMBERED_FILE = "settings.env"
"""In the platform home: settings a command remembers for the next one (today the data path)."""


def remembered_settings_file() -> Path:
    return PlatformSettings().home / REMEMBERED_FILE


def remember_data(paths: list[Path]) -> None:
    """Keep the training data a command read, so that later commands in the same home find it
    without the variable `make` sets: `airparadis train` after `make up` works the same way."""
    resolved = ",".join(str(path.resolve()) for path in paths)
    file = remembered_settings_file()
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(f"AIRPARADIS_TRAIN_DATA={resolved}\n", encoding="utf-8")
    except OSError as exc:  # the command itself succeeded; only the convenience is lost
        logging.getLogger(__name__).warning("could not remember the data path in %s: %s", file, exc)


def _split_paths(value: object) -> object:
    if isinstance(value, str):
        return [Path(p.strip()) for p in value.split(",") if p.strip()]
    return value


class SettingsGroup(BaseModel):
    """A group of settings read one variable per field (``AIRPARADIS_TRAIN_<GROUP>_<FIELD>``);
    an unknown field is refused, so a misspelt variable is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid")


class DownloadSettings(SettingsGroup):
    """What `airparadis data download` fetches (``AIRPARADIS_TRAIN_DOWNLOAD_*``)."""

    url: str = Field(default=OFFICIAL_ARCHIVE_URL, description="Archive `data download` fetches.")
    md5: str = Field(
        default=OFFICIAL_ARCHIVE_MD5,
        description="Expected MD5 of that archive; empty skips the check.",
    )


class GateSettings(SettingsGroup):
    """The registry gate: when a new model may take the champion alias
    (``AIRPARADIS_TRAIN_GATE_*``)."""

    metric: GateMetric = Field(default="accuracy", description="Score the gate compares.")
    margin: float = Field(
        default=0.001, ge=0, description="A new model must beat the champion by more than this."
    )
    data: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated fixed gate evaluation files; empty means the test split "
        "of `data`.",
    )
    domain_metric: DomainMetric = Field(
        default="macro_f1", description="In-domain score the gate compares on held-out feedback."
    )
    domain_margin: float = Field(
        default=0.0, ge=0, description="A new model must gain more than this in-domain."
    )
    generic_max_drop: float = Field(
        default=0.005,
        ge=0,
        description="Largest loss of the generic gate metric (at the generic prior) a domain gain "
        "may cost.",
    )
    generic_served_max_drop: float = Field(
        default=0.01,
        ge=0,
        description="Largest loss of served (calibrated) generic ROC-AUC a domain gain may cost.",
    )

    @field_validator("data", mode="before")
    @classmethod
    def _paths(cls, value: object) -> object:
        return _split_paths(value)


class FeedbackWeighting(SettingsGroup):
    """How much feedback examples count in retraining (``AIRPARADIS_TRAIN_FEEDBACK_*``)."""

    weight: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Weight of each feedback example in training; unset chooses one from "
        "`weight_grid` on held-out feedback.",
    )
    weight_grid: Annotated[list[float], NoDecode] = Field(
        default=[10.0, 30.0, 100.0],
        description="Comma-separated candidate weights of feedback examples.",
    )
    cap: int | None = Field(
        default=None, ge=1, description="Most recent feedback examples kept; unset keeps all."
    )

    @field_validator("weight_grid", mode="before")
    @classmethod
    def _weights(cls, value: object) -> object:
        if isinstance(value, str):
            return [float(v) for v in value.split(",") if v.strip()]
        return value


class ReplaySettings(SettingsGroup):
    """Where `airparadis feedback replay` posts (``AIRPARADIS_TRAIN_REPLAY_*``)."""

    server_url: str = Field(
        default="http://127.0.0.1:8080", description="Model server the replay posts to."
    )
    api_key: SecretStr | None = Field(
        default=None, description="API key sent as X-API-Key when the server requires one."
    )


class TrainingSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AIRPARADIS_TRAIN_",
        extra="ignore",
        populate_by_name=True,
        # AIRPARADIS_TRAIN_RNN_EMBEDDING_DIM is `rnn.embedding_dim`: one split, after the family.
        env_nested_delimiter="_",
        env_nested_max_split=1,
    )

    data: Annotated[list[Path], NoDecode] = Field(
        default=[Path("data/sentiment140")],
        description="Comma-separated CSV/Parquet files or folders holding them.",
    )
    test_size: float = Field(default=0.1, gt=0, lt=0.5, description="Share held out for test.")
    val_size: float = Field(default=0.1, gt=0, lt=0.5, description="Share held out for validation.")
    seed: int = Field(default=42, description="Seed of the split and of every model.")
    max_rows: int | None = Field(
        default=None, ge=10, description="Stratified sample of the data, for quick runs."
    )
    eval_data: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Extra evaluation files (e.g. the hand-labelled near-domain Parquet), "
        "scored after training and logged as eval_* metrics; never trained on.",
    )
    download: DownloadSettings = Field(
        default_factory=DownloadSettings, description="The archive `data download` fetches."
    )

    normalisation: Normalisation | None = Field(
        default=None,
        description="Token normalisation after cleaning for tfidf_lr and rnn: none, stem "
        "(Snowball English) or lemma (simplemma English); stored in the bundle; unset keeps "
        "each family's own (none). The transformer ignores it (its tokenizer owns word pieces).",
    )

    # Family parameters: AIRPARADIS_TRAIN_RNN_<PARAM>, AIRPARADIS_TRAIN_TRANSFORMER_<PARAM>.
    rnn: RnnParams = Field(
        default_factory=RnnParams,
        description="Parameters of the recurrent family (Keras -> TFLite), one variable each.",
    )
    transformer: TransformerParams = Field(
        default_factory=TransformerParams,
        description="Parameters of the MiniLM family (-> ONNX), one variable each.",
    )

    gate: GateSettings = Field(
        default_factory=GateSettings, description="The registry gate, one variable each."
    )

    # Retraining and calibration from feedback.
    feedback: FeedbackWeighting = Field(
        default_factory=FeedbackWeighting,
        description="Weight of feedback examples in retraining, one variable each.",
    )
    calibration_min_labels: int = Field(
        default=50,
        ge=2,
        description="Fewer labelled feedbacks than this for fitting: calibration changes nothing.",
    )
    head_embeddings: bool = Field(
        default=True,
        description="The domain head may read MiniLM sentence embeddings (ONNX, carried in the "
        "bundle); cross-validation on feedback decides whether it does.",
    )
    head_generic_rows: int = Field(
        default=1000,
        ge=0,
        description="Generic training-split tweets fitted beside the feedback in the domain "
        "head, so it keeps generic tweets ranked (two per feedback when that is more); 0 fits "
        "on feedback alone.",
    )
    head_direction_rows: int = Field(
        default=5000,
        ge=0,
        description="Generic training-split tweets whose embeddings fit the head's generic "
        "sentiment direction (embedded once, then cached beside the encoder); 0 fits it on the "
        "head's generic sample alone.",
    )
    head_encoder_tuning_min_labels: int | None = Field(
        default=None,
        ge=2,
        description="From this many labelled feedbacks on, `calibrate` and `retrain` fine-tune "
        "the head's MiniLM encoder on them (minutes on a CPU) and the bundle carries the tuned "
        "encoder; unset: the shipped encoder is never changed.",
    )
    head_encoder_tuning_epochs: int = Field(
        default=3, ge=1, description="Epochs of the head encoder's fine-tuning."
    )
    retrain_refit_generic: bool = Field(
        default=False,
        description="`retrain` refits the generic model even when the champion's domain head "
        "(fitted on feedback alone) wins cross-validation; unset, the head is registered alone.",
    )

    # Optuna.
    tune_storage: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OPTUNA_STORAGE", "AIRPARADIS_TRAIN_TUNE_STORAGE"),
        description="Study storage URL; unset means SQLite under the platform home.",
    )
    tune_study: str | None = Field(
        default=None, description="Study name; unset means airparadis-<family>."
    )
    tune_pruner: Pruner = Field(default="median", description="Pruner of unpromising trials.")
    tune_timeout: float | None = Field(default=None, gt=0, description="Seconds per worker.")

    replay: ReplaySettings = Field(
        default_factory=ReplaySettings,
        description="Where `airparadis feedback replay` posts, one variable each.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment, then what an earlier command remembered in the home."""
        remembered = DotEnvSettingsSource(settings_cls, env_file=remembered_settings_file())
        return init_settings, env_settings, remembered, file_secret_settings

    @field_validator("data", "eval_data", mode="before")
    @classmethod
    def _paths(cls, value: object) -> object:
        return _split_paths(value)
