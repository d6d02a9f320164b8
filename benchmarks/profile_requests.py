"""Where a request's time goes in the service, and what it costs beyond the engine.

    python benchmarks/profile_requests.py (DATA_DIR | --work DIR) [--path match|recs|write]
                                          [--mode sample|cpu|cprofile] [--requests 300]
                                          [--top 40]

Serves the app of ``DATA_DIR`` (a data directory left by ``service_vs_naive.py --work``:
its SQLite database and models; ``--work DIR`` makes ``DIR/data`` that way when it is not
there, with the model of ``DIR/models``, trained unless it is there) in this process with
uvicorn on 127.0.0.1 and sends ``--requests`` requests one at a time from a separate
process, after 5 of warm-up. ``--mode``:

- ``sample`` (default): samples every thread's Python stack each millisecond
  (``sys._current_frames``; threads that wait are left out) and prints, per function, the
  share of the samples in which it is on a stack (inclusive) and on top (self);
- ``cpu``: the server's CPU time per request (every thread of this process; the load
  runs in its own), the engine's part of it (the process's CPU time while
  ``Matcher.rank`` or ``Matcher.partners`` runs, its own threads included) and the
  service's own (the rest); ``--repeat`` runs of ``--requests``, the median given;
- ``cprofile``: a deterministic profile (``cProfile``, one per server thread, merged) of
  the requests, the ``--top`` functions by their own time and by their cumulative time.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import io
import os
import pstats
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

IDLE = {"wait", "select", "_worker", "acquire", "get", "poll", "run_forever", "_run_once",
        "sleep", "accept", "readinto", "recv_into", "_wait_for_tstate_lock", "join"}
# uvloop's loop is C code: an idle event loop thread has asyncio's runner on top
IDLE_TOP = {"runners.py:run"}

LOAD = """
import json, random, sys, time, httpx, sqlite3
db, url, path, n, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
con = sqlite3.connect(db)
needs = con.execute("select id, title, description, skills, org_id from needs").fetchall()
rng = random.Random(seed)
with httpx.Client(base_url=url, timeout=60) as c:
    for i in range(n + 5):
        nid, title, text, skills, org = needs[rng.randrange(len(needs))]
        h = {"Authorization": "Bearer " + KEYS[org]}
        if path == "match":
            r = c.post("/api/v1/match", headers=h, json={"title": title, "description": text,
                       "skills": json.loads(skills or "[]")})
        elif path == "write":  # a new need, then a change of it (as the replicas test)
            r = c.post("/api/v1/needs", headers=h, json={"title": f"{title}（新）",
                       "description": text, "skills": json.loads(skills or "[]"),
                       "headcount": 2})
            assert r.status_code == 201, r.text
            r = c.patch(f"/api/v1/needs/{r.json()['id']}", headers=h, json={"headcount": 3})
        else:
            r = c.get(f"/api/v1/needs/{nid}/recommendations", headers=h, params={"k": 10})
        assert r.status_code == 200, r.text
        if i == 4:
            print("go", flush=True)
