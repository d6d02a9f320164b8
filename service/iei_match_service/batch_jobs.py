"""A coordinator's batch job: score every need against every program, allocate, report gaps.

The inputs are the needs and programs of the coordinator's alliance in the database, or two
uploaded files. The job runs :func:`iei_match.batch.run_batch` (on Dask: a local cluster by
default, or the one ``IEI_MATCH_BATCH_SCHEDULER`` names) with the live model, then
:func:`iei_match.allocation.allocate` and :func:`iei_match.gap.gap_report`. Every result is
a Parquet file in the job's directory, served as JSON, CSV, XLSX or Parquet.

All of that (:func:`compute`) runs in a child process of the service at a lower CPU
priority (``IEI_MATCH_BATCH_NICE``, see :mod:`.batch_process`), so that a job does not take
the GIL or the cores from interactive requests; the service's job thread follows it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from iei_match.allocation import allocate
from iei_match.artifacts import load_model
from iei_match.batch import BatchProgress, run_batch
from iei_match.bounded_read import ReadLimits
from iei_match.errors import DataFileError, DataLimitError, JobCancelledError
from iei_match.gap import gap_report
from iei_match.gap_plot import write_gap_plot
from iei_match.inputs import whole_numbers
from iei_match.io import load_needs, load_programs, problems_error
from iei_match.reference import reference_majors

from .access import owners_in_reach
from .auth import Principal
from .batch_process import native_threads, run_in_child
from .db.tables import Need, Organization, Program
from .errors import Invalid
from .frames import NEED_PREFIX, PROGRAM_PREFIX, needs_frame, programs_frame
from .jobs import JobContext
from .settings import Settings

# name: (file, what it holds)
RESULTS = {
    "scores": "the best programs of every need (need_id, program_id, rank, score, reasons)",
    "partners": "the best needs of every program (program_id, need_id, rank, score, reasons)",
    "allocation": "who serves whom: need_id, program_id, assigned people, score",
    "unmet": "each need's headcount, people placed, unmet demand and why (no_fitting_program "
             "or capacity), with the national major that fits it best",
    "gap": "demand vs supply by program group and category x province x level; a need counts "
           "under the group of the national major that fits it best",
}
PLOTS = {"gap.png": "image/png", "gap.html": "text/html; charset=utf-8"}


@dataclass
class BatchInputs:
    """What a batch job scores: needs and programs as the engine's tables."""

    needs: pd.DataFrame
    programs: pd.DataFrame
    source: str
    notes: list[str]


def from_database(s: Session, who: Principal) -> BatchInputs:
    """The needs and programs owned by the organisations in reach of ``who``."""
    reach = owners_in_reach(s, who)
    need_stmt, prog_stmt = select(Need).order_by(Need.id), select(Program).order_by(Program.id)
    if reach is not None:
        need_stmt = need_stmt.where(Need.org_id.in_(reach))
        prog_stmt = prog_stmt.where(Program.org_id.in_(reach))
    needs, programs = s.scalars(need_stmt).all(), s.scalars(prog_stmt).all()
    if not needs or not programs:
        raise Invalid(f"the alliance has {len(needs)} needs and {len(programs)} programs; a "
                      "batch job needs at least one of each", code="nothing_to_score")
    names = dict(s.execute(select(Organization.id, Organization.name).where(
        Organization.id.in_({x.org_id for x in [*needs, *programs]}))).all())
    n = needs_frame(needs).assign(need_title=[x.title for x in needs],
                                  org_id=[x.org_id for x in needs],
                                  enterprise=[names.get(x.org_id, "") for x in needs])
    p = programs_frame(programs).assign(program_title=[x.title for x in programs],
                                        org_id=[x.org_id for x in programs],
                                        college=[names.get(x.org_id, "") for x in programs])
    notes = []
    unknown = p["graduates_per_year"].isna()
    if unknown.any():
        notes.append(f"{int(unknown.sum())} programs do not say how many graduates they have "
                     "a year: the allocation places no one there")
    p["graduates_per_year"] = p["graduates_per_year"].fillna(0).astype("int64")
    n["headcount"] = n["headcount"].fillna(0).astype("int64")
    return BatchInputs(n, p, "database", notes)


