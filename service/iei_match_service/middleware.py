"""ASGI middleware: request-body limits and request metrics."""

from __future__ import annotations

import json
import time

from starlette.exceptions import HTTPException

from .errors import body

UPLOAD_PATHS = ("/api/v1/imports/", "/api/v1/batch/upload")  # bodies that carry files


async def _send_json(send, status: int, payload: dict) -> None:
    data = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


class BodyLimit:
    """Refuse bodies over the limit with 413 before the app reads them.

    The declared Content-Length is checked first; a body sent without one (chunked) is
    counted as it streams and cut off at the limit.
    """

    def __init__(self, app, max_body: int, max_upload: int):
        self.app, self.max_body, self.max_upload = app, max_body, max_upload

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.max_upload if scope["path"].startswith(UPLOAD_PATHS) else self.max_body
        too_big = body("payload_too_large", f"the request body is larger than {limit} bytes")
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return await _send_json(send, 400, body("bad_request",
                                                            "Content-Length is not a number"))
                if declared > limit:
                    return await _send_json(send, 413, too_big)
        seen = 0
        started = False

        async def counting_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _send_json(send, 413, too_big)


class _TooLarge(HTTPException):
    """Raised while a body streams in past the limit. An HTTPException, so that the framework,
    which turns any other error while reading a body into a 400 "error parsing the body",
    lets it through to the 413 handler."""

    def __init__(self, limit: int):
        super().__init__(413, f"the request body is larger than {limit} bytes")


class RequestMetrics:
    """Count requests and time them per route template (not per raw path)."""

    def __init__(self, app, metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = {"code": 500}

        async def capture(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        t0 = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, capture)
        finally:
            self.metrics.in_flight.dec()
            route = scope.get("route")
            name = getattr(route, "path", "unmatched")
            self.metrics.latency.labels(scope["method"], name).observe(
                time.perf_counter() - t0)
            self.metrics.requests.labels(scope["method"], name, str(status["code"])).inc()


class SecurityHeaders:
    """``X-Content-Type-Options: nosniff`` on every response, and ``Cache-Control:
    no-store`` on JSON (API answers hold an organisation's data: no shared cache may keep
    them) unless a route set its own."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def add(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {n.lower() for n, _ in headers}
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                media = dict(headers).get(b"content-type", b"")
                if media.startswith(b"application/json") and b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, add)
