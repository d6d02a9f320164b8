"""Coordinators' batch jobs: submit (stored data or two uploaded files), then fetch results.

Progress and cancellation are the job routes' (``/api/v1/jobs/{id}``, ``.../cancel``).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Literal

import pandas as pd
import pyarrow.parquet as pq
from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from iei_match.batch import XLSX_MAX_ROWS
from iei_match.io import write_table

from ..auth import Principal
from ..batch_jobs import PLOTS, RESULTS, from_database, from_files, job_dir, submit
from ..db.tables import Job
from ..errors import Conflict, NotFound, PayloadTooLarge
from ..schemas import BatchIn, JobOut
from ..uploads import client_name, save, upload_dir
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
                    413: {"description": "More rows than an XLSX sheet holds: ask for CSV "
                                         "or Parquet",
                          "content": {"application/json": {
                              "schema": {"$ref": "#/components/schemas/Error"}}}},
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
    name, suffix = client_name(upload, stem)
    return save(upload, tmp, stem, suffix), name


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
    with svc.uploads.slot(who.key_id), upload_dir("iei-batch-") as tmp:
        n_path, n_name = _save(needs, tmp, "needs")
        p_path, p_name = _save(programs, tmp, "programs")
        inputs = from_files(n_path, n_name, p_path, p_name, allocate,
                            svc.settings.read_limits)
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
    filename = f"iei-match-job-{job.id}-{name}.{format}"
    disposition = {"Content-Disposition": f'attachment; filename="{filename}"'}
    rows = pq.ParquetFile(path).metadata.num_rows
    if format == "json":
        page = pq.read_table(path).slice(offset, limit).to_pandas().astype(object)
        page = page.where(pd.notna(page), None)
        return {"total": rows, "offset": offset, "items": page.to_dict("records")}
    if format == "parquet":  # the stored file itself, streamed from disk
        return FileResponse(path, media_type=FORMATS[format], headers=disposition)
    if format == "xlsx" and rows > XLSX_MAX_ROWS:
        raise PayloadTooLarge(f"the {name} table has {rows:,} rows; an XLSX sheet holds "
                              f"{XLSX_MAX_ROWS:,} at most: download it as CSV or Parquet "
                              "(format=csv or format=parquet)", code="too_many_rows_for_xlsx")
    tmp = Path(tempfile.mkdtemp(prefix="iei-export-"))
    try:
        out = tmp / f"{name}.{format}"
        if format == "csv":
            _write_csv(path, out)
        else:
            write_table(pd.read_parquet(path), out)  # formula-looking cells are neutralised
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # Streamed from disk, and the file removed once sent (or the client went away).
    return FileResponse(out, media_type=FORMATS[format], headers=disposition,
                        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True))


def _write_csv(source: Path, out: Path) -> None:
    """``source`` (Parquet) as CSV, a batch of rows at a time (the whole table is never in
    memory); formula-looking cells are neutralised as :func:`write_table` does."""
    part = out.with_suffix(".part.csv")
    first = True
    for batch in pq.ParquetFile(source).iter_batches(batch_size=20_000):
        write_table(batch.to_pandas(), part)
        text = part.read_text(encoding="utf-8")
        with open(out, "a", encoding="utf-8", newline="") as f:
            f.write(text if first else text.split("\n", 1)[1])
        first = False
    part.unlink(missing_ok=True)
    if first:  # no rows: the header alone
        write_table(pq.read_table(source).to_pandas(), out)


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
