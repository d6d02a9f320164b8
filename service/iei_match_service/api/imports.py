"""Bulk import through the API: one uploaded file, all rows or none."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, UploadFile

from ..imports import import_file
from ..schemas import MAX_ID, ImportReport
from ..uploads import client_name, save, upload_dir
from .deps import Caller, ServicesDep, SessionDep

router = APIRouter(prefix="/api/v1", tags=["import"])


@router.post("/imports/{kind}", status_code=201, response_model=ImportReport,
             summary="Import needs, programs, training bases or organisations from CSV/XLSX")
def upload(kind: Literal["needs", "programs", "bases", "organizations"], who: Caller,
           s: SessionDep, svc: ServicesDep,
           file: Annotated[UploadFile, File(description="CSV, XLSX or Parquet")],
           org_id: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None):
    display, suffix = client_name(file, "upload")
    settings = svc.settings
    with svc.uploads.slot(who.key_id), upload_dir("iei-import-") as tmp:
        path = save(file, Path(tmp), "upload", suffix)
        ids = import_file(s, who, kind, path, display_name=display, default_org=org_id,
                          limits=settings.read_limits, quota=settings.max_rows_per_org)
    s.commit()
    return {"kind": kind, "created": len(ids), "ids": ids}
