"""Load test of the recommendations endpoint on the real service, open loop (wrk2-style).

    python benchmarks/load_test.py [--programs 10000] [--seconds 45] [--overload 3]
                                   [--batch auto|api|process|off] [--work DIR]
                                   [--output FILE.md] [--plot FILE.png]

Starts ``iei-match serve`` (a subprocess on 127.0.0.1, SQLite) over an alliance of
``--programs`` programs (``alliance_data.py``: colleges offering the bundled Chinese
catalog's majors across 30 cities, enterprises posting the bundled needs) and then:

1. warm-up: the first request prepares the stored programs; a few more follow;
2. capacity: ``--clients`` clients send requests back to back (closed loop) for
   ``--capacity-seconds``: the most the service answers per second;
3. steady: requests at 50% of that capacity, on a fixed schedule whatever the answers
   (open loop: a slow answer does not delay the next request, and each latency is measured
   from the time the request was due, so queueing is not hidden), for ``--seconds``;
4. overload: ``--overload`` x capacity for ``--overload-seconds``, with ``/healthz`` probed
   every 0.2 s on its own connection: the excess should be refused with fast 503
   ``overloaded`` answers while ``/healthz`` keeps answering;
5. recovery: 50% again: the latency should be back to that of step 3;
6. batch: 50% while a batch job ranks every need against every program: through the
   service's batch API (``POST /api/v1/batch``) when the service has one, else
   ``iei-match batch`` in a separate process on the same cores (``--batch`` says which);
7. retrain (``--retrain``): 50% while the service retrains its model
   (``POST /api/v1/models/retrain`` with ``force``: the bundled catalog plus every stored
   need and program), from ``--retrain-warmup`` s after it started.

Each request asks ``GET /api/v1/needs/{id}/recommendations?k=10`` for a random stored need
with its owner's key (the need's level is a hard filter, as in the service). Prints a
markdown table of each phase (and writes it to ``--output``) and draws latency over time
(``--plot``). The service's rate limit is raised for the test; the other settings are the
service's defaults unless given (``--max-concurrent``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import httpx
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

PATH = "/api/v1/needs/{}/recommendations"


@dataclass
class Sample:
    phase: str
    due: float      # seconds since the test's start when the request was due
    latency: float  # seconds from due to the answer (open loop) or from sending (closed)
    status: int     # HTTP status; 0 for a transport error or a client timeout
    code: str = ""  # the error body's code, if any
    kind: str = "rec"


@dataclass
class Run:
    t0: float = field(default_factory=time.perf_counter)
    samples: list[Sample] = field(default_factory=list)
    loads: dict[str, float] = field(default_factory=dict)

    def now(self) -> float:
        return time.perf_counter() - self.t0


class Load:
    """Sends recommendation requests for random stored needs (each with its owner's key)."""

    def __init__(self, url: str, needs: list[tuple[int, str]], k: int, seed: int,
                 timeout: float):
        self.url, self.needs, self.k = url, needs, k
        self.rng = random.Random(seed)
        self.timeout = timeout

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=self.timeout,
                                 limits=httpx.Limits(max_connections=2000,
                                                     max_keepalive_connections=200))

    async def one(self, c: httpx.AsyncClient) -> tuple[int, str]:
        need_id, key = self.needs[self.rng.randrange(len(self.needs))]
        try:
            r = await c.get(PATH.format(need_id), params={"k": self.k},
                            headers={"Authorization": f"Bearer {key}"})
        except (httpx.TransportError, httpx.TimeoutException):
            return 0, "transport"
        code = ""
        if r.status_code != 200:
            try:
                code = r.json()["error"]["code"]
            except Exception:
                code = "?"
        return r.status_code, code

    async def closed(self, run: Run, phase: str, clients: int, seconds: float) -> float:
        """``clients`` clients back to back for ``seconds``; returns answers (200) a second."""
        end = run.now() + seconds

        async def worker(c):
            while run.now() < end:
                t = run.now()
                status, code = await self.one(c)
                run.samples.append(Sample(phase, t, run.now() - t, status, code))

        start = run.now()
        async with self.client() as c:
            await asyncio.gather(*(worker(c) for _ in range(clients)))
        took = run.now() - start
        ok = sum(1 for s in run.samples if s.phase == phase and s.status == 200)
        return ok / took

    async def open(self, run: Run, phase: str, rate: float, seconds: float,
                   probe_healthz: bool = False) -> None:
        """``rate`` requests a second on a fixed schedule for ``seconds`` (open loop)."""
        start = run.now()
        n = int(rate * seconds)
        tasks = []

        async def send(c, due):
            status, code = await self.one(c)
            run.samples.append(Sample(phase, due, run.now() - due, status, code))

        async def probe():
            async with httpx.AsyncClient(base_url=self.url, timeout=self.timeout) as h:
                while run.now() < start + seconds:
                    t = run.now()
                    try:
                        r = await h.get("/healthz")
                        status = r.status_code
                    except (httpx.TransportError, httpx.TimeoutException):
                        status = 0
                    run.samples.append(Sample(phase, t, run.now() - t, status, kind="healthz"))
                    await asyncio.sleep(max(0.0, 0.2 - (run.now() - t)))

        async with self.client() as c:
            prober = asyncio.create_task(probe()) if probe_healthz else None
            for i in range(n):
                due = start + i / rate
                delay = due - run.now()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(send(c, due)))
            await asyncio.gather(*tasks)
            if prober is not None:
                await prober


