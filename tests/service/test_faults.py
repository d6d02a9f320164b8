"""Faults, with the service as a real process: kill -9 during writes and during a model
publish, corrupted models, the database going away, graceful shutdown."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from sqlalchemy import select, text

from iei_match.artifacts import list_versions, load_model, verify_model
from iei_match_service.api.deps import session
from iei_match_service.db.engine import Database
from iei_match_service.db.tables import Need, OutcomeEvent, Partnership, Program
from iei_match_service.model_host import ModelHost

from .faultkit import ServiceProcess, SlowRequest, TcpProxy, in_flight, prepare

# --- kill -9 during a stream of writes -------------------------------------------------


class Writer(threading.Thread):
    """Posts as fast as it can; keeps what each acknowledged (201) write sent and got."""

    def __init__(self, url: str, key: str, make_body, path: str):
        super().__init__(daemon=True)
        self.url, self.key, self.make_body, self.path = url, key, make_body, path
        self.acked: list[tuple[dict, dict]] = []
        self.other: list[int] = []
        self.transport_errors = 0
        self.stop = threading.Event()

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as c:
            i = 0
            while not self.stop.is_set():
                body = self.make_body(i)
                i += 1
                try:
                    r = c.post(self.path, json=body)
                except httpx.TransportError:
                    self.transport_errors += 1
                    time.sleep(0.01)
                    continue
                if r.status_code == 201:
                    self.acked.append((body, r.json()))
                else:
                    self.other.append(r.status_code)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_kill9_during_writes_loses_no_acknowledged_write(backend, tmp_path, model_root,
                                                         request):
    url = "" if backend == "sqlite" else request.getfixturevalue("pg_factory")()
    prep = prepare(tmp_path / "data", model_root, url)
    db = Database(prep.database_url)
    with db.session() as s:  # a pair the enterprise may record outcomes for
        need_id = s.scalar(select(Need.id).where(Need.org_id == prep.orgs["herbal"]))
        program_id = s.scalar(select(Program.id).where(Program.org_id == prep.orgs["fsvc"]))
    db.dispose()

    def need_body(tag):
        return lambda i: {"title": f"{tag} 数控车工 {i}", "description": f"第{i}条 {tag}",
                          "skills": [f"技能{i}"], "headcount": 1 + i % 7}

    def outcome_body(i):
        return {"need_id": need_id, "program_id": program_id,
                "event": ("viewed", "contacted", "visited")[i % 3], "note": f"event {i}"}

    with ServiceProcess(prep) as svc:
        svc.start()
        writers = [Writer(svc.url, prep.keys["herbal"], need_body("a"), "/api/v1/needs"),
                   Writer(svc.url, prep.keys["herbal"], need_body("b"), "/api/v1/needs"),
                   Writer(svc.url, prep.keys["herbal"], outcome_body, "/api/v1/outcomes")]
        for w in writers:
            w.start()
        deadline = time.monotonic() + 30
        while (time.monotonic() < deadline
               and min(len(w.acked) for w in writers) < 20):
            time.sleep(0.05)
        time.sleep(0.5)
        svc.kill9()  # mid-stream: every writer is still posting
        time.sleep(0.3)
        for w in writers:
            w.stop.set()
        for w in writers:
            w.join(30)
        assert all(len(w.acked) >= 20 for w in writers), [len(w.acked) for w in writers]
        # Each writer saw the server vanish while it was writing.
        assert all(w.transport_errors >= 1 for w in writers)
        assert all(not w.other for w in writers), [w.other for w in writers]

        if backend == "sqlite":
            path = prep.database_url.split("///", 1)[1]
            with sqlite3.connect(path) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        db = Database(prep.database_url)
        try:
            with db.session() as s:
                for body, got in writers[0].acked + writers[1].acked:
                    need = s.get(Need, got["id"])
                    assert need is not None, f"acknowledged need {got['id']} was lost"
                    assert (need.title, need.description, need.skills, need.headcount,
                            need.org_id) == (body["title"], body["description"],
                                             body["skills"], body["headcount"],
                                             prep.orgs["herbal"])
                for body, got in writers[2].acked:
                    event = s.get(OutcomeEvent, got["event_id"])
                    assert event is not None, f"acknowledged event {got['event_id']} was lost"
                    assert (event.event, event.note, event.partnership_id) == (
                        body["event"], body["note"], got["partnership_id"])
                partnership = s.get(Partnership, writers[2].acked[0][1]["partnership_id"])
                assert (partnership.need_id, partnership.program_id) == (need_id, program_id)
        finally:
            db.dispose()

    if backend == "postgresql":
        return
    # The service starts again on the same SQLite file (its WAL recovered) and answers for
    # what it acknowledged.
    with ServiceProcess(prep) as svc:
        svc.start()
        with svc.client(prep.keys["herbal"]) as c:
            body, got = writers[1].acked[-1]
            r = c.get(f"/api/v1/needs/{got['id']}")
            assert r.status_code == 200 and r.json()["title"] == body["title"]
            r = c.post("/api/v1/needs", json={"title": "重启后", "description": "写入"})
            assert r.status_code == 201, r.text


# --- kill -9 during a model publish ----------------------------------------------------

PUBLISH_CHILD = Path(__file__).with_name("publish_child.py")
# The steps publish_child.py announces (ModelHost.publish on a root that has a CURRENT):
# 1-6 each file half-written in the hidden temporary directory (arrays, state, two rankers,
# the fit, the manifest), 7 its fsync, 8 the rename into place, 9 the root's fsync, 10 the
# temporary directory's removal, 11 the replace of CURRENT, 12 the root's fsync. A kill
# before step 11 happens leaves the old version live.
IN_TEMPORARY = 7
REPLACE_CURRENT = 11
STEPS = 12


def live_version(root: Path) -> str:
    return (root / "CURRENT").read_text().strip()


def publish_and_kill(root: Path, source: Path, *, at_step: int | None = None,
                     delay: float | None = None) -> list[str]:
    """Run publish_child.py on ``root`` and SIGKILL it while it waits at ``at_step``
    (before the step's action) or ``delay`` seconds after it starts publishing; with
    neither, let it finish. Returns the lines it printed."""
    proc = subprocess.Popen([sys.executable, str(PUBLISH_CHILD), str(root), str(source),
                             str(at_step or 0)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line.strip())
            if at_step is not None and line.startswith(f"step {at_step} "):
                break
            if delay is not None and line.startswith("go"):
                time.sleep(delay)
                break
        if at_step is None and delay is None:
            assert proc.wait(120) == 0, proc.stderr.read()
        else:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            lines += [line.strip() for line in proc.stdout]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        proc.stdout.close()
        proc.stderr.close()
    return lines


def assert_sound(root: Path, expect_live: str | None = None) -> str:
    """A fresh host loads the live version, which verifies; every listed version is a
    complete one (no temporary directory is taken for a version). Returns the live one."""
    host = ModelHost(root)
    live = host.load_current()
    assert live is not None, host.last_error
    assert live.version == live_version(root)
    if expect_live is not None:
        assert live.version == expect_live
    versions = [v["version"] for v in list_versions(root)]
    assert live.version in versions
    assert not [v for v in versions if v.startswith(".")], versions
    for v in versions:
        verify_model(root / v)
    assert [v["version"] for v in host.versions() if v["live"]] == [live.version]
    return live.version


def test_kill9_during_model_publish_leaves_the_old_model_live(tmp_path, model_root):
    source = model_root / live_version(model_root)
    size = (source / "arrays.npz").stat().st_size
    # Mid-write of the first file; after the rename, just before CURRENT is replaced; and
    # after it was (every step: the slow test below).
    steps = [1, REPLACE_CURRENT, STEPS]
    roots = []
    for step in steps:
        roots.append(tmp_path / f"root{step}")
        shutil.copytree(model_root, roots[-1])
    old = live_version(model_root)
    with ThreadPoolExecutor(2) as pool:  # two at a time: one per core
        outputs = list(pool.map(lambda sr: publish_and_kill(sr[1], source, at_step=sr[0]),
                                zip(steps, roots, strict=True)))
    matcher = load_model(source)
    for step, root, lines in zip(steps, roots, outputs, strict=True):
        assert lines[-1].startswith(f"step {step} "), (step, lines)  # killed where meant
        new = [p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
               and p.name != old]
        temp = [p for p in root.iterdir() if p.name.startswith(".publishing-")]
        if step <= IN_TEMPORARY:  # killed inside the temporary directory: a half-written file
            assert not new and len(temp) == 1
            if step == 1:
                assert 0 < (temp[0] / "model" / "arrays.npz").stat().st_size < size
        else:
            assert len(new) == 1
        expect = old if step <= REPLACE_CURRENT else new[0]
        assert assert_sound(root, expect) == expect
        # The next publish goes through over whatever the kill left behind.
        published = ModelHost(root).publish(matcher, {}, "0" * 64)
        assert assert_sound(root) == published.version


@pytest.mark.slow
def test_kill9_at_every_publish_step_and_random_moments(tmp_path, model_root):
    source = model_root / live_version(model_root)
    root = tmp_path / "root"
    shutil.copytree(model_root, root)
    for step in range(1, STEPS + 1):
        old = live_version(root)
        lines = publish_and_kill(root, source, at_step=step)
        assert lines[-1].startswith(f"step {step} "), lines
        live = assert_sound(root)
        assert (live == old) == (step <= REPLACE_CURRENT), (step, live, old)
    # Full speed, killed at random moments over the whole publish (timed first).
    proc = subprocess.Popen([sys.executable, str(PUBLISH_CHILD), str(root), str(source), "0"],
                            stdout=subprocess.PIPE, text=True)
    at = {line.split()[0]: time.monotonic() for line in proc.stdout}
    assert proc.wait(60) == 0
    publish_s = at["done"] - at["go"]
    rng = random.Random(6)
    landed = []
    for _ in range(12):
        old = live_version(root)
        lines = publish_and_kill(root, source, delay=rng.uniform(0, 1.2 * publish_s))
        last = lines[-1].split()
        landed.append(int(last[1]) if last[0] == "step" else last[0])
        live = assert_sound(root)
        if landed[-1] in ("go", *range(1, REPLACE_CURRENT)):  # before CURRENT's replace
            assert live == old, landed[-1]
        elif landed[-1] != REPLACE_CURRENT:  # after it
            assert live != old, landed[-1]
    assert len(set(landed)) >= 3, landed  # the kills fell at different points
    assert live_version(root) != live_version(model_root)


# --- a corrupted, truncated or tampered model ------------------------------------------


def _rehash(d: Path, name: str) -> None:
    """Edit the manifest to match the changed file, as a careless tool or a tamperer would."""
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["files"][name] = hashlib.sha256((d / name).read_bytes()).hexdigest()
    (d / "manifest.json").write_text(json.dumps(manifest))


def _truncate(d: Path, name: str, keep: float = 0.5) -> None:
    data = (d / name).read_bytes()
    (d / name).write_bytes(data[: int(len(data) * keep)])


def _flip(d: Path, name: str) -> None:
    data = bytearray((d / name).read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 16):
        data[i] ^= 0xFF
    (d / name).write_bytes(bytes(data))


def _format(d: Path) -> None:
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["format_version"] = 99
    (d / "manifest.json").write_text(json.dumps(manifest))


BROKEN = {  # version suffix: how its files were damaged
    "truncated": lambda d: _truncate(d, "arrays.npz"),
    "flipped": lambda d: _flip(d, "ranker-need.txt"),
    "rehashed-arrays": lambda d: (_truncate(d, "arrays.npz"), _rehash(d, "arrays.npz")),
    "rehashed-state": lambda d: (_flip(d, "state.json"), _rehash(d, "state.json")),
    "rehashed-ranker": lambda d: (_truncate(d, "ranker-need.txt"),
                                  _rehash(d, "ranker-need.txt")),
    "rehashed-flipped-ranker": lambda d: (_flip(d, "ranker-program.txt"),
                                          _rehash(d, "ranker-program.txt")),
    "garbage-manifest": lambda d: (d / "manifest.json").write_bytes(b"\xff{garbage"),
    "format": _format,
}


def test_a_corrupted_or_tampered_model_is_refused_and_the_live_one_kept(tmp_path,
                                                                        model_root):
    prep = prepare(tmp_path / "data", model_root)
    root = prep.models_dir
    good = live_version(root)
    for suffix, damage in BROKEN.items():
        shutil.copytree(root / good, root / f"{good}-{suffix}")
        damage(root / f"{good}-{suffix}")
    query = {"title": "中药制剂工", "description": "中药提取浓缩与制粒", "k": 3}

    def serving_good(svc: ServiceProcess) -> None:
        assert svc.proc.poll() is None, svc.log()[-3000:]
        with svc.client(prep.keys["herbal"]) as c:
            live = [v["version"] for v in c.get("/api/v1/models").json()["items"]
                    if v["live"]]
            assert live == [good]
            r = c.post("/api/v1/match", json=query)
            assert r.status_code == 200 and r.json()["model_version"] == good, r.text
            assert r.json()["items"]

    with ServiceProcess(prep) as svc:
        svc.start()
        with svc.client(prep.keys["nanhai"]) as c:
            for suffix in BROKEN:
                r = c.post(f"/api/v1/models/{good}-{suffix}/activate")
                assert r.status_code == 409, (suffix, r.status_code, r.text)
                err = r.json()["error"]
                assert err["code"] in ("model_integrity", "model_incompatible"), err
                assert f"{good}-{suffix}" in err["message"]
                assert str(prep.data_dir) not in err["message"]  # no server paths
                serving_good(svc)
        assert live_version(root) == good

    # A version that went bad on disk after it was made live is refused at the next start;
    # the newest intact version is served instead (no first model is trained).
    (root / "CURRENT").write_text(f"{good}-rehashed-ranker\n")
    with ServiceProcess(prep) as svc:
        svc.start()
        serving_good(svc)
        log = svc.log()
        assert f"{good}-rehashed-ranker" in log and "refused" in log, log[-3000:]
        assert "training the first one" not in log


# --- the database goes away and comes back ---------------------------------------------


def test_postgresql_going_away_gives_503_quickly_and_the_service_recovers(tmp_path,
                                                                         model_root,
                                                                         pg_factory):
    url = pg_factory()
    prep = prepare(tmp_path / "data", model_root, url)
    proxy = TcpProxy(("127.0.0.1", 5432)).start()
    proxied = url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
    assert proxied != url
    need = {"title": "数控车工", "description": "数控车床加工"}
    match = {"title": "中药制剂工", "description": "中药提取浓缩与制粒", "k": 3}
    try:
        with ServiceProcess(prep, database_url=proxied) as svc:
            svc.start()
            with svc.client(prep.keys["herbal"], timeout=30) as c:
                need_id = c.post("/api/v1/needs", json=need).json()["id"]
                calls = [("GET", "/api/v1/needs", None), ("POST", "/api/v1/needs", need),
                         ("GET", f"/api/v1/needs/{need_id}/recommendations", None),
                         ("POST", "/api/v1/match", match),
                         ("POST", "/api/v1/outcomes", {"need_id": need_id, "program_id": 1,
                                                       "event": "viewed"})]
                assert c.get(calls[2][1]).status_code == 200
                assert proxy.accepted >= 1

                proxy.cut()
                for _ in range(3):
                    for method, path, body in calls:
                        t0 = time.monotonic()
                        r = c.request(method, path, json=body)
                        took = time.monotonic() - t0
                        assert r.status_code == 503, (method, path, r.status_code, r.text)
                        assert r.json()["error"]["code"] == "database_unavailable"
                        assert took < 5, (method, path, took)
                assert c.get("/healthz").status_code == 200
                r = c.get("/readyz")
                assert r.status_code == 503 and r.json()["database"] == "unavailable"

                proxy.restore()  # no restart: the next requests reconnect
                r = c.get("/api/v1/needs")
                assert r.status_code == 200, r.text
                r = c.post("/api/v1/needs", json=need)
                assert r.status_code == 201, r.text
                assert c.get(f"/api/v1/needs/{r.json()['id']}").json()["title"] == need["title"]
                r = c.post("/api/v1/match", json=match)
                assert r.status_code == 200 and r.json()["items"], r.text
                assert c.get("/readyz").status_code == 200

                # The database stops answering (a partition, a hung server): requests wait
                # for the connect timeout, then get 503; /healthz answers meanwhile.
                proxy.stall()

                def timed(method, path, body):
                    with svc.client(prep.keys["herbal"], timeout=30) as c2:
                        t0 = time.monotonic()
                        r = c2.request(method, path, json=body)
                        took = time.monotonic() - t0
                        code = (r.json().get("error") or {}).get("code")
                        return r.status_code, code, took, f"{method} {path}: {r.text[:300]}"

                with ThreadPoolExecutor(2) as pool:
                    waiting = [pool.submit(timed, *calls[0]), pool.submit(timed, *calls[3])]
                    time.sleep(0.5)
                    assert svc.client(timeout=3).get("/healthz").status_code == 200
                    for f in waiting:
                        status, code, took, text = f.result()
                        assert (status, code) == (503, "database_unavailable"), text
                        assert took < 10, took
                proxy.restore()
                assert c.get("/api/v1/needs").status_code == 200
                assert c.post("/api/v1/match", json=match).status_code == 200
            assert svc.proc.poll() is None
    finally:
        proxy.cut()


def test_a_database_lost_after_the_answer_is_not_the_requests_error(pg_factory):
    # A request's session is rolled back after its answer was sent. A database gone by
    # then made that rollback raise: the error reached the server after the response had
    # started and the client's kept-alive connection was dropped (its next request failed
    # with a connection reset instead of getting a 503).
    proxy = TcpProxy(("127.0.0.1", 5432)).start()
    db = Database(pg_factory().replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/"))
    try:
        request = session(SimpleNamespace(db=db))
        s = next(request)
        assert s.execute(text("SELECT 1")).scalar() == 1  # a transaction is open
        proxy.cut()
        with pytest.raises(StopIteration):
            next(request)  # the teardown after the answer
    finally:
        proxy.cut()
        db.dispose()




def _post_need(svc: ServiceProcess, key: str, out: list) -> None:
    with svc.client(key, timeout=120) as c:
        t0 = time.monotonic()
        r = c.post("/api/v1/needs", json={"title": "锁等待", "description": "写入"})
        out.append((r.status_code, r.json(), time.monotonic() - t0))


@pytest.mark.parametrize("held", [2.0, pytest.param(40.0, marks=pytest.mark.slow)])
def test_sqlite_locked_by_another_process(held, tmp_path, model_root):
    # SQLite has no server to lose; it is unavailable to the service when another process
    # (an operator's sqlite3 shell, a backup) holds its write lock. Reads go on (WAL);
    # writes wait for the busy timeout (30 s): a short hold delays them, a long one gets
    # 503 database_unavailable, and writes go through again once the lock is released.
    prep = prepare(tmp_path / "data", model_root)
    key = prep.keys["herbal"]
    with ServiceProcess(prep) as svc:
        svc.start()
        lock = sqlite3.connect(prep.database_url.split("///", 1)[1], isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        try:
            out: list = []
            writer = threading.Thread(target=_post_need, args=(svc, key, out))
            writer.start()
            time.sleep(0.5)
            with svc.client(key, timeout=5) as c:
                assert c.get("/api/v1/needs").status_code == 200
                assert c.get("/healthz").status_code == 200
            writer.join(held)
            assert writer.is_alive() == (held < 30)
        finally:
            lock.execute("COMMIT")
            lock.close()
        writer.join(60)
        ((status, answer, took),) = out
        if held < 30:
            assert status == 201 and held <= took < held + 10, (status, took)
        else:
            assert status == 503 and answer["error"]["code"] == "database_unavailable"
            assert 25 < took < held, took
        out.clear()
        _post_need(svc, key, out)
        assert out[0][0] == 201


# --- graceful shutdown -----------------------------------------------------------------


def test_sigterm_finishes_the_requests_in_flight_and_exits_0(tmp_path, model_root):
    prep = prepare(tmp_path / "data", model_root)
    with ServiceProcess(prep) as svc:
        svc.start()
        key = prep.keys["herbal"]
        need = {"title": "关机时写入的需求", "description": "中药提取浓缩与制粒，GMP车间"}
        match = {"title": "中药制剂工", "description": "中药提取浓缩与制粒", "k": 50,
                 "include_low": True}
        # Four requests the server has started (headers and half the body received): two
        # writes and two rankings, each on its own connection.
        slow = [SlowRequest(svc.port, "POST", "/api/v1/needs", key, need),
                SlowRequest(svc.port, "POST", "/api/v1/match", key, match),
                SlowRequest(svc.port, "POST", "/api/v1/needs", key, {**need, "headcount": 2}),
                SlowRequest(svc.port, "POST", "/api/v1/match", key, {**match, "k": 5})]
        deadline = time.monotonic() + 30
        while in_flight(svc.url) < len(slow):
            assert time.monotonic() < deadline, "the requests never reached the server"
            time.sleep(0.05)
        svc.signal(signal.SIGTERM)
        time.sleep(0.5)
        assert svc.proc.poll() is None  # waiting for the requests in flight
        with pytest.raises(ConnectionRefusedError):  # and taking no new ones
            socket.create_connection(("127.0.0.1", svc.port), timeout=5).close()
        answers = [r.finish() for r in slow]
        assert [status for status, _ in answers] == [201, 200, 201, 200], answers
        assert answers[1][1]["items"] and len(answers[3][1]["items"]) == 5
        t0 = time.monotonic()
        assert svc.wait(15) == 0, svc.log()[-3000:]
        assert time.monotonic() - t0 < 10
    db = Database(prep.database_url)
    try:
        with db.session() as s:
            for _, got in (answers[0], answers[2]):
                assert s.get(Need, got["id"]).title == need["title"]
    finally:
        db.dispose()
