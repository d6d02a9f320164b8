"""Latency of one recommendation (one need, k=10, with explanations) vs catalog size.

    python benchmarks/recommend_latency.py [--sizes 1000,10000,100000] [--requests 200]
                                           [--levels engine,http] [--output FILE.md]

For each catalog size, an alliance of colleges offering the bundled Chinese catalog's majors
(``alliance_data.py``: ~400 colleges in 30 cities for 10,000 programs) is ranked for the
bundled needs, one need per call, as the service does:

- ``engine``: ``Matcher.prepare`` once (reported separately), then per call
  ``Matcher.rank(need, catalog.restrict(level mask), k=10, explain=10, min_fit=...,
  as_frame=False)``, as the service ranks (``ranking.rank_programs``: pairs below the
  model's ``medium`` fit left out, the typed result rather than a DataFrame).
- ``http``: the programs are stored in a SQLite database served by ``iei-match serve``; the
  first ``GET /api/v1/needs/{id}/recommendations`` prepares the catalog (reported
  separately), then each call is one request at a time from one client (closed loop, no
  concurrency: the service's latency without queueing).

The model is trained on the bundled catalog once (as at the service's first start) and
reused from ``--work`` when it is there. Prints a markdown table (and writes it to
``--output``) with p50/p95/p99 per size and level, and the load average during the run;
for ``engine``, also how many full garbage collections ran during the timed calls and the
longest (the benchmark's process does not freeze its objects as the service does).
"""

from __future__ import annotations

import argparse
import gc
import random
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import httpx
import numpy as np
from alliance_data import (
    Service,
    engine_programs,
    free_port,
    machine,
    make_alliance,
    percentiles,
    seed_database,
    train_model,
    uptime_load,
)

from iei_match.artifacts import load_model


def need_records(row) -> list[dict]:
    """One stored need as the service hands it to the engine (``frames.need_record``)."""
    return [{"need_id": "db-need-0", "title": row.title, "text": row.description,
             "skills": " ".join(row.skills), "industry": "", "certificates": "",
             "code": row.code, "level": row.level, "province": row.province,
             "city": row.city, "headcount": int(row.headcount)}]


def engine_level(matcher, alliance, n_requests: int, k: int, seed: int) -> dict:
    frame = engine_programs(alliance)
    load0 = uptime_load()
    t0 = time.perf_counter()
    catalog = matcher.prepare(frame, "program")
    prepare = time.perf_counter() - t0
    level = frame["level"].to_numpy()
    rng = random.Random(seed)
    rows = list(alliance.needs.itertuples(index=False))
    times = []
    full_gc: list[float] = []  # durations of the full collections during the calls
    started: list[float] = []

    def on_gc(phase: str, info: dict) -> None:
        if info["generation"] == 2:
            if phase == "start":
                started.append(time.perf_counter())
            elif started:
                full_gc.append(time.perf_counter() - started.pop())

    gc.collect()
    gc.callbacks.append(on_gc)
    try:
        _engine_calls(matcher, catalog, level, rows, rng, n_requests, k, times)
    finally:
        gc.callbacks.remove(on_gc)
    return {"prepare_s": prepare, **percentiles(times), "n": len(times),
            "load": (load0 + uptime_load()) / 2,
            "full_gc": (len(full_gc), 1000 * max(full_gc, default=0.0))}


def _engine_calls(matcher, catalog, level, rows, rng, n_requests, k, times) -> None:
    min_fit = float(matcher.fit_model_.thresholds_["medium"])  # the service's default
    for i in range(n_requests + 3):
        row = rows[rng.randrange(len(rows))]
        need = need_records(row)
        allowed = level == row.level if row.level else np.ones(len(level), dtype=bool)
        t0 = time.perf_counter()
        ranked = matcher.rank(need, catalog.restrict(allowed), k=k, explain=k,
                              min_fit=min_fit, as_frame=False)
        if i >= 3:  # the first calls compile and warm caches
            times.append(time.perf_counter() - t0)
        assert len(ranked) <= k


