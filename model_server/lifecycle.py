"""The served model's lifecycle: load a bundle (by the registry version the alias resolved
to), warm it up, follow the alias to new versions, and swap models atomically.

The kserve `Model` (`model_server.model`) holds one `ModelLifecycle`; requests read its
`loaded` once, so a request never mixes two versions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from airparadis.bundle import SentimentClassifier, find_bundle, load_bundle, tweet_scorer
from airparadis.drift import DriftReference, load_reference
from airparadis.tracking import (
    ModelRef,
    download_model,
    needs_registry,
    parse_alias_uri,
    resolve_model,
)

logger = logging.getLogger(__name__)

WARMUP_TWEETS = (
    "@airparadis what a lovely flight, thank you! http://t.co/x",
    "my bag is lost again and nobody answers the phone :(",
) * 16


@dataclass(frozen=True)
class LoadedModel:
    """Swapped as one object, so a request never mixes two versions."""

    classifier: SentimentClassifier
    ref: ModelRef | None
    seconds_per_tweet: float
    drift_reference: DriftReference | None = None
    score_tweet: Callable[[str], float] | None = None


def load_model(model_uri: str) -> LoadedModel:
    """Resolve, download, load and warm up `model_uri`; raises on any failure."""
    ref = resolve_model(model_uri) if needs_registry(model_uri) else None
    # The version just resolved, not the alias again: what is served matches its label.
    path = download_model(ref.version_uri if ref else model_uri)
    classifier = load_bundle(path)
    proba = classifier.predict_proba(list(WARMUP_TWEETS))
    if proba.shape != (len(WARMUP_TWEETS),) or not np.all(np.isfinite(proba)):
        raise ValueError(f"warm-up prediction returned {proba!r}")
    return LoadedModel(
        classifier,
        ref,
        measure_seconds_per_tweet(classifier),
        load_reference(find_bundle(path)),
        tweet_scorer(classifier),
    )


def measure_seconds_per_tweet(classifier: SentimentClassifier) -> float:
    """Cost of a one-tweet call, which decides what may run on the event loop.

    Per tweet, larger calls cost less (a call's fixed cost is shared by its tweets), so this
    bounds the cost of any call from above.
    """
    texts = list(WARMUP_TWEETS[:1])
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        classifier.predict_proba(texts)
        best = min(best, time.perf_counter() - started)
    return best


class ModelLifecycle:
    """What is served, and the one way it changes: `load`, or a new version of the alias.

    `on_swap` runs with each model about to be served (the drift monitor takes its
    reference), `on_ready` with the readiness the predictor reports.
    """

    def __init__(
        self,
        name: str,
        model_uri: str,
        reload_interval_s: float,
        on_swap: Callable[[LoadedModel], None],
        on_ready: Callable[[bool], None],
    ) -> None:
        self.name = name
        self.model_uri = model_uri
        self.reload_interval_s = reload_interval_s
        self.loaded: LoadedModel | None = None
        self.load_error: str | None = None
        self._on_swap = on_swap
        self._on_ready = on_ready
        self._stop = threading.Event()

    @property
    def ref(self) -> ModelRef | None:
        return self.loaded.ref if self.loaded else None

    @property
    def version_label(self) -> str:
        if self.ref is not None:
            return f"{self.ref.name}/{self.ref.version}"
        return self.model_uri

    def _swap(self, loaded: LoadedModel) -> None:
        self.loaded, self.load_error = loaded, None
        self._on_swap(loaded)

    def load(self) -> bool:
        """Ready only after the bundle loads and a warm-up prediction succeeds."""
        self._on_ready(False)
        try:
            loaded = load_model(self.model_uri)
        except Exception as exc:  # noqa: BLE001  (any failure means not ready, with its reason)
            self.load_error = f"cannot load model {self.model_uri}: {exc}"
            logger.error(self.load_error)
            return False
        self._swap(loaded)
        self._on_ready(True)
        logger.info(
            "model %s ready (%s, %.1f us per tweet)",
            self.name,
            self.version_label,
            1e6 * loaded.seconds_per_tweet,
        )
        return True

    def follow_alias(self) -> None:
        """Serve the alias's new version once it is loaded and warm; the old one until then.

        Runs in its own thread, polling the registry every `reload_interval_s`; a failed
        load keeps the current model and is retried at the next poll.
        """
        if parse_alias_uri(self.model_uri) is None or self.reload_interval_s <= 0:
            return
        while not self._stop.wait(self.reload_interval_s):
            if self.loaded is None:
                self.load()
                continue
            try:
                latest = resolve_model(self.model_uri)
                if latest is None or (self.ref and latest.version == self.ref.version):
                    continue
                loaded = load_model(self.model_uri)
            except Exception as exc:  # noqa: BLE001  (keep serving the current model)
                logger.error("cannot switch to the new %s: %s", self.model_uri, exc)
                continue
            previous = self.version_label
            self._swap(loaded)
            logger.info("switched %s from %s to %s", self.name, previous, self.version_label)

    def start(self) -> None:
        """Load, then follow the alias, in a background thread: the server is live at once."""

        def run() -> None:
            self.load()
            self.follow_alias()

        threading.Thread(target=run, name="model-loader", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
