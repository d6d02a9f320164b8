"""Two real ``iei-match serve`` processes on one PostgreSQL database and one models and jobs
directory, as an operator runs several replicas: one live model for both, writes and races
through either, jobs that either can run, cancel, serve, and finish after the other's
``kill -9``.

The jobs and the empty start take minutes on 2 cores: they are ``slow``
(``python -m pytest -m slow tests/service/test_replicas.py``); writes, races and the
rollback run by default."""

from __future__ import annotations

import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from iei_match.artifacts import list_versions
from iei_match.bundled import catalog_dir

from .conftest import SMALL_MODEL
from .faultkit import ServiceProcess, prepare

FINISHED = ("succeeded", "failed", "cancelled")
ENV = {"IEI_MATCH_MODEL_POLL_S": "0.5", "IEI_MATCH_JOB_LEASE_S": "4",
       "IEI_MATCH_BATCH_WORKERS": "1", "IEI_MATCH_MAX_CONCURRENT_RANKINGS": "2",
       "IEI_MATCH_MAX_BODY_BYTES": "5000000",  # the catalog's two files are uploaded
       "IEI_MATCH_TRAIN_PARAMS": json.dumps(SMALL_MODEL),  # retraining and the empty start
       "IEI_MATCH_CATALOG_REFRESH_S": "1"}  # as the README advises replicas under writes
SRC = catalog_dir("cn-vocational")


def start_both(a: ServiceProcess, b: ServiceProcess) -> None:
    """Start both processes at the same moment and wait until both are ready."""
    with ThreadPoolExecutor(2) as pool:
        for f in [pool.submit(p.start, True, 300) for p in (a, b)]:
            f.result()


@pytest.fixture(scope="module")
def pair(tmp_path_factory, model_root, pg_factory):
    prep = prepare(tmp_path_factory.mktemp("replicas") / "data", model_root, pg_factory())
    # A second published version (a copy of the first) to roll back and forth between.
    first = (prep.models_dir / "CURRENT").read_text().strip()
    shutil.copytree(prep.models_dir / first, prep.models_dir / "20000101T000000Z")
    a, b = ServiceProcess(prep, **ENV), ServiceProcess(prep, **ENV)
    start_both(a, b)
    yield prep, a, b
    a.stop()
    b.stop()


def live_version(svc: ServiceProcess, key: str) -> str:
    with svc.client(key) as c:
        r = c.post("/api/v1/match", json={"title": "中药制剂工", "description": "中药提取浓缩",
                                          "k": 1})
        assert r.status_code == 200, r.text
        return r.json()["model_version"]


