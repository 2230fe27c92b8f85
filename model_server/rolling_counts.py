"""Wrong and total feedbacks within each alert window, and which clients sent the wrong ones.

The alert rules read these counts on every feedback, so they are kept in memory as feedback
arrives (the store seeds them from its table and takes in other replicas' rows): reading
them costs no query, however many rows the window holds.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from datetime import datetime

import numpy as np

ANONYMOUS = "-"
"""The client of a feedback stored without one (an old row, or a direct store call)."""


class RollingCounts:
    """Wrong and total feedbacks within each window, updated as feedback arrives.

    Counts are kept per second in a ring of `horizon` seconds (numpy arrays), so adding costs
    O(1), reading a window one vectorised sum over the ring, and memory stays the same with
    ten or a million feedbacks an hour. Ids are remembered for `remember_seconds` only, the
    span a sync may read twice, so that a row is never counted twice (own insert, then sync).
    The clients of wrong verdicts are kept with the time of their latest one, so that a rule
    can ask how many distinct clients reported within its window (one user cannot page ops
    alone); a client is forgotten once its latest wrong verdict leaves the horizon.
    """

    def __init__(self, windows: tuple[int, ...], remember_seconds: float = 300.0) -> None:
        self.windows = tuple(sorted(set(windows)))
        self.horizon = self.windows[-1]
        self.remember_seconds = remember_seconds
        size = self.horizon + 2
        self._second = np.full(size, -1, dtype=np.int64)
        self._wrong = np.zeros(size, dtype=np.int64)
        self._total = np.zeros(size, dtype=np.int64)
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._wrong_clients: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def add(
        self,
        row_id: str,
        at: datetime,
        wrong: bool,
        seeding: bool = False,
        client_id: str | None = None,
    ) -> bool:
        """Count one row; False when it is outside the horizon or already counted."""
        stamp = at.timestamp()
        now = time.time()
        if stamp < now - self.horizon:
            return False
        with self._lock:
            self._forget(now)
            if row_id in self._seen:
                return False
            if stamp < now - self.remember_seconds and not seeding:
                return False  # older than any id remembered: it may have been counted
            if stamp >= now - self.remember_seconds:
                self._seen[row_id] = stamp
            second = int(stamp)
            slot = second % len(self._second)
            if self._second[slot] != second:
                self._second[slot], self._wrong[slot], self._total[slot] = second, 0, 0
            self._wrong[slot] += wrong
            self._total[slot] += 1
            if wrong:
                self._note_client(client_id or ANONYMOUS, stamp)
            return True

    def counts(self, window: int) -> tuple[int, int]:
        """(wrong, total) over the last `window` seconds, to the second."""
        with self._lock:
            inside = self._second >= int(time.time() - window)
            return int(self._wrong[inside].sum()), int(self._total[inside].sum())

    def wrong_clients(self, window: int) -> list[str]:
        """The clients with a wrong verdict in the last `window` seconds, latest first."""
        since = int(time.time() - window)
        with self._lock:
            inside = [(at, c) for c, at in self._wrong_clients.items() if int(at) >= since]
        return [c for _, c in sorted(inside, reverse=True)]

    def _note_client(self, client: str, stamp: float) -> None:
        """Latest wrong verdict per client, in arrival order: a row synced late may be older,
        which only delays forgetting it (`wrong_clients` reads the times, not the order)."""
        known = self._wrong_clients.get(client)
        if known is None or stamp > known:
            self._wrong_clients[client] = stamp
            self._wrong_clients.move_to_end(client)

    def _forget(self, now: float) -> None:
        while self._seen:
            if next(iter(self._seen.values())) >= now - self.remember_seconds:
                break
            self._seen.popitem(last=False)
        while self._wrong_clients:
            if next(iter(self._wrong_clients.values())) >= now - self.horizon:
                break
            self._wrong_clients.popitem(last=False)
