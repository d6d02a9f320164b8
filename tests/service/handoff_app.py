"""A tiny ASGI app for the handoff tests: each answer names the worker process that gave it
(``GET /pid``); ``GET /slow`` answers after half a second (a request in flight at a stop);
``HANDOFF_APP_STARTUP_S`` seconds of start-up in each worker."""

from __future__ import annotations

import asyncio
import json
import os


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            # A slow start (a model loading), when the test asks for one.
            await asyncio.sleep(float(os.environ.get("HANDOFF_APP_STARTUP_S", "0")))
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["path"] == "/slow":
        await asyncio.sleep(0.5)
    body = json.dumps({"pid": os.getpid()}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