def from_files(needs_path: Path, needs_name: str, programs_path: Path, programs_name: str,
               allocate_too: bool, limits: ReadLimits | None = None) -> BatchInputs:
    """Load and check two uploaded tables (read under ``limits``); problems are reported
    with the client's names."""
    frames = []
    for path, name, load in ((needs_path, needs_name, load_needs),
                             (programs_path, programs_name, load_programs)):
        try:
            frames.append(load(path, limits))
        except DataLimitError as exc:
            raise DataLimitError(name, exc.message, row=exc.row, column=exc.column) from None
        except DataFileError as exc:
            raise problems_error(name, [dict(p) for p in exc.problems]) from None
    needs, programs = frames
    if allocate_too:
        for frame, name, column in ((needs, needs_name, "headcount"),
                                    (programs, programs_name, "graduates_per_year")):
            if column not in frame or frame[column].isna().all():
                raise problems_error(name, [{"row": None, "column": column, "message":
                                             f"the allocation needs a {column} column"}])
            whole_numbers(frame, column, name, " (the allocation counts people)")
    needs = needs.assign(need_title=needs["title"])
    programs = programs.assign(program_title=programs["title"])
    return BatchInputs(needs, programs, "upload", [])


def job_dir(settings: Settings, job_id: int) -> Path:
    return Path(settings.jobs_dir) / str(int(job_id))


WORK = "iei_match_service.batch_jobs:compute"  # what the job's process calls
INPUTS = "inputs"  # the job's needs and programs, as submitted (Parquet)
KEPT = (INPUTS, "work")  # what a resumed job reuses: its inputs and finished partitions


def run(ctx: JobContext, settings: Settings, model_dir: Path, inputs: BatchInputs,
        top_k: int, allocate_too: bool, min_score: float | None,
        max_partners_per_college: int | None, min_fit: float | None = None) -> dict:
    """The job's work, done by :func:`compute` in a child process at a lower priority;
    returns what the job's ``result`` shows."""
    out = job_dir(settings, ctx.job_id)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():  # what an earlier, interrupted attempt finished of the results
        if old.name not in KEPT:  # (its inputs and finished partitions are resumed from)
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    ctx.report(0.0, "scoring")
    work = {"out": str(out), "job_id": ctx.job_id, "model_dir": str(model_dir),
            "source": inputs.source, "notes": inputs.notes, "top_k": top_k,
            "allocate_too": allocate_too, "min_score": min_score,
            "max_partners_per_college": max_partners_per_college, "min_fit": min_fit,
            "catalog": settings.catalog, "scheduler": settings.batch_scheduler,
            "n_workers": settings.batch_workers}
    return run_in_child(ctx, WORK, work, nice=settings.batch_nice,
                        threads=native_threads(settings.batch_workers),
                        frames={"needs": inputs.needs, "programs": inputs.programs})


