"""The model bundle: one folder that training writes and serving, scoring and MLflow load.

`airparadis.bundle_format` says what a bundle is (``bundle.json``, `BundleInfo`, the
`SentimentClassifier` interface, the format registry) and is re-exported here; this module
loads a bundle through the built-in formats (`airparadis.formats`) and, when the bundle was
calibrated on feedback, wraps it with its calibration.
"""

from __future__ import annotations

from pathlib import Path

from airparadis import formats as formats  # registers the built-in loaders
from airparadis.bundle_format import BUNDLE_FILE as BUNDLE_FILE
from airparadis.bundle_format import BundleError as BundleError
from airparadis.bundle_format import BundleInfo as BundleInfo
from airparadis.bundle_format import Loader as Loader
from airparadis.bundle_format import SentimentClassifier as SentimentClassifier
from airparadis.bundle_format import find_bundle as find_bundle
from airparadis.bundle_format import loader_of
from airparadis.bundle_format import read_info as read_info
from airparadis.bundle_format import register_format as register_format
from airparadis.bundle_format import tweet_scorer as tweet_scorer
from airparadis.bundle_format import write_info as write_info
from airparadis.embedding import SERVING, EncoderRuntime


def load_bundle(path: Path, runtime: EncoderRuntime = SERVING) -> SentimentClassifier:
    """The bundle at `path`, wrapped with its calibration when it has one; `runtime` is how a
    domain head's sentence encoder runs (`airparadis.embedding`: serving, or training's bulk)."""
    directory = find_bundle(path)
    info = read_info(directory)
    loader = loader_of(info.format)
    if loader is None:
        raise BundleError(f"{directory}: unknown model format {info.format!r}")
    try:
        classifier = loader(directory, info)
    except BundleError:
        raise
    except Exception as exc:
        raise BundleError(f"{directory}: cannot load {info.format} model: {exc}") from exc
    if info.calibration is None:
        return classifier
    from airparadis.calibration import CalibratedClassifier, CalibrationError, load_calibration

    try:
        calibration = load_calibration(directory, info, runtime)
    except (CalibrationError, TypeError, ValueError, OSError, KeyError) as exc:
        raise BundleError(f"{directory}: unusable calibration: {exc}") from exc
    assert calibration is not None
    return CalibratedClassifier(classifier, calibration)
