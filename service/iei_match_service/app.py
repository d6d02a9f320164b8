"""The FastAPI application: wiring, lifecycle, and the one place errors become HTTP."""

from __future__ import annotations

import logging
import math
import threading
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from tqdm.std import tqdm as std_tqdm

from iei_match import __version__
from iei_match.errors import IeiMatchError

from . import batch_jobs, retrain
from .api import batch, health, imports, matching, models, orgs, outcomes, resources
from .api.deps import Services
from .catalogs import Catalogs
from .db.engine import Database, upgrade
from .docs import install as install_docs
from .errors import ServiceError, body, from_engine, unreadable_body
from .gatekeeper import KeyCheck
from .housekeeping import start_housekeeping
from .jobs import JobRunner
from .limits import Gate, RateLimiter, SharedRateLimiter, WriteSlots
from .metrics import Metrics
from .middleware import BodyLimit, RequestMetrics, SecurityHeaders
from .model_host import LiveModel, ModelHost
from .openapi import install as install_openapi
from .reference import ReferenceMajors
from .retrain import train_first
from .settings import Settings
from .uploads import UploadSlots
from .web import install as install_web

log = logging.getLogger("iei_match_service")
HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 406: "not_acceptable", 413: "payload_too_large",
              415: "unsupported_media_type", 422: "invalid", 429: "rate_limited"}


def _error(status: int, code: str, message: str, **extra) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 429 and "retry_after" in extra:
        headers = {"Retry-After": str(max(1, math.ceil(extra["retry_after"])))}
    return JSONResponse(body(code, message, **extra), status_code=status, headers=headers)


def _validation_problems(exc: RequestValidationError) -> list[dict]:
    """Where and what, never the client's input echoed back."""
    out = []
    for err in exc.errors()[:20]:
        loc = [str(p) for p in err.get("loc", ())][:6]
        problem = {"location": ".".join(loc)[:200], "message": str(err.get("msg", ""))[:200],
                   "type": str(err.get("type", ""))[:50]}
        # The limit a value broke (a length or a bound), so that a page can say it in its
        # own language; never the value itself.
        limits = {k: v for k, v in (err.get("ctx") or {}).items()
                  if k in ("max_length", "min_length", "ge", "le", "gt", "lt")
                  and isinstance(v, (int, float))}
        if limits:
            problem["limits"] = limits
        out.append(problem)
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError):
        return _error(exc.status, exc.code, exc.message, **exc.extra)

    @app.exception_handler(IeiMatchError)
    async def engine_error(_: Request, exc: IeiMatchError):
        err = from_engine(exc)
        return _error(err.status, err.code, err.message, **err.extra)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError):
        return _error(422, "invalid", "the request is not valid",
                      problems=_validation_problems(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException):
        code = HTTP_CODES.get(exc.status_code, "http_error")
        detail = unreadable_body(exc) or (exc.detail if isinstance(exc.detail, str) else code)
        return _error(exc.status_code, code, detail[:300])

    @app.exception_handler(IntegrityError)
    async def integrity(_: Request, exc: IntegrityError):
        return _error(409, "conflict", "the change conflicts with the stored data")

    @app.exception_handler(OperationalError)
    @app.exception_handler(DBAPIError)
    async def database_down(_: Request, exc: DBAPIError):
        log.warning("database error: %s", exc.__class__.__name__)
        return _error(503, "database_unavailable", "the database is not answering; retry")

    @app.exception_handler(PoolTimeout)
    async def no_connection(_: Request, exc: PoolTimeout):
        # Every pooled database connection stayed busy for the pool's timeout (30 s).
        log.warning("no database connection was free in time")
        return _error(503, "overloaded", "the service is busy; retry shortly")

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception):
        log.exception("unexpected error")
        return _error(500, "internal", "an unexpected error occurred; it has been logged")


def _warm(svc: Services, live: LiveModel) -> None:
    """Prepare the stored tables and the reference catalog for ``live``'s model, before it
    replaces the live one."""
    svc.reference.warm(live)
    with svc.db.session() as s:
        svc.catalogs.warm(s, live)


def _start_model(svc: Services) -> None:
    """Load the live model, or train the first one in the background."""
    if svc.models.load_current() is not None:
        return
    # Training shows the engine's progress bars (tqdm), whose shared lock is by default a
    # multiprocessing semaphore: the resource tracker of several workers' supervisor then
    # reported it leaked when the service stopped. One process needs a thread lock only.
    std_tqdm.set_lock(threading.RLock())

    def train() -> None:
        svc.models.last_error = None
        try:
            with svc.models.first_training_turn():
                if svc.models.ready or svc.models.follow():
                    return  # another worker trained it while this one waited its turn
                log.info("no model yet: training the first one on the %s catalog",
                         svc.settings.catalog)
                train_first(svc.settings, svc.db, svc.models)
        except Exception as exc:  # recorded for /readyz
            svc.models.last_error = f"training the first model failed: {exc}"
            log.exception("training the first model failed")

    threading.Thread(target=train, name="iei-first-model", daemon=True).start()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service's ASGI application for ``settings`` (default: from the environment)."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        db = Database(settings.database_url)
        upgrade(db.engine)
        jobs = JobRunner(db, lease_s=settings.job_lease_s, attempts=settings.job_attempts)
        models = ModelHost(settings.models_dir)
        jobs.register("batch", batch_jobs.handler(settings, settings.models_dir))
        jobs.register("retrain", retrain.handler(settings, models))
        jobs.recover()
        rate = (SharedRateLimiter(settings.rate_limit_per_minute, db)
                if settings.shared_rate_limit and not settings.is_sqlite
                else RateLimiter(settings.rate_limit_per_minute))
        svc = Services(settings=settings, db=db, models=models, jobs=jobs, rate=rate,
                       catalogs=Catalogs(settings.catalog_refresh_s),
                       # Each worker computes its share of the rankings at once, and
                       # may queue as many as the whole service: a client's connections
                       # are not spread evenly over the workers.
                       gate=Gate(settings.rankings_per_worker, settings.queue_timeout_s,
                                 queue=2 * settings.max_concurrent_rankings),
                       auth_failures=RateLimiter(settings.auth_failures_per_minute,
                                                 "this address (failed authentication)"),
                       uploads=UploadSlots(settings.upload_parsers, settings.uploads_per_key,
                                           5 * settings.queue_timeout_s),
                       writes=WriteSlots(settings.writes_at_once, 5 * settings.queue_timeout_s),
                       reference=ReferenceMajors(settings.catalog))
        app.state.services = svc
        models.warm = partial(_warm, svc)
        _start_model(svc)
        models.watch(settings.model_poll_s)
        jobs.start()
        housekeeping = start_housekeeping(settings, db)
        try:
            yield
        finally:
            housekeeping.set()
            models.close()
            jobs.shutdown()
            db.dispose()

    app = FastAPI(title="iei-match", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None,
                  description="Match enterprise talent needs with college programs "
                              "(产教融合). Send `Authorization: Bearer <API key>`.")
    app.state.metrics = Metrics()
    install_error_handlers(app)
    install_openapi(app)
    for router in (health.router, orgs.router, resources.needs, resources.programs,
                   resources.bases, matching.router, outcomes.router, models.router,
                   imports.router, batch.router):
        app.include_router(router)
    install_web(app)
    app.add_middleware(KeyCheck)
    install_docs(app, "iei-match")
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    app.add_middleware(BodyLimit, max_body=settings.max_body_bytes,
                       max_upload=settings.max_upload_bytes)
    app.add_middleware(SecurityHeaders)
    return app