def compute(out: str, job_id: int, model_dir: str, needs: pd.DataFrame,
            programs: pd.DataFrame, source: str, notes: list[str], top_k: int,
            allocate_too: bool, min_score: float | None,
            max_partners_per_college: int | None, scheduler: str | None, n_workers: int,
            report: Callable[[float, str], None], cancelled: Callable[[], bool],
            min_fit: float | None = None, catalog: str = "cn-vocational") -> dict:
    """Score, allocate and report gaps into the directory ``out``; returns the job's
    ``result``.

    ``report(progress, message)`` tells how far it is; once ``cancelled()`` it stops with
    :class:`~iei_match.errors.JobCancelledError`.
    """
    out_dir, inputs = Path(out), BatchInputs(needs, programs, source, notes)

    def progress(p: BatchProgress) -> None:
        if not cancelled() and p.total:
            report(0.85 * p.done / p.total,
                   f"scoring: {p.done} of {p.total} partitions, {p.rows} rows")

    def step(progress: float, message: str) -> None:
        if cancelled():
            raise JobCancelledError(f"job {job_id} was cancelled")
        report(progress, message)

    batch = run_batch(model_dir, inputs.needs, inputs.programs, out_dir / "scores.parquet",
                      top_k, partners_output=out_dir / "partners.parquet",
                      job_id=f"service-job-{job_id}", work_dir=out_dir / "work",
                      scheduler=scheduler, n_workers=n_workers,
                      progress=progress, cancel=cancelled, cleanup=True)
    scores = pd.read_parquet(out_dir / "scores.parquet")
    result: dict = {"source": inputs.source, "needs": len(inputs.needs),
                    "programs": len(inputs.programs),
                    "rows": {"scores": batch.rows.get("need", 0),
                             "partners": batch.rows.get("program", 0)},
                    "seconds": round(batch.seconds, 2), "notes": inputs.notes,
                    "results": ["scores", "partners"]}
    _label(scores, inputs).to_parquet(out_dir / "scores.parquet", index=False)
    partners = out_dir / "partners.parquet"
    _label(pd.read_parquet(partners), inputs).to_parquet(partners, index=False)
    step(0.87, "reference majors")
    refs = reference_majors(load_model(model_dir), inputs.needs, catalog, k=1, same_level=True)
    refs = refs.rename(columns={"code": "reference_code", "title": "reference_title",
                                "fit": "reference_fit", "group_name": "reference_group"})
    ref_cols = ["reference_code", "reference_title", "reference_fit", "reference_group"]
    needs = inputs.needs.merge(refs[["need_id", *ref_cols]], on="need_id", how="left")
    if allocate_too:
        step(0.9, "allocating")
        plan, alloc = allocate(scores, inputs.needs, inputs.programs,
                               max_partners_per_college=max_partners_per_college,
                               min_score=min_score, min_fit=min_fit)
        _label(plan, inputs).to_parquet(out_dir / "allocation.parquet", index=False)
        unmet = alloc.unmet.merge(needs[["need_id", *ref_cols]], on="need_id", how="left")
        _label(unmet, inputs).to_parquet(out_dir / "unmet.parquet", index=False)
        result["allocation"] = {
            "objective": round(float(alloc.objective), 4), "assigned": int(alloc.assigned),
            "demand": int(alloc.demand), "supply": int(alloc.supply),
            "unmet": int(alloc.demand - alloc.assigned), "gini": round(float(alloc.gini), 4),
            "unmet_no_fitting_program": int(alloc.unmet.loc[
                alloc.unmet["reason"] == "no_fitting_program", "unmet"].sum()),
            "status": alloc.status, "pairs": int(alloc.pairs)}
        result["rows"].update(allocation=len(plan), unmet=len(alloc.unmet))
        result["results"] += ["allocation", "unmet"]
    if "headcount" in inputs.needs and "graduates_per_year" in inputs.programs and \
            not inputs.needs["headcount"].isna().any() and \
            not inputs.programs["graduates_per_year"].isna().any():
        step(0.95, "gap report")
        gap = gap_report(needs, inputs.programs, scores, min_score=min_score, catalog=catalog)
        gap.to_parquet(out_dir / "gap.parquet", index=False)
        write_gap_plot(gap, out_dir / "gap.png")
        write_gap_plot(gap, out_dir / "gap.html")
        result["rows"]["gap"] = len(gap)
        result["results"].append("gap")
    return result


