"""Per-key rate limiting and a bound on concurrent rankings (overload is shed with 503)."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

from .errors import RateLimited, Unavailable


class RateLimiter:
    """A token bucket per API key: ``per_minute`` requests a minute, bursts up to that."""

    def __init__(self, per_minute: int):
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self._buckets: dict[int, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, key_id: int) -> None:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[key_id] = (tokens, now)
                wait = (1 - tokens) / self.rate
                raise RateLimited(f"too many requests for this key; retry in {wait:.1f} s",
                                  extra={"retry_after": round(wait, 1)})
            self._buckets[key_id] = (tokens - 1, now)


class Gate:
    """At most ``limit`` rankings at once; a request that cannot start within ``timeout``
    seconds gets a fast 503 instead of queueing without end."""

    def __init__(self, limit: int, timeout: float):
        self._sem = threading.BoundedSemaphore(limit)
        self.timeout = timeout

    @contextmanager
    def slot(self):
        if not self._sem.acquire(timeout=self.timeout):
            raise Unavailable("the service is busy; retry shortly", code="overloaded")
        try:
            yield
        finally:
            self._sem.release()
