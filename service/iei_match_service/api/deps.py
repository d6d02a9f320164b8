"""Dependencies shared by the routes: the service objects, a session, the caller."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Path, Query, Request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from ..auth import Principal, authenticate
from ..catalogs import Catalogs
from ..db.engine import Database
from ..directory import Directory
from ..errors import Forbidden
from ..jobs import JobRunner
from ..limits import Gate, RateLimiter, SharedRateLimiter, WriteSlots
from ..model_host import ModelHost
from ..reference import ReferenceMajors
from ..settings import Settings
from ..uploads import UploadSlots

log = logging.getLogger("iei_match_service")
T = TypeVar("T")


@dataclass
class Services:
    settings: Settings
    db: Database
    models: ModelHost
    jobs: JobRunner
    rate: RateLimiter | SharedRateLimiter
    gate: Gate
    auth_failures: RateLimiter
    uploads: UploadSlots
    writes: WriteSlots = field(default_factory=lambda: WriteSlots(1, 10.0))
    catalogs: Catalogs = field(default_factory=Catalogs)
    reference: ReferenceMajors = field(default_factory=lambda: ReferenceMajors("cn-vocational"))
    directory: Directory = field(default_factory=Directory)


async def services(request: Request) -> Services:
    # ``async``: a dependency that does no blocking work costs no worker thread
    return request.app.state.services


@contextmanager
def request_session(svc: Services) -> Iterator[Session]:
    """A database session for one request, rolled back at the end (routes that write
    commit explicitly before they answer, so an acknowledged write is durable)."""
    with svc.db.sessions() as s:
        try:
            yield s
        finally:
            try:
                s.rollback()
            except DBAPIError as exc:
                # For a route's session this runs after the answer was sent: a database
                # that went away since then is not the request's error (raising here
                # dropped the client's connection).
                log.warning("rollback after a request failed: %s", exc.__class__.__name__)


def session(svc: Annotated[Services, Depends(services)]) -> Iterator[Session]:
    """A database session for one request (:func:`request_session`)."""
    with request_session(svc) as s:
        yield s


def _in_session(svc: Services, work: Callable[[Session], T]) -> T:
    with request_session(svc) as s:
        return work(s)


async def in_session(svc: Services, work: Callable[[Session], T]) -> T:
    """``work(session)`` in a worker thread, with a session of its own: a route that does
    all its blocking work there hops to a thread once (a route with a sync dependency or
    body hops for each, and once more to check its answer)."""
    return await run_in_threadpool(_in_session, svc, work)


def _authenticated(svc: Services, authorization: str | None) -> Principal:
    with svc.db.sessions() as s:
        who = authenticate(s, authorization)
    svc.rate.check(who.key_id)
    return who


async def principal(request: Request, svc: Annotated[Services, Depends(services)],
                    authorization: Annotated[str | None, Header(
                        description="Bearer <API key>")] = None) -> Principal:
    """The caller, authenticated and counted by :class:`~..gatekeeper.KeyCheck` before the
    body was read (here, in a worker thread, only for routes it does not cover)."""
    who = getattr(request.state, "principal", None)
    if who is None:
        who = await run_in_threadpool(_authenticated, svc, authorization)
        request.state.principal = who
    return who


def roles(*allowed: str):
    """A dependency that lets only the given roles through (403 for the others)."""

    async def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if who.role not in allowed:
            raise Forbidden(f"this needs a key of role {' or '.join(allowed)}")
        return who

    return check


SessionDep = Annotated[Session, Depends(session)]
ServicesDep = Annotated[Services, Depends(services)]
Caller = Annotated[Principal, Depends(principal)]
PathId = Annotated[int, Path(ge=1, le=2**31 - 1, description="the object's id")]
Limit = Annotated[int, Query(ge=1, le=1000, description="page size")]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=200,
    description="the same key while a job is queued or running returns that job")]
