"""The job runner's contract: states, progress, cancellation, and restarts."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from iei_match_service.db.engine import Database, upgrade
from iei_match_service.db.tables import Job, Organization, utcnow
from iei_match_service.jobs import JobRunner


def runner(tmp_path) -> tuple[JobRunner, int]:
    db = Database(f"sqlite:///{tmp_path / 'jobs.db'}")
    upgrade(db.engine)
    with db.session() as s:
        org = Organization(kind="alliance", name="联盟")
        s.add(org)
        s.flush()
        org_id = org.id
    return JobRunner(db), org_id


def state(jobs: JobRunner, job_id: int) -> Job:
    with jobs.db.session() as s:
        job = s.get(Job, job_id)
        s.expunge(job)
        return job


def test_a_cancel_stops_a_job_at_its_next_report_but_not_once_it_is_done(tmp_path):
    jobs, org = runner(tmp_path)
    go, reached = threading.Event(), threading.Event()
    done_work = []

    def mid(ctx):
        ctx.report(0.2, "step one")
        reached.set()
        go.wait(10)
        ctx.report(0.5, "step two")  # raises: cancelled
        done_work.append("step two")
        return {}

    def end(ctx):
        ctx.report(0.2, "working")
        reached.set()
        go.wait(10)
        done_work.append("published")  # the irreversible part happened
        ctx.report(1.0, "published v2")  # done: a late cancel does not undo the record
        return {"version": "v2"}

    for work, expected in ((mid, "cancelled"), (end, "succeeded")):
        go.clear()
        reached.clear()
        job_id = jobs.submit("test", org, {}, work)
        assert reached.wait(10)
        jobs.cancel(job_id)
        go.set()
        jobs.wait(job_id, 10)
        assert state(jobs, job_id).state == expected
    assert done_work == ["published"]
    assert state(jobs, job_id).result == {"version": "v2"}
    jobs.shutdown()


def test_failures_are_recorded_and_a_restart_resumes_what_was_running(tmp_path):
    jobs, org = runner(tmp_path)

    def broken(ctx):
        raise ValueError("the input is wrong")

    job_id = jobs.submit("test", org, {}, broken)
    jobs.wait(job_id, 10)
    job = state(jobs, job_id)
    assert job.state == "failed" and "ValueError: the input is wrong" in job.message
    jobs.shutdown()
    # A job a previous process left running (on SQLite, the one process of the service)
    # is claimed again at once by the next start, and resumed by its kind's handler.
    with jobs.db.session() as s:
        left = Job(kind="test", org_id=org, state="running", lease_owner="gone:1:x",
                   lease_expires_at=utcnow() + timedelta(hours=1), attempts=1)
        s.add(left)
        s.flush()
        left_id = left.id
    again = JobRunner(jobs.db, lease_s=5)
    seen = []
    again.register("test", lambda ctx, job: seen.append(job.attempts) or {"resumed": True})
    assert again.recover() == 1
    again.start()
    assert again.wait(left_id, 10) == "succeeded"
    assert seen == [2] and state(again, left_id).result == {"resumed": True}
    again.shutdown()


def test_two_runners_share_one_queue_leases_cancels_and_submissions(tmp_path):
    """Two runners on one database, as two processes of the service: a job whose runner
    stops renewing its lease is taken over and finished by the other; a cancel through
    either stops a job the other runs; an identical submission finds the running job."""
    first, org = runner(tmp_path)
    second = JobRunner(first.db, lease_s=1.0, poll_s=0.1)
    first.lease_s, first.poll_s = 1.0, 0.1
    stuck, release = threading.Event(), threading.Event()
    runs: list[str] = []

    def work(who):
        def handle(ctx, job):
            runs.append(who)
            if job.params.get("hold") and who == "first":
                stuck.set()
                release.wait(20)  # a process that stalls: its lease runs out
                ctx.report(0.5, "late")  # and learns that the job is not its own any more
                runs.append("first went on")
                return {"by": who}
            while job.params.get("until_cancelled"):
                ctx.report(0.1, "working")
                time.sleep(0.05)
            return {"by": who}
        return handle

    first.register("t", work("first"))
    first.start()
    job_id = first.submit("t", org, {"hold": True}, key="k1")
    assert stuck.wait(10)
    # The first runner's heartbeat stops (as when its process is killed).
    first._stop.set()
    assert first.submit("t", org, {"hold": True}, key="k1") == job_id  # the same job
    second.register("t", work("second"))
    second.start()
    assert second.wait(job_id, 20) == "succeeded"
    assert state(second, job_id).result == {"by": "second"}
    release.set()
    time.sleep(0.5)
    assert runs == ["first", "second"]  # the stalled runner changed nothing
    assert state(second, job_id).result == {"by": "second"}
    # A cancel through the first runner stops the job the second one runs.
    job_id = second.submit("t", org, {"until_cancelled": True}, key="k2")
    deadline = time.monotonic() + 10
    while state(second, job_id).message != "working":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    first.cancel(job_id)
    assert second.wait(job_id, 10) == "cancelled"
    assert state(second, job_id).active_key is None  # a new submission makes a new job
    assert second.submit("t", org, {"until_cancelled": False}, key="k2") != job_id
    second.shutdown()
