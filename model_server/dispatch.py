"""Where a request's tweets are scored: inline on the event loop when the call is cheap,
otherwise in the model thread, batched with other requests' tweets (`MicroBatcher`) or alone.

Every scoring feeds the drift monitor and the prediction counters, whichever path it took.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from airparadis import LABELS
from model_server.batching import MicroBatcher
from model_server.drift import DriftMonitor
from model_server.lifecycle import LoadedModel
from model_server.metrics import PENDING, PREDICTIONS
from model_server.settings import ServerSettings

T = TypeVar("T")
_POSITIVE_COUNT = PREDICTIONS.labels(label=LABELS[1])
_NEGATIVE_COUNT = PREDICTIONS.labels(label=LABELS[0])


class Dispatcher:
    """`current` gives the model served now: batched calls score with it when they run."""

    def __init__(
        self,
        settings: ServerSettings,
        drift: DriftMonitor,
        current: Callable[[], LoadedModel | None],
    ) -> None:
        self.drift = drift
        self.inline_budget_s = settings.inline_budget_us / 1e6
        self.batching = settings.batching
        self._current = current
        # Model work off the event loop: the batcher's thread, or (batching off, explanations)
        # one executor thread. The runtimes parallelise inside a call.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self.batcher = MicroBatcher(
            self._classify_current,
            max_batch_size=settings.max_batch_size,
            max_wait_s=settings.max_batch_wait_ms / 1e3,
            max_pending=settings.max_pending_tweets,
        )
        PENDING.set_function(lambda: self.batcher.pending)

    def classify(self, texts: list[str], loaded: LoadedModel) -> list[float]:
        """P(positive) per tweet, as Python floats: cheaper to compare, slice and encode."""
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

    def _classify_current(self, texts: list[str]) -> list[float]:
        loaded = self._current()
        if loaded is None:
            raise RuntimeError("model is not loaded")
        return self.classify(texts, loaded)

    async def score(self, texts: list[str], loaded: LoadedModel) -> Sequence[float]:
        """Inline when the call fits the budget (cheaper than a hop to the model thread)."""
        if len(texts) * loaded.seconds_per_tweet <= self.inline_budget_s:
            return self.classify(texts, loaded)
        if self.batching:
            return await self.batcher.submit(texts)
        return await self.in_model_thread(lambda: self._classify_current(texts))

    async def in_model_thread(self, work: Callable[[], T]) -> T:
        """Run `work` in the model thread, off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, work)