def job_row(url: str, job_id: int) -> dict:
    """What the job's row says of its lease and attempts (the API does not show them)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return dict(conn.execute(sa.text("SELECT lease_owner, attempts FROM jobs "
                                             "WHERE id = :i"), {"i": job_id}).one()._mapping)
    finally:
        engine.dispose()


def owner_pid(url: str, job_id: int) -> int:
    return int(job_row(url, job_id)["lease_owner"].split(":")[1])


def wait_job(c, job_id: int, timeout: float, until=lambda job: job["state"] in FINISHED):
    deadline = time.monotonic() + timeout
    while True:
        job = c.get(f"/api/v1/jobs/{job_id}").json()
        if until(job):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.2)


def upload_catalog(c, **form) -> dict:
    files = {"needs": ("needs.csv", (SRC / "needs.csv").read_bytes(), "text/csv"),
             "programs": ("programs.csv", (SRC / "programs.csv").read_bytes(), "text/csv")}
    r = c.post("/api/v1/batch/upload", files=files,
               data={"top_k": "5", "allocate": "false", **form})
    assert r.status_code == 202, r.text
    return r.json()


def test_a_need_written_through_one_replica_is_read_changed_and_deleted_through_the_other(
        pair):
    prep, a, b = pair
    key = prep.keys["herbal"]
    with a.client(key) as ca, b.client(key) as cb:
        r = ca.post("/api/v1/needs", json={"title": "制剂工", "description": "中药制剂"})
        assert r.status_code == 201, r.text
        need = r.json()["id"]
        assert cb.get(f"/api/v1/needs/{need}").json()["title"] == "制剂工"
        assert cb.patch(f"/api/v1/needs/{need}", json={"headcount": 7}).status_code == 200
        assert ca.get(f"/api/v1/needs/{need}").json()["headcount"] == 7
        assert cb.delete(f"/api/v1/needs/{need}").status_code == 204
        assert ca.get(f"/api/v1/needs/{need}").status_code == 404
        assert ca.delete(f"/api/v1/needs/{need}").status_code == 404  # a second delete


def test_updates_racing_deletes_get_404_never_5xx_and_first_outcomes_all_succeed(pair):
    prep, a, b = pair
    key = prep.keys["herbal"]
    statuses: list[int] = []
    with a.client(key) as ca, b.client(key) as cb:
        for round_ in range(6):
            need = ca.post("/api/v1/needs", json={"title": f"竞争{round_}"}).json()["id"]
            calls = [(ca.patch, {"json": {"headcount": 2}}), (cb.put, {"json": {"title": "新"}}),
                     (cb.delete, {}), (ca.delete, {}), (ca.patch, {"json": {"city": "佛山"}}),
                     (cb.delete, {})]
            path = f"/api/v1/needs/{need}"
            with ThreadPoolExecutor(len(calls)) as pool:
                got = list(pool.map(lambda call, path=path: call[0](path, **call[1])
                                    .status_code, calls))
            statuses += got
            deletes = [got[2], got[3], got[5]]
            assert sorted(deletes) == [204, 404, 404], got  # exactly one delete wins
            assert all(s in (200, 404) for s in (got[0], got[1], got[4])), got
    assert not [s for s in statuses if s >= 500]
    # Eight clients record the first outcome of one new pair at once, through both.
    with a.client(key) as ca:
        need = ca.post("/api/v1/needs", json={"title": "新的一对", "description": "中药"}).json()
    with a.client(prep.keys["fsvc"]) as c:
        program = c.get("/api/v1/programs").json()["items"][0]["id"]
    clients = [(a if i % 2 else b).client(key) for i in range(8)]
    try:
        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(lambda c: c.post("/api/v1/outcomes", json={
                "need_id": need["id"], "program_id": program, "event": "contacted"}), clients))
    finally:
        for c in clients:
            c.close()
    assert [r.status_code for r in got] == [201] * 8, [r.text for r in got]
    assert len({r.json()["partnership_id"] for r in got}) == 1


def test_a_rollback_through_one_replica_is_served_by_both_within_seconds(pair):
    prep, a, b = pair
    key, steward = prep.keys["herbal"], prep.keys["admin"]  # only admins change the model
    before = live_version(a, key)
    assert live_version(b, key) == before
    other = "20000101T000000Z" if before != "20000101T000000Z" else \
        (prep.models_dir / "CURRENT").read_text().strip()
    for target, via in ((other, a), (before, b)):
        with via.client(steward) as c:
            r = c.post(f"/api/v1/models/{target}/activate")
            assert r.status_code == 200, r.text
        t0 = time.monotonic()
        while live_version(b if via is a else a, key) != target:
            assert time.monotonic() - t0 < 15, "the other replica kept the old version"
            time.sleep(0.1)
        print(f"the other replica served {target} {time.monotonic() - t0:.1f} s after the "
              "activation")
        assert live_version(via, key) == target
        with (b if via is a else a).client(key) as c:
            listed = {v["version"]: v["live"] for v in c.get("/api/v1/models").json()["items"]}
        assert listed[target] is True and sum(listed.values()) == 1


@pytest.mark.slow
def test_retraining_on_both_replicas_at_once_ends_with_both_serving_the_one_live_version(
        pair):
    prep, a, b = pair
    key, admin = prep.keys["herbal"], prep.keys["admin"]

    def retrain(svc: ServiceProcess) -> int:
        with svc.client(admin) as c:  # two submissions (distinct keys): two jobs
            r = c.post("/api/v1/models/retrain", json={"force": True},
                       headers={"Idempotency-Key": f"at-once-{svc.port}"})
            assert r.status_code == 202, r.text
            return r.json()["id"]

    with ThreadPoolExecutor(2) as pool:
        ids = list(pool.map(retrain, (a, b)))
    assert len(set(ids)) == 2
    with a.client(admin) as c:
        done = [wait_job(c, job_id, 600) for job_id in ids]
    assert [d["state"] for d in done] == ["succeeded"] * 2, done
    published = {d["result"]["version"] for d in done}
    assert len(published) == 2 and all(d["result"]["published"] for d in done), done
    live = (prep.models_dir / "CURRENT").read_text().strip()
    assert live in published  # the one published last
    t0 = time.monotonic()
    while {live_version(a, key), live_version(b, key)} != {live}:
        assert time.monotonic() - t0 < 15, "the replicas serve different versions"
        time.sleep(0.1)
    for _ in range(5):  # and they stay on it
        time.sleep(0.3)
        assert live_version(a, key) == live_version(b, key) == live
    for svc in (a, b):
        with svc.client(admin) as c:
            listed = [v["version"] for v in c.get("/api/v1/models").json()["items"]
                      if v["live"]]
        assert listed == [live]


def rankings_for(svc: ServiceProcess, prep, seconds: float, stop_at: list) -> list:
    """(status, seconds) of the rankings one closed-loop client gets in ``seconds``: the
    partners of a program (the needs, which the writers change) and a need's programs."""
    out = []
    with svc.client(prep.keys["fsvc"]) as college, svc.client(prep.keys["herbal"]) as firm:
        program = college.get("/api/v1/programs").json()["items"][0]["id"]
        need = firm.get("/api/v1/needs").json()["items"][0]["id"]
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for c, path in ((college, f"/api/v1/programs/{program}/partners?k=10"),
                            (firm, f"/api/v1/needs/{need}/recommendations?k=10")):
                t0 = time.monotonic()
                out.append((c.get(path).status_code, time.monotonic() - t0))
    stop_at.append(True)
    return out


