"""Liveness and readiness (no key needed), and metrics (an admin key, unless
``IEI_MATCH_METRICS_PUBLIC``; checked by :class:`~..gatekeeper.KeyCheck`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from ..db.engine import ping
from .deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process answers")
async def healthz() -> dict:
    # On the event loop, not a worker thread: it answers while every thread is busy.
    return {"status": "ok"}


@router.get("/readyz", summary="The database answers and a model is live",
            responses={503: {"description": "Not ready: the database or the model is not "
                                            "available (same body, which says which)"}})
def readyz(svc: ServicesDep):
    checks = {"database": "ok", "model": "ok"}
    try:
        ping(svc.db.engine)
    except SQLAlchemyError:
        checks["database"] = "unavailable"
    if not svc.models.ready:
        checks["model"] = "loading" if svc.models.last_error is None else "unavailable"
    else:
        checks["model_version"] = svc.models.live().version
        if svc.models.fallback_from is not None:  # still ready: it serves a verified model
            checks["model_note"] = (f"the version CURRENT names ({svc.models.fallback_from}) "
                                    "was refused; serving the newest published version "
                                    "that loads")
    ok = checks["database"] == "ok" and checks["model"] == "ok"
    return JSONResponse({"status": "ready" if ok else "not ready", **checks},
                        status_code=200 if ok else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
def metrics(request: Request, svc: ServicesDep,
            authorization: Annotated[str | None, Header(
                description="Bearer <admin key>, unless IEI_MATCH_METRICS_PUBLIC is set")
            ] = None) -> Response:
    m = request.app.state.metrics
    m.model_ready.set(1 if svc.models.ready else 0)
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