def _label(table: pd.DataFrame, inputs: BatchInputs) -> pd.DataFrame:
    """``table`` with the titles (and owners) of the needs and programs it names.

    For a job over the database, ``need_id`` and ``program_id`` are the ids the API and the
    web page use (not the engine's ``db-need-<id>`` keys), and the owners' ids are columns of
    their own (``enterprise_id``, ``college_id``) beside their names.
    """
    out = table
    for frame, key, cols, owner in (
            (inputs.needs, "need_id", ("need_title", "enterprise"), "enterprise_id"),
            (inputs.programs, "program_id", ("program_title", "college"), "college_id")):
        if key not in out:
            continue
        frame = frame.assign(**{key: frame[key].astype(str)})
        if "org_id" in frame:
            frame = frame.assign(**{owner: frame["org_id"]})
            cols = (*cols, owner)
        cols = [c for c in cols if c in frame and c not in out]
        if cols:
            out = out.join(frame.set_index(key)[cols], on=key)
    if inputs.source == "database":
        out = out.assign(**{key: out[key].astype(str).str.removeprefix(prefix).astype("int64")
                            for key, prefix in (("need_id", NEED_PREFIX),
                                                ("program_id", PROGRAM_PREFIX))
                            if key in out})
    return out


def submission_key(kind: str, org_id: int, idempotency_key: str | None, *parts) -> str:
    """What identifies a submission: the client's ``Idempotency-Key`` if it sent one, else
    the job's kind, organisation and what it works on (``parts``)."""
    h = hashlib.sha256(f"{kind}\0{int(org_id)}\0".encode())
    if idempotency_key is not None:
        h.update(b"key\0" + idempotency_key.encode())
    else:
        for part in parts:
            h.update(part if isinstance(part, bytes) else
                     json.dumps(part, sort_keys=True, default=str).encode())
            h.update(b"\0")
    return h.hexdigest()


def _frame_digest(frame: pd.DataFrame) -> bytes:
    cells = frame.astype(str)  # lists and mixed types hash by their text
    return hashlib.sha256(json.dumps([list(cells.columns)]).encode() + pd.util.hash_pandas_object(
        cells, index=True).to_numpy().tobytes()).digest()


def submit(svc, who: Principal, inputs: BatchInputs, params: dict,
           work: Callable | None = None, idempotency_key: str | None = None) -> int:
    """Queue a batch job with the live model; returns its id (the id of the job already
    queued or running for an identical submission).

    The inputs are written into the job's directory (in the shared jobs directory) before
    the job can be claimed, so that any process of the service can run or resume it.
    """
    live = svc.models.live()  # 503 while the first model is still being trained
    params = {**params, "scope": "platform" if who.is_admin else "organisation",
              "source": inputs.source, "model_version": live.version,
              "needs": len(inputs.needs), "programs": len(inputs.programs),
              "notes": inputs.notes}
    key = submission_key("batch", who.org_id, idempotency_key, params,
                         _frame_digest(inputs.needs), _frame_digest(inputs.programs))

    def prepare(job_id: int) -> None:
        folder = job_dir(svc.settings, job_id) / INPUTS
        if folder.parent.exists():  # a job id used before (a database made anew)
            shutil.rmtree(folder.parent)
        folder.mkdir(parents=True)
        inputs.needs.to_parquet(folder / "needs.parquet")
        inputs.programs.to_parquet(folder / "programs.parquet")

    return svc.jobs.submit("batch", who.org_id, params, work, key=key, prepare=prepare)


def handler(settings: Settings, models_root: Path):
    """What runs a batch job from its row, in any process of the service."""
    def handle(ctx: JobContext, job) -> dict:
        p = job.params
        folder = job_dir(settings, job.id) / INPUTS
        if not folder.is_dir():
            raise FileNotFoundError(f"the inputs of job {job.id} are not in the jobs "
                                    "directory (IEI_MATCH_JOBS_DIR must be shared by every "
                                    "process of the service)")
        inputs = BatchInputs(pd.read_parquet(folder / "needs.parquet"),
                             pd.read_parquet(folder / "programs.parquet"), p["source"],
                             list(p.get("notes", [])))
        model_dir = Path(models_root) / p["model_version"]
        if not model_dir.is_dir():
            raise FileNotFoundError(f"model version {p['model_version']} is no longer there")
        return run(ctx, settings, model_dir, inputs, p["top_k"], p["allocate"],
                   p.get("min_score"), p.get("max_partners_per_college"), p.get("min_fit"))

    return handle
