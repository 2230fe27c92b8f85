"""The KServe predictor: any registered model bundle behind the v1 and v2 protocols."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from kserve import InferOutput, InferRequest, InferResponse, Model
from kserve.errors import InvalidInput
from kserve.utils.utils import generate_uuid

from airparadis import LABELS
from airparadis.bundle import SentimentClassifier, find_bundle, load_bundle, tweet_scorer
from airparadis.drift import DriftReference, load_reference
from airparadis.text import clean_tweet, is_blank
from airparadis.tracking import (
    ModelRef,
    download_model,
    needs_registry,
    parse_alias_uri,
    resolve_model,
)
from model_server.batching import MicroBatcher
from model_server.drift import DriftMonitor
from model_server.metrics import PENDING, PREDICTIONS
from model_server.settings import ServerSettings
from model_server.telemetry import Telemetry

logger = logging.getLogger(__name__)

WARMUP_TWEETS = (
    "@airparadis what a lovely flight, thank you! http://t.co/x",
    "my bag is lost again and nobody answers the phone :(",
) * 16
MAX_EXPLAIN_INSTANCES = 32
MAX_EXPLAIN_TOKENS = 64
_POSITIVE_COUNT = PREDICTIONS.labels(label=LABELS[1])
_NEGATIVE_COUNT = PREDICTIONS.labels(label=LABELS[0])


@dataclass(frozen=True)
class LoadedModel:
    """Swapped as one object, so a request never mixes two versions."""

    classifier: SentimentClassifier
    ref: ModelRef | None
    seconds_per_tweet: float
    drift_reference: DriftReference | None = None
    score_tweet: Callable[[str], float] | None = None


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
        self.inline_budget_s = settings.inline_budget_us / 1e6
        self.telemetry = telemetry or Telemetry(enabled=False)
        self.loaded: LoadedModel | None = None
        self.load_error: str | None = None
        self.reload_interval_s = settings.reload_interval_seconds
        self._stop = threading.Event()
        # Model work off the event loop: the batcher's thread, or (batching off, explanations)
        # one executor thread. The runtimes parallelise inside a call.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self.batcher = MicroBatcher(
            self._classify_in_worker,
            max_batch_size=settings.max_batch_size,
            max_wait_s=settings.max_batch_wait_ms / 1e3,
            max_pending=settings.max_pending_tweets,
        )
        PENDING.set_function(lambda: self.batcher.pending)
        self.batching = settings.batching
        self.drift = DriftMonitor(
            settings.drift_window, settings.drift_min_tweets, settings.drift_psi_threshold
        )

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def classifier(self) -> SentimentClassifier | None:
        return self.loaded.classifier if self.loaded else None

    @property
    def ref(self) -> ModelRef | None:
        return self.loaded.ref if self.loaded else None

    @property
    def seconds_per_tweet(self) -> float:
        return self.loaded.seconds_per_tweet if self.loaded else float("inf")

    def _load_bundle(self) -> LoadedModel:
        ref = resolve_model(self.model_uri) if needs_registry(self.model_uri) else None
        # The version just resolved, not the alias again: what is served matches its label.
        path = download_model(ref.version_uri if ref else self.model_uri)
        classifier = load_bundle(path)
        proba = classifier.predict_proba(list(WARMUP_TWEETS))
        if proba.shape != (len(WARMUP_TWEETS),) or not np.all(np.isfinite(proba)):
            raise ValueError(f"warm-up prediction returned {proba!r}")
        return LoadedModel(
            classifier,
            ref,
            _measure_seconds_per_tweet(classifier),
            load_reference(find_bundle(path)),
            tweet_scorer(classifier),
        )

    def _serve(self, loaded: LoadedModel) -> None:
        self.loaded, self.load_error = loaded, None
        self.drift.use_reference(loaded.drift_reference, loaded.classifier.info)

    def load(self) -> bool:
        """Ready only after the bundle loads and a warm-up prediction succeeds."""
        self.ready = False
        try:
            loaded = self._load_bundle()
        except Exception as exc:  # noqa: BLE001  (any failure means not ready, with its reason)
            self.load_error = f"cannot load model {self.model_uri}: {exc}"
            logger.error(self.load_error)
            return False
        self._serve(loaded)
        self.ready = True
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
                loaded = self._load_bundle()
            except Exception as exc:  # noqa: BLE001  (keep serving the current model)
                logger.error("cannot switch to the new %s: %s", self.model_uri, exc)
                continue
            previous = self.version_label
            self._serve(loaded)
            logger.info("switched %s from %s to %s", self.name, previous, self.version_label)

    def start_background_loading(self) -> None:
        def run() -> None:
            self.load()
            self.follow_alias()

        threading.Thread(target=run, name="model-loader", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        super().stop()

    @property
    def version_label(self) -> str:
        if self.ref is not None:
            return f"{self.ref.name}/{self.ref.version}"
        return self.model_uri

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
        }

    # -- request handling --------------------------------------------------------------------
    def _check_texts(self, texts: Sequence[object]) -> list[str]:
        """The one validation of tweets, whichever protocol carried them."""
        if len(texts) == 0:
            raise InvalidInput("'instances' must hold at least one tweet")
        if len(texts) > self.max_instances:
            raise InvalidInput(
                f"too many instances: {len(texts)} > {self.max_instances} per request"
            )
        out: list[str] = []
        for index, text in enumerate(texts):
            if isinstance(text, dict):
                text = text.get("text")
            if isinstance(text, bytes):
                try:
                    text = text.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise InvalidInput(f"instance {index} is not valid UTF-8") from exc
            if not isinstance(text, str):
                raise InvalidInput(
                    f"instance {index} must be a string (or an object with a 'text' string)"
                )
            if len(text) > self.max_tweet_chars:
                raise InvalidInput(
                    f"instance {index} is {len(text)} characters; "
                    f"the limit is {self.max_tweet_chars}"
                )
            if not is_valid_unicode(text):
                raise InvalidInput(f"instance {index} is not valid Unicode (a lone surrogate)")
            if is_blank(text):
                raise InvalidInput(f"instance {index} has no text: it is empty or only spaces")
            out.append(text)
        return out

    def parse(self, payload: dict[str, Any] | InferRequest | bytes) -> list[str]:
        if isinstance(payload, bytes | bytearray):
            # kserve hands over the raw body when the client sent no JSON content type; it
            # parses JSON ones with orjson, and so does this: NaN or a lone surrogate is
            # refused alike on every route.
            try:
                payload = orjson.loads(payload)
            except orjson.JSONDecodeError as exc:
                raise InvalidInput(f"request body is not valid JSON: {exc}") from exc
        if isinstance(payload, InferRequest):
            return self._check_texts(_v2_tweets(payload))
        if not isinstance(payload, dict) or "instances" not in payload:
            raise InvalidInput("expected a JSON object with an 'instances' list")
        instances = payload["instances"]
        if not isinstance(instances, list):
            raise InvalidInput("'instances' must be a list of tweets")
        return self._check_texts(instances)

    def classify(self, texts: list[str], loaded: LoadedModel | None = None) -> list[float]:
        """P(positive) per tweet, as Python floats: cheaper to compare, slice and encode."""
        loaded = loaded or self.loaded
        if loaded is None:
            raise RuntimeError("model is not loaded")
        threshold = loaded.classifier.info.threshold
        if len(texts) == 1 and loaded.score_tweet is not None:
            proba = [loaded.score_tweet(texts[0])]
        else:
            proba = loaded.classifier.predict_proba(texts).tolist()
        self.drift.record(texts, proba)
        if len(proba) == 1:
            (_POSITIVE_COUNT if proba[0] >= threshold else _NEGATIVE_COUNT).inc()
            return proba
        positives = sum(p >= threshold for p in proba)
        if positives:
            _POSITIVE_COUNT.inc(positives)
        if positives < len(texts):
            _NEGATIVE_COUNT.inc(len(texts) - positives)
        return proba

    def _classify_in_worker(self, texts: list[str]) -> list[float]:
        return self.classify(texts)

    async def _run_off_loop(self, texts: list[str]) -> Sequence[float]:
        """In the model thread, batched with other requests' tweets or not."""
        if self.batching:
            return await self.batcher.submit(texts)
        proba: Sequence[float] = await asyncio.get_running_loop().run_in_executor(
            self.executor, self._classify_in_worker, texts
        )
        return proba

    async def explain(
        self, payload: dict[str, Any] | InferRequest | bytes, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """`:explain` gives each tweet's token contributions (see `explain_tweet`)."""
        texts = self.parse(payload)
        if len(texts) > MAX_EXPLAIN_INSTANCES:
            raise InvalidInput(f"explain takes at most {MAX_EXPLAIN_INSTANCES} tweets")
        classifier = self.classifier
        if classifier is None:
            raise RuntimeError("model is not loaded")
        explanations = await asyncio.get_running_loop().run_in_executor(
            self.executor,
            lambda: [explain_tweet(classifier, t, MAX_EXPLAIN_TOKENS) for t in texts],
        )
        return {"explanations": explanations}

    async def predict(
        self,
        payload: dict[str, Any] | InferRequest | bytes,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any] | InferResponse:
        texts = self.parse(payload)
        loaded = self.loaded
        if loaded is None:
            raise RuntimeError("model is not loaded")
        started = time.perf_counter()
        proba: Sequence[float]
        if len(texts) * loaded.seconds_per_tweet <= self.inline_budget_s:
            proba = self.classify(texts, loaded)  # cheaper than a hop to the model thread
        else:
            proba = await self._run_off_loop(texts)
        latency = time.perf_counter() - started
        threshold = loaded.classifier.info.threshold
        labels = [LABELS[1] if p >= threshold else LABELS[0] for p in proba]
        version = loaded.ref.version if loaded.ref else None
        if self.telemetry.enabled:
            self.telemetry.predictions(labels, proba, latency, version, headers)
        if isinstance(payload, InferRequest):
            return InferResponse(
                response_id=payload.id or generate_uuid(),
                model_name=self.name,
                model_version=version,
                infer_outputs=[
                    InferOutput(name="label", shape=[len(labels)], datatype="BYTES", data=labels),
                    InferOutput(
                        name="probability", shape=[len(labels)], datatype="FP64", data=list(proba)
                    ),
                ],
            )
        return {
            "predictions": [
                {"label": label, "probability": p, "model_version": version}
                for label, p in zip(labels, proba, strict=True)
            ]
        }


def explain_tweet(classifier: SentimentClassifier, text: str, max_tokens: int) -> dict[str, Any]:
    """Token contributions: exact logit parts for linear models, occlusion for the rest.

    Occlusion drops one token at a time and costs one batched call over at most
    `max_tokens` + 1 variants, whatever the family.
    """
    p_full = float(classifier.predict_proba([text])[0])
    exact = getattr(classifier, "explain", None)
    result = exact(text) if exact is not None else None
    bias: float | None = None
    if result is not None:  # calibrated models give slope-scaled parts (airparadis.calibration)
        tokens, parts = result
        method, unit = "exact-linear", "logit"
        clipped = min(max(p_full, 1e-12), 1 - 1e-12)
        bias = math.log(clipped / (1 - clipped)) - sum(parts)  # intercept(s): parts + bias = logit
    else:
        tokens = clean_tweet(text).split()[:max_tokens]
        variants = [" ".join(tokens[:i] + tokens[i + 1 :]) for i in range(len(tokens))]
        proba = classifier.predict_proba(variants) if variants else np.empty(0)
        parts = [p_full - float(p) for p in proba]
        method, unit = "occlusion", "probability"
    return {
        "label": LABELS[1] if p_full >= classifier.info.threshold else LABELS[0],
        "probability": p_full,
        "method": method,
        "unit": unit,
        "tokens": [{"token": t, "contribution": c} for t, c in zip(tokens, parts, strict=True)],
        **({"bias": bias} if bias is not None else {}),
    }


def _measure_seconds_per_tweet(classifier: SentimentClassifier) -> float:
    """Cost of a one-tweet call, which decides what may run on the event loop.

    Per tweet, larger calls cost less (a recurrent network scores 32 tweets in about 5 times
    the time of one), so this bounds the cost of any call from above.
    """
    texts = list(WARMUP_TWEETS[:1])
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        classifier.predict_proba(texts)
        best = min(best, time.perf_counter() - started)
    return best


def _v2_tweets(request: InferRequest) -> list[object]:
    """The tweets of a v2 request: one BYTES input whose shape agrees with its data."""
    if len(request.inputs) != 1 or request.inputs[0].datatype != "BYTES":
        raise InvalidInput("v2 requests need exactly one BYTES input of tweets")
    tensor = request.inputs[0]
    data = list(tensor.data) if tensor.data is not None else []
    shape = list(tensor.shape or [])
    if not shape or any(not isinstance(d, int) or d < 0 for d in shape):
        raise InvalidInput(f"input {tensor.name!r}: shape {shape} must be non-negative sizes")
    if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
        raise InvalidInput(f"input {tensor.name!r}: shape {shape} must be [n] or [n, 1]")
    if shape[0] != len(data):
        raise InvalidInput(
            f"input {tensor.name!r}: shape {shape} does not match its {len(data)} elements"
        )
    if request.id is not None and not is_valid_unicode(str(request.id)):
        raise InvalidInput("request id is not valid Unicode (a lone surrogate)")
    return data


def is_valid_unicode(text: str) -> bool:
    """False for a string holding a lone UTF-16 surrogate, which no UTF-8 encoder takes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
