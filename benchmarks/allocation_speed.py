"""Allocation speed: seconds, peak memory, objective and status, with and without the cap.

    python benchmarks/allocation_speed.py [--needs 10000] [--pairs 50] [--programs 10000]
                                          [--colleges 400] [--cap 30] [--time-limit 120]
                                          [--runs free,cap]

A random instance shaped like an alliance's batch output: every need has ``--pairs``
candidate programs (distinct, drawn uniformly among ``--programs`` programs spread over
``--colleges`` colleges), headcount 1-10, graduates 10-60 a year; about one college in two
has a training base over half of its programs (capacity 50-300). A pair's score is
``0.5 x quality of the college + 0.5 x noise`` (both uniform in [0, 1]): good colleges
score well with every need, which is what the cap on partners per college is for.

Each run goes through :func:`iei_match.allocation.allocate` (``free``: without the cap, the
min-cost flow; ``cap``: with ``max_partners_per_college=--cap``) in a fresh process, so the
peak resident memory (``ru_maxrss``) is the run's own. The figures go to stdout, one line
per run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import resource
import time

import numpy as np
import pandas as pd


def instance(n_needs: int, n_pairs: int, n_programs: int, n_colleges: int, seed: int = 0):
    """scores, needs, programs, bases (DataFrames) of a random allocation problem."""
    rng = np.random.default_rng(seed)
    college = np.sort(rng.integers(0, n_colleges, n_programs))
    quality = rng.random(n_colleges)
    needs = pd.DataFrame({"need_id": [f"n{i:06d}" for i in range(n_needs)],
                          "headcount": rng.integers(1, 11, n_needs)})
    programs = pd.DataFrame({"program_id": [f"p{j:06d}" for j in range(n_programs)],
                             "graduates_per_year": rng.integers(10, 61, n_programs),
                             "org_id": [f"c{c:04d}" for c in college]})
    # n_pairs distinct programs per need: the first n_pairs of a random permutation of each
    # need's row (argpartition of random keys, done in chunks to keep memory small).
    progs = np.empty((n_needs, n_pairs), np.int64)
    for start in range(0, n_needs, 1000):
        keys = rng.random((min(1000, n_needs - start), n_programs))
        progs[start:start + len(keys)] = np.argpartition(keys, n_pairs, axis=1)[:, :n_pairs]
    need = np.repeat(np.arange(n_needs), n_pairs)
    prog = progs.ravel()
    score = 0.5 * quality[college[prog]] + 0.5 * rng.random(len(prog))
    scores = pd.DataFrame({"need_id": needs["need_id"].to_numpy()[need],
                           "program_id": programs["program_id"].to_numpy()[prog],
                           "score": np.round(score, 6)})
    with_base = rng.random(n_colleges) < 0.5
    in_base = with_base[college] & (rng.random(n_programs) < 0.5)
    base_cap = rng.integers(50, 301, n_colleges)
    bases = pd.DataFrame({"base_id": [f"b{c:04d}" for c in college[in_base]],
                          "program_id": programs["program_id"].to_numpy()[in_base],
                          "capacity": base_cap[college[in_base]]})
    return scores, needs, programs, bases


def run(args, mode: str, out) -> None:
    from iei_match.allocation import allocate

    if args.max_memory_gb:  # address space: a run that needs more fails instead of the machine
        limit = int(args.max_memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    scores, needs, programs, bases = instance(args.needs, args.pairs, args.programs,
                                              args.colleges, args.seed)
    cap = args.cap if mode == "cap" else None
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    start = time.perf_counter()
    plan, report = allocate(scores, needs, programs, bases=bases,
                            max_partners_per_college=cap, time_limit=args.time_limit)
    seconds = time.perf_counter() - start
    out.put({"mode": mode, "seconds": round(seconds, 1),
             "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
             "rss_before_gb": round(before, 2),
             "objective": round(report.objective, 2), "assigned": report.assigned,
             "demand": report.demand, "max_partners": int(report.colleges["partners"].max()),
             "gini": round(report.gini, 3), "status": report.status})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--needs", type=int, default=10_000)
    ap.add_argument("--pairs", type=int, default=50, help="candidate programs per need")
    ap.add_argument("--programs", type=int, default=10_000)
    ap.add_argument("--colleges", type=int, default=400)
    ap.add_argument("--cap", type=int, default=30, help="max_partners_per_college")
    ap.add_argument("--time-limit", type=float, default=None,
                    help="seconds for the MIP (default: allocate's own default)")
    ap.add_argument("--runs", default="free,cap", help="free, cap or both (comma-separated)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-memory-gb", type=float, default=16.0,
                    help="address-space limit of each run (0: none)")
    args = ap.parse_args()
    print(f"{args.needs} needs x {args.pairs} pairs = {args.needs * args.pairs} pairs, "
          f"{args.programs} programs, {args.colleges} colleges, cap {args.cap}; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    ctx = multiprocessing.get_context("spawn")
    for mode in args.runs.split(","):
        out = ctx.Queue()
        proc = ctx.Process(target=run, args=(args, mode, out))
        proc.start()
        proc.join()  # the result is a small dict: it is in the pipe before the child exits
        try:
            result = out.get(timeout=10)
        except queue.Empty:
            result = {"mode": mode, "failed": f"the run's process exited with {proc.exitcode}"}
        result["load_average"] = round(os.getloadavg()[0], 2)
        print(json.dumps(result, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
