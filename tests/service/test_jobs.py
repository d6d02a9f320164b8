"""The job runner's contract: states, progress, cancellation, and restarts."""

from __future__ import annotations

import threading

from iei_match_service.db.engine import Database, upgrade
from iei_match_service.db.tables import Job, Organization
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


def test_failures_are_recorded_and_a_restart_fails_what_was_running(tmp_path):
    jobs, org = runner(tmp_path)

    def broken(ctx):
        raise ValueError("the input is wrong")

    job_id = jobs.submit("test", org, {}, broken)
    jobs.wait(job_id, 10)
    job = state(jobs, job_id)
    assert job.state == "failed" and "ValueError: the input is wrong" in job.message
    with jobs.db.session() as s:
        s.add(Job(kind="test", org_id=org, state="running"))
    assert jobs.recover() == 1
    jobs.shutdown()