def http_level(alliance, models_dir: Path, work: Path, n_requests: int, k: int,
               seed: int) -> dict:
    data = work / f"http-{len(alliance.programs)}"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    seed_database(f"sqlite:///{data / 'iei-match.db'}", alliance)
    env = {"IEI_MATCH_MODELS_DIR": str(models_dir),
           "IEI_MATCH_RATE_LIMIT_PER_MINUTE": "1000000"}
    rng = random.Random(seed)
    pairs = list(zip(alliance.need_ids, alliance.need_keys, strict=True))
    with Service(data, free_port(), env) as svc, httpx.Client(base_url=svc.url,
                                                               timeout=3600) as c:
        def call() -> float:
            need_id, key = pairs[rng.randrange(len(pairs))]
            t0 = time.perf_counter()
            r = c.get(f"/api/v1/needs/{need_id}/recommendations", params={"k": k},
                      headers={"Authorization": f"Bearer {key}"})
            dt = time.perf_counter() - t0
            r.raise_for_status()
            return dt

        load0 = uptime_load()
        first = call()  # prepares the stored programs for the live model
        for _ in range(3):
            call()
        times = [call() for _ in range(n_requests)]
        load1 = uptime_load()
    shutil.rmtree(data, ignore_errors=True)
    return {"prepare_s": first, **percentiles(times), "n": len(times),
            "load": (load0 + load1) / 2}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000,10000,100000",
                   help="catalog sizes (programs), comma-separated")
    p.add_argument("--requests", type=int, default=200, help="timed calls per size and level")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--levels", default="engine,http", help="engine, http or both")
    p.add_argument("--work", type=Path, help="working directory (the model is kept there "
                   "and reused; default: a temporary directory, removed)")
    p.add_argument("--quick-model", action="store_true",
                   help="a small model (40 trees; for smoke tests, not for figures)")
    p.add_argument("--output", type=Path, help="also write the markdown table here")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    sizes = [int(s) for s in args.sizes.split(",") if s]
    levels = [s.strip() for s in args.levels.split(",") if s.strip()]
    work = args.work or Path(tempfile.mkdtemp(prefix="iei-latency-"))
    work.mkdir(parents=True, exist_ok=True)
    models = work / "models"
    trained = train_model(models, quick=args.quick_model)
    print(f"model: {f'trained in {trained:.1f} s' if trained else 'reused'} ({models})",
          flush=True)
    matcher = load_model(models / (models / "CURRENT").read_text().strip())
    results = []
    try:
        for n in sizes:
            alliance = make_alliance(n, seed=args.seed)
            for level in levels:
                t0 = time.perf_counter()
                if level == "engine":
                    r = engine_level(matcher, alliance, args.requests, args.k, args.seed)
                elif level == "http":
                    r = http_level(alliance, models, work, args.requests, args.k, args.seed)
                else:
                    raise SystemExit(f"unknown level {level!r}: engine or http")
                r.update(size=n, level=level, wall_s=time.perf_counter() - t0)
                results.append(r)
                print(f"{n:>7} programs, {level:<6}: prepare {r['prepare_s']:.2f} s, "
                      f"p50 {r['p50']:.1f} ms, p95 {r['p95']:.1f} ms, p99 {r['p99']:.1f} ms "
                      f"(load {r['load']:.1f})", flush=True)
                gc.collect()
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    table = render(results, args)
    print(table)
    if args.output:
        args.output.write_text(table)


def render(results: list[dict], args) -> str:
    lines = [f"Machine: {machine()}; {time.strftime('%Y-%m-%d')}. One need per call, "
             f"k={args.k} with explanations, {args.requests} timed calls per row.", "",
             "| programs | level | prepare (s) | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) "
             "| full GCs (longest, ms) | load avg |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        prep = ("first request " if r["level"] == "http" else "") + f"{r['prepare_s']:.1f}"
        n_gc, longest = r.get("full_gc", (None, 0.0))
        gcs = "-" if n_gc is None else f"{n_gc} ({longest:.0f})"
        lines.append(f"| {r['size']:,} | {r['level']} | {prep} | {r['p50']:.1f} | "
                     f"{r['p95']:.1f} | {r['p99']:.1f} | {r['max']:.1f} | {gcs} | "
                     f"{r['load']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