def write_needs(svc: ServiceProcess, prep, stop_at: list, n: int) -> list:
    """Create and change needs until the rankings end; returns the statuses."""
    out = []
    with svc.client(prep.keys["herbal"]) as c:
        while not stop_at:
            r = c.post("/api/v1/needs", json={"title": f"写入{n}号", "description": "中药制剂",
                                              "skills": ["中药炮制"], "headcount": 2})
            out.append(r.status_code)
            if r.status_code == 201:
                out.append(c.patch(f"/api/v1/needs/{r.json()['id']}",
                                   json={"headcount": 3}).status_code)
    return out


@pytest.mark.slow
def test_rankings_keep_half_their_throughput_with_no_5xx_while_4_clients_write_needs(pair):
    prep, a, b = pair
    seconds = 20.0
    rates = []
    rankings_for(a, prep, 3, []), rankings_for(b, prep, 3, [])  # both prepare their catalogs
    for writers in (0, 4):
        stop_at: list = []
        with ThreadPoolExecutor(4 + writers) as pool:
            rankers = [pool.submit(rankings_for, svc, prep, seconds, stop_at)
                       for svc in (a, b, a, b)]
            writing = [pool.submit(write_needs, svc, prep, stop_at, i)
                       for i, svc in zip(range(writers), (a, b, a, b), strict=False)]
            got = [x for f in rankers for x in f.result()]
            written = [x for f in writing for x in f.result()]
        assert not [s for s, _ in got if s >= 500] and not [s for s in written if s >= 500]
        assert all(s == 200 for s, _ in got), sorted({s for s, _ in got})
        lat = sorted(t for _, t in got)
        rates.append(len(got) / seconds)
        print(f"{writers} writers: {rates[-1]:.1f} rankings/s, p50 {lat[len(lat) // 2] * 1000:.0f}"
              f" ms, p95 {lat[int(len(lat) * .95)] * 1000:.0f} ms, {len(written)} writes "
              f"({len(written) / seconds:.1f}/s)")
    assert rates[1] >= 0.5 * rates[0], rates


