"""Where a request's time goes in the service: a sampling profile of the server's threads.

    python benchmarks/profile_requests.py DATA_DIR [--path match|recs] [--requests 300]
                                          [--top 40]

Serves the app of ``DATA_DIR`` (a data directory left by ``service_vs_naive.py --work``:
its SQLite database and models) in this process with uvicorn on 127.0.0.1, sends
``--requests`` requests one at a time from a separate process, and samples every thread's
Python stack each millisecond meanwhile (``sys._current_frames``; threads that wait are
left out). Prints, per function, the share of the samples in which it is on a stack
(inclusive) and on top (self): the profile that the service-path work followed.
"""

from __future__ import annotations

import argparse
import collections
import os
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
db, url, path, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
con = sqlite3.connect(db)
needs = con.execute("select id, title, description, skills, org_id from needs").fetchall()
rng = random.Random(0)
with httpx.Client(base_url=url, timeout=60) as c:
    for i in range(n + 5):
        nid, title, text, skills, org = needs[rng.randrange(len(needs))]
        h = {"Authorization": "Bearer " + KEYS[org]}
        if path == "match":
            r = c.post("/api/v1/match", headers=h, json={"title": title, "description": text,
                       "skills": json.loads(skills or "[]")})
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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path)
    ap.add_argument("--path", choices=("match", "recs"), default="match")
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--every", type=float, default=0.001)
    args = ap.parse_args()
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
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.1)
    code = f"KEYS = {keys!r}\n" + LOAD
    load = subprocess.Popen([sys.executable, "-c", code, str(args.data / "iei-match.db"),
                             f"http://127.0.0.1:{port}", args.path, str(args.requests)],
                            stdout=subprocess.PIPE, text=True)
    assert load.stdout.readline().strip() == "go"  # the warm-up requests are answered
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


if __name__ == "__main__":
    sys.exit(main())
