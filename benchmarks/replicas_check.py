"""Two replicas of ``iei-match serve`` on one PostgreSQL database and one models directory,
checked against each "Done when" bullet of "a service that scales out", with a figure each.

    python benchmarks/replicas_check.py [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]
                                        [--quick] [--seconds 20] [--env IEI_MATCH_X=V]
                                        [--models DIR] [--only CHECKS] [--work DIR]
                                        [--output FILE.md]

A fresh database (created on the ``--pg`` server, dropped at the end) is migrated and given
the demo alliances (``iei-match demo``'s data) and four keys (an enterprise, a college, a
coordinator, an admin). The models directory starts empty. Two ``iei-match serve``
processes (``python -m iei_match_service.cli serve``) run with the service's default
settings (the default training parameters; ``--quick`` trains the tests' small model
instead), except a rate limit raised out of the way of the load and a body limit that
admits the bundled catalog's two files as a batch upload. Then, in order:

1. both are started at the same moment on the empty models directory (each trains a first
   model): seconds until both are ready, the version each serves and ``CURRENT``;
2. a need written through one replica is read, changed and deleted through the other;
3. ``--races`` rounds of PATCH, PUT and DELETE racing on one need through both replicas:
   statuses, 5xx;
4. 8 clients (4 per replica) record the first outcome of one new pair at once, for 5 pairs;
5. a forced retraining through each replica at the same moment (two jobs, distinct
   ``Idempotency-Key``): the version each job published, the one both serve at the end;
6. a rollback through one replica, and back through the other: seconds until both serve it;
7. a batch job (the bundled catalog uploaded) run by one replica is cancelled through the
   other; a small batch job's results are read through both;
8. rankings (4 closed-loop clients, 2 per replica: a program's partners and a need's
   programs) for ``--seconds`` without writes, then with 4 clients writing needs (each
   creates a need, changes it and deletes it, so that the table keeps its size), then the
   writers alone (what a write costs the replicas' CPU);
9. a batch job whose replica is killed with ``kill -9`` (never restarted) completes on the
   other: seconds from the kill.

Prints a markdown table (bullet, figure, pass) and writes it to ``--output``. Exits with 1
when a bullet fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import sqlalchemy as sa
from alliance_data import SMALL_MODEL, free_port, machine, percentiles, stop_process, uptime_load

from iei_match.bundled import catalog_dir

FINISHED = ("succeeded", "failed", "cancelled")
KEYS = {"firm": ("herbal", "enterprise"), "college": ("fsvc", "college"),
        "steward": ("nanhai", "coordinator"), "admin": ("shanghai", "admin")}
SRC = catalog_dir("cn-vocational")


class Replica:
    """One ``iei-match serve`` process of the pair (its output goes to a log file)."""

    def __init__(self, name: str, data_dir: Path, env: dict):
        self.name, self.port = name, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "IEI_MATCH_DATA_DIR": str(data_dir),
                    "IEI_MATCH_HOST": "127.0.0.1", "IEI_MATCH_PORT": str(self.port), **env}
        self.log = data_dir / f"serve-{name}.log"
        self.proc: subprocess.Popen | None = None

    def launch(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "iei_match_service.cli", "serve"], env=self.env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float) -> float:
        """Seconds until ``/readyz`` answers 200 (from now)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"replica {self.name} exited; see {self.log}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return time.monotonic() - t0
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"replica {self.name} not ready after {timeout} s; see {self.log}")

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"},
                            timeout=120)

    def cpu(self) -> float:
        """CPU seconds the process has used (user and system)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)


class Check:
    """The pair, the keys, the database and the table of results."""

    def __init__(self, args, data_dir: Path, url: str, keys: dict):
        self.args, self.data_dir, self.url, self.keys = args, data_dir, url, keys
        env = {"IEI_MATCH_DATABASE_URL": url, "IEI_MATCH_MODELS_DIR": str(self.models_dir),
               "IEI_MATCH_RATE_LIMIT_PER_MINUTE": "1000000",
               "IEI_MATCH_MAX_BODY_BYTES": "5000000"}
        if args.quick:
            env["IEI_MATCH_TRAIN_PARAMS"] = json.dumps(SMALL_MODEL)
        env.update(item.split("=", 1) for item in args.env)
        self.a, self.b = Replica("a", data_dir, env), Replica("b", data_dir, env)
        self.rows: list[tuple[str, str, bool]] = []

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    def record(self, bullet: str, figure: str, ok: bool) -> None:
        self.rows.append((bullet, figure, ok))
        print(f"[{'PASS' if ok else 'FAIL'}] {bullet}: {figure} (load {uptime_load():.1f})",
              flush=True)

    def live(self) -> str | None:
        p = self.models_dir / "CURRENT"
        return p.read_text().strip() if p.exists() else None

    def served(self, r: Replica) -> str:
        with r.client(self.keys["firm"]) as c:
            got = c.post("/api/v1/match", json={"title": "中药制剂工",
                                                "description": "中药提取浓缩", "k": 1})
            got.raise_for_status()
            return got.json()["model_version"]

    def job_row(self, job_id: int) -> dict:
        engine = sa.create_engine(self.url)
        try:
            with engine.connect() as conn:
                return dict(conn.execute(sa.text(
                    "SELECT lease_owner, attempts, state FROM jobs WHERE id = :i"),
                    {"i": job_id}).one()._mapping)
        finally:
            engine.dispose()

    def owner(self, job_id: int) -> Replica:
        pid = int(self.job_row(job_id)["lease_owner"].split(":")[1])
        return {self.a.proc.pid: self.a, self.b.proc.pid: self.b}[pid]

    # -- the bullets ---------------------------------------------------------------------

    def empty_start(self) -> None:
        for r in (self.a, self.b):
            r.launch()
        with ThreadPoolExecutor(2) as pool:
            took = list(pool.map(lambda r: r.wait_ready(1800), (self.a, self.b)))
        versions = [self.served(r) for r in (self.a, self.b)]
        published = sorted(p.name for p in self.models_dir.iterdir()
                           if (p / "manifest.json").exists())
        ok = versions[0] == versions[1] == self.live()
        self.record("Started at the same moment on an empty models directory, both become "
                    "ready and serve the same version",
                    f"ready after {took[0]:.0f} s and {took[1]:.0f} s; both serve "
                    f"{versions[0]} / {versions[1]} (CURRENT {self.live()}); "
                    f"{len(published)} versions published", ok)

    def start(self) -> None:
        for r in (self.a, self.b):
            r.launch()
        for r in (self.a, self.b):
            r.wait_ready(600)

    def need_across(self) -> None:
        firm = self.keys["firm"]
        with self.a.client(firm) as ca, self.b.client(firm) as cb:
            made = ca.post("/api/v1/needs", json={"title": "制剂工", "description": "中药制剂"})
            need = made.json()["id"]
            path = f"/api/v1/needs/{need}"
            steps = [("create via A", made.status_code),
                     ("read via B", cb.get(path).status_code),
                     ("patch via B", cb.patch(path, json={"headcount": 7}).status_code),
                     ("read via A", ca.get(path).status_code),
                     ("delete via B", cb.delete(path).status_code),
                     ("read via A", ca.get(path).status_code),
                     ("delete via A", ca.delete(path).status_code)]
            seen = ca.get("/api/v1/needs", params={"limit": 1000}).json()["items"]
        expected = [201, 200, 200, 200, 204, 404, 404]
        ok = [s for _, s in steps] == expected and need not in {n["id"] for n in seen}
        self.record("A need written through one replica is read, changed and deleted "
                    "through the other", ", ".join(f"{w} {s}" for w, s in steps), ok)

    def races(self) -> None:
        firm = self.keys["firm"]
        got: Counter = Counter()
        winners = []
        with self.a.client(firm) as ca, self.b.client(firm) as cb:
            for i in range(self.args.races):
                need = ca.post("/api/v1/needs", json={"title": f"竞争{i}"}).json()["id"]
                path = f"/api/v1/needs/{need}"
                calls = [(ca.patch, {"json": {"headcount": 2}}),
                         (cb.put, {"json": {"title": "新"}}), (cb.delete, {}), (ca.delete, {}),
                         (ca.patch, {"json": {"city": "佛山"}}), (cb.delete, {})]
                with ThreadPoolExecutor(len(calls)) as pool:
                    codes = list(pool.map(lambda c, p=path: c[0](p, **c[1]).status_code,
                                          calls))
                got.update(f"{m} {s}" for m, s in zip(
                    ("PATCH", "PUT", "DELETE", "DELETE", "PATCH", "DELETE"), codes,
                    strict=True))
                winners.append(sorted(codes[i] for i in (2, 3, 5)) == [204, 404, 404])
        fives = sum(n for k, n in got.items() if int(k.split()[1]) >= 500)
        ok = not fives and all(winners)
        self.record("PATCH and PUT racing DELETE on one need never give a 5xx",
                    f"{self.args.races} rounds x 6 requests: "
                    + ", ".join(f"{k}: {n}" for k, n in sorted(got.items()))
                    + f"; 5xx: {fives}; exactly one DELETE won in {sum(winners)}/"
                    f"{len(winners)} rounds", ok)

    def first_outcomes(self) -> None:
        firm, pairs = self.keys["firm"], 5
        with self.a.client(self.keys["college"]) as c:
            programs = [p["id"] for p in c.get("/api/v1/programs").json()["items"]]
        statuses: Counter = Counter()
        single = 0
        for i in range(pairs):
            with self.a.client(firm) as ca:
                need = ca.post("/api/v1/needs", json={"title": f"新的一对{i}",
                                                      "description": "中药"}).json()["id"]
            clients = [(self.a if j % 2 else self.b).client(firm) for j in range(8)]
            body = {"need_id": need, "program_id": programs[i % len(programs)],
                    "event": "contacted"}
            try:
                with ThreadPoolExecutor(8) as pool:
                    got = list(pool.map(lambda c, body=body: c.post("/api/v1/outcomes",
                                                                     json=body), clients))
            finally:
                for c in clients:
                    c.close()
            statuses.update(r.status_code for r in got)
            single += len({r.json().get("partnership_id") for r in got
                           if r.status_code == 201}) == 1
        ok = set(statuses) == {201} and single == pairs
        self.record("8 clients recording the first outcome of one new pair at once all "
                    "succeed", f"{pairs} pairs x 8 clients (4 per replica): "
                    + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items()))
                    + f"; one partnership per pair in {single}/{pairs}", ok)

    def wait_job(self, c: httpx.Client, job_id: int, timeout: float,
                 until=lambda j: j["state"] in FINISHED) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            job = c.get(f"/api/v1/jobs/{job_id}").json()
            if until(job) or time.monotonic() > deadline:
                return job
            time.sleep(0.5)

    def both_serve(self, version: str, timeout: float) -> float | None:
        """Seconds until both replicas serve ``version`` (None: not within ``timeout``)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if all(self.served(r) == version for r in (self.a, self.b)):
                return time.monotonic() - t0
            time.sleep(0.1)
        return None

    def retrain_both(self) -> None:
        admin = self.keys["admin"]
        before = self.live()

        def retrain(r: Replica) -> dict:
            with r.client(admin) as c:
                got = c.post("/api/v1/models/retrain", json={"force": True},
                             headers={"Idempotency-Key": f"retrain-{r.name}-{uuid.uuid4()}"})
                got.raise_for_status()
                return got.json()

        t0 = time.monotonic()
        with ThreadPoolExecutor(2) as pool:
            jobs = list(pool.map(retrain, (self.a, self.b)))
        with self.a.client(admin) as c:
            self.wait_job(c, jobs[-1]["id"], 600, until=lambda j: j["state"] != "queued")
            holders = {self.job_row(j["id"])["lease_owner"] for j in jobs} - {None}
            done = [self.wait_job(c, j["id"], 3600) for j in jobs]
        took = time.monotonic() - t0
        live = self.live()
        converged = self.both_serve(live, 60)
        stable = converged is not None
        for _ in range(10):  # and they stay on it
            time.sleep(0.5)
            stable &= all(self.served(r) == live for r in (self.a, self.b))
        owners = {j["id"]: j.get("message", "") for j in done}
        published = [(j.get("result") or {}).get("version") for j in done]
        ok = (len({j["id"] for j in jobs}) == 2 and all(j["state"] == "succeeded" for j in done)
              and converged is not None and stable and live in published
              and len(set(published)) == 2)
        self.record("Retraining on both replicas at once ends with both serving the one "
                    "live version",
                    f"2 forced retrainings (jobs {sorted(owners)}, run by {len(holders)} "
                    f"replicas at once) ended "
                    f"{' / '.join(j['state'] for j in done)} in {took:.0f} s, published "
                    f"{published[0]} and {published[1]} (was {before}); CURRENT {live}, "
                    f"served by both "
                    + (f"{converged:.1f} s after the last job ended, and 5 s later"
                       if converged is not None else "NOT within 60 s"), ok)

    def rollback(self) -> None:
        admin = self.keys["admin"]
        names = sorted(p.name for p in self.models_dir.iterdir()
                       if (p / "manifest.json").exists())
        start = self.live()
        target = next(n for n in reversed(names) if n != start)
        figures, ok = [], True
        for version, via in ((target, self.a), (start, self.b)):
            with via.client(admin) as c:
                got = c.post(f"/api/v1/models/{version}/activate")
            t = self.both_serve(version, 60) if got.status_code == 200 else None
            ok &= t is not None and t <= 15
            figures.append(f"to {version} through {via.name}: both serve it after "
                           + (f"{t:.1f} s" if t is not None else "more than 60 s"))
        self.record("A rollback through one replica is served by both within 15 s",
                    "; ".join(figures) + " (IEI_MATCH_MODEL_POLL_S 2 s)", ok)

    def upload(self, c: httpx.Client, **form) -> dict:
        files = {"needs": ("needs.csv", (SRC / "needs.csv").read_bytes(), "text/csv"),
                 "programs": ("programs.csv", (SRC / "programs.csv").read_bytes(), "text/csv")}
        got = c.post("/api/v1/batch/upload", files=files,
                     data={"top_k": "5", "allocate": "false", **form})
        got.raise_for_status()
        return got.json()

    def batch_across(self) -> None:
        steward = self.keys["steward"]
        with self.a.client(steward) as ca, self.b.client(steward) as cb:
            job = self.upload(ca)
            again = self.upload(cb)["id"]
            running = self.wait_job(ca, job["id"], 600, until=lambda j: j["state"] in
                                    FINISHED or j["progress"] > 0)
            owner = self.owner(job["id"]) if running["state"] == "running" else None
            other = self.b if owner is self.a else self.a
            with other.client(steward) as c:
                asked = c.post(f"/api/v1/jobs/{job['id']}/cancel").status_code
            t0 = time.monotonic()
            cancelled = self.wait_job(cb, job["id"], 120)
            t_cancel = time.monotonic() - t0
            small = ca.post("/api/v1/batch", json={"top_k": 3}).json()
            done = self.wait_job(cb, small["id"], 1200)
            pages = [c.get(f"/api/v1/jobs/{small['id']}/results/scores",
                           params={"limit": 1000}) for c in (ca, cb)]
            plots = [c.get(f"/api/v1/jobs/{small['id']}/plots/gap.png").status_code
                     for c in (ca, cb)]
        small_owner = done.get("message", "")
        same = (all(p.status_code == 200 for p in pages)
                and pages[0].json() == pages[1].json() and pages[0].json()["total"] > 0)
        ok = (owner is not None and again == job["id"] and asked == 200
              and cancelled["state"] == "cancelled" and done["state"] == "succeeded"
              and same and plots == [200, 200])
        self.record("A batch job run by one replica is read, and can be cancelled, through "
                    "the other",
                    f"upload run by {owner.name if owner else '?'}, the identical upload "
                    f"through B {'is the same job' if again == job['id'] else 'is ANOTHER job'}"
                    f"; cancelled through {other.name} ({asked}): {cancelled['state']} "
                    f"{t_cancel:.1f} s later; a stored-data job ({small_owner!r}) "
                    f"{done['state']}, its {pages[0].json().get('total', 0)} score rows and "
                    f"its plot read through A and B: "
                    f"{'identical' if same else 'DIFFERENT'} ({[p.status_code for p in pages]}"
                    f", plots {plots})", ok)

    def rankings(self, r: Replica, seconds: float, stop: list) -> list[tuple[int, float]]:
        out = []
        with r.client(self.keys["college"]) as college, r.client(self.keys["firm"]) as firm:
            program = college.get("/api/v1/programs").json()["items"][0]["id"]
            need = firm.get("/api/v1/needs").json()["items"][0]["id"]
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                for c, path in ((college, f"/api/v1/programs/{program}/partners?k=10"),
                                (firm, f"/api/v1/needs/{need}/recommendations?k=10")):
                    t0 = time.monotonic()
                    out.append((c.get(path).status_code, time.monotonic() - t0))
        stop.append(True)
        return out

    def writes(self, r: Replica, stop: list, n: int) -> list[int]:
        out = []
        with r.client(self.keys["firm"]) as c:
            while not stop:
                got = c.post("/api/v1/needs", json={
                    "title": f"写入{n}号", "description": "中药制剂", "skills": ["中药炮制"],
                    "headcount": 2})
                out.append(got.status_code)
                if got.status_code == 201:  # changed, then deleted: the table keeps its size
                    path = f"/api/v1/needs/{got.json()['id']}"
                    out.append(c.patch(path, json={"headcount": 3}).status_code)
                    out.append(c.delete(path).status_code)
        return out

    def throughput(self) -> None:
        seconds = self.args.seconds
        for r in (self.a, self.b):  # each prepares its catalogs once
            self.rankings(r, 3, [])
        runs = []
        for writers, ranking in ((0, True), (4, True), (4, False)):
            stop: list = []
            cpu0 = sum(r.cpu() for r in (self.a, self.b))
            with ThreadPoolExecutor(4 + writers) as pool:
                rankers = [pool.submit(self.rankings, r, seconds, stop)
                           for r in (self.a, self.b, self.a, self.b)] if ranking else []
                if not ranking:
                    pool.submit(lambda stop=stop: time.sleep(seconds) or stop.append(True))
                writing = [pool.submit(self.writes, r, stop, i)
                           for i, r in zip(range(writers), (self.a, self.b, self.a, self.b),
                                           strict=False)]
                got = [x for f in rankers for x in f.result()]
                written = [x for f in writing for x in f.result()]
            cpu = sum(r.cpu() for r in (self.a, self.b)) - cpu0
            q = percentiles([t for _, t in got], (50, 95))
            runs.append({"rate": len(got) / seconds, "p50": q["p50"], "p95": q["p95"],
                         "codes": Counter(s for s, _ in got), "writes": Counter(written),
                         "write_rate": len(written) / seconds, "cpu": cpu / seconds})
        ratio = runs[1]["rate"] / runs[0]["rate"]
        fives = sum(n for run in runs for c in (run["codes"], run["writes"])
                    for s, n in c.items() if s >= 500)
        ok = ratio >= 0.5 and not fives and all(set(r["codes"]) == {200} for r in runs[:2])
        parts = [f"{w} writers: {r['rate']:.1f} rankings/s (p50 {r['p50']:.0f} ms, p95 "
                 f"{r['p95']:.0f} ms, {dict(r['codes'])}), {r['write_rate']:.1f} writes/s "
                 f"{dict(r['writes'])}, the replicas used {r['cpu']:.2f} cores"
                 for w, r in zip((0, 4), runs, strict=False)]
        # CPU of the replicas per request: a write (writers alone), a ranking alone, and a
        # ranking among writes (what the writes' own CPU leaves of the mixed run).
        write_ms = runs[2]["cpu"] * 1000 / runs[2]["write_rate"]
        alone_ms = runs[0]["cpu"] * 1000 / runs[0]["rate"]
        mixed_ms = (runs[1]["cpu"] - runs[1]["write_rate"] * write_ms / 1000) * 1000 / \
            runs[1]["rate"]
        self.record("Rankings keep at least 50% of their throughput, with no 5xx, while 4 "
                    "clients write needs",
                    "; ".join(parts) + f"; kept {ratio:.0%} over {seconds:.0f} s each; "
                    f"5xx: {fives}; replica CPU per write {write_ms:.1f} ms (4 writers "
                    f"alone: {runs[2]['write_rate']:.1f} writes/s), per ranking "
                    f"{alone_ms:.1f} ms alone and {mixed_ms:.1f} ms among the writes", ok)

    def killed(self) -> None:
        steward = self.keys["steward"]
        with self.a.client(steward) as ca:
            job = self.upload(ca, top_k="4")
            self.wait_job(ca, job["id"], 600, until=lambda j: j["progress"] > 0 or
                          j["state"] in FINISHED)
        owner = self.owner(job["id"])
        survivor = self.b if owner is self.a else self.a
        progress = None
        with survivor.client(steward) as c:
            progress = c.get(f"/api/v1/jobs/{job['id']}").json()["progress"]
            owner.kill9()
            t0 = time.monotonic()
            done = self.wait_job(c, job["id"], 900)
            took = time.monotonic() - t0
            rows = c.get(f"/api/v1/jobs/{job['id']}/results/scores").json().get("total")
        attempts = self.job_row(job["id"])["attempts"]
        ok = done["state"] == "succeeded" and took < 600 and owner.proc.poll() is not None \
            and rows and rows == done["result"]["rows"]["scores"]
        self.record("A batch job whose replica is killed with kill -9 completes on the other "
                    "within 10 minutes",
                    f"replica {owner.name} killed at progress {progress:.2f}; the job "
                    f"{done['state']} on {survivor.name} {took:.0f} s after the kill "
                    f"(attempt {attempts}, lease {self.args.lease_s} s, {rows} score rows); "
                    f"{owner.name} not restarted", ok)


