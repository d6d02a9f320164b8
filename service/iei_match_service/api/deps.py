"""Dependencies shared by the routes: the service objects, a session, the caller."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Header, Path, Query, Request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ..auth import Principal, authenticate
from ..catalogs import Catalogs
from ..db.engine import Database
from ..directory import Directory
from ..errors import Forbidden
from ..jobs import JobRunner
from ..limits import Gate, RateLimiter, SharedRateLimiter
from ..model_host import ModelHost
from ..reference import ReferenceMajors
from ..settings import Settings
from ..uploads import UploadSlots

log = logging.getLogger("iei_match_service")


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
    catalogs: Catalogs = field(default_factory=Catalogs)
    reference: ReferenceMajors = field(default_factory=lambda: ReferenceMajors("cn-vocational"))
    directory: Directory = field(default_factory=Directory)


def services(request: Request) -> Services:
    return request.app.state.services


def session(svc: Annotated[Services, Depends(services)]) -> Iterator[Session]:
    """A database session for one request; routes that write commit explicitly before they
    answer, so an acknowledged write is durable."""
    with svc.db.sessions() as s:
        try:
            yield s
        finally:
            try:
                s.rollback()
            except DBAPIError as exc:
                # This runs after the answer was sent: a database that went away since then
                # is not the request's error (raising here dropped the client's connection).
                log.warning("rollback after a request failed: %s", exc.__class__.__name__)


def principal(request: Request, svc: Annotated[Services, Depends(services)],
              authorization: Annotated[str | None, Header(
                  description="Bearer <API key>")] = None) -> Principal:
    """The caller, authenticated and counted by :class:`~..gatekeeper.KeyCheck` before the
    body was read (here only for routes it does not cover)."""
    who = getattr(request.state, "principal", None)
    if who is None:
        with svc.db.sessions() as s:
            who = authenticate(s, authorization)
        svc.rate.check(who.key_id)
        request.state.principal = who
    return who


def roles(*allowed: str):
    """A dependency that lets only the given roles through (403 for the others)."""

    def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
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
