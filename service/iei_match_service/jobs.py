"""Background jobs (retraining, batch scoring): a queue in the database that every process of
the service takes work from.

A job is a row in ``jobs``. A process *claims* a queued job (on PostgreSQL with
``SELECT ... FOR UPDATE SKIP LOCKED``, so that processes never wait for each other's claims;
the claim itself is a conditional ``UPDATE``, so that two processes never both win one job,
on SQLite too) by writing its lease: its own name in ``lease_owner`` and an expiry
``IEI_MATCH_JOB_LEASE_S`` ahead. While it works it renews the lease every third of that and
reads the job's ``cancel_requested`` flag, which any process sets for a cancel. When a
process dies (``kill -9``, a lost machine) its lease expires and another process claims the
job again and resumes it: the batch job keeps its finished partitions under its job id in
the shared jobs directory. A job is started at most ``IEI_MATCH_JOB_ATTEMPTS`` times. A
process that stops gracefully puts its running job back in the queue. Every write of a job's
progress or end is conditional on the lease, so a process that lost its lease (stalled past
the expiry) changes nothing of a job that another one has taken over.

Each process runs one job at a time in a worker thread, so an interactive request never
waits for a CPU that a job holds for long (the work of a batch or retraining job runs in a
child process at a lower priority, see :mod:`.batch_process`).

What a job does is found by its kind (:meth:`JobRunner.register`), so any process can run
any job from its row and the files beside it. ``submit`` also takes the work as a function,
for work that only this process can do (it is never claimed by another).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from .db.engine import Database
from .db.tables import Job, utcnow

log = logging.getLogger("iei_match_service.jobs")

ACTIVE = ("queued", "running")
FINISHED = ("succeeded", "failed", "cancelled")


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
        """Record progress; raises :class:`Cancelled` if a cancel was asked for (or the job
        was taken over by another process), unless the work reports that it is done
        (``progress >= 1``: what it did, e.g. a publish, has happened and the job must say
        so)."""
        if self.cancelled and progress < 1.0:
            raise Cancelled()
        if not self.runner._set(self.job_id, progress=max(0.0, min(1.0, progress)),
                                message=message) and progress < 1.0:
            raise Cancelled()  # another process has taken the job over


Handler = Callable[[JobContext, Job], dict]


class JobRunner:
    """Claims, runs, renews and ends jobs for one process of the service.

    Parameters
    ----------
    db : Database
    lease_s : float
        How long a claim lasts without renewal.
    poll_s : float
        How often an idle runner looks for work (a submit in this process wakes it at once).
    attempts : int
        Starts of a job before it is failed.
    """

    def __init__(self, db: Database, *, lease_s: float = 30.0, poll_s: float = 1.0,
                 attempts: int = 3):
        self.db, self.lease_s, self.poll_s, self.attempts = db, lease_s, poll_s, attempts
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._handlers: dict[str, Handler] = {}
        self._local: dict[int, Callable[[JobContext], dict]] = {}
        self._cancel: set[int] = set()  # jobs to stop: asked for, lost, or shutting down
        self._asked: set[int] = set()  # of those, the ones a client cancelled
        self._lost: set[int] = set()  # taken over by another process
        self._current: int | None = None
        self._wake, self._stop = threading.Event(), threading.Event()
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()

    # -- set-up ------------------------------------------------------------------------

    def register(self, kind: str, handler: Handler) -> None:
        """Run jobs of ``kind`` with ``handler(ctx, job)`` (``job``: the row, detached)."""
        self._handlers[kind] = handler

    def start(self) -> None:
        """Start taking work (the worker and the lease-renewal threads); idempotent."""
        with self._start_lock:
            if self._threads:
                return
            for target, name in ((self._loop, "iei-job"), (self._beat, "iei-job-lease")):
                t = threading.Thread(target=target, name=name, daemon=True)
                t.start()
                self._threads.append(t)

    def recover(self) -> int:
        """On SQLite (one process of the service), make the jobs a previous process left
        running claimable at once; they are resumed. On PostgreSQL nothing is done: a job
        that another live process holds is its own, and a dead process's lease expires."""
        if not self.db.url.startswith("sqlite"):
            return 0
        with self.db.session() as s:
            res = s.execute(update(Job).where(Job.state == "running")
                            .values(lease_expires_at=None, lease_owner=None,
                                    updated_at=Job.updated_at))
            return res.rowcount or 0

    # -- submitting and cancelling --------------------------------------------------------

    def submit(self, kind: str, org_id: int, params: dict,
               work: Callable[[JobContext], dict] | None = None, *, key: str | None = None,
               prepare: Callable[[int], None] | None = None) -> int:
        """Queue a job; returns its id.

        ``key`` identifies the submission: while a job with that key is queued or running,
        its id is returned instead of a new job. ``prepare(job_id)`` runs before the job
        is visible to any process (e.g. to write its inputs); if it raises, no job is made.
        ``work`` runs the job in this process only, instead of the kind's handler.
        """
        if key is not None:
            found = self._active(key)
            if found is not None:
                return found
        job_id = None
        try:
            with self.db.session() as s:
                job = Job(kind=kind, org_id=org_id, params=params, state="queued",
                          active_key=key)
                s.add(job)
                s.flush()
                job_id = job.id
                if work is not None:
                    self._local[job_id] = work
                if prepare is not None:
                    prepare(job_id)
        except IntegrityError:
            found = self._active(key) if key is not None else None
            if found is None:
                raise
            return found  # an identical submission won the race
        except BaseException:
            self._local.pop(job_id, None)
            raise
        self.start()
        self._wake.set()
        return job_id

    def _active(self, key: str) -> int | None:
        with self.db.session() as s:
            return s.scalar(select(Job.id).where(Job.active_key == key))

    def cancel(self, job_id: int) -> None:
        """Cancel a job: a queued one at once, a running one (in any process) at its
        owner's next lease renewal, within a second or so."""
        with self.db.session() as s:
            done = s.execute(update(Job).where(Job.id == job_id, Job.state == "queued").values(
                state="cancelled", message="cancelled on request", cancel_requested=True,
                active_key=None, updated_at=utcnow())).rowcount
            if not done:
                s.execute(update(Job).where(Job.id == job_id, Job.state == "running")
                          .values(cancel_requested=True, updated_at=Job.updated_at))
        if done:
            self._local.pop(job_id, None)
        if job_id == self._current or job_id in self._local:
            self._asked.add(job_id)
            self._cancel.add(job_id)

    def wait(self, job_id: int, timeout: float | None = None) -> str:
        """Wait until the job has ended (in any process); returns its state."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self.db.session() as s:
                state = s.scalar(select(Job.state).where(Job.id == job_id))
            if state is None or state in FINISHED:
                return state
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {state}")
            time.sleep(0.05)

    def shutdown(self) -> None:
        """Stop taking work; the running job is stopped and put back in the queue for
        another process (or the next start) to resume."""
        self._stop.set()
        if self._current is not None:
            self._cancel.add(self._current)
        self._wake.set()
        for t in self._threads:
            t.join(60)

    # -- the worker ------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self._claim()
            except Exception as exc:  # the database is away: look again later
                log.warning("looking for jobs failed: %s", exc.__class__.__name__)
                job = None
            if job is None:
                self._wake.wait(self.poll_s)
                self._wake.clear()
                continue
            self._run(job)

    def _claimable(self, now):
        return or_(Job.state == "queued",
                   and_(Job.state == "running",
                        or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < now)))

    def _claim(self) -> Job | None:
        kinds, local = list(self._handlers), list(self._local)
        if not kinds and not local:
            return None
        now = utcnow()
        claimable = self._claimable(now)
        with self.db.session() as s:
            row = s.execute(select(Job.id, Job.state, Job.attempts)
                            .where(claimable, or_(Job.kind.in_(kinds), Job.id.in_(local)))
                            .order_by(Job.id).limit(1)
                            .with_for_update(skip_locked=True)).first()
            if row is None:
                return None
            if row.attempts >= self.attempts:
                s.execute(update(Job).where(Job.id == row.id, claimable).values(
                    state="failed", lease_owner=None, lease_expires_at=None, active_key=None,
                    message=f"its process stopped {row.attempts} times while running it",
                    updated_at=now))
                self._wake.set()
                return None
            message = ("started" if row.state == "queued" else
                       f"resumed (attempt {row.attempts + 1}) after its process stopped")
            won = s.execute(update(Job).where(Job.id == row.id, claimable).values(
                state="running", lease_owner=self.owner,
                lease_expires_at=now + timedelta(seconds=self.lease_s),
                attempts=Job.attempts + 1, message=message, updated_at=now)).rowcount
            if won != 1:
                return None
            job = s.get(Job, row.id)
            s.flush()
            s.expunge(job)
        if row.state == "running":
            log.warning("job %s: resuming it, its previous process stopped", job.id)
        return job

    def _run(self, job: Job) -> None:
        job_id = job.id
        work = self._local.pop(job_id, None)
        handler = self._handlers.get(job.kind)
        self._current = job_id
        if job.cancel_requested:
            self._asked.add(job_id)
            self._cancel.add(job_id)
        ctx = JobContext(self, job_id)
        try:
            if ctx.cancelled:
                raise Cancelled()
            result = work(ctx) if work is not None else handler(ctx, job)  # type: ignore
            self._end(job_id, state="succeeded", progress=1.0, result=result)
        except Exception as exc:  # a job's failure is recorded, never lost
            if job_id in self._lost:
                log.warning("job %s was taken over by another process; this one stopped",
                            job_id)
            elif self._stop.is_set() and job_id not in self._asked and work is None:
                self._end(job_id, state="queued", message="stopped with its process; "
                          "it is resumed by another process or the next start")
            elif isinstance(exc, Cancelled) or (job_id in self._asked):
                self._end(job_id, state="cancelled", message="cancelled on request")
            else:
                log.exception("job %s failed", job_id)
                what = (str(exc) if isinstance(exc, JobFailed)
                        else f"{type(exc).__name__}: {exc}")
                self._end(job_id, state="failed", message=what[:2000])
        finally:
            self._current = None
            for held in (self._cancel, self._asked, self._lost):
                held.discard(job_id)

    def _mine(self, job_id: int):
        return and_(Job.id == job_id, Job.lease_owner == self.owner, Job.state == "running")

    def _set(self, job_id: int, **values) -> bool:
        """Record progress of a job this process holds; False (and the job is stopped) if
        another process has taken it over."""
        with self.db.session() as s:
            ok = s.execute(update(Job).where(self._mine(job_id))
                           .values(updated_at=utcnow(), **values)).rowcount == 1
        if not ok:
            self._lost_lease(job_id)
        return ok

    def _end(self, job_id: int, state: str, **values) -> None:
        active = {} if state == "queued" else {"active_key": None}
        with self.db.session() as s:
            s.execute(update(Job).where(self._mine(job_id)).values(
                state=state, lease_owner=None, lease_expires_at=None, updated_at=utcnow(),
                **active, **values))

    def _lost_lease(self, job_id: int) -> None:
        if job_id not in self._lost:
            log.error("job %s: this process lost its lease; stopping its work", job_id)
        self._lost.add(job_id)
        self._cancel.add(job_id)

    def _beat(self) -> None:
        """Renew the running job's lease and pick up a cancel asked through any process."""
        every = max(0.2, min(self.lease_s / 3, 1.0))
        while not self._stop.wait(every):
            job_id = self._current
            if job_id is None:
                continue
            try:
                with self.db.session() as s:
                    renewed = s.execute(update(Job).where(self._mine(job_id)).values(
                        lease_expires_at=utcnow() + timedelta(seconds=self.lease_s),
                        updated_at=Job.updated_at)).rowcount
                    asked = s.scalar(select(Job.cancel_requested).where(Job.id == job_id))
            except Exception as exc:  # the database is away: the lease may run out
                log.warning("renewing the lease of job %s failed: %s", job_id,
                            exc.__class__.__name__)
                continue
            if job_id != self._current:
                continue
            if not renewed:
                self._lost_lease(job_id)
            elif asked:
                self._asked.add(job_id)
                self._cancel.add(job_id)
