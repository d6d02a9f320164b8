"""What the shared rate limit (``IEI_MATCH_SHARED_RATE_LIMIT=1``) costs a request.

    python benchmarks/shared_rate_limit_cost.py [--pg URL] [--requests 2000] [--rounds 3]

One ``iei-match serve`` on a fresh PostgreSQL database (demo data, the tests' small model),
started alternately without and with the shared limit (``--rounds`` times each); each time
one client sends ``--requests`` sequential ``GET /api/v1/needs/{id}`` (a cheap request: the
limit's upsert is the largest share it can be) after 200 of warm-up. Prints, per setting,
the median over rounds of the service process's CPU time per request and of the latency
percentiles.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from alliance_data import machine, percentiles, train_model, uptime_load
from replicas_check import Replica, prepare


def run(data_dir: Path, url: str, keys: dict, shared: bool, n: int) -> dict:
    env = {"IEI_MATCH_DATABASE_URL": url, "IEI_MATCH_MODELS_DIR": str(data_dir / "models"),
           "IEI_MATCH_RATE_LIMIT_PER_MINUTE": "1000000",
           "IEI_MATCH_SHARED_RATE_LIMIT": "1" if shared else "0"}
    r = Replica("shared" if shared else "local", data_dir, env)
    r.launch()
    try:
        r.wait_ready(300)
        with r.client(keys["firm"]) as c:
            need = c.get("/api/v1/needs").json()["items"][0]["id"]
            for _ in range(200):
                c.get(f"/api/v1/needs/{need}").raise_for_status()
            cpu0, lat = r.cpu(), []
            for _ in range(n):
                t0 = time.perf_counter()
                c.get(f"/api/v1/needs/{need}").raise_for_status()
                lat.append(time.perf_counter() - t0)
            cpu = r.cpu() - cpu0
    finally:
        r.stop()
    return {"cpu_ms": cpu / n * 1000, **percentiles(lat, (50, 95))}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="iei-ratecost-"))
    name = f"iei_ratecost_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(args.pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = args.pg.rsplit("/", 1)[0] + "/" + name
    try:
        train_model(work / "models", quick=True)
        keys = prepare(url, work)
        runs: dict[bool, list[dict]] = {False: [], True: []}
        for _ in range(args.rounds):
            for shared in (False, True):
                runs[shared].append(run(work, url, keys, shared, args.requests))
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    print(f"{machine()}, {args.requests} requests x {args.rounds} rounds, "
          f"load average {uptime_load():.1f}\n")
    print("| rate limit | service CPU / request (ms) | p50 (ms) | p95 (ms) |")
    print("|---|---:|---:|---:|")
    for shared, label in ((False, "per process"), (True, "shared (PostgreSQL)")):
        med = {k: statistics.median(r[k] for r in runs[shared]) for k in ("cpu_ms", "p50",
                                                                           "p95")}
        print(f"| {label} | {med['cpu_ms']:.2f} | {med['p50']:.2f} | {med['p95']:.2f} |")


if __name__ == "__main__":
    main()
