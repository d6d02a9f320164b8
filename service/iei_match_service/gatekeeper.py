"""The key check, before anything else is done for a request.

An ASGI middleware authenticates every API request from its headers alone, before its body
is read and before it is admitted to a ranking, then counts it against its key's rate
limit; only then does the request reach the app. A request without a valid key costs a
header parse (and at most one indexed lookup); failures are counted per client address,
and an address past ``auth_failures_per_minute`` gets 429 for its keyless or malformed
requests at once. A refusal for a crossed rate limit (of an address or a key) is sent
after a pause of up to ``TARPIT_S``: a flooding client then waits on its own connections
instead of making the service parse thousands of requests a second, which on a small
machine took the CPU from everyone else's rankings. The principal found is left in
``request.state.principal``. A small write then waits for its turn
(:class:`~.limits.WriteSlots`).
"""

from __future__ import annotations

import asyncio
import json
import logging

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool

from .auth import Principal, authenticate
from .errors import Forbidden, RateLimited, ServiceError, Unauthorized, Unavailable, body

log = logging.getLogger("iei_match_service")
API_PREFIX = "/api/v1/"
TARPIT_S = 1.0
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Requests with those methods that are not small writes (:class:`~.limits.WriteSlots`): a
# ranking, uploads (bounded by their own slots), batch submissions (which read the
# alliance's tables into the job's files), models activated or retrained (an admin's; an
# activation prepares the tables for the new model first).
NOT_SMALL_WRITES = ("/api/v1/match", "/api/v1/imports/", "/api/v1/batch", "/api/v1/models")


async def send_error(send, err: ServiceError) -> None:
    """``err`` as the app's error handlers would answer it."""
    headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store"),
               (b"x-content-type-options", b"nosniff")]
    if err.status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    if err.status == 429 and "retry_after" in err.extra:
        headers.append((b"retry-after", str(err.extra["retry_after"]).encode()))
    data = json.dumps(body(err.code, err.message, **err.extra)).encode()
    headers.append((b"content-length", str(len(data)).encode()))
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def _refuse(send, err: ServiceError) -> None:
    """``err`` sent, after a pause when a rate limit was crossed (``TARPIT_S``)."""
    if isinstance(err, RateLimited):
        await asyncio.sleep(min(TARPIT_S, float(err.extra.get("retry_after", 1))))
    await send_error(send, err)


async def _turn(svc, send) -> bool:
    """Wait for a write turn (:class:`~.limits.WriteSlots`); False, the 503 sent, when
    none came in time."""
    try:
        await svc.writes.acquire()
    except Unavailable as err:
        await send_error(send, err)
        return False
    return True


async def _whole_body(receive):
    """Read a request's body now (``BodyLimit``, outside, bounds it); returns a
    ``receive`` that hands the app the same messages, then the connection's."""
    messages = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break

    async def replay():
        return messages.pop(0) if messages else await receive()

    return replay


def _well_formed(header: str | None) -> bool:
    if not header:
        return False
    scheme, _, key = header.partition(" ")
    parts = key.strip().split("_")
    return scheme.lower() == "bearer" and len(parts) >= 3 and parts[0] == "iem"


class KeyCheck:
    """Authenticate API requests (and ``/metrics`` unless it is public) before the app."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        svc = getattr(scope["app"].state, "services", None)
        metrics = path == "/metrics" and svc is not None and not svc.settings.metrics_public
        if svc is None or not (path.startswith(API_PREFIX) or metrics):
            return await self.app(scope, receive, send)
        address = (scope.get("client") or ("unknown",))[0]
        header = None
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        if not _well_formed(header):
            refused = svc.auth_failures.exhausted(address)
            if refused is not None:
                return await _refuse(send, refused)
        write = scope["method"] in WRITES and not path.startswith(NOT_SMALL_WRITES)
        if not write:
            who = await self._checked(svc, header, address, metrics)
            if not isinstance(who, Principal):
                return await _refuse(send, who)
            scope.setdefault("state", {})["principal"] = who
            return await self.app(scope, receive, send)
        # A small write takes a turn for its key check (a thread and a connection), then,
        # once its whole body is here, another for its work: a client that sends its body
        # slowly holds no turn.
        if not await _turn(svc, send):
            return None
        try:
            who = await self._checked(svc, header, address, metrics)
        finally:
            svc.writes.release()
        if not isinstance(who, Principal):
            return await _refuse(send, who)  # after the turn is given back
        scope.setdefault("state", {})["principal"] = who
        replay = await _whole_body(receive)
        if not await _turn(svc, send):
            return None
        try:
            return await self.app(scope, replay, send)
        finally:
            svc.writes.release()

    @staticmethod
    async def _checked(svc, header: str | None, address: str,
                       metrics: bool) -> Principal | ServiceError:
        """The key's principal, or why the request is refused."""
        try:
            try:
                who: Principal = await run_in_threadpool(KeyCheck._authenticate, svc, header)
            except Unauthorized:
                svc.auth_failures.check(address)  # 429 once the address is past its budget
                raise
            if metrics and not who.is_admin:
                raise Forbidden("the metrics need an admin key")
            return who
        except ServiceError as err:
            return err

    @staticmethod
    def _authenticate(svc, header: str | None) -> Principal:
        """The key's principal, counted by the key's rate limit (in the database when it is
        shared, hence here, off the event loop); a database that does not answer is a 503,
        as in the app."""
        try:
            with svc.db.engine.connect() as conn:  # one read: no ORM session is needed
                who = authenticate(conn, header)
            svc.rate.check(who.key_id)
            return who
        except DBAPIError as exc:
            log.warning("database error: %s", exc.__class__.__name__)
            raise Unavailable("the database is not answering; retry",
                              code="database_unavailable") from None
        except PoolTimeout:
            log.warning("no database connection was free in time")
            raise Unavailable("the service is busy; retry shortly", code="overloaded") from None
