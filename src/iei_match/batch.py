"""Batch scoring on Dask: every need against every program, resumable, in partitions.

:func:`run_batch` ranks the best ``top_k`` programs for every need (and the best ``top_k``
needs for every program) the way :meth:`Matcher.rank` and :meth:`Matcher.partners` do, with
the same scores and explanations, but split into partitions that Dask workers compute:

- needs are split into partitions of ``partition_size`` rows for the need direction, and
  programs for the program direction (a program's best needs are found among all needs, so
  its list is exactly the one ``partners`` gives);
- the model is shipped to every worker once, as the bytes of its artifact files (no
  pickle); the catalog side is prepared once and its arrays written to the job
  directory, which the workers of a local cluster map (those of a remote cluster prepare
  it once each);
- each finished partition is written atomically under ``WORK_DIR/JOB_ID/``
  (:class:`~iei_match.batch_store.JobStore`); a run with the same job id reuses them, so a
  job killed at any moment finishes, when started again, with every list exactly once;
- the outputs are assembled from the partitions, in input order, and written atomically
  in the format of their extension (.parquet, .csv, .xlsx).

Dask runs in this process by default (a local cluster of threads, or of processes with
``scheduler="processes"``), or on an existing cluster (``scheduler="tcp://HOST:PORT"`` or a
``distributed.Client``); the results are the same in every case.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import __version__
from .artifacts import data_fingerprint
from .batch_store import JobStore, plan_partitions
from .batch_worker import (
    ID_COLUMN,
    CatalogFiles,
    CatalogFrame,
    ModelPayload,
    forget,
    score_partition,
)
from .catalog_files import save_catalog
from .errors import DataFileError, InputError, JobCancelledError, JobConflictError
from .io import load_needs, load_programs, write_table
from .matcher import EXPLAIN_TOP, Matcher, _check_frame

__all__ = ["run_batch", "BatchProgress", "BatchResult", "DIRECTIONS", "default_outputs"]

DIRECTIONS = ("need", "program")
XLSX_MAX_ROWS = 1_048_575  # a worksheet's rows, less the header
_DEFAULT_PARTITION = 1000


@dataclass(frozen=True)
class BatchProgress:
    """Where a batch job stands; passed to the ``progress`` callback of :func:`run_batch`.

    Attributes
    ----------
    stage : {"running", "assembling", "done"}
    done, total : int
        Partitions finished (including those reused from an earlier run) and in all,
        over every direction of the job.
    rows : int
        Result rows in the finished partitions.
    reused : int
        Partitions found finished by an earlier run with the same job id.
    direction : str or None
        Direction of the partition that just finished (None for the first report and
        for the assembling and done stages).
    """

    stage: str
    done: int
    total: int
    rows: int
    reused: int
    direction: str | None = None


@dataclass
class BatchResult:
    """What :func:`run_batch` did.

    Attributes
    ----------
    job_id : str
    job_dir : Path
        The job directory (removed when ``cleanup=True``).
    outputs : dict of str to Path
        The file written for each direction.
    rows : dict of str to int
        Rows written for each direction.
    partitions : int
        Partitions in the job, over every direction.
    reused : int
        Partitions an earlier run had already finished.
    seconds : float
    """

    job_id: str
    job_dir: Path
    outputs: dict[str, Path] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    partitions: int = 0
    reused: int = 0
    seconds: float = 0.0


def default_outputs(output: str | os.PathLike, directions=DIRECTIONS,
                    partners_output: str | os.PathLike | None = None) -> dict[str, Path]:
    """The file each direction is written to.

    With one direction, ``output`` holds it. With both, ``output`` holds the need direction
    and ``partners_output`` (by default ``output``'s name with ``.partners`` before the
    extension) the program direction.

    Examples
    --------
    >>> {d: p.name for d, p in default_outputs("run.xlsx").items()}
    {'need': 'run.xlsx', 'program': 'run.partners.xlsx'}
    >>> {d: p.name for d, p in default_outputs("run.csv", ("program",)).items()}
    {'program': 'run.csv'}
    """
    output = Path(output)
    directions = _check_directions(directions)
    if len(directions) == 1:
        return {directions[0]: output}
    other = (Path(partners_output) if partners_output is not None
             else output.with_name(f"{output.stem}.partners{output.suffix}"))
    if other.resolve() == output.resolve():
        raise InputError("the need and the program directions cannot go to the same file")
    return {"need": output, "program": other}


def _check_directions(directions) -> tuple[str, ...]:
    if isinstance(directions, str):
        directions = (directions,)
    directions = tuple(dict.fromkeys(directions))
    if not directions or any(d not in DIRECTIONS for d in directions):
        raise InputError(f"directions must be 'need' and/or 'program', got {directions!r}")
    return directions


def _read(frame_or_path, kind: str) -> pd.DataFrame:
    if isinstance(frame_or_path, pd.DataFrame):
        frame = frame_or_path
    else:
        frame = (load_needs if kind == "need" else load_programs)(frame_or_path)
    return _check_frame(frame, ID_COLUMN[kind], f"{kind}s")


def _payload(model) -> ModelPayload:
    if isinstance(model, ModelPayload):
        return model
    if isinstance(model, Matcher):
        return ModelPayload.from_matcher(model)
    if isinstance(model, (str, os.PathLike)):
        return ModelPayload.from_directory(model)
    raise InputError(f"model must be a model directory or a fitted Matcher, got "
                     f"{type(model).__name__}")


def _check_output(path: Path) -> None:
    if path.suffix.lower() not in (".parquet", ".pq", ".csv", ".xlsx"):
        raise DataFileError(str(path), f"unsupported output type {path.suffix!r}; use "
                            f".parquet, .csv or .xlsx")
    if not path.parent.is_dir():
        raise DataFileError(str(path), "the output's directory does not exist")


def _cancelled(cancel) -> bool:
    if cancel is None:
        return False
    if hasattr(cancel, "is_set"):
        return bool(cancel.is_set())
    return bool(cancel())


def run_batch(model, needs, programs, output: str | os.PathLike, top_k: int = 10, *,
              directions=DIRECTIONS, partners_output: str | os.PathLike | None = None,
              job_id: str | None = None, work_dir: str | os.PathLike | None = None,
              scheduler=None, n_workers: int | None = None,
              partition_size: int = _DEFAULT_PARTITION, explain: int = EXPLAIN_TOP,
              min_fit: float | None = None,
              progress: Callable[[BatchProgress], None] | None = None, cancel=None,
              cleanup: bool = False) -> BatchResult:
    """Rank every need against every program (and back) on Dask, resumably.

    Parameters
    ----------
    model : path or Matcher
        A model directory or models root (its live version), or a fitted matcher. It is
        shipped to each worker once, as the bytes of its artifact files.
    needs, programs : DataFrame or path
        The tables (as :func:`~iei_match.io.load_needs` / ``load_programs`` return them),
        or CSV/XLSX/Parquet files that are loaded and checked with those functions.
    output : path
        Where the result goes; the extension chooses the format (.parquet, .csv, .xlsx).
        See :func:`default_outputs` for where each direction is written.
    top_k : int, default=10
        Programs per need, and needs per program.
    directions : sequence of {"need", "program"}, default=("need", "program")
        ``"need"``: the best programs of every need (columns ``need_id, program_id, rank,
        score, ...``, as ``iei-match rank``); ``"program"``: the best needs of every
        program (``program_id, need_id, rank, score, ...``, as ``iei-match partners``).
    partners_output : path, optional
        The program direction's file when both directions are run.
    job_id : str, optional
        Names the job directory. A run with the job id of an unfinished (or finished)
        job reuses its partitions; a job id used with other settings is refused. By
        default the id is derived from the model, the inputs and the settings, so running
        the same job again resumes it.
    work_dir : path, optional
        Where job directories are kept; default ``.iei-match-jobs`` beside the output.
    scheduler : None, "threads", "processes", str or distributed.Client
        ``None`` or ``"threads"``: a local Dask cluster of threads in this process;
        ``"processes"``: a local cluster of worker processes; ``"tcp://HOST:PORT"``: an
        existing cluster (its workers need iei-match installed); a Client: use it as is.
    n_workers : int, optional
        Threads or processes of a local cluster (default: the number of CPUs).
    partition_size : int, default=1000
        Needs (or programs) per partition.
    explain : int, default=5
        Rows of each list that get ``top_factors`` (SHAP); every row gets
        ``matched_terms``. 0 leaves both columns out.
    min_fit : float, optional
        Leave out pairs whose fit is below this (each list holds the best ``top_k`` of
        the others).
    progress : callable, optional
        Called with a :class:`BatchProgress` at the start, after each partition, and
        when assembling and done.
    cancel : threading.Event or callable, optional
        Checked after each partition; when set (or returning True) the job stops, keeping
        its finished partitions, and :class:`~iei_match.errors.JobCancelledError` is raised.
    cleanup : bool, default=False
        Remove the job directory once the outputs are written.

    Returns
    -------
    BatchResult

    Raises
    ------
    InputError, DataFileError
        Bad inputs or settings (before any work starts).
    JobConflictError
        The job id is in use by another run, or by a job with other settings.
    JobCancelledError
        ``cancel`` was set.
    """
    start = time.perf_counter()
    directions = _check_directions(directions)
    outputs = default_outputs(output, directions, partners_output)
    for path in outputs.values():
        _check_output(path)
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise InputError(f"top_k must be a whole number of at least 1, got {top_k!r}")
    if not isinstance(partition_size, int) or partition_size < 1:
        raise InputError(f"partition_size must be a whole number of at least 1, "
                         f"got {partition_size!r}")
    if not isinstance(explain, int) or explain < 0:
        raise InputError(f"explain must be a whole number of at least 0, got {explain!r}")
    if min_fit is not None and (isinstance(min_fit, bool) or not isinstance(
            min_fit, (int, float)) or not 0 <= min_fit <= 1):
        raise InputError(f"min_fit must be a number from 0 to 1, got {min_fit!r}")
    frames = {"need": _read(needs, "need"), "program": _read(programs, "program")}
    payload = _payload(model)
    settings = {
        "iei_match": __version__, "model": payload.digest, "top_k": top_k, "explain": explain,
        "min_fit": min_fit,
        "partition_size": partition_size,
        "needs": data_fingerprint(frames["need"]), "programs": data_fingerprint(frames["program"]),
    }
    if job_id is None:
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
        job_id = f"job-{digest[:16]}"
    store = JobStore(work_dir if work_dir is not None
                     else outputs[directions[0]].parent / ".iei-match-jobs", job_id)
    store.open(settings)
    try:
        plans = {d: plan_partitions(len(frames[d]), partition_size) for d in directions}
        result = BatchResult(job_id, store.path, partitions=sum(map(len, plans.values())))
        rows = _compute(store, plans, frames, payload, settings, scheduler, n_workers,
                        progress, cancel, result)
        _report(progress, "assembling", result, result.partitions, rows)
        for d in directions:
            table = _assemble(store, d, plans[d], frames[d], outputs[d])
            write_table(table, outputs[d])
            result.outputs[d], result.rows[d] = outputs[d], len(table)
    finally:
        store.close()
    if cleanup:
        store.remove()
    result.seconds = time.perf_counter() - start
    _report(progress, "done", result, result.partitions)
    return result


def _report(progress, stage: str, result: BatchResult, done: int, rows: int | None = None,
            direction: str | None = None) -> None:
    if progress is not None:
        rows = sum(result.rows.values()) if rows is None else rows
        progress(BatchProgress(stage, done, result.partitions, rows, result.reused, direction))


def _finished_rows(store: JobStore, direction: str, index: int) -> int | None:
    """Rows of a partition an earlier run finished, or None (an unreadable file is dropped)."""
    if not store.is_done(direction, index):
        return None
    try:
        return store.rows_in(direction, index)
    except Exception:  # a file cut short by a crash of the machine: compute it again
        store.partition_path(direction, index).unlink(missing_ok=True)
        return None


def _compute(store, plans, frames, payload, settings, scheduler, n_workers, progress, cancel,
             result: BatchResult) -> int:
    """Compute the partitions no earlier run finished; return the rows of all partitions."""
    todo, rows = [], 0
    for d, plan in plans.items():
        for i in range(len(plan)):
            found = _finished_rows(store, d, i)
            if found is None:
                todo.append((d, i))
            else:
                result.reused += 1
                rows += found
    done = result.reused
    _report(progress, "running", result, done, rows)
    if not todo:
        return rows
    if _cancelled(cancel):
        raise JobCancelledError(f"job {store.job_id!r} was cancelled before it started")
    # dask is imported only when there is work to do
    from .dask_runner import LOCAL_SCHEDULERS, DaskRunner

    frame_of = {"need": CatalogFrame(frames["program"], settings["programs"]),
                "program": CatalogFrame(frames["need"], settings["needs"])}
    catalog: dict[str, CatalogFrame | CatalogFiles] = dict(frame_of)
    if scheduler is None or (isinstance(scheduler, str) and scheduler in LOCAL_SCHEDULERS):
        # Workers on this machine map one preparation's files instead of each preparing
        # the catalog (a remote cluster's workers may not see this file system).
        catalog = {d: _write_catalog(payload, frame_of[d], d, store.path / f"catalog-{d}")
                   for d in plans}
    with _forgetting(), DaskRunner(scheduler, n_workers) as runner:
        payload_ref = runner.share(payload)
        catalog_refs = {d: runner.share(catalog[d]) for d in plans}

        def submit(task):
            d, i = task
            lo, hi = plans[d][i]
            return runner.submit(score_partition, payload_ref, catalog_refs[d],
                                 frames[d].iloc[lo:hi], d, settings["top_k"],
                                 settings["explain"], runner.task_threads,
                                 settings["min_fit"])

        for (d, i), frame in runner.run(todo, submit):
            store.write(d, i, frame)
            done += 1
            rows += len(frame)
            _report(progress, "running", result, done, rows, d)
            if _cancelled(cancel):
                raise JobCancelledError(f"job {store.job_id!r} was cancelled after {done} of "
                                        f"{result.partitions} partitions; run it again with "
                                        f"the same job id to resume")
    return rows


def _write_catalog(payload: ModelPayload, catalog: CatalogFrame, direction: str,
                   directory: Path) -> CatalogFiles:
    """Prepare the side ``direction`` searches once, here, and write it for the workers."""
    matcher = payload.load()
    kind = "program" if direction == "need" else "need"
    prepared = matcher.prepare(catalog.frame, kind)
    if directory.exists():  # left by an earlier run of the job
        shutil.rmtree(directory)
    save_catalog(prepared, directory, matcher.memory_.reach(prepared.side, kind))
    return CatalogFiles(str(directory), catalog.key)


@contextmanager
def _forgetting():
    """Free, when the job ends, what in-process workers (threads) kept in this process."""
    try:
        yield
    finally:
        forget()


def _assemble(store: JobStore, direction: str, plan, frame: pd.DataFrame,
              output: Path) -> pd.DataFrame:
    """The partitions of one direction, in input order, checked: each list comes from its
    own partition only, and no pair appears twice."""
    id_col, other = ID_COLUMN[direction], ID_COLUMN["program" if direction == "need" else "need"]
    parts = []
    for i, (lo, hi) in enumerate(plan):
        part = store.read(direction, i)
        expected = set(frame[id_col].iloc[lo:hi])
        if len(part) and not set(part[id_col].astype(str)) <= expected:
            raise JobConflictError(f"{store.partition_path(direction, i)} holds rows of "
                                    f"another partition; remove {store.path} and run again")
        parts.append(part)
    table = pd.concat(parts, ignore_index=True)
    if table.duplicated([id_col, other]).any():
        raise JobConflictError(f"the partitions of job {store.job_id!r} repeat a pair; "
                                f"remove {store.path} and run again")
    if output.suffix.lower() == ".xlsx" and len(table) > XLSX_MAX_ROWS:
        raise DataFileError(str(output), f"{len(table):,} rows do not fit in an XLSX sheet "
                            f"({XLSX_MAX_ROWS:,} at most): write .parquet or .csv (the "
                            f"finished partitions are kept; rerun with the same job id)")
    return table
