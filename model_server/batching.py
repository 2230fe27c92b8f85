"""Adaptive micro-batching: concurrent requests share one model call, off the event loop.

kserve's Python server has none, and runs a synchronous `predict` on the event loop. Here a
single worker takes whatever is queued when the model is free (up to `max_batch_size`
tweets), so batches grow with load. It waits up to `max_wait_s` for more only while requests
are coming in together (its last batch held more than one), so an idle server adds no delay.
Work waiting is bounded: past `max_pending` tweets, `Overloaded` is raised at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from model_server.metrics import BATCH_SIZE, PENDING

logger = logging.getLogger(__name__)

Predict = Callable[[list[str]], Sequence[float]]
"""P(positive) per tweet, in order."""


class Overloaded(RuntimeError):
    """Too much work is already waiting for the model; the client should retry later."""


@dataclass
class _Job:
    texts: list[str]
    future: asyncio.Future[Sequence[float]] = field(repr=False)


class MicroBatcher:
    def __init__(
        self,
        predict: Predict,
        executor: ThreadPoolExecutor,
        max_batch_size: int,
        max_wait_s: float,
        max_pending: int,
    ) -> None:
        self._predict = predict
        self._executor = executor
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_pending = max_pending
        self.pending = 0
        self._queue: asyncio.Queue[_Job] | None = None
        self._last_jobs = 1
        self._worker: asyncio.Task[None] | None = None

    def full(self) -> bool:
        """No more work is admitted until some of what waits has run."""
        return self.pending >= self.max_pending

    async def submit(self, texts: list[str]) -> Sequence[float]:
        if self.pending + len(texts) > self.max_pending:
            raise Overloaded(f"{self.pending} tweets already wait for the model")
        loop = asyncio.get_running_loop()
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._run(), name="micro-batcher")
        job = _Job(texts, loop.create_future())
        self.pending += len(texts)
        PENDING.set(self.pending)
        self._queue.put_nowait(job)
        try:
            return await job.future
        finally:
            self.pending -= len(texts)
            PENDING.set(self.pending)

    async def _collect(self, queue: asyncio.Queue[_Job]) -> list[_Job]:
        jobs = [await queue.get()]
        size = len(jobs[0].texts)
        wait_s = self.max_wait_s if self._last_jobs > 1 else 0.0
        deadline = asyncio.get_running_loop().time() + wait_s
        while size < self.max_batch_size:
            if queue.empty():
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(queue.get(), remaining)
                except TimeoutError:
                    break
            else:
                job = queue.get_nowait()
            jobs.append(job)
            size += len(job.texts)
        self._last_jobs = len(jobs)
        return jobs

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._collect(self._queue)
            texts = [t for job in jobs for t in job.texts]
            BATCH_SIZE.observe(len(texts))
            try:
                proba = await loop.run_in_executor(self._executor, self._predict, texts)
            except Exception as exc:  # noqa: BLE001  (the error belongs to every waiting request)
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            start = 0
            for job in jobs:
                end = start + len(job.texts)
                if not job.future.done():  # the client may have gone away
                    job.future.set_result(proba[start:end])
                start = end
