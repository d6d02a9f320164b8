"""A hostile client against a real ``iei-match serve`` with several alliances: every attack
of the multi-alliance review, run in one command, printing what happened.

    PYTHONPATH=src:service python benchmarks/attack.py [--quick]

It makes a data directory, trains a small model, seeds the demo alliances (Nanhai,
Shanghai, Chengdu-Chongqing) with keys for two enterprises, a college, two coordinators
and an admin, starts ``iei-match serve`` on 127.0.0.1 and then, one after the other:
hostile uploads (memory of the server and its children sampled from /proc), floods (keyless,
one key, large bodies, slow headers), reaches across alliances, and the smaller defects.
Each line says what was tried, what the service answered and whether that holds (``ok``)
or not (``FAIL``). Traffic goes to 127.0.0.1 only and every loop is bounded in time.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests" / "service")]

from alliance_data import Service, free_port, train_model  # noqa: E402
from hostile_files import (  # noqa: E402
    parquet_empty,
    parquet_many_rows,
    xlsx_big_cell,
    xlsx_column_xfd,
)

MATCH = {"title": "中药制剂工", "description": "中药提取浓缩与制粒", "k": 5}
RESULTS: list[tuple[str, bool, str]] = []


def report(what: str, ok: bool, detail: str) -> None:
    RESULTS.append((what, ok, detail))
    print(f"{'ok  ' if ok else 'FAIL'}  {what}: {detail}", flush=True)


def rss_tree(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


class Peak:
    def __init__(self, pid: int):
        self.pid = pid

    def __enter__(self):
        self.base = self.peak = rss_tree(self.pid)
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()
        self.t0 = time.monotonic()
        return self

    def _run(self):
        while not self.stop.wait(0.05):
            self.peak = max(self.peak, rss_tree(self.pid))

    def __exit__(self, *exc):
        self.seconds = time.monotonic() - self.t0
        self.stop.set()
        self.t.join()

    @property
    def mb(self) -> float:
        return (self.peak - self.base) / 1e6


def setup(data: Path, quick: bool) -> dict:
    from iei_match_service.auth import create_key
    from iei_match_service.db.engine import Database, upgrade
    from iei_match_service.demo import seed

    train_model(data / "models", quick=True)
    db = Database(f"sqlite:///{data / 'iei-match.db'}")
    upgrade(db.engine)
    with db.session() as s:
        orgs = {k: v.id for k, v in seed(s).items()}
        keys = {name: create_key(s, orgs[org], role) for name, (org, role) in {
            "herbal": ("herbal", "enterprise"), "soft": ("soft", "enterprise"),
            "cq": ("cq", "enterprise"), "fsvc": ("fsvc", "college"),
            "cdit": ("cdit", "college"), "nanhai": ("nanhai", "coordinator"),
            "chengyu": ("chengyu", "coordinator"),
            "admin": ("nanhai", "admin")}.items()}  # as the demo: the admin key on Nanhai
    db.dispose()
    return {"orgs": orgs, "keys": keys}


def client(svc: Service, key: str | None = None, timeout: float = 60) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=svc.url, headers=headers, timeout=timeout)


def upload(c, path: Path, kind: str = "needs", name: str | None = None):
    with open(path, "rb") as f:
        return c.post(f"/api/v1/imports/{kind}", files={"file": (name or path.name, f)})


# ------------------------------------------------------------------------------- uploads

def uploads(svc, w, tmp: Path) -> None:
    pid = svc.proc.pid
    with client(svc, w["keys"]["herbal"]) as c:
        for label, path, seconds in (
                ("XLSX, one cell of 160 MB", xlsx_big_cell(tmp / "bomb.xlsx", 160_000_000), 15),
                ("XLSX, one cell of 60 MB", xlsx_big_cell(tmp / "cell.xlsx", 60_000_000), 15),
                ("Parquet, 20 million rows", parquet_many_rows(tmp / "rows.parquet"), 5),
                ("XLSX, 1,000 rows reaching column XFD",
                 xlsx_column_xfd(tmp / "xfd.xlsx", 1000), 5)):
            with Peak(pid) as peak:
                r = upload(c, path)
            ok = r.status_code in (413, 422) and peak.seconds <= seconds and peak.mb <= 300
            report(f"upload {label} ({path.stat().st_size / 1e6:.2f} MB)", ok,
                   f"{r.status_code} in {peak.seconds:.2f} s, server +{peak.mb:.0f} MB: "
                   f"{r.json()['error']['message'][:110]}")
    data = (tmp / "xfd.xlsx").read_bytes()
    stop = threading.Event()

    def flood(_):
        codes = []
        with client(svc, w["keys"]["herbal"]) as c:
            while not stop.is_set():
                codes.append(c.post("/api/v1/imports/needs",
                                    files={"file": ("x.xlsx", data)}).status_code)
        return codes

    with cf.ThreadPoolExecutor(40) as pool:
        futures = [pool.submit(flood, i) for i in range(40)]
        time.sleep(1)
        times = []
        with client(svc, w["keys"]["soft"], timeout=10) as other:
            for _ in range(40):
                t0 = time.monotonic()
                try:
                    ok = other.get("/api/v1/me").status_code == 200
                except httpx.TimeoutException:
                    ok = False
                times.append(time.monotonic() - t0 if ok else 99)
        stop.set()
        codes = [x for f in futures for x in f.result()]
    fast = sum(t <= 1 for t in times) / len(times)
    report("40 concurrent XFD uploads from one key; another enterprise's GET /me", fast >= 0.9,
           f"{fast:.0%} answered within 1 s (median {statistics.median(times) * 1000:.0f} ms); "
           f"uploads got {dict(sorted(Counter(codes).items()))}")


# -------------------------------------------------------------------------------- floods

def rankings(svc, key: str, seconds: float) -> tuple[int, int]:
    ok = sent = 0
    end = time.monotonic() + seconds
    with client(svc, key, timeout=10) as c:
        while time.monotonic() < end:
            t0 = time.monotonic()
            try:
                r = c.post("/api/v1/match", json=MATCH)
                ok += r.status_code == 200 and time.monotonic() - t0 <= 1
            except httpx.TimeoutException:
                pass
            sent += 1
            time.sleep(0.01)
    return ok, sent


def flooder(svc, threads: int, seconds: float, key: str = "", body: int = 0,
            path: str = "/api/v1/match"):
    return subprocess.Popen([sys.executable, str(HERE.parent / "tests" / "service" /
                                                 "flooder.py"), svc.url, path, str(threads),
                             str(seconds), key, str(body)], stdout=subprocess.PIPE, text=True)


def floods(svc, w, seconds: float) -> None:
    herbal = w["keys"]["cq"]  # a key the upload flood above did not use
    alone_ok, alone_sent = rankings(svc, herbal, seconds)
    rate = alone_ok / seconds
    for label, key, body in (("16 clients without a key flooding /match", "", 0),
                             ("16 clients of one key (soft) flooding /match", w["keys"]["soft"],
                              0),
                             ("16 clients without a key sending 960 KB bodies", "", 960_000)):
        time.sleep(3)
        proc = flooder(svc, 16, seconds + 3, key, body)
        time.sleep(1.5)
        ok, sent = rankings(svc, herbal, seconds)
        counts = json.loads(proc.communicate(timeout=120)[0])
        good = ok >= 0.9 * sent and ok / seconds >= 0.5 * rate
        if key:
            good = good and counts.get("429", 0) > 0
        report(label, good, f"the other enterprise: {ok}/{sent} rankings within 1 s "
               f"({ok / seconds:.1f}/s; alone {rate:.1f}/s, {alone_ok}/{alone_sent}); "
               f"the flood got {counts}")
    time.sleep(3)
    with client(svc, w["keys"]["fsvc"]) as c:
        lat = []
        proc = flooder(svc, 20, seconds, "", 960_000)
        time.sleep(1)
        for _ in range(20):
            t0 = time.monotonic()
            c.get("/api/v1/me")
            lat.append(time.monotonic() - t0)
        proc.communicate(timeout=120)
    report("20 keyless clients posting 960 KB bodies; another user's GET /me",
           statistics.median(lat) < 0.2, f"median {statistics.median(lat) * 1000:.0f} ms")
    with client(svc) as anon:
        codes = [anon.get("/api/v1/me").status_code for _ in range(70)]
    report("failed authentication, 70 keyless requests from one address", 429 in codes,
           f"{Counter(codes)}")


def slowloris(svc, w, timeout_s: float) -> None:
    socks = []
    for _ in range(250):
        s = socket.create_connection(("127.0.0.1", int(svc.url.rsplit(":", 1)[1])))
        s.sendall(b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        socks.append(s)
    time.sleep(timeout_s + 2)
    closed = 0
    for s in socks:
        s.settimeout(1)
        try:
            closed += s.recv(100) == b""
        except OSError:
            pass
        s.close()
    report(f"250 connections sending incomplete headers, after {timeout_s + 2:.0f} s",
           closed == 250, f"{closed} closed by the server")


# ------------------------------------------------------------------------------- reach

def reach(svc, w, data: Path) -> None:
    k = w["keys"]
    with client(svc, k["admin"]) as admin:
        job = admin.post("/api/v1/batch", json={"top_k": 3, "allocate": False}).json()
    with client(svc, k["nanhai"]) as c:  # the admin key belongs to Nanhai, as in the demo
        listed = job["id"] in [j["id"] for j in c.get("/api/v1/jobs").json()["items"]]
        codes = [c.get(f"/api/v1/jobs/{job['id']}").status_code,
                 c.get(f"/api/v1/jobs/{job['id']}/results/scores").status_code,
                 c.post(f"/api/v1/jobs/{job['id']}/cancel").status_code]
    report("a coordinator lists, reads, cancels the admin's platform-wide job",
           not listed and codes == [404] * 3, f"listed: {listed}; answers {codes}")
    with client(svc, k["admin"]) as admin:
        admin.post(f"/api/v1/jobs/{job['id']}/cancel")
    with client(svc, k["herbal"]) as c:
        need = c.get("/api/v1/needs").json()["items"][0]["id"]
    with client(svc, k["cdit"]) as c:
        other = c.get("/api/v1/programs").json()["items"][0]["id"]
    with client(svc, k["fsvc"]) as c:
        own = c.get("/api/v1/programs").json()["items"][-1]["id"]
    with client(svc, k["herbal"]) as c:
        r = c.post("/api/v1/outcomes", json={"need_id": need, "program_id": other,
                                             "event": "hired"})
    report("an enterprise records 'hired' with another alliance's program", r.status_code == 404,
           f"{r.status_code}")
    with client(svc, k["herbal"]) as c:
        c.post("/api/v1/outcomes", json={"need_id": need, "program_id": own,
                                         "event": "agreement_signed"})
    with client(svc, k["fsvc"]) as c:
        r = c.post("/api/v1/outcomes", json={"need_id": need, "program_id": own,
                                             "event": "rejected"})
    report("a college records 'rejected' over the enterprise's agreement",
           r.json().get("grade") == 2, f"grade {r.json().get('grade')}")
    with client(svc, k["chengyu"]) as c:
        live = c.get("/api/v1/models").json()["items"][-1]["version"]
        codes = [c.post(f"/api/v1/models/{live}/activate").status_code,
                 c.post("/api/v1/models/retrain", json={"force": True}).status_code]
    report("a coordinator activates / force-retrains the model every alliance uses",
           codes == [403, 403], f"{codes}")
    rows = "need_id,title,text\n" + "".join(f"J{i},垃圾需求{i},x\n" for i in range(6000))
    with client(svc, k["cq"]) as c:
        r = c.post("/api/v1/imports/needs", files={"file": ("junk.csv", rows.encode())})
    report("one enterprise imports 6,000 junk needs", r.status_code == 422,
           f"{r.status_code} {r.json()['error']['code']}")


# ------------------------------------------------------------------------------ smaller

def smaller(svc, w, data: Path, tmp: Path) -> None:
    k = w["keys"]
    with client(svc, k["herbal"]) as c:
        r = upload(c, parquet_empty(tmp / "empty.parquet"))
        leak = tempfile.gettempdir() in r.text or "/upload" in r.text
        report("an empty Parquet upload's error", not leak, r.json()["error"]["message"][:100])
        sneaky = "焊\u202e工\u200b技\u2066师\x85\r\n"
        r = c.post("/api/v1/needs", json={"title": "t", "description": sneaky})
        stored = c.get(f"/api/v1/needs/{r.json()['id']}").json()["description"]
        report("stored text with U+202E, U+200B, U+2066, U+0085, CR", stored == "焊工技师\n",
               repr(stored))
        h = c.get("/api/v1/me").headers
        report("JSON headers", h.get("x-content-type-options") == "nosniff"
               and h.get("cache-control") == "no-store",
               f"nosniff={h.get('x-content-type-options')}, cache={h.get('cache-control')}")
    with client(svc) as anon:
        r = anon.get("/metrics")
    report("/metrics without a key", r.status_code == 401, f"{r.status_code}")
    big = ("need_id,title,text,headcount\n" + "".join(
        f"N{i},焊工{i},{'焊接' * 200},1\n" for i in range(1500))).encode()
    with client(svc, k["nanhai"]) as c:
        r = c.post("/api/v1/batch/upload", files={
            "needs": ("n.csv", big), "programs": ("p.csv", "program_id,title,text,"
                                                  "graduates_per_year\nP1,数控,x,5\n".encode())})
        report(f"/batch/upload of {len(big) / 1e6:.1f} MB (README: 10 MB)", r.status_code == 202,
               f"{r.status_code}")
        if r.status_code == 202:
            c.post(f"/api/v1/jobs/{r.json()['id']}/cancel")
    with client(svc, k["fsvc"]) as c:
        r = c.post("/api/v1/imports/bases", files={"file": (
            "b.csv", "名称,description\n数控实训中心,五轴\n".encode())})
    report("a training-base import with a 名称 column", r.status_code == 201, f"{r.status_code}")
    before = {p.name for p in Path(tempfile.gettempdir()).glob("iei-*")}
    head = (f"POST /api/v1/imports/needs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            f"{k['herbal']}\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: 3000000\r\n\r\n--b\r\nContent-Disposition: form-data; "
            f"name=\"file\"; filename=\"n.csv\"\r\n\r\nneed_id,title,text\n").encode()
    with socket.create_connection(("127.0.0.1", int(svc.url.rsplit(":", 1)[1]))) as s:
        s.sendall(head + b"N1,a,b\n" * 100_000)
    time.sleep(2)
    left = {p.name for p in Path(tempfile.gettempdir()).glob("iei-*")} - before
    report("an upload whose client dies mid-body", not left, f"files left: {sorted(left)}")
    export_check(svc, w, data)
    demo_check(tmp)


def export_check(svc, w, data: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from iei_match_service.db.engine import Database
    from iei_match_service.db.tables import Job

    db = Database(f"sqlite:///{data / 'iei-match.db'}")
    with db.session() as s:
        job = Job(kind="batch", org_id=w["orgs"]["nanhai"], state="succeeded",
                  params={"scope": "organisation"}, result={"results": ["scores"]})
        s.add(job)
        s.flush()
        job_id = job.id
    db.dispose()
    folder = data / "jobs" / str(job_id)
    folder.mkdir(parents=True, exist_ok=True)
    n = pa.array(range(1_048_577), pa.int64())
    pq.write_table(pa.table({"need_id": n, "program_id": n}), folder / "scores.parquet")
    with client(svc, w["keys"]["nanhai"]) as c:
        r = c.get(f"/api/v1/jobs/{job_id}/results/scores", params={"format": "xlsx"})
    report("an XLSX export of 1,048,577 rows", r.status_code == 413 and "CSV" in r.text,
           f"{r.status_code} {r.json()['error']['message'][:100]}")


def demo_check(tmp: Path) -> None:
    env = {**os.environ, "IEI_MATCH_DATA_DIR": str(tmp / "demo")}
    keys = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-m", "iei_match_service.cli", "demo",
                              "--no-serve"], env=env, capture_output=True, text=True).stdout
        keys.append([x.strip() for x in out.splitlines() if x.strip().startswith("iem_")])
    from iei_match_service.auth import authenticate
    from iei_match_service.db.engine import Database
    from iei_match_service.errors import Unauthorized

    db = Database(f"sqlite:///{tmp / 'demo' / 'iei-match.db'}")
    valid = 0
    with db.session() as s:
        for key in keys[0]:
            try:
                authenticate(s, f"Bearer {key}")
                valid += 1
            except Unauthorized:
                pass
    db.dispose()
    report("the first demo run's keys after a second run", valid == 0,
           f"{valid} of {len(keys[0])} still valid")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="shorter floods (4 s instead of 8 s)")
    p.add_argument("--keep", type=Path, help="work in this directory and keep it")
    args = p.parse_args(argv)
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="iei-attack-"))
    data = tmp / "data"
    data.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    w = setup(data, args.quick)
    env = {"IEI_MATCH_HEADER_TIMEOUT_S": "10"}
    with Service(data, free_port(), env) as svc:
        print(f"service at {svc.url}, pid {svc.proc.pid}; data in {data}", flush=True)
        uploads(svc, w, tmp)
        floods(svc, w, 4 if args.quick else 8)
        slowloris(svc, w, 10)
        reach(svc, w, data)
        smaller(svc, w, data, tmp)
    failed = [r for r in RESULTS if not r[1]]
    print(f"\n{len(RESULTS) - len(failed)} passed, {len(failed)} failed "
          f"({time.monotonic() - t0:.0f} s)")
    if not args.keep:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
