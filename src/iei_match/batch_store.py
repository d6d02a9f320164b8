"""The directory of one batch job: its settings, one file per finished partition, the lock.

Layout::

    WORK_DIR/JOB_ID/
      job.json                 the settings the partitions were computed with
      job.lock                 held (flock) by the run in progress
      need/part-00000.parquet  top-k programs of the needs of partition 0
      program/part-00000.parquet   top-k needs of the programs of partition 0

A partition file is written to a temporary name and renamed into place (``os.replace``),
so it is either absent or complete, whenever the process is killed. A run that finds a
job directory reuses the partitions it holds, provided ``job.json`` records the same
settings; otherwise it refuses the job id (:class:`~iei_match.errors.JobConflictError`).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from .errors import InputError, JobConflictError
from .io import write_table

try:  # POSIX; elsewhere two runs of one job are not kept apart
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = ["JobStore", "plan_partitions"]

_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
JOB_FILE = "job.json"
LOCK_FILE = "job.lock"


def plan_partitions(n_rows: int, size: int) -> list[tuple[int, int]]:
    """Split ``n_rows`` rows, in order, into ``[start, stop)`` ranges of at most ``size``.

    Examples
    --------
    >>> plan_partitions(5, 2)
    [(0, 2), (2, 4), (4, 5)]
    """
    return [(start, min(start + size, n_rows)) for start in range(0, n_rows, size)]


class JobStore:
    """Partition results of one job, on disk, written atomically.

    Parameters
    ----------
    work_dir : path
        Where job directories are kept.
    job_id : str
        Letters, digits, ``.``, ``_`` and ``-`` (at most 128, not starting with a dot).
    """

    def __init__(self, work_dir: str | os.PathLike, job_id: str):
        if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
            raise InputError(f"a job id is 1-128 letters, digits, '.', '_' or '-', not starting "
                             f"with '.' or '-'; got {job_id!r}")
        self.job_id = job_id
        self.path = Path(work_dir) / job_id
        self._lock_fd: int | None = None

    # ------------------------------------------------------------------ lifecycle
    def open(self, settings: dict) -> None:
        """Create the job directory, or check that it was made with the same ``settings``.

        Takes the job's lock and removes temporary files a killed run left behind.

        Raises
        ------
        JobConflictError
            The job id is in use by another running process, or by a job with other settings.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock()
        job_file = self.path / JOB_FILE
        if job_file.is_file():
            try:
                recorded = json.loads(job_file.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                recorded = None
            if recorded != json.loads(json.dumps(settings)):
                changed = sorted(k for k in settings if (recorded or {}).get(k) != settings[k])
                self.close()
                raise JobConflictError(
                    f"job {self.job_id!r} in {self.path.parent} was run with other "
                    f"{', '.join(changed) or 'settings'}; use another job id (or remove "
                    f"{self.path}) to start afresh")
        else:
            _write_atomic(job_file, json.dumps(settings, indent=2).encode("utf-8"))
        for stale in self.path.glob("*/.part-*"):
            stale.unlink(missing_ok=True)

    def _lock(self) -> None:
        if fcntl is None:
            return
        fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise JobConflictError(f"job {self.job_id!r} is running in another process "
                                   f"({self.path})") from None
        self._lock_fd = fd

    def close(self) -> None:
        """Release the job's lock."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def remove(self) -> None:
        """Delete the job directory (after its outputs are written)."""
        self.close()
        for part in sorted(self.path.rglob("*"), reverse=True):
            part.rmdir() if part.is_dir() else part.unlink()
        self.path.rmdir()

    # ------------------------------------------------------------------ partitions
    def partition_path(self, direction: str, index: int) -> Path:
        return self.path / direction / f"part-{index:05d}.parquet"

    def is_done(self, direction: str, index: int) -> bool:
        return self.partition_path(direction, index).is_file()

    def rows_in(self, direction: str, index: int) -> int:
        """Rows of a finished partition (read from the Parquet footer only)."""
        return pq.ParquetFile(self.partition_path(direction, index)).metadata.num_rows

    def write(self, direction: str, index: int, frame: pd.DataFrame) -> None:
        """Store a partition's result atomically (a temporary file, then ``os.replace``)."""
        path = self.partition_path(direction, index)
        path.parent.mkdir(exist_ok=True)
        write_table(frame, path)  # temp file ".part-...": a killed write is cleared on open

    def read(self, direction: str, index: int) -> pd.DataFrame:
        return pd.read_parquet(self.partition_path(direction, index))


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
