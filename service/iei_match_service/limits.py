"""Per-key rate limiting and a bound on concurrent rankings (overload is shed with 503)."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Request

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
    """At most ``limit`` rankings at once, and at most ``queue`` more waiting for one.

    A ranking request is first *admitted* (:meth:`admitted`, on the event loop, before it
    takes a worker thread or a database connection): when ``limit + queue`` requests are
    admitted already, it gets a 503 ``overloaded`` at once. An admitted request waits for
    one of the ``limit`` slots (:meth:`slot`) up to ``timeout`` seconds, then gets the same
    503. Without the bound, a flood queued for worker threads and database connections
    (answered after tens of seconds, or with a pool timeout) and delayed everything else.
    """

    def __init__(self, limit: int, timeout: float, queue: int | None = None):
        self._sem = threading.BoundedSemaphore(limit)
        self.timeout = timeout
        self.limit = limit
        self.queue = 2 * limit if queue is None else queue
        self._admitted = 0
        self._lock = threading.Lock()

    @contextmanager
    def admitted(self):
        with self._lock:
            if self._admitted >= self.limit + self.queue:
                raise Unavailable("the service is busy; retry shortly", code="overloaded")
            self._admitted += 1
        try:
            yield
        finally:
            with self._lock:
                self._admitted -= 1

    @contextmanager
    def slot(self):
        if not self._sem.acquire(timeout=self.timeout):
            raise Unavailable("the service is busy; retry shortly", code="overloaded")
        try:
            yield
        finally:
            self._sem.release()


async def admission(request: Request) -> AsyncIterator[None]:
    """A ranking route's first dependency: admitted by the service's :class:`Gate` or a
    503 at once (it runs on the event loop: a refused request costs no thread)."""
    with request.app.state.services.gate.admitted():
        yield


# Declared before the key check and the session, so that a refused request does no work.
Admitted = Annotated[None, Depends(admission, scope="function")]