"""


def sample(stop: threading.Event, skip: set[int], every: float, out: dict) -> None:
    incl, self_, n = collections.Counter(), collections.Counter(), 0
    skip = skip | {threading.get_ident()}
    while not stop.is_set():
        for ident, frame in sys._current_frames().items():
            if (ident in skip or frame.f_code.co_name in IDLE
                    or f"{Path(frame.f_code.co_filename).name}:{frame.f_code.co_name}"
                    in IDLE_TOP):
                continue
            n += 1
            seen = set()
            top = True
            while frame is not None:
                code = frame.f_code
                name = f"{Path(code.co_filename).name}:{code.co_name}"
                if top:
                    self_[name] += 1
                    top = False
                if name not in seen:
                    incl[name] += 1
                    seen.add(name)
                frame = frame.f_back
        time.sleep(every)
    out.update(incl=incl, self=self_, n=n)


def make_data(work: Path, colleges: int = 8) -> Path:
    """``work/data`` as ``service_vs_naive.py --work`` leaves it (made if missing)."""
    import warnings

    from alliance_data import seed_database, train_model
    from service_vs_naive import alliance_of_colleges

    data = work / "data"
    if (data / "iei-match.db").exists() and (data / "models").exists():
        return data
    warnings.simplefilter("ignore")
    data.mkdir(parents=True, exist_ok=True)
    train_model(work / "models")
    if not (data / "models").exists():
        shutil.copytree(work / "models", data / "models")
    (data / "iei-match.db").unlink(missing_ok=True)
    seed_database(f"sqlite:///{data / 'iei-match.db'}", alliance_of_colleges(colleges))
    return data


class EngineClock:
    """The CPU time of the process while ``Matcher.rank`` or ``Matcher.partners`` runs (the
    outermost call of a thread), from :meth:`install` on: the engine's own threads count
    (its calling thread's time alone left them to the service), and with requests sent one
    at a time nothing else of the service runs meanwhile."""

    def __init__(self):
        self.seconds = 0.0
        self._lock = threading.Lock()
        self._depth = threading.local()

    def install(self) -> None:
        from iei_match.matcher import Matcher

        for name in ("rank", "partners"):
            setattr(Matcher, name, self._timed(getattr(Matcher, name)))

    def _timed(self, method):
        def timed(*args, **kwargs):
            depth = getattr(self._depth, "n", 0)
            self._depth.n = depth + 1
            t0 = time.process_time()
            try:
                return method(*args, **kwargs)
            finally:
                self._depth.n = depth
                if depth == 0:
                    with self._lock:
                        self.seconds += time.process_time() - t0

        return timed


class ThreadProfiles:
    """A ``cProfile.Profile`` for each thread started after :meth:`install`, enabled in
    that thread at its first call once :attr:`on` is set (the warm-up is left out)."""

    def __init__(self):
        self.on = False
        self.profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def install(self) -> None:
        threading.setprofile(self._hook)

    def _hook(self, frame, event, arg):
        if not self.on:
            return
        p = cProfile.Profile()
        with self._lock:
            self.profiles.append(p)
        p.enable()  # replaces this hook in this thread

    def report(self, top: int, dump: Path | None = None) -> str:
        with self._lock:
            profiles = list(self.profiles)
        out = io.StringIO()
        stats = pstats.Stats(*profiles, stream=out)
        if dump is not None:
            stats.dump_stats(dump)
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(top)
        return out.getvalue()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path, nargs="?")
    ap.add_argument("--work", type=Path, default=None,
                    help="make (or reuse) WORK/data as service_vs_naive.py --work does")
    ap.add_argument("--path", choices=("match", "recs", "write"), default="match",
                    help="write: a new need and a change of it (two requests a round)")
    ap.add_argument("--mode", choices=("sample", "cpu", "cprofile"), default="sample")
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3, help="runs of --requests (cpu mode)")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--every", type=float, default=0.001)
    ap.add_argument("--stats", type=Path, default=None,
                    help="cprofile mode: also write the merged profile there (pstats)")
    args = ap.parse_args()
    if (args.data is None) == (args.work is None):
        ap.error("give either DATA_DIR or --work DIR")
    if args.work is not None:
        args.data = make_data(args.work)
    import uvicorn
    from sqlalchemy import text

    from iei_match_service.app import create_app
    from iei_match_service.auth import create_key
    from iei_match_service.db.engine import Database
    from iei_match_service.settings import Settings

    settings = Settings.from_env(data_dir=args.data, rate_limit_per_minute=10**8)
    db = Database(settings.database_url)
    with db.session() as s:
        orgs = [r[0] for r in s.execute(text("select distinct org_id from needs"))]
        keys = {o: create_key(s, o, "enterprise") for o in orgs}
    db.dispose()
    port = 18000 + os.getpid() % 1000
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning"))
    clock, profiles = EngineClock(), ThreadProfiles()
    if args.mode == "cpu":
        clock.install()
    elif args.mode == "cprofile":
        profiles.install()
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.1)
    code = f"KEYS = {keys!r}\n" + LOAD

    def start_load(n: int, seed: int = 0) -> subprocess.Popen:
        load = subprocess.Popen([sys.executable, "-c", code, str(args.data / "iei-match.db"),
                                 f"http://127.0.0.1:{port}", args.path, str(n), str(seed)],
                                stdout=subprocess.PIPE, text=True)
        assert load.stdout.readline().strip() == "go"  # the warm-up requests are answered
        return load

    if args.mode != "sample":
        try:
            print(measure(args, start_load, clock, profiles))
        finally:
            server.should_exit = True
        return 0
    load = start_load(args.requests)
    stop, out = threading.Event(), {}
    t = threading.Thread(target=sample, args=(stop, {threading.get_ident()}, args.every, out))
    t.start()
    t0, c0 = time.perf_counter(), time.process_time()
    load.wait()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    stop.set()
    t.join()
    server.should_exit = True
    n = max(out["n"], 1)
    print(f"{args.requests} requests ({args.path}) one at a time: {wall / args.requests * 1e3:.1f}"
          f" ms each (server CPU {cpu / args.requests * 1e3:.1f} ms); {n} busy samples; "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"{'incl %':>7} {'ms/req':>7} {'self %':>7}  function (% of the busy samples)")
    per = wall / args.requests * 1e3 / n  # ms of a request's wall time per busy sample
    for name, count in out["incl"].most_common(args.top):
        print(f"{100 * count / n:7.1f} {count * per:7.2f} {100 * out['self'][name] / n:7.1f}"
              f"  {name}")
    return 0


def measure(args, start_load, clock: EngineClock, profiles: ThreadProfiles) -> str:
    """The ``cpu`` or ``cprofile`` report of ``--requests`` requests one at a time."""
    n = args.requests
    if args.mode == "cprofile":
        load = start_load(n)
        profiles.on = True
        t0 = time.perf_counter()
        load.wait()
        wall = time.perf_counter() - t0
        profiles.on = False
        head = (f"{n} requests ({args.path}) one at a time: {wall / n * 1e3:.1f} ms each "
                f"(profiled); load {os.getloadavg()[0]:.2f}\n")
        return head + profiles.report(args.top, args.stats)
    runs = []
    for run in range(args.repeat):
        load = start_load(n, seed=run)  # each run its own needs, the same in every use
        c0, e0, t0 = time.process_time(), clock.seconds, time.perf_counter()
        load.wait()
        cpu, engine = time.process_time() - c0, clock.seconds - e0
        runs.append((cpu / n * 1e3, engine / n * 1e3, (cpu - engine) / n * 1e3,
                     (time.perf_counter() - t0) / n * 1e3))
    lines = [f"{n} requests ({args.path}) one at a time, {args.repeat} runs; ms per request "
             f"(load {os.getloadavg()[0]:.2f}):",
             "| run | server CPU | engine CPU | service own CPU | wall |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {i + 1} | {a:.2f} | {b:.2f} | {c:.2f} | {d:.1f} |"
              for i, (a, b, c, d) in enumerate(runs)]
    med = [sorted(col)[len(col) // 2] for col in zip(*runs, strict=True)]
    lines.append(f"| median | {med[0]:.2f} | {med[1]:.2f} | **{med[2]:.2f}** | {med[3]:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
