"""The service against a naive matcher, loaded the same way in one run.

    python benchmarks/service_vs_naive.py [--colleges 8] [--seconds 20] [--clients 4]
                                          [--work DIR] [--output FILE.md]

An alliance of ``--colleges`` colleges that each offer every major of the bundled Chinese
catalog (8 x 1,313 = 10,504 programs), with enterprises posting the bundled needs
(``alliance_data.py``), is stored in SQLite and served by ``iei-match serve``; the same
programs (title and description) are served by ``naive_matcher.py`` (FastAPI, scikit-learn
TF-IDF of character 1-2-grams, one sparse product, top 10). Both run on 127.0.0.1 as
subprocesses, with their default settings (the service's rate limit is raised for the
test). Each target is loaded the same way, one after the other:

- warm-up: a first request (the service prepares the stored programs), then ``--warmup``
  seconds (default 2) closed loop;
- capacity: ``--clients`` keep-alive clients send requests back to back (closed loop) for
  ``--seconds``: answers per second;
- half: requests at half of that capacity on a fixed schedule (open loop) for
  ``--seconds``, each latency counted from the time the request was due: p50 and p99.

Targets, in this order: the naive matcher (``POST /match`` with the need's title and
description), the service's ``POST /api/v1/match`` (title, description and skills of a
bundled need, with an enterprise key), its ``GET /api/v1/needs/{id}/recommendations?k=10``
(a stored need, with its owner's key; the need's level is a hard rule), and the naive
matcher again. The ratio is each service endpoint's answers/s over the mean of the two naive
runs. Every request picks a random bundled need (the same seeded sequence for each target).

With ``--engine-calls N`` (default 200) the engine alone is timed too, in this process,
after the load: the two ``Matcher.rank`` calls of ``POST /api/v1/match`` (one need against
the prepared 10,504 programs, k=10, explained; and against the national catalog for the
reference majors); the difference to the service's latency at one client (``--single``
requests, one at a time) is the service's own cost per request. ``--unique`` makes every
text sent unique, so that the reference majors kept for a text already seen are not reused.
The load generator's own full garbage collections during each half-capacity run are
counted and printed (its heap is frozen before the loads, so that they are short).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import random
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from alliance_data import (
    PLACES,
    Alliance,
    Service,
    catalog_tables,
    free_port,
    machine,
    make_alliance,
    percentiles,
    seed_database,
    train_model,
    uptime_load,
)

HERE = Path(__file__).resolve().parent


def alliance_of_colleges(n_colleges: int, seed: int = 0, n_needs: int | None = None
                         ) -> Alliance:
    """``n_colleges`` colleges (one city each) that each offer every catalog major, and the
    enterprises and needs of :func:`make_alliance`."""
    rng = np.random.default_rng(seed)
    base = make_alliance(1, seed=seed, n_needs=n_needs)
    _, cat_programs, _ = catalog_tables()
    colleges, rows, bases = [], [], []
    for i in range(n_colleges):
        province, city = PLACES[i % len(PLACES)]
        name = f"{city.removesuffix('市')}第{i + 1}职业技术学院（基准）"
        colleges.append({"kind": "college", "name": name, "college_type": "高职",
                         "province": province, "city": city})
        grads = rng.integers(20, 401, size=len(cat_programs))
        rows.append(pd.DataFrame({
            "college": i, "code": cat_programs["program_id"].astype(str).to_numpy(),
            "title": cat_programs["title"].to_numpy(),
            "description": [f"{t} {name}开设，{city}办学，每年毕业{g}人。"
                            for t, g in zip(cat_programs["text"], grads, strict=True)],
            "level": cat_programs["level"].to_numpy(), "province": province, "city": city,
            "graduates_per_year": grads}))
        bases += [{"college": i, "name": f"{name}实训基地{b + 1}", "description": "实训基地",
                   "industry": "", "province": province, "city": city,
                   "capacity": int(rng.integers(20, 200))} for b in range(2)]
    programs = pd.concat(rows, ignore_index=True)
    return Alliance(colleges, base.enterprises, programs, base.needs, bases)


@dataclass
class Target:
    """One endpoint and how to ask it for need ``i``."""

    name: str
    url: str
    request: object  # (client, i) -> awaitable Response


class Load:
    def __init__(self, n_needs: int, seed: int, clients: int, timeout: float = 60):
        self.n_needs, self.seed, self.clients, self.timeout = n_needs, seed, clients, timeout

    def client(self, url: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=url, timeout=self.timeout, limits=httpx.Limits(
            max_connections=1000, max_keepalive_connections=1000))

    async def _one(self, t: Target, c, rng: random.Random) -> int:
        try:
            r = await t.request(c, rng.randrange(self.n_needs))
        except (httpx.TransportError, httpx.TimeoutException):
            return 0
        return r.status_code

    async def closed(self, t: Target, seconds: float, clients: int | None = None
                     ) -> tuple[float, list[float], int]:
        """Answers (200) a second, their latencies and the count of other answers."""
        rng = random.Random(self.seed)
        lat: list[float] = []
        bad = [0]
        start = time.perf_counter()
        end = start + seconds

        async def worker(c):
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                status = await self._one(t, c, rng)
                if status == 200:
                    lat.append(time.perf_counter() - t0)
                else:
                    bad[0] += 1

        async with self.client(t.url) as c:
            await asyncio.gather(*(worker(c) for _ in range(clients or self.clients)))
        return len(lat) / (time.perf_counter() - start), lat, bad[0]

    async def sequential(self, t: Target, n: int) -> list[float]:
        rng = random.Random(self.seed)
        lat = []
        async with self.client(t.url) as c:
            for _ in range(n):
                t0 = time.perf_counter()
                if await self._one(t, c, rng) == 200:
                    lat.append(time.perf_counter() - t0)
        return lat

    async def open(self, t: Target, rate: float, seconds: float) -> tuple[list[float], int]:
        """``rate`` requests a second on a fixed schedule; latencies from the due time."""
        rng = random.Random(self.seed)
        lat: list[float] = []
        bad = [0]

        async def send(c, due):
            status = await self._one(t, c, rng)
            if status == 200:
                lat.append(time.perf_counter() - due)
            else:
                bad[0] += 1

        start = time.perf_counter()
        tasks = []
        async with self.client(t.url) as c:
            for i in range(int(rate * seconds)):
                due = start + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(send(c, due)))
            await asyncio.gather(*tasks)
        return lat, bad[0]


def targets(naive_url: str, svc_url: str, alliance: Alliance, k: int, unique: bool = False
            ) -> dict[str, Target]:
    """``unique``: each text sent is made unique (a request number is appended to the
    description), so that no answer kept from an earlier request can be reused."""
    needs = alliance.needs
    titles, plain = needs["title"].tolist(), needs["description"].tolist()
    sent = itertools.count()

    class Texts:
        def __getitem__(self, i: int) -> str:
            return f"{plain[i]}（{next(sent)}）" if unique else plain[i]

    texts = Texts()
    skills = [list(s) for s in needs["skills"]]
    keys, ids = alliance.need_keys, alliance.need_ids
    auth = [{"Authorization": f"Bearer {key}"} for key in keys]

    def naive(c, i):
        return c.post("/match", json={"text": f"{titles[i]} {texts[i]}"})

    def match(c, i):
        return c.post("/api/v1/match", headers=auth[i], json={
            "title": titles[i], "description": texts[i], "skills": skills[i], "k": k})

    def recs(c, i):
        return c.get(f"/api/v1/needs/{ids[i]}/recommendations", params={"k": k},
                     headers=auth[i])

    return {"naive": Target("naive matcher `POST /match`", naive_url, naive),
            "match": Target("service `POST /api/v1/match`", svc_url, match),
            "recs": Target("service `GET /api/v1/needs/{id}/recommendations`", svc_url, recs)}


@contextlib.contextmanager
def gc_pauses():
    """The load generator's own full collections while the block runs: a list of their
    durations in ms (each one stalls every request in flight, for the target too)."""
    pauses: list[float] = []
    started = [0.0]

    def note(phase: str, info: dict) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append((time.perf_counter() - started[0]) * 1000)

    gc.callbacks.append(note)
    try:
        yield pauses
    finally:
        gc.callbacks.remove(note)


async def measure(load: Load, t: Target, seconds: float, single: int, warmup: float = 2.0
                  ) -> dict:
    async with load.client(t.url) as c:  # the service prepares its programs here
        t0 = time.perf_counter()
        status = await load._one(t, c, random.Random(0))
        first = time.perf_counter() - t0
    if status != 200:
        raise RuntimeError(f"{t.name}: the first request answered {status}")
    await load.closed(t, warmup)
    one = percentiles(await load.sequential(t, single)) if single else None
    l0 = uptime_load()
    capacity, closed_lat, closed_bad = await load.closed(t, seconds)
    with gc_pauses() as pauses:
        lat, bad = await load.open(t, capacity / 2, seconds)
    return {"name": t.name, "first_s": first, "capacity": capacity,
            "closed": percentiles(closed_lat), "half": percentiles(lat),
            "bad": closed_bad + bad, "one": one, "load": (l0 + uptime_load()) / 2,
            "gc": pauses}


def engine_times(models: Path, alliance: Alliance, calls: int, k: int, seed: int) -> dict:
    """The engine's two calls of ``POST /api/v1/match`` alone (no hard rule): ``Matcher.rank``
    against the 10,504 programs (k, explained) and against the national catalog for the
    reference majors (20, not explained)."""
    from alliance_data import engine_programs

    from iei_match.artifacts import load_model
    from iei_match.reference import reference_catalog

    matcher = load_model(models)
    matcher.prepare_explanations()
    catalog = matcher.prepare(engine_programs(alliance), "program")
    national, _ = reference_catalog(matcher)
    everything = catalog.restrict(np.ones(len(alliance.programs), bool))
    needs = alliance.needs
    rng = random.Random(seed)
    min_fit = float(matcher.fit_model_.thresholds_["medium"])
    lat: dict[str, list[float]] = {"ranking": [], "reference": [], "both": []}
    for n in range(calls + 5):
        i = rng.randrange(len(needs))
        frame = pd.DataFrame([{"need_id": "db-need-0", "title": needs["title"].iat[i],
                               "text": needs["description"].iat[i],
                               "skills": " ".join(needs["skills"].iat[i]), "industry": "",
                               "certificates": "", "code": "", "level": "", "province": "",
                               "city": "", "headcount": 1}])
        t0 = time.perf_counter()
        matcher.rank(frame, everything, k=k, explain=k, min_fit=min_fit, as_frame=False)
        t1 = time.perf_counter()
        matcher.rank(frame, national, k=20, explain=False, as_frame=False)
        t2 = time.perf_counter()
        if n >= 5:
            lat["ranking"].append(t1 - t0)
            lat["reference"].append(t2 - t1)
            lat["both"].append(t2 - t0)
    return {name: percentiles(v) for name, v in lat.items()}


def ratio(a: float, b: float) -> float:
    """``a / b``, NaN when ``b`` is 0 or NaN (a run that answered nothing, or none run)."""
    return a / b if b and b == b else float("nan")


def service_rss(pid: int) -> list[float]:
    """The resident memory (MB) of the service's process ``pid`` and of each process below
    it (with several workers: the supervisor, then its children)."""
    import psutil

    top = psutil.Process(pid)
    return [p.memory_info().rss / 2**20 for p in [top, *top.children(recursive=True)]]


def render(results: list[dict], info: dict) -> str:
    naive = [r["capacity"] for r in results if r["key"] == "naive"]
    base = sum(naive) / len(naive) if naive else float("nan")
    lines = [f"Machine: {machine()}; {time.strftime('%Y-%m-%d %H:%M')} UTC. "
             f"{info['programs']:,} programs ({info['colleges']} colleges x "
             f"{info['programs'] // info['colleges']:,} majors), {info['needs']} needs; "
             f"{info['clients']} keep-alive clients, closed loop, {info['seconds']:g} s, then "
             f"half of that rate open loop for {info['seconds']:g} s (latency from the due "
             f"time); service workers: {info['workers']}"
             f"{'; every text sent unique' if info['unique'] else ''}.", "",
             "| target | answers/s | × naive | p50 | p99 | p99/p50 | closed-loop p50 | "
             "one client p50 | other answers | load avg |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        h, one = r["half"], r["one"]
        lines.append(
            f"| {r['name']} | {r['capacity']:.1f} | {ratio(r['capacity'], base):.3f} | "
            f"{h['p50']:.1f} | {h['p99']:.1f} | {ratio(h['p99'], h['p50']):.2f} | "
            f"{r['closed']['p50']:.1f} | {one['p50']:.1f} | {r['bad']} | "
            f"{r['load']:.2f} |" if one else
            f"| {r['name']} | {r['capacity']:.1f} | {ratio(r['capacity'], base):.3f} | "
            f"{h['p50']:.1f} | {h['p99']:.1f} | {ratio(h['p99'], h['p50']):.2f} | "
            f"{r['closed']['p50']:.1f} | - | {r['bad']} | {r['load']:.2f} |")
    lines += ["", "Latencies in ms; p50/p99 at half of capacity. × naive: answers/s over the "
              f"mean of the naive runs ({base:.1f}/s)."]
    if info.get("rss"):
        rss = info["rss"]
        lines.append(f"The service's processes after the loads: {sum(rss):,.0f} MB resident in "
                     f"all ({', '.join(f'{mb:,.0f}' for mb in rss)} MB: `serve`, then the "
                     "processes it started).")
    if info.get("engine"):
        e = info["engine"]
        lines.append(
            f"Engine alone, in the benchmark's process, one need at a time: `Matcher.rank` "
            f"against the 10,504 programs (k=10, explained) p50 {e['ranking']['p50']:.1f} ms, "
            f"against the national catalog (the reference majors: 20, not explained) p50 "
            f"{e['reference']['p50']:.1f} ms; both p50 {e['both']['p50']:.1f} ms, p99 "
            f"{e['both']['p99']:.1f} ms. The service's own cost of a request at one client "
            "is its one-client p50 less that (less what a kept answer spares).")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--colleges", type=int, default=8)
    ap.add_argument("--needs", type=int, default=None, help="bundled needs used (all)")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--warmup", type=float, default=2.0,
                    help="seconds of closed loop before the figures (several workers each "
                         "prepare the programs at their first request: give them time)")
    ap.add_argument("--single", type=int, default=100,
                    help="requests one at a time before the load (0: none)")
    ap.add_argument("--engine-calls", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--workers", default="",
                    help="IEI_MATCH_WORKERS for the service (default: its own default)")
    ap.add_argument("--order", default="naive,match,recs,naive")
    ap.add_argument("--unique", action="store_true",
                    help="make every text sent unique (no kept answer is reused)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--output", type=Path, default=None)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")

    work = args.work or Path(tempfile.mkdtemp(prefix="iei-vs-naive-"))
    data = work / "data"
    if data.exists():
        shutil.rmtree(data / "jobs", ignore_errors=True)
        (data / "iei-match.db").unlink(missing_ok=True)
    data.mkdir(parents=True, exist_ok=True)
    models = work / "models"
    trained = train_model(models)
    if trained:
        print(f"trained the model in {trained:.0f} s", flush=True)
    if not (data / "models").exists():
        shutil.copytree(models, data / "models")
    alliance = alliance_of_colleges(args.colleges, args.seed, args.needs)
    seed_database(f"sqlite:///{data / 'iei-match.db'}", alliance)
    csv = work / "naive-programs.csv"
    alliance.programs.assign(id=range(1, len(alliance.programs) + 1)).rename(
        columns={"description": "text"})[["id", "title", "text"]].to_csv(csv, index=False)
    info = {"programs": len(alliance.programs), "colleges": args.colleges,
            "needs": len(alliance.needs), "clients": args.clients, "seconds": args.seconds,
            "workers": args.workers or "default", "unique": args.unique}
    print(f"{info['programs']:,} programs, {info['needs']} needs; work in {work}", flush=True)

    env = {"IEI_MATCH_RATE_LIMIT_PER_MINUTE": "100000000"}
    if args.workers:
        env["IEI_MATCH_WORKERS"] = args.workers
    naive_port = free_port()
    naive_log = open(work / "naive.log", "ab")  # noqa: SIM115
    naive = subprocess.Popen([sys.executable, str(HERE / "naive_matcher.py"), str(csv),
                              str(naive_port)], stdout=naive_log, stderr=subprocess.STDOUT)
    svc = Service(data, free_port(), env=env)
    results = []
    try:
        svc.start()
        naive_url = f"http://127.0.0.1:{naive_port}"
        deadline = time.monotonic() + 300
        while True:
            try:
                httpx.post(naive_url + "/match", json={"text": "x"}, timeout=5)
                break
            except httpx.TransportError:
                if naive.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the naive matcher did not start; see {naive_log.name}"
                                       ) from None
                time.sleep(0.2)
        ts = targets(naive_url, svc.url, alliance, args.k, args.unique)
        load = Load(len(alliance.needs), args.seed, args.clients)
        # The load generator's heap (the alliance's tables, the database seeding) is walked
        # by each of its full collections: one took 142 ms in a run, and every request due
        # meanwhile was counted that much later, for whichever target was loaded. Objects
        # alive now are left out of later collections.
        gc.collect()
        gc.freeze()
        for key in args.order.split(","):
            print(f"loading {ts[key].name} ...", flush=True)
            r = asyncio.run(measure(load, ts[key], args.seconds, args.single, args.warmup))
            r["key"] = key
            print(f"  {r['capacity']:.1f} answers/s; half: p50 {r['half']['p50']:.1f} ms, "
                  f"p99 {r['half']['p99']:.1f} ms (load {r['load']:.2f}); the load "
                  f"generator's full collections during it: {len(r['gc'])}, longest "
                  f"{max(r['gc'], default=0):.0f} ms", flush=True)
            results.append(r)
        info["rss"] = service_rss(svc.proc.pid)
    finally:
        svc.stop()
        naive.terminate()
        naive.wait(30)
        naive_log.close()
    if args.engine_calls:
        info["engine"] = engine_times(models, alliance, args.engine_calls, args.k, args.seed)
    report = render(results, info)
    print(report)
    for key in ("match", "recs"):
        done = [r for r in results if r["key"] == key]
        naive_runs = [r["capacity"] for r in results if r["key"] == "naive"]
        if done and naive_runs:
            print(f"ratio {key}: {ratio(done[0]['capacity'], np.mean(naive_runs)):.3f}")
    if args.output:
        args.output.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
