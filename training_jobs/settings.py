"""Settings of the training jobs, read from ``AIRPARADIS_TRAIN_*`` variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

OFFICIAL_ARCHIVE_URL = "http://cs.stanford.edu/people/alecmgo/trainingandtestdata.zip"
OFFICIAL_ARCHIVE_MD5 = "1647eb110dd2492512e27b9a70d5d1bc"


class TrainingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AIRPARADIS_TRAIN_", extra="ignore")

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
    download_url: str = Field(default=OFFICIAL_ARCHIVE_URL)
    download_md5: str = Field(default=OFFICIAL_ARCHIVE_MD5)

    @field_validator("data", mode="before")
    @classmethod
    def _split_paths(cls, value: object) -> object:
        if isinstance(value, str):
            return [Path(p.strip()) for p in value.split(",") if p.strip()]
        return value
