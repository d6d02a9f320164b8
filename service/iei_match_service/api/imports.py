"""Bulk import through the API: one uploaded file, all rows or none."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, UploadFile

from iei_match.io import EXTENSIONS

from ..errors import Invalid
from ..imports import import_file
from ..schemas import MAX_ID, ImportReport
from .deps import Caller, SessionDep

router = APIRouter(prefix="/api/v1", tags=["import"])


@router.post("/imports/{kind}", status_code=201, response_model=ImportReport,
             summary="Import needs, programs, training bases or organisations from CSV/XLSX")
def upload(kind: Literal["needs", "programs", "bases", "organizations"], who: Caller,
           s: SessionDep, file: Annotated[UploadFile, File(description="CSV, XLSX or Parquet")],
           org_id: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None):
    # Only the extension of the client's file name is used; the name never becomes a path.
    suffix = Path((file.filename or "").replace("\\", "/")).suffix.lower()
    if suffix not in EXTENSIONS:
        raise Invalid(f"the file must be one of {', '.join(EXTENSIONS)}; got "
                      f"{suffix or 'no extension'!r}", code="unsupported_file_type")
    display = Path((file.filename or "upload").replace("\\", "/")).name[:100]
    with tempfile.TemporaryDirectory(prefix="iei-import-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        with open(path, "wb") as out:
            while chunk := file.file.read(1 << 20):
                out.write(chunk)
        ids = import_file(s, who, kind, path, display_name=display, default_org=org_id)
    s.commit()
    return {"kind": kind, "created": len(ids), "ids": ids}
