"""What a model bundle is on disk, and the registry its formats register loaders into.

A bundle is ``bundle.json`` (what the model is and how to run it) plus the files of its
format. Every family exposes the same `SentimentClassifier` interface over raw tweets, and
cleaning always goes through `airparadis.text`, so training and serving cannot drift apart.

The formats (`airparadis.formats`) and the calibration build on this module and never on
`airparadis.bundle`, which loads a bundle through them: the dependencies form no circle.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from airparadis import DEFAULT_THRESHOLD, LABELS
from airparadis.text import CLEANING_VERSION, NORMALISATIONS

BUNDLE_FILE = "bundle.json"


class BundleError(RuntimeError):
    """The bundle is missing, corrupt, or was written for another cleaning version."""


@dataclass
class BundleInfo:
    family: str
    format: str
    cleaning_version: int = CLEANING_VERSION
    normalisation: str = "none"
    """Token normalisation after cleaning (`airparadis.text.NORMALISATIONS`), chosen at
    training and applied by serving; bundles written before it existed load as none."""
    labels: list[str] = field(default_factory=lambda: list(LABELS))
    threshold: float = DEFAULT_THRESHOLD
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    """Learned from feedback (`airparadis.calibration`); `threshold` is then the calibrated
    threshold, and `load_bundle` serves calibrated probabilities."""


class SentimentClassifier(Protocol):
    info: BundleInfo

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """P(positive) for each raw tweet, as float64."""
        ...


def tweet_scorer(classifier: SentimentClassifier) -> Callable[[str], float] | None:
    """P(positive) of one raw tweet without numpy, where the format offers it (compiled
    TF-IDF + LR): single-tweet serving then skips an array round trip per request."""
    scorer: Callable[[str], float] | None = getattr(classifier, "score_tweet", None)
    return scorer


Loader = Callable[[Path, BundleInfo], SentimentClassifier]
_LOADERS: dict[str, Loader] = {}


def register_format(name: str) -> Callable[[Loader], Loader]:
    """Formats register a loader; the loader imports its runtime lazily, keeping serving slim."""

    def decorate(loader: Loader) -> Loader:
        _LOADERS[name] = loader
        return loader

    return decorate


def write_info(directory: Path, info: BundleInfo) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / BUNDLE_FILE).write_text(json.dumps(asdict(info), indent=2, sort_keys=True))


def read_info(directory: Path) -> BundleInfo:
    path = directory / BUNDLE_FILE
    try:
        raw = json.loads(path.read_text())
        info = BundleInfo(**raw)
    except FileNotFoundError as exc:
        raise BundleError(f"{directory} is not a model bundle: {BUNDLE_FILE} is missing") from exc
    except (json.JSONDecodeError, TypeError) as exc:
        raise BundleError(f"{path} is corrupt: {exc}") from exc
    if info.cleaning_version != CLEANING_VERSION:
        raise BundleError(
            f"{directory} was trained with cleaning v{info.cleaning_version}, "
            f"this code cleans with v{CLEANING_VERSION}; retrain the model"
        )
    if info.normalisation not in NORMALISATIONS:
        raise BundleError(
            f"{directory} asks for token normalisation {info.normalisation!r}, which this code "
            f"does not know (it knows {', '.join(NORMALISATIONS)})"
        )
    return info


def find_bundle(root: Path) -> Path:
    """The bundle folder at or below `root` (MLflow nests it under artifacts/)."""
    if (root / BUNDLE_FILE).is_file():
        return root
    matches = sorted(root.rglob(BUNDLE_FILE))
    if not matches:
        raise BundleError(f"no {BUNDLE_FILE} under {root}")
    return matches[0].parent


def loader_of(name: str) -> Loader | None:
    """The loader registered for format `name`, if any."""
    return _LOADERS.get(name)
