"""Adaptive micro-batching: concurrent requests share one model call, off the event loop.

kserve's Python server has none, and runs a synchronous `predict` on the event loop. Here a
worker thread of its own takes whatever is queued when the model is free (up to
`max_batch_size` tweets), so batches grow with load. It waits up to `max_wait_s` for more only
while requests are coming in together (its last batch held more than one), so an idle server
adds no delay. The worker hands results back with `call_soon_threadsafe` and goes straight on
to the next batch: a busy event loop never leaves the model idle between batches.

Work waiting is bounded: past `max_pending` tweets, `Overloaded` is raised at once. A batch
stops counting as pending as soon as the model has scored it, not when its requests resume on
the event loop, so admission follows the model's real backlog even when the loop is flooded.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from model_server.metrics import BATCH_SIZE

logger = logging.getLogger(__name__)

Predict = Callable[[list[str]], Sequence[float]]
"""P(positive) per tweet, in order."""


class Overloaded(RuntimeError):
    """Too much work is already waiting for the model; the client should retry later."""


@dataclass
class _Job:
    texts: list[str]
    future: asyncio.Future[Sequence[float]] = field(repr=False)
    loop: asyncio.AbstractEventLoop = field(repr=False)


def _settle(
    future: asyncio.Future[Sequence[float]],
    result: Sequence[float] | None,
    error: BaseException | None,
) -> None:
    if future.done():  # the client went away
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result if result is not None else [])


class MicroBatcher:
    def __init__(
        self,
        predict: Predict,
        max_batch_size: int,
        max_wait_s: float,
        max_pending: int,
        thread_name: str = "model-batcher",
    ) -> None:
        self._predict = predict
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_pending = max_pending
        self.thread_name = thread_name
        self.pending = 0
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._last_jobs = 1
        self._worker: threading.Thread | None = None

    def full(self) -> bool:
        """No more work is admitted until some of what waits has run."""
        return self.pending >= self.max_pending

    async def submit(self, texts: list[str]) -> Sequence[float]:
        with self._lock:
            if self.pending + len(texts) > self.max_pending:
                raise Overloaded(f"{self.pending} tweets already wait for the model")
            self.pending += len(texts)
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._work, name=self.thread_name, daemon=True
                )
                self._worker.start()
        loop = asyncio.get_running_loop()
        job = _Job(texts, loop.create_future(), loop)
        self._jobs.put(job)
        return await job.future

    def _collect(self) -> list[_Job]:
        jobs = [self._jobs.get()]
        size = len(jobs[0].texts)
        wait_s = self.max_wait_s if self._last_jobs > 1 else 0.0
        deadline = time.monotonic() + wait_s
        while size < self.max_batch_size:
            remaining = deadline - time.monotonic()
            try:
                job = (
                    self._jobs.get(timeout=remaining) if remaining > 0 else self._jobs.get_nowait()
                )
            except queue.Empty:
                break
            jobs.append(job)
            size += len(job.texts)
        self._last_jobs = len(jobs)
        return jobs

    def _work(self) -> None:
        while True:
            jobs = self._collect()
            texts = [t for job in jobs for t in job.texts]
            BATCH_SIZE.observe(len(texts))
            proba: Sequence[float] | None = None
            error: BaseException | None = None
            try:
                proba = self._predict(texts)
            except Exception as exc:  # the error belongs to every waiting request
                logger.exception("model call over %d tweets failed", len(texts))
                error = exc
            with self._lock:
                self.pending -= len(texts)
            start = 0
            for job in jobs:
                end = start + len(job.texts)
                part = proba[start:end] if proba is not None else None
                job.loop.call_soon_threadsafe(_settle, job.future, part, error)
                start = end
