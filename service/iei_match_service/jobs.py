"""Background jobs (retraining, batch scoring) with their state kept in the database.

Jobs run one at a time in a worker thread, so an interactive request never waits for a CPU
that a job holds for long (the engine's own threads are capped by ``n_jobs``; the work of a
batch or retraining job runs in a child process at a lower priority, see
:mod:`.batch_process`). A job's
progress and result are rows in ``jobs``; a job that was running when the process died is
marked failed at the next start.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from sqlalchemy import update

from .db.engine import Database
from .db.tables import Job, utcnow

log = logging.getLogger("iei_match_service.jobs")


class Cancelled(Exception):
    """Raised inside a job whose cancellation was asked for."""


class JobFailed(Exception):
    """A job's work failed in another process; its message is what the job's row says
    (``"<error type>: <message>"``, as for a failure in this process)."""


class JobContext:
    """What a running job sees: ``report(progress, message)`` and ``cancelled``."""

    def __init__(self, runner: JobRunner, job_id: int):
        self.runner, self.job_id = runner, job_id

    @property
    def cancelled(self) -> bool:
        return self.job_id in self.runner._cancel

    def report(self, progress: float, message: str) -> None:
        """Record progress; raises :class:`Cancelled` if a cancel was asked for, unless the
        work reports that it is done (``progress >= 1``: what it did, e.g. a publish, has
        happened and the job must say so)."""
        if self.cancelled and progress < 1.0:
            raise Cancelled()
        self.runner._set(self.job_id, progress=max(0.0, min(1.0, progress)), message=message)


class JobRunner:
    def __init__(self, db: Database):
        self.db = db
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="iei-job")
        self._cancel: set[int] = set()
        self._futures: dict[int, Future] = {}
        self._lock = threading.Lock()

    def recover(self) -> int:
        """Mark jobs that a previous process left queued or running as failed."""
        with self.db.session() as s:
            res = s.execute(update(Job).where(Job.state.in_(("queued", "running")))
                            .values(state="failed", message="interrupted by a restart",
                                    updated_at=utcnow()))
            return res.rowcount or 0

    def _set(self, job_id: int, **values) -> None:
        with self.db.session() as s:
            s.execute(update(Job).where(Job.id == job_id).values(updated_at=utcnow(), **values))

    def submit(self, kind: str, org_id: int, params: dict,
               work: Callable[[JobContext], dict]) -> int:
        with self.db.session() as s:
            job = Job(kind=kind, org_id=org_id, params=params, state="queued")
            s.add(job)
            s.flush()
            job_id = job.id

        def run() -> None:
            ctx = JobContext(self, job_id)
            try:
                if ctx.cancelled:
                    raise Cancelled()
                self._set(job_id, state="running", message="started")
                result = work(ctx)
                self._set(job_id, state="succeeded", progress=1.0, result=result)
            except Cancelled:
                self._set(job_id, state="cancelled", message="cancelled on request")
            except Exception as exc:  # a job's failure is recorded, never lost
                log.exception("job %s failed", job_id)
                what = str(exc) if isinstance(exc, JobFailed) else f"{type(exc).__name__}: {exc}"
                self._set(job_id, state="failed", message=what[:2000])
            finally:
                self._cancel.discard(job_id)

        with self._lock:
            self._futures[job_id] = self.pool.submit(run)
        return job_id

    def cancel(self, job_id: int) -> None:
        self._cancel.add(job_id)

    def wait(self, job_id: int, timeout: float | None = None) -> None:
        fut = self._futures.get(job_id)
        if fut is not None:
            fut.result(timeout)

    def shutdown(self) -> None:
        for job_id in list(self._futures):
            self._cancel.add(job_id)
        self.pool.shutdown(wait=True, cancel_futures=True)
