"""The KServe predictor: any registered model bundle behind the v1 and v2 protocols.

A thin `kserve.Model`, in the spirit of kserve's sklearnserver: its lifecycle (load, follow
the alias, swap) is `model_server.lifecycle`, its protocol codecs (v1, v2, explain) are
`model_server.codecs`, and where tweets are scored (inline or batched) is
`model_server.dispatch`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from kserve import InferResponse, Model
from kserve.errors import InvalidInput

from airparadis import LABELS
from airparadis.bundle import SentimentClassifier
from airparadis.tracking import ModelRef
from model_server.codecs import Payload, decode, encode
from model_server.codecs import explain_tweet as explain_tweet
from model_server.codecs import is_valid_unicode as is_valid_unicode
from model_server.dispatch import Dispatcher
from model_server.drift import DriftMonitor
from model_server.lifecycle import LoadedModel, ModelLifecycle
from model_server.metrics import PREDICT_SECONDS
from model_server.settings import ServerSettings
from model_server.telemetry import Telemetry

MAX_EXPLAIN_INSTANCES = 32
MAX_EXPLAIN_TOKENS = 64


class SentimentModel(Model):  # type: ignore[misc]
    """Loads a bundle from the registry (or a path) and classifies raw tweets."""

    def __init__(
        self,
        name: str,
        model_uri: str,
        settings: ServerSettings,
        telemetry: Telemetry | None = None,
    ) -> None:
        super().__init__(name)
        self.model_uri = model_uri
        self.max_tweet_chars = settings.max_tweet_chars
        self.max_instances = settings.max_instances
        self.telemetry = telemetry or Telemetry(enabled=False)
        self.drift = DriftMonitor(
            settings.drift.window, settings.drift.min_tweets, settings.drift.psi_threshold
        )
        self.lifecycle = ModelLifecycle(
            name, model_uri, settings.reload_interval_seconds, self._on_swap, self._on_ready
        )
        self.dispatch = Dispatcher(settings, self.drift, lambda: self.lifecycle.loaded)
        self.batcher = self.dispatch.batcher

    def _on_swap(self, loaded: LoadedModel) -> None:
        self.drift.use_reference(loaded.drift_reference, loaded.classifier.info)

    def _on_ready(self, ready: bool) -> None:
        self.ready = ready

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def loaded(self) -> LoadedModel | None:
        return self.lifecycle.loaded

    @property
    def load_error(self) -> str | None:
        return self.lifecycle.load_error

    @property
    def classifier(self) -> SentimentClassifier | None:
        return self.loaded.classifier if self.loaded else None

    @property
    def ref(self) -> ModelRef | None:
        return self.lifecycle.ref

    @property
    def version_label(self) -> str:
        return self.lifecycle.version_label

    def load(self) -> bool:
        """Ready only after the bundle loads and a warm-up prediction succeeds."""
        return self.lifecycle.load()

    def start_background_loading(self) -> None:
        self.lifecycle.start()

    def stop(self) -> None:
        self.lifecycle.stop()
        super().stop()

    def describe(self) -> dict[str, Any]:
        info = self.classifier.info if self.classifier else None
        return {
            "name": self.name,
            "ready": self.ready,
            "model_uri": self.model_uri,
            "registered_name": self.ref.name if self.ref else None,
            "version": self.ref.version if self.ref else None,
            "aliases": list(self.ref.aliases) if self.ref else [],
            "family": info.family if info else None,
            "format": info.format if info else None,
            "metrics": info.metrics if info else {},
            "threshold": info.threshold if info else None,
            # Learned from feedback (airparadis.calibration): held-out raw vs calibrated
            # scores and the reliability curve, for the ops page; None when uncalibrated.
            "calibration": info.calibration if info else None,
            "training_prior": self.drift.training_prior if info else None,
            "error": self.load_error,
            "limits": {
                "max_tweet_chars": self.max_tweet_chars,
                "max_instances": self.max_instances,
                "max_explain_instances": MAX_EXPLAIN_INSTANCES,
            },
        }

    # -- requests ----------------------------------------------------------------------------
    def parse(self, payload: Payload) -> list[str]:
        return decode(payload, self.max_instances, self.max_tweet_chars)

    async def explain(
        self, payload: Payload, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """`:explain` gives each tweet's token contributions (see `explain_tweet`)."""
        texts = self.parse(payload)
        if len(texts) > MAX_EXPLAIN_INSTANCES:
            raise InvalidInput(f"explain takes at most {MAX_EXPLAIN_INSTANCES} tweets")
        classifier = self.classifier
        if classifier is None:
            raise RuntimeError("model is not loaded")
        explanations = await self.dispatch.in_model_thread(
            lambda: [explain_tweet(classifier, t, MAX_EXPLAIN_TOKENS) for t in texts]
        )
        return {"explanations": explanations}

    async def predict(
        self,
        payload: Payload,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any] | InferResponse:
        called = time.perf_counter()
        texts = self.parse(payload)
        loaded = self.loaded
        if loaded is None:
            raise RuntimeError("model is not loaded")
        started = time.perf_counter()
        proba: Sequence[float] = await self.dispatch.score(texts, loaded)
        latency = time.perf_counter() - started
        threshold = loaded.classifier.info.threshold
        labels = [LABELS[1] if p >= threshold else LABELS[0] for p in proba]
        version = loaded.ref.version if loaded.ref else None
        if self.telemetry.enabled:
            self.telemetry.predictions(labels, proba, latency, version, headers)
        answer = encode(payload, self.name, labels, proba, version)
        PREDICT_SECONDS.observe(time.perf_counter() - called)
        return answer
