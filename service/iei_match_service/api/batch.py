"""Coordinators' batch jobs: submit (stored data or two uploaded files), then fetch results.

Progress and cancellation are the job routes' (``/api/v1/jobs/{id}``, ``.../cancel``).
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Annotated, Literal

import pandas as pd
from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import Response

from iei_match.io import EXTENSIONS, write_table

from ..auth import Principal
from ..batch_jobs import PLOTS, RESULTS, from_database, from_files, job_dir, submit
from ..db.tables import Job
from ..errors import Conflict, Invalid, NotFound
from ..schemas import BatchIn, JobOut
from .deps import IdempotencyKey, PathId, ServicesDep, SessionDep, roles
from .models import find_job

router = APIRouter(prefix="/api/v1", tags=["batch jobs"])
Steward = Annotated[Principal, Depends(roles("coordinator", "admin"))]
FORMATS = {"csv": "text/csv; charset=utf-8",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
           "parquet": "application/vnd.apache.parquet"}
NOT_FINISHED = {409: {"description": "The job has not succeeded (yet)",
                      "content": {"application/json": {
                          "schema": {"$ref": "#/components/schemas/Error"}}}}}
FILE = {"schema": {"type": "string", "format": "binary"}}
RESULT_RESPONSES = {200: {"description": "A page of rows (JSON) or the whole table as a file",
                          "content": {
                              "application/json": {"schema": {
                                  "type": "object", "required": ["total", "offset", "items"],
                                  "properties": {
                                      "total": {"type": "integer"},
                                      "offset": {"type": "integer"},
                                      "items": {"type": "array",
                                                "items": {"type": "object"}}}}},
                              **{media.split(";")[0]: FILE for media in FORMATS.values()}}},
                    **NOT_FINISHED}
PLOT_RESPONSES = {200: {"description": "The gap heatmap",
                        "content": {media.split(";")[0]: FILE for media in PLOTS.values()}},
                  **NOT_FINISHED}


@router.post("/batch", status_code=202, response_model=JobOut,
             summary="Score every need of the alliance against every program, then allocate")
def start(body: BatchIn, who: Steward, svc: ServicesDep, s: SessionDep,
          idempotency_key: IdempotencyKey = None):
    inputs = from_database(s, who)
    job_id = submit(svc, who, inputs, body.model_dump(), idempotency_key=idempotency_key)
    return s.get(Job, job_id)


def _save(upload: UploadFile, tmp: Path, stem: str) -> tuple[Path, str]:
    # Only the extension of the client's file name is used; the name never becomes a path.
    name = Path((upload.filename or stem).replace("\\", "/")).name[:100] or stem
    suffix = Path(name).suffix.lower()
    if suffix not in EXTENSIONS:
        raise Invalid(f"{stem}: the file must be one of {', '.join(EXTENSIONS)}; got "
                      f"{suffix or 'no extension'!r}", code="unsupported_file_type")
    path = tmp / f"{stem}{suffix}"
    with open(path, "wb") as out:
        while chunk := upload.file.read(1 << 20):
            out.write(chunk)
    return path, name


@router.post("/batch/upload", status_code=202, response_model=JobOut,
             summary="Score two uploaded tables (needs, programs: CSV, XLSX or Parquet)")
def start_upload(who: Steward, svc: ServicesDep, s: SessionDep,
                 needs: Annotated[UploadFile, File(description="needs: need_id, title, text, "
                                                   "headcount, ...")],
                 programs: Annotated[UploadFile, File(description="programs: program_id, "
                                                      "title, text, graduates_per_year, ...")],
                 top_k: Annotated[int, Form(ge=1, le=100)] = 10,
                 allocate: Annotated[bool, Form()] = True,
                 min_score: Annotated[float | None, Form(ge=-1e6, le=1e6)] = None,
                 min_fit: Annotated[float | None, Form(ge=0, le=1)] = None,
                 max_partners_per_college: Annotated[int | None, Form(ge=1, le=100_000)] = None,
                 idempotency_key: IdempotencyKey = None):
    with tempfile.TemporaryDirectory(prefix="iei-batch-") as tmp:
        n_path, n_name = _save(needs, Path(tmp), "needs")
        p_path, p_name = _save(programs, Path(tmp), "programs")
        inputs = from_files(n_path, n_name, p_path, p_name, allocate)
    params = {"top_k": top_k, "allocate": allocate, "min_score": min_score, "min_fit": min_fit,
              "max_partners_per_college": max_partners_per_college,
              "files": [n_name, p_name]}
    job_id = submit(svc, who, inputs, params, idempotency_key=idempotency_key)
    return s.get(Job, job_id)


def _finished_batch(s, who: Principal, job_id: int) -> Job:
    job = find_job(s, who, job_id)
    if job.kind != "batch":
        raise NotFound(f"job {job_id} is a {job.kind} job; it has no batch results")
    if job.state != "succeeded":
        raise Conflict(f"job {job_id} is {job.state}; results are there once it has "
                       "succeeded", code="job_not_finished")
    return job


@router.get("/jobs/{job_id}/results/{name}", responses=RESULT_RESPONSES,
            summary="A finished batch job's result table: JSON (paged) or a file to download")
def result(job_id: PathId, name: Literal["scores", "partners", "allocation", "unmet", "gap"],
           who: Annotated[Principal, Depends(roles("coordinator", "admin"))], s: SessionDep,
           svc: ServicesDep,
           format: Annotated[Literal["json", "csv", "xlsx", "parquet"], Query()] = "json",
           limit: Annotated[int, Query(ge=1, le=1000)] = 100,
           offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0):
    job = _finished_batch(s, who, job_id)
    path = job_dir(svc.settings, job.id) / f"{name}.parquet"
    if name not in (job.result or {}).get("results", []) or not path.is_file():
        raise NotFound(f"job {job_id} has no {name!r} result ({RESULTS[name]})")
    table = pd.read_parquet(path)
    if format == "json":
        page = table.iloc[offset:offset + limit].astype(object)
        page = page.where(pd.notna(page), None)
        return {"total": len(table), "offset": offset, "items": page.to_dict("records")}
    with tempfile.TemporaryDirectory(prefix="iei-export-") as tmp:
        out = Path(tmp) / f"{name}.{format}"
        write_table(table, out)  # CSV/XLSX: formula-looking cells are neutralised
        data = out.read_bytes()
    filename = f"iei-match-job-{job.id}-{name}.{format}"
    return Response(io.BytesIO(data).getvalue(), media_type=FORMATS[format],
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/jobs/{job_id}/plots/{name}", responses=PLOT_RESPONSES, response_class=Response,
            summary="A finished batch job's gap heatmap")
def plot(job_id: PathId, name: Literal["gap.png", "gap.html"],
         who: Annotated[Principal, Depends(roles("coordinator", "admin"))], s: SessionDep,
         svc: ServicesDep):
    job = _finished_batch(s, who, job_id)
    path = job_dir(svc.settings, job.id) / name
    if not path.is_file():
        raise NotFound(f"job {job_id} has no gap report (its inputs lack headcounts or "
                       "graduates per year)")
    headers = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}
    return Response(path.read_bytes(), media_type=PLOTS[name], headers=headers)
