"""Per-key rate limiting and a bound on concurrent rankings (overload is shed with 503)."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import AsyncIterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert

from .db.engine import Database
from .db.tables import RateCount
from .errors import RateLimited, Unavailable


class RateLimiter:
    """A token bucket per API key (or per client address): ``per_minute`` requests a
    minute, bursts up to that. It is checked before any other work on a request, so every
    request counts, whatever becomes of it later (refused for overload, invalid, ...)."""

    MAX_BUCKETS = 100_000  # beyond, full (idle) buckets are forgotten

    def __init__(self, per_minute: int, what: str = "this key"):
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.what = what
        self._buckets: dict[object, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _tokens(self, key: object, now: float) -> float:
        tokens, last = self._buckets.get(key, (self.capacity, now))
        return min(self.capacity, tokens + (now - last) * self.rate)

    def _refuse(self, tokens: float) -> RateLimited:
        wait = max(1, math.ceil((1 - tokens) / self.rate))
        return RateLimited(f"too many requests for {self.what}; retry in {wait} s",
                           extra={"retry_after": wait})

    def check(self, key: object) -> None:
        now = time.monotonic()
        with self._lock:
            tokens = self._tokens(key, now)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                raise self._refuse(tokens)
            self._buckets[key] = (tokens - 1, now)
            if len(self._buckets) > self.MAX_BUCKETS:
                self._buckets = {k: (t, last) for k, (t, last) in self._buckets.items()
                                 if t + (now - last) * self.rate < self.capacity}

    def exhausted(self, key: object) -> RateLimited | None:
        """The refusal ``key`` would get now, without counting a request."""
        with self._lock:
            tokens = self._tokens(key, time.monotonic())
        return self._refuse(tokens) if tokens < 1 else None


class SharedRateLimiter:
    """The per-key rate limit counted in the database, for every process of the service
    at once (``IEI_MATCH_SHARED_RATE_LIMIT``, PostgreSQL): ``per_minute`` requests of a
    key in each minute of the clock, whichever process serves them.

    Each request is one upsert of the key's row for the current minute (``rate_counts``)
    that adds one only while the count is below the limit and returns the new count; no
    row back means the minute is used up. Its commit is asynchronous
    (``synchronous_commit off``): a count lost in a database crash lets a few more requests
    through, and a request does not wait for a disk flush. A fixed window: a key may make
    up to twice the limit across the turn of a minute (the in-process
    :class:`RateLimiter`'s token bucket refills evenly instead). Minutes older than the
    previous one are removed by the housekeeping (:func:`prune`).
    """

    def __init__(self, per_minute: int, db: Database, what: str = "this key"):
        self.limit = int(per_minute)
        self.db = db
        self.what = what

    def check(self, key: object) -> None:
        now = time.time()
        minute = int(now // 60)
        row = {"bucket": str(key)[:100], "minute": minute, "hits": 1}
        stmt = insert(RateCount).values(row)
        stmt = stmt.on_conflict_do_update(
            index_elements=[RateCount.bucket, RateCount.minute],
            set_={"hits": RateCount.hits + 1},
            where=RateCount.hits < self.limit).returning(RateCount.hits)
        with self.db.session() as s:
            s.execute(text("SET LOCAL synchronous_commit TO OFF"))
            counted = s.execute(stmt).scalar()
        if counted is None:
            wait = max(1, math.ceil((minute + 1) * 60 - now))
            raise RateLimited(f"too many requests for {self.what}; retry in {wait} s",
                              extra={"retry_after": wait})

    @staticmethod
    def prune(db: Database) -> int:
        """Remove the counts of minutes before the previous one; returns how many."""
        with db.session() as s:
            return s.execute(RateCount.__table__.delete().where(
                RateCount.minute < int(time.time() // 60) - 1)).rowcount or 0


class Gate:
    """At most ``limit`` rankings at once, and at most ``queue`` more waiting for one.

    A ranking request is first *admitted* (:meth:`admitted`, on the event loop, before it
    takes a worker thread or a database connection): when ``limit + queue`` requests are
    admitted already, it gets a 503 ``overloaded`` at once. An admitted request waits for
    one of the ``limit`` slots (:meth:`slot`) up to ``timeout`` seconds, then gets the same
    503. Without the bound, a flood queued for worker threads and database connections
    (answered after tens of seconds, or with a pool timeout) and delayed everything else.
    """

    def __init__(self, limit: int, timeout: float, queue: int | None = None,
                 per_key: int | None = None):
        self._sem = threading.BoundedSemaphore(limit)
        self.timeout = timeout
        self.limit = limit
        self.queue = 2 * limit if queue is None else queue
        # A key may hold the running places and half the queue: alone it still fills the
        # service, and in a flood the other half of the queue stays for other keys.
        self.per_key = max(1, limit + self.queue // 2) if per_key is None else per_key
        self._admitted = 0
        self._by_key: dict[int, int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def admitted(self, key_id: int | None = None):
        """Admission of one request of ``key_id``: a key holds at most ``per_key`` of the
        ``limit + queue`` places (default ``limit`` + half the queue; 429 beyond), so that
        its flood queues behind its own requests and leaves the other places to other
        keys."""
        with self._lock:
            if key_id is not None and self._by_key.get(key_id, 0) >= self.per_key:
                raise RateLimited(f"this key already has {self.per_key} rankings in "
                                  "progress; send the next when one is answered",
                                  extra={"retry_after": 1})
            if self._admitted >= self.limit + self.queue:
                raise Unavailable("the service is busy; retry shortly", code="overloaded")
            self._admitted += 1
            if key_id is not None:
                self._by_key[key_id] = self._by_key.get(key_id, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._admitted -= 1
                if key_id is not None:
                    self._by_key[key_id] -= 1
                    if not self._by_key[key_id]:
                        del self._by_key[key_id]

    @contextmanager
    def slot(self):
        if not self._sem.acquire(timeout=self.timeout):
            raise Unavailable("the service is busy; retry shortly", code="overloaded")
        try:
            yield
        finally:
            self._sem.release()


class WriteSlots:
    """At most ``limit`` small writes at once in a process; the others wait their turn.

    A small write (a need, program, base, outcome, organisation or key created, changed or
    deleted; a job cancelled) waits on the event loop, holding no worker thread and no
    database connection, for up to ``timeout`` seconds, then gets a 503 ``overloaded``.
    :class:`~.gatekeeper.KeyCheck` gives it a turn for its key check (a malformed key past
    its address's failure budget is refused before), then, once its whole body has arrived,
    another for its work: a client that sends its body slowly holds no turn. Rankings,
    uploads, batch submissions and model changes take none.

    Why: each request in progress gets about the same share of the CPU. With four clients
    writing and four ranking, the writes (a few ms each, and PostgreSQL's work for them)
    took more than half of the rankings' throughput; one write at a time per process leaves
    the rankings most of the CPU and still commits hundreds of writes a second
    (``tests/service/test_replicas.py``).
    """

    def __init__(self, limit: int, timeout: float):
        self.limit, self.timeout = limit, timeout
        self._sem = asyncio.Semaphore(limit)  # bound to the loop of its first wait

    async def acquire(self) -> None:
        """Wait for a turn (503 ``overloaded`` after ``timeout`` seconds); :meth:`release`
        it when the write is answered."""
        try:
            await asyncio.wait_for(self._sem.acquire(), self.timeout)
        except TimeoutError:
            raise Unavailable("the service is busy; retry shortly", code="overloaded") from None

    def release(self) -> None:
        self._sem.release()


async def admission(request: Request) -> AsyncIterator[None]:
    """A ranking route's first dependency: admitted by the service's :class:`Gate` or a
    503 at once (it runs on the event loop: a refused request costs no thread). The key
    was checked and counted before (:class:`~.gatekeeper.KeyCheck`)."""
    who = getattr(request.state, "principal", None)
    with request.app.state.services.gate.admitted(who.key_id if who else None):
        yield


# Declared before the session, so that a refused request does no work.
Admitted = Annotated[None, Depends(admission, scope="function")]
