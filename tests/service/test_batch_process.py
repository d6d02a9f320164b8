"""A batch job runs in a child process of the service at a lower CPU priority (nice), with
capped thread pools; the job finishing, failing or being cancelled, the service stopping
(SIGTERM) or dying (kill -9) leave no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import psutil
import pytest

from iei_match_service import batch_process
from iei_match_service.batch_process import run_in_child
from iei_match_service.db.tables import Job
from iei_match_service.jobs import Cancelled, JobFailed
from iei_match_service.settings import Settings, SettingsError

from . import batch_fakes
from .batch_fakes import job_processes, thread_nices
from .faultkit import ServiceProcess, prepare
from .test_jobs import runner, state

FAKES = batch_fakes.__name__
OWN_NICE = os.nice(0)
JOB_NICE = min(OWN_NICE + 10, 19)


class Ctx:
    """What a job sees (``JobContext``), without a database."""

    job_id = 0

    def __init__(self, cancel_after: float | None = None):
        self.reports: list[tuple[float, str]] = []
        self.cancel_at = None if cancel_after is None else time.monotonic() + cancel_after

    @property
    def cancelled(self) -> bool:
        return self.cancel_at is not None and time.monotonic() >= self.cancel_at

    def report(self, progress: float, message: str) -> None:
        if self.cancelled and progress < 1.0:
            raise Cancelled()
        self.reports.append((progress, message))


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_the_work_runs_niced_with_capped_threads_and_reports_back():
    ctx = Ctx()
    out = run_in_child(ctx, f"{FAKES}:describe", {"threads": 3}, nice=7, threads=1)
    assert out["ppid"] == os.getpid() and out["pid"] != os.getpid()
    assert out["threads"] >= 4 and set(out["nices"]) == {min(OWN_NICE + 7, 19)}
    assert out["env"] == {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                          "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1",
                          "OMP_WAIT_POLICY": "PASSIVE"}
    assert ctx.reports == [(0.25, "a quarter"), (0.5, "half")]
    assert os.nice(0) == OWN_NICE and set(thread_nices().values()) == {OWN_NICE}
    assert gone(out["pid"])
    out = run_in_child(Ctx(), f"{FAKES}:describe", {"threads": 0}, nice=0, threads=2)
    assert set(out["nices"]) == {OWN_NICE}  # 0: the service's own priority
    assert out["env"]["OMP_NUM_THREADS"] == "2"


def test_tables_arrive_as_they_were_sent():
    frame = pd.DataFrame({"need_id": ["N1", "N2", "N3"], "title": ["数控车工", "", "护理"],
                          "headcount": pd.array([3, None, 5], dtype="Int64"),
                          "org_id": [1, 2, 3], "score": [0.5, float("nan"), 1.0]},
                         index=pd.Index([2, 3, 5], name="row"))
    out = run_in_child(Ctx(), f"{FAKES}:table", {}, nice=10, threads=1,
                       frames={"table": frame})
    assert out == {"dtypes": {c: str(t) for c, t in frame.dtypes.items()},
                   "index": ["row", 2, 3, 5],
                   "rows": [["N1", "数控车工", 3, 1, 0.5], ["N2", "", None, 2, None],
                            ["N3", "护理", 5, 3, 1.0]]}


def test_errors_come_back_and_cancel_stops_the_process(monkeypatch):
    me = psutil.Process()
    with pytest.raises(JobFailed, match="^LookupError: no such need: N9$"):
        run_in_child(Ctx(), f"{FAKES}:fail", {}, nice=10, threads=1)
    assert not job_processes(me)
    t0 = time.monotonic()
    with pytest.raises(Cancelled):  # the work stops by itself when told
        run_in_child(Ctx(cancel_after=0.5), f"{FAKES}:slow", {}, nice=10, threads=1)
    assert time.monotonic() - t0 < batch_process.GRACE_S and not job_processes(me)
    monkeypatch.setattr(batch_process, "GRACE_S", 0.3)
    with pytest.raises(Cancelled):  # work that does not listen is ended
        run_in_child(Ctx(cancel_after=0.5), f"{FAKES}:slow", {"obey": False}, nice=10,
                     threads=1)
    assert not job_processes(me)


def test_a_failure_in_the_job_process_is_the_jobs_message(tmp_path):
    jobs, org = runner(tmp_path)
    job_id = jobs.submit("batch", org, {}, lambda ctx: run_in_child(
        ctx, f"{FAKES}:fail", {}, nice=10, threads=1))
    jobs.wait(job_id, 30)
    job = state(jobs, job_id)
    assert (job.state, job.message) == ("failed", "LookupError: no such need: N9")
    assert not job_processes(psutil.Process())
    jobs.shutdown()


def test_the_job_process_exits_when_the_service_is_killed(tmp_path):
    """A parent that runs a job and is killed with SIGKILL: the job's process leaves too."""
    script = (f"import sys; sys.path[:0] = {sys.path!r}\n"
              "from iei_match_service.batch_process import run_in_child\n"
              f"from {FAKES} import QuietJob\n"
              f"run_in_child(QuietJob(), '{FAKES}:slow', {{'obey': False}}, nice=10, "
              "threads=1)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.DEVNULL)
    try:
        child = wait_for(lambda: job_processes(psutil.Process(parent.pid)), 30,
                         "the job's process")[0]
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        wait_for(lambda: gone(child.pid), 10, "the orphaned job process to exit")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_a_real_job_runs_niced_and_stopping_the_service_leaves_no_process(world):
    """A batch job of the (in-process) service: its process and all its threads run at the
    lower priority, the service's threads at their own; when the service stops during the
    job (what uvicorn does on SIGTERM), the job's process is gone and the job is back in the
    queue, for another process of the service (or the next start) to resume. (A job that
    succeeds leaves no process either: tests/service/test_batch_api.py.)"""
    me = psutil.Process()
    with world.client("nanhai") as c:
        r = c.post("/api/v1/batch", json={"top_k": 5, "allocate": True})
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        child = wait_for(lambda: job_processes(me), 30, "the job's process")[0]
        assert child.ppid() == me.pid
        wait_for(lambda: c.get(f"/api/v1/jobs/{job_id}").json()["message"].startswith(
            "scoring: 0 of"), 60, "the job to start scoring")  # the engine is loaded
        nices = thread_nices(child.pid)
        assert len(nices) > 1 and set(nices.values()) == {JOB_NICE}, nices
        assert set(thread_nices().values()) == {OWN_NICE}  # the service is never reniced
    world.server.stop()
    wait_for(lambda: gone(child.pid), 10, "the job's process to exit")
    assert not job_processes(me)
    with world.db.session() as s:
        job = s.get(Job, job_id)
        assert (job.state, job.lease_owner) == ("queued", None), job.message


@pytest.mark.slow
def test_a_sigterm_to_the_service_process_ends_the_job_process(tmp_path, model_root):
    """The same with the service as a real process and a real SIGTERM (slow: ~10 s more):
    the job's process exits and the job is back in the queue, for the next start."""
    prep = prepare(tmp_path / "data", model_root)
    with ServiceProcess(prep).start() as svc, svc.client(prep.keys["nanhai"]) as c:
        service = psutil.Process(svc.proc.pid)
        job_id = c.post("/api/v1/batch", json={"top_k": 5}).json()["id"]
        child = wait_for(lambda: job_processes(service), 30, "the job's process")[0]
        wait_for(lambda: set(thread_nices(child.pid).values()) == {JOB_NICE}, 10,
                 "the job's process to lower its priority")
        assert set(thread_nices(service.pid).values()) == {OWN_NICE}
        svc.signal(signal.SIGTERM)
        assert svc.wait(30) == 0
        wait_for(lambda: gone(child.pid), 10, "the job's process to exit")
    assert prep_job_state(prep, job_id) == "queued"


def prep_job_state(prep, job_id: int) -> str:
    from iei_match_service.db.engine import Database

    db = Database(prep.database_url)
    try:
        with db.session() as s:
            return s.get(Job, job_id).state
    finally:
        db.dispose()


@pytest.mark.parametrize(("raw", "value"), [(None, 10), ("0", 0), ("19", 19)])
def test_the_nice_setting(raw, value):
    env = {} if raw is None else {"IEI_MATCH_BATCH_NICE": raw}
    assert Settings.from_env(env).batch_nice == value


@pytest.mark.parametrize("raw", ["-1", "20", "low"])
def test_a_bad_nice_setting_is_refused(raw):
    with pytest.raises(SettingsError, match="IEI_MATCH_BATCH_NICE"):
        Settings.from_env({"IEI_MATCH_BATCH_NICE": raw})
