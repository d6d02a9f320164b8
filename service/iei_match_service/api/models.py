"""Model versions, retraining and rollback; background jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from sqlalchemy import select

from iei_match.errors import ModelNotFoundError

from ..auth import Principal
from ..batch_jobs import submission_key
from ..db.tables import Job
from ..errors import Conflict, NotFound
from ..schemas import JobOut, RetrainIn
from .deps import Caller, IdempotencyKey, Limit, PathId, ServicesDep, SessionDep, roles

router = APIRouter(prefix="/api/v1", tags=["models and jobs"])
# One live model serves every alliance on the service: only platform admins change it.
Admin = Annotated[Principal, Depends(roles("admin"))]
Version = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,100}$")]


@router.get("/models", summary="Published model versions, their metrics, which is live")
def models(who: Caller, svc: ServicesDep) -> dict:
    return {"items": svc.models.versions()}


@router.post("/models/retrain", status_code=202, response_model=JobOut,
             summary="Retrain on the recorded outcomes; publish if not worse (or forced); "
                     "admins only")
def start_retrain(body: RetrainIn, who: Admin, svc: ServicesDep, s: SessionDep,
                  idempotency_key: IdempotencyKey = None):
    svc.models.live()  # 503 while the first model is still being trained
    params = {"force": body.force, "scope": "platform"}
    key = submission_key("retrain", who.org_id, idempotency_key, params)
    job_id = svc.jobs.submit("retrain", who.org_id, params, key=key)
    return s.get(Job, job_id)


@router.post("/models/{version}/activate",
             summary="Make a published version live (rollback); admins only")
def activate(version: Version, who: Admin, svc: ServicesDep) -> dict:
    try:
        live = svc.models.activate(version)
    except ModelNotFoundError:  # a 404 (not "no model is live"), without the server's paths
        raise NotFound(f"no model version {version!r}", code="model_not_found") from None
    return {"version": live.version, "live": True}


def visible(job: Job, who: Principal) -> bool:
    """Whether ``who`` may see ``job``: an admin every job; anyone else the jobs its own
    organisation started with a key of its own role's reach. A platform job (started by an
    admin, whose results may hold every alliance's rows) is an admin's only, whatever
    organisation the admin key belongs to."""
    if who.is_admin:
        return True
    return job.org_id == who.org_id and (job.params or {}).get("scope") != "platform"


def find_job(s, who: Principal, job_id: int) -> Job:
    """The job ``job_id`` if ``who`` may see it, else :class:`NotFound`."""
    job = s.get(Job, job_id)
    if job is None or not visible(job, who):
        raise NotFound(f"no job with id {job_id}")
    return job


@router.get("/jobs", summary="The caller's jobs, newest first")
def jobs(who: Caller, s: SessionDep, limit: Limit = 50) -> dict[str, list[JobOut]]:
    stmt = select(Job).order_by(Job.id.desc())
    if who.is_admin:
        rows = s.scalars(stmt.limit(limit)).all()
    else:
        rows = [j for j in s.scalars(stmt.where(Job.org_id == who.org_id)) if visible(j, who)]
    return {"items": [JobOut.model_validate(j) for j in rows[:limit]]}


@router.get("/jobs/{job_id}", response_model=JobOut, summary="A job's state and progress")
def job(job_id: PathId, who: Caller, s: SessionDep):
    return find_job(s, who, job_id)


@router.post("/jobs/{job_id}/cancel", response_model=JobOut, summary="Cancel a job")
def cancel(job_id: PathId, who: Caller, s: SessionDep, svc: ServicesDep):
    j = find_job(s, who, job_id)
    if j.state not in ("queued", "running"):
        raise Conflict(f"job {job_id} is {j.state}; only a queued or running job can be "
                       "cancelled")
    svc.jobs.cancel(job_id)
    s.refresh(j)
    return j