def prepare(url: str, data_dir: Path) -> dict:
    """Migrate, add the demo alliances and the keys; returns the keys by use."""
    from iei_match_service.auth import create_key
    from iei_match_service.db.engine import Database, upgrade
    from iei_match_service.demo import seed

    db = Database(url)
    try:
        upgrade(db.engine)
        with db.session() as s:
            orgs = seed(s)
            return {use: create_key(s, orgs[org].id, role) for use, (org, role) in KEYS.items()}
    finally:
        db.dispose()


def render(check: Check, info: str) -> str:
    lines = [info, "", "| bullet | figure | pass |", "|---|---|---|"]
    lines += [f"| {b} | {f} | {'yes' if ok else 'NO'} |" for b, f, ok in check.rows]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
                    help="a PostgreSQL database to create the check's own database from")
    ap.add_argument("--quick", action="store_true",
                    help="train the tests' small model instead of the default one")
    ap.add_argument("--seconds", type=float, default=20.0, help="each throughput run")
    ap.add_argument("--races", type=int, default=20)
    ap.add_argument("--models", type=Path, default=None,
                    help="start on a copy of these published models (no empty start)")
    ap.add_argument("--only", default="",
                    help="run only these checks (comma-separated method names, e.g. "
                         "throughput,rollback)")
    ap.add_argument("--env", action="append", default=[], metavar="IEI_MATCH_X=VALUE",
                    help="a setting of both replicas (repeatable)")
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--output", type=Path, default=None)
    args = ap.parse_args(argv)
    args.lease_s = 30.0  # the service's default IEI_MATCH_JOB_LEASE_S
    work = args.work or Path(tempfile.mkdtemp(prefix="iei-replicas-"))
    data_dir = work / f"replicas-{uuid.uuid4().hex[:8]}"
    data_dir.mkdir(parents=True)
    name = f"iei_replicas_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(args.pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = args.pg.rsplit("/", 1)[0] + "/" + name
    check = None
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        check = Check(args, data_dir, url, prepare(url, data_dir))
        steps = [check.empty_start, check.need_across, check.races, check.first_outcomes,
                 check.retrain_both, check.rollback, check.batch_across, check.throughput,
                 check.killed]
        if args.models:  # a start on published models instead of an empty directory
            shutil.copytree(args.models, check.models_dir)
            steps[0] = check.start
        if args.only:
            steps = steps[:1] + [f for f in steps[1:] if f.__name__ in args.only.split(",")]
        for step in steps:
            try:
                step()
            except Exception as exc:  # the table says which bullet could not be checked
                check.record(step.__name__, f"ERROR {type(exc).__name__}: {exc}", False)
    finally:
        if check is not None:
            check.a.stop()
            check.b.stop()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    info = (f"Two replicas on PostgreSQL, {machine()}, {started}; training "
            f"{'the small test model' if args.quick else 'default parameters'}; "
            f"settings {' '.join(args.env) or 'the defaults'}; "
            f"load average at the end {uptime_load():.1f}")
    table = render(check, info)
    print(table)
    if args.output:
        args.output.write_text(table)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(ok for _, _, ok in check.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