def summary(run: Run, phase: str, kind: str = "rec") -> dict:
    s = [x for x in run.samples if x.phase == phase and x.kind == kind]
    ok = [x.latency for x in s if x.status == 200]
    shed = [x.latency for x in s if x.status == 503]
    other = [x for x in s if x.status not in (200, 503)]
    span = (max(x.due for x in s) - min(x.due for x in s)) if len(s) > 1 else 0.0
    return {"phase": phase, "n": len(s), "ok": len(ok), "shed": len(shed),
            "shed_codes": sorted({x.code for x in s if x.status == 503}),
            "other": len(other), "other_codes": sorted({f"{x.status} {x.code}".strip()
                                                        for x in other}),
            "rate": len(s) / span if span else 0.0,
            "lat": percentiles(ok), "shed_lat": percentiles(shed),
            "load": run.loads.get(phase, float("nan"))}


def windows(run: Run, phase: str, width: float = 5.0) -> list[tuple[float, float, int]]:
    """(start, p99 ms of the answers, count) per ``width`` seconds of a phase."""
    s = [x for x in run.samples if x.phase == phase and x.kind == "rec"]
    if not s:
        return []
    t0 = min(x.due for x in s)
    out = []
    for w in range(int((max(x.due for x in s) - t0) // width) + 1):
        part = [x.latency for x in s if t0 + w * width <= x.due < t0 + (w + 1) * width
                and x.status == 200]
        out.append((w * width, percentiles(part)["p99"], len(part)))
    return out


class BatchJob:
    """A batch job ranking every need against every program while the load runs."""

    def __init__(self, mode: str, svc: Service, admin_key: str, alliance, models: Path,
                 work: Path):
        self.mode, self.svc, self.key = mode, svc, admin_key
        self.alliance, self.models, self.work = alliance, models, work
        self.proc: subprocess.Popen | None = None
        self.job_id: int | None = None
        self.described = ""

    def start(self) -> None:
        if self.mode == "api":
            r = httpx.post(self.svc.url + "/api/v1/batch", json={"top_k": 50},
                           headers={"Authorization": f"Bearer {self.key}"}, timeout=60)
            r.raise_for_status()
            self.job_id = r.json().get("id") or r.json().get("job_id")
            self.described = (f"the service's batch API (job {self.job_id}: "
                              f"{len(self.alliance.need_ids)} needs x "
                              f"{len(self.alliance.programs):,} programs, top-50 and "
                              "allocation; scheduler "
                              f"{self.svc.env.get('IEI_MATCH_BATCH_SCHEDULER', 'threads')})")
            return
        needs = self.alliance.needs.assign(
            need_id=[f"db-need-{i}" for i in self.alliance.need_ids],
            skills=[" ".join(s) for s in self.alliance.needs["skills"]],
            text=self.alliance.needs["description"])
        needs_csv, programs_csv = self.work / "batch-needs.csv", self.work / "batch-programs.csv"
        needs[["need_id", "title", "text", "skills", "code", "level", "province", "city",
               "headcount"]].to_csv(needs_csv, index=False)
        engine_programs(self.alliance).to_csv(programs_csv, index=False)
        exe = shutil.which("iei-match") or str(Path(sys.executable).parent / "iei-match")
        out = self.work / "batch-run.parquet"
        cmd = [exe, "batch", "--model-dir", str(self.models), "--needs", str(needs_csv),
               "--programs", str(programs_csv), "--top-k", "50", "--output", str(out),
               "--direction", "need", "--work-dir", str(self.work / "batch-jobs"),
               "--cleanup", "--quiet"]
        self.log = open(self.work / "batch.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self.described = (f"`iei-match batch` in a separate process (pid {self.proc.pid}, "
                          f"{len(needs)} needs x {len(self.alliance.programs):,} programs, "
                          "top-50, 2 threads, default priority)")

    def status(self) -> str:
        return str(self.running())

    def running(self) -> bool:
        if self.mode == "api":
            r = httpx.get(f"{self.svc.url}/api/v1/jobs/{self.job_id}",
                          headers={"Authorization": f"Bearer {self.key}"}, timeout=30)
            return r.status_code == 200 and r.json().get("state") in ("queued", "running")
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.mode == "api":
            if self.job_id is not None and self.running():
                httpx.post(f"{self.svc.url}/api/v1/jobs/{self.job_id}/cancel",
                           headers={"Authorization": f"Bearer {self.key}"}, timeout=30)
            return
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self.log.close()


def has_batch_api(url: str) -> bool:
    try:
        spec = httpx.get(url + "/openapi.json", timeout=30).json()
    except Exception:
        return False
    return "/api/v1/batch" in spec.get("paths", {})


async def scenario(args, svc: Service, alliance, models: Path, work: Path) -> tuple[Run, dict]:
    run = Run()
    load = Load(svc.url, list(zip(alliance.need_ids, alliance.need_keys, strict=True)),
                args.k, args.seed, args.timeout)
    info: dict = {}

    def say(msg: str) -> None:
        print(f"[{run.now():7.1f} s] {msg}", flush=True)

    async def phase(name: str, coro):
        l0 = uptime_load()
        result = await coro
        run.loads[name] = (l0 + uptime_load()) / 2
        return result

    say("warm-up: the first request prepares the stored programs")
    async with httpx.AsyncClient(base_url=svc.url, timeout=1800) as c:
        t = run.now()
        status, code = await load.one(c)
        info["first_request_s"] = run.now() - t
        if status != 200:
            raise RuntimeError(f"the first request failed: {status} {code}")
    await phase("warm-up", load.closed(run, "warm-up", 2, args.warmup_seconds))
    say(f"capacity: {args.clients} clients back to back for {args.capacity_seconds} s")
    capacity = await phase("capacity", load.closed(run, "capacity", args.clients,
                                                   args.capacity_seconds))
    info["capacity"] = capacity
    rate = args.rate or capacity * 0.5
    info["rate"] = rate
    say(f"capacity {capacity:.1f}/s; steady at {rate:.1f}/s for {args.seconds} s")
    await phase("steady", load.open(run, "steady", rate, args.seconds))
    over = capacity * args.overload
    say(f"overload at {over:.1f}/s for {args.overload_seconds} s, /healthz probed")
    await phase("overload", load.open(run, "overload", over, args.overload_seconds,
                                      probe_healthz=True))
    say(f"recovery at {rate:.1f}/s for {args.seconds} s")
    await phase("recovery", load.open(run, "recovery", rate, args.seconds))
    async def while_running(job, key: str, warmup: float) -> None:
        """A phase at ``rate`` while ``job`` (a batch job, a retraining) runs."""
        job.start()
        info[key] = job.described
        say(f"{key} started: {job.described}; warming up {warmup} s")
        try:
            await asyncio.sleep(warmup)
            info[f"{key}_running_at_start"] = job.status()
            say(f"with the {key} at {rate:.1f}/s for {args.seconds} s")
            await phase(f"with {key}", load.open(run, f"with {key}", rate, args.seconds,
                                                 probe_healthz=True))
            info[f"{key}_running_at_end"] = job.status()
        finally:
            job.stop()

    mode = args.batch
    if mode == "auto":
        mode = "api" if has_batch_api(svc.url) else "process"
    if mode != "off":
        await while_running(BatchJob(mode, svc, alliance.admin_key, alliance, models, work),
                            "batch", args.batch_warmup)
    if args.retrain:
        await while_running(Retrain(svc, alliance.admin_key), "retrain", args.retrain_warmup)
    return run, info


class Retrain:
    """The service retraining its model (a job) while the load runs."""

    def __init__(self, svc: Service, admin_key: str):
        self.svc, self.headers = svc, {"Authorization": f"Bearer {admin_key}"}
        self.job_id: int | None = None
        self.described = ""

    def start(self) -> None:
        r = httpx.post(self.svc.url + "/api/v1/models/retrain", json={"force": True},
                       headers=self.headers, timeout=60)
        r.raise_for_status()
        self.job_id = r.json()["id"]  # queued behind a cancelled batch job still ending
        self.described = f"job {self.job_id}"

    def status(self) -> str:
        r = httpx.get(f"{self.svc.url}/api/v1/jobs/{self.job_id}", headers=self.headers,
                      timeout=30)
        job = r.json()
        return f"{job.get('state')} ({job.get('message')})"

    def stop(self) -> None:
        if self.job_id is not None and self.status().startswith(("queued", "running")):
            httpx.post(f"{self.svc.url}/api/v1/jobs/{self.job_id}/cancel", headers=self.headers,
                       timeout=30)


def render(run: Run, info: dict, args) -> str:
    phases = [p for p in ("warm-up", "capacity", "steady", "overload", "recovery",
                          "with batch", "with retrain") if any(s.phase == p for s in run.samples)]
    lines = [f"Machine: {machine()}; {time.strftime('%Y-%m-%d %H:%M')}. "
             f"{info['programs']:,} programs, {info['needs']} needs; "
             f"GET {PATH.format('{id}')}?k={args.k}; "
             f"MAX_CONCURRENT_RANKINGS={args.max_concurrent}. First request (prepares the "
             f"catalog): {info['first_request_s']:.1f} s. Capacity ({args.clients} clients, "
             f"closed loop): **{info['capacity']:.1f} answers/s**; 50%: "
             f"{info['rate']:.1f} requests/s.", "",
             "| phase | sent/s | answered 200 | 503 | other | p50 | p90 | p99 | max "
             "| 503 p50 / p99 | load avg |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p in phases:
        s = summary(run, p)
        lat, sl = s["lat"], s["shed_lat"]
        shed = f"{sl['p50']:.0f} / {sl['p99']:.0f}" if s["shed"] else "-"
        other = f"{s['other']} ({', '.join(s['other_codes'])})" if s["other"] else "0"
        lines.append(f"| {p} | {s['rate']:.1f} | {s['ok']} | {s['shed']} | {other} | "
                     f"{lat['p50']:.0f} | {lat['p90']:.0f} | {lat['p99']:.0f} | "
                     f"{lat['max']:.0f} | {shed} | {s['load']:.1f} |")
    lines.append("")
    lines.append("Latencies in ms; open-loop phases from the time each request was due.")
    for p in ("overload", "with batch", "with retrain"):
        h = [x for x in run.samples if x.phase == p and x.kind == "healthz"]
        if h:
            lat = percentiles([x.latency for x in h if x.status == 200])
            bad = sum(1 for x in h if x.status != 200)
            lines.append(f"- `/healthz` during {p}: {len(h)} probes, {bad} not 200; "
                         f"p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, "
                         f"max {lat['max']:.1f} ms.")
    codes = summary(run, "overload")["shed_codes"]
    if codes:
        lines.append(f"- 503 codes during overload: {', '.join(codes)}.")
    rec = windows(run, "recovery")
    if rec:
        lines.append("- recovery, p99 per 5 s: " + ", ".join(
            f"{w:.0f}-{w + 5:.0f} s: {p:.0f} ms" for w, p, _ in rec))
    if "batch" in info:
        lines.append(f"- batch job: {info['batch']}; running when the phase started: "
                     f"{info.get('batch_running_at_start')}, at its end: "
                     f"{info.get('batch_running_at_end')}.")
    if "retrain" in info:
        lines.append(f"- retraining: {info['retrain']}; when the phase started: "
                     f"{info.get('retrain_running_at_start')}; at its end: "
                     f"{info.get('retrain_running_at_end')}.")
    return "\n".join(lines) + "\n"


def plot(run: Run, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 5))
    colors = {"warm-up": "0.6", "capacity": "tab:purple", "steady": "tab:blue",
              "overload": "tab:red", "recovery": "tab:green", "with batch": "tab:orange",
              "with retrain": "tab:brown"}
    for p, color in colors.items():
        s = [x for x in run.samples if x.phase == p]
        if not s:
            continue
        t0, t1 = min(x.due for x in s), max(x.due for x in s)
        ax.axvspan(t0, t1, color=color, alpha=0.07)
        ax.text(t0, 0.97, p, transform=ax.get_xaxis_transform(), fontsize=8, color=color,
                va="top")
        for kind, statuses, marker, label in (
                ("rec", {200}, ".", "200"), ("rec", {503}, "x", "503"),
                ("rec", None, "s", "error"), ("healthz", {200}, "^", "/healthz")):
            pts = [x for x in s if x.kind == kind and (
                x.status in statuses if statuses else x.status not in (200, 503))]
            if pts:
                ax.scatter([x.due for x in pts], [x.latency * 1000 for x in pts], s=4,
                           marker=marker, color=("k" if kind == "healthz" else color),
                           alpha=0.6, label=f"{p}: {label}")
    ax.set_yscale("log")
    ax.set_xlabel("seconds since the start (when each request was due)")
    ax.set_ylabel("latency (ms, log)")
    ax.set_title("GET /needs/{id}/recommendations: latency over time")
    ax.legend(fontsize=6, ncol=6, loc="upper center", bbox_to_anchor=(0.5, -0.12),
              markerscale=3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--programs", type=int, default=10_000)
    p.add_argument("--needs", type=int, help="stored needs (default: all bundled, 770)")
    p.add_argument("--seconds", type=float, default=45, help="steady, recovery and batch "
                   "phases")
    p.add_argument("--warmup-seconds", type=float, default=10)
    p.add_argument("--capacity-seconds", type=float, default=20)
    p.add_argument("--overload-seconds", type=float, default=20)
    p.add_argument("--overload", type=float, default=3.0, help="times the capacity")
    p.add_argument("--clients", type=int, default=4, help="closed-loop clients for capacity")
    p.add_argument("--rate", type=float, help="steady rate (default: 50%% of capacity)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--max-concurrent", type=int, default=os.cpu_count() or 2,
                   help="IEI_MATCH_MAX_CONCURRENT_RANKINGS (default: the service's default, "
                        "the number of CPUs)")
    p.add_argument("--batch", choices=("auto", "api", "process", "off"), default="auto",
                   help="auto: the service's batch API if it has one, else a process")
    p.add_argument("--batch-scheduler", help="IEI_MATCH_BATCH_SCHEDULER for the service's "
                   "batch jobs (default: the service's, threads in the job's own process, "
                   "niced by IEI_MATCH_BATCH_NICE; 'processes': worker processes)")
    p.add_argument("--retrain", action="store_true",
                   help="add a phase at 50%% while the service retrains its model")
    p.add_argument("--retrain-warmup", type=float, default=10,
                   help="seconds between starting the retraining and the measured phase")
    p.add_argument("--batch-warmup", type=float, default=5,
                   help="seconds between starting the batch job and the measured phase")
    p.add_argument("--timeout", type=float, default=60, help="client timeout (s)")
    p.add_argument("--work", type=Path, help="working directory (the model is kept there "
                   "and reused; default: a temporary directory, removed)")
    p.add_argument("--quick-model", action="store_true",
                   help="a small model (40 trees; for smoke tests, not for figures)")
    p.add_argument("--output", type=Path, help="also write the markdown report here")
    p.add_argument("--plot", type=Path, help="latency over time, PNG")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    work = args.work or Path(tempfile.mkdtemp(prefix="iei-load-"))
    work.mkdir(parents=True, exist_ok=True)
    models = work / "models"
    trained = train_model(models, quick=args.quick_model)
    print(f"model: {f'trained in {trained:.1f} s' if trained else 'reused'} ({models})",
          flush=True)
    data = work / "service"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    t0 = time.perf_counter()
    alliance = seed_database(f"sqlite:///{data / 'iei-match.db'}",
                             make_alliance(args.programs, seed=args.seed, n_needs=args.needs))
    print(f"database: {len(alliance.programs):,} programs of {len(alliance.colleges)} colleges, "
          f"{len(alliance.need_ids)} needs in {time.perf_counter() - t0:.1f} s", flush=True)
    env = {"IEI_MATCH_MODELS_DIR": str(models),
           "IEI_MATCH_RATE_LIMIT_PER_MINUTE": "100000000",
           "IEI_MATCH_MAX_CONCURRENT_RANKINGS": str(args.max_concurrent)}
    if args.batch_scheduler:
        env["IEI_MATCH_BATCH_SCHEDULER"] = args.batch_scheduler
    svc = Service(data, free_port(), env).start()
    try:
        run, info = asyncio.run(scenario(args, svc, alliance, models, work))
    finally:
        svc.stop()
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    info.update(programs=len(alliance.programs), needs=len(alliance.need_ids))
    report = render(run, info, args)
    print(report)
    if args.output:
        args.output.write_text(report)
    if args.plot:
        plot(run, args.plot)
        print(f"plot: {args.plot}")
    bad = [s for s in run.samples if s.kind == "rec" and s.status not in (200, 503)]
    if os.environ.get("IEI_LOAD_STRICT") and bad:
        raise SystemExit(f"{len(bad)} answers were neither 200 nor 503")


if __name__ == "__main__":
    main()