@pytest.mark.slow
def test_a_job_is_cancelled_through_the_other_replica_and_results_are_served_by_both(pair):
    prep, a, b = pair
    steward = prep.keys["nanhai"]
    by_pid = {a.proc.pid: a, b.proc.pid: b}
    with a.client(steward) as ca, b.client(steward) as cb:
        job = upload_catalog(ca)
        # An identical submission while the first is queued or running is that job.
        assert upload_catalog(cb)["id"] == job["id"]
        running = wait_job(ca, job["id"], 120, until=lambda j: j["state"] in FINISHED or
                           j["progress"] > 0)
        assert running["state"] == "running", running
        owner = by_pid[owner_pid(prep.database_url, job["id"])]
        other = b if owner is a else a
        with other.client(steward) as c:
            r = c.post(f"/api/v1/jobs/{job['id']}/cancel")
            assert r.status_code == 200, r.text
        t0 = time.monotonic()
        done = wait_job(ca, job["id"], 30)
        assert done["state"] == "cancelled" and time.monotonic() - t0 < 15, done
        # A small job from the database: its results are read through either replica.
        job = ca.post("/api/v1/batch", json={"top_k": 3}).json()
        done = wait_job(cb, job["id"], 240)
        assert done["state"] == "succeeded", done
        pages = [c.get(f"/api/v1/jobs/{job['id']}/results/scores", params={"limit": 1000})
                 for c in (ca, cb)]
        assert [p.status_code for p in pages] == [200, 200]
        assert pages[0].json() == pages[1].json() and pages[0].json()["total"] > 0
        assert all(c.get(f"/api/v1/jobs/{job['id']}/plots/gap.png").status_code == 200
                   for c in (ca, cb))


@pytest.mark.slow
def test_a_job_whose_replica_is_killed_is_finished_by_the_other(pair):
    prep, a, b = pair
    steward = prep.keys["nanhai"]
    by_pid = {a.proc.pid: a, b.proc.pid: b}
    with a.client(steward) as ca:
        job = upload_catalog(ca, top_k="4")
        wait_job(ca, job["id"], 120, until=lambda j: j["progress"] > 0 or
                 j["state"] in FINISHED)
    owner = by_pid[owner_pid(prep.database_url, job["id"])]
    survivor = b if owner is a else a
    owner.kill9()
    t0 = time.monotonic()
    with survivor.client(steward) as c:
        done = wait_job(c, job["id"], 600)
        took = time.monotonic() - t0
        assert done["state"] == "succeeded", done
        assert job_row(prep.database_url, job["id"])["attempts"] == 2  # claimed again
        scores = c.get(f"/api/v1/jobs/{job['id']}/results/scores").json()
        assert scores["total"] == done["result"]["rows"]["scores"] > 0
    assert took < 600
    print(f"killed replica's job finished on the other {took:.1f} s after the kill")


@pytest.mark.slow
def test_two_replicas_started_at_once_on_an_empty_models_directory_serve_one_version(
        tmp_path, model_root, pg_factory):
    prep = prepare(tmp_path / "data", model_root, pg_factory())
    shutil.rmtree(prep.models_dir)
    a, b = ServiceProcess(prep, **ENV), ServiceProcess(prep, **ENV)
    try:
        t0 = time.monotonic()
        start_both(a, b)
        took = time.monotonic() - t0
        key = prep.keys["herbal"]
        live = (prep.models_dir / "CURRENT").read_text().strip()
        assert live_version(a, key) == live_version(b, key) == live
        # They took turns (one machine, one models root): one trained, the other served it.
        assert [v["version"] for v in list_versions(prep.models_dir)] == [live]
        print(f"both ready {took:.1f} s after an empty start, serving {live}")
    finally:
        a.stop()
        b.stop()
