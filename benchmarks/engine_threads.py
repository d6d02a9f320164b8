"""Rankings a second of the engine called from one thread and from two at once.

    python benchmarks/engine_threads.py --work W [--size 10000] [--calls 600] [--rounds 3]

The call is the one ``recommend_latency.py`` times (one need of the alliance of
``alliance_data.py`` against its prepared programs restricted to the need's level, k=10,
explained, ``min_fit`` at the model's ``medium``), as the service's worker threads make it:
the same ``--calls`` needs are ranked by one thread, then split between two threads that
run at once, ``--rounds`` times in turn. Two threads rank faster than one only where the
engine's compiled kernels let go of the interpreter (numba's ``nogil``) while the other
thread runs Python. Prints the rankings a second of each round and the load average.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
import warnings
from pathlib import Path

import numpy as np
from alliance_data import engine_programs, machine, make_alliance, train_model, uptime_load
from recommend_latency import need_records

from iei_match.artifacts import load_model


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True,
                   help="working directory (the model is kept there and reused)")
    p.add_argument("--size", type=int, default=10_000, help="programs in the alliance")
    p.add_argument("--calls", type=int, default=600)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick-model", action="store_true",
                   help="a small model (40 trees; for smoke tests, not for figures)")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    models = args.work / "models"
    train_model(models, quick=args.quick_model)
    matcher = load_model(models / (models / "CURRENT").read_text().strip())
    alliance = make_alliance(args.size, seed=args.seed)
    frame = engine_programs(alliance)
    catalog = matcher.prepare(frame, "program")
    level = frame["level"].to_numpy()
    rows = list(alliance.needs.itertuples(index=False))
    min_fit = float(matcher.fit_model_.thresholds_["medium"])
    rng = random.Random(args.seed)
    calls = []
    for _ in range(args.calls):
        row = rows[rng.randrange(len(rows))]
        allowed = level == row.level if row.level else np.ones(len(level), dtype=bool)
        calls.append((need_records(row), catalog.restrict(allowed)))

    def rank(part) -> None:
        for need, programs in part:
            matcher.rank(need, programs, k=10, explain=10, min_fit=min_fit, as_frame=False)

    rank(calls[:20])  # compiled and warm
    load0 = uptime_load()
    lines = [machine(), f"{args.calls} rankings of one need against {args.size:,} programs "
             "(k=10, explained, min_fit medium), by 1 thread and by 2 at once, in turn.", "",
             "| round | 1 thread (rankings/s) | 2 threads (rankings/s) | 2 / 1 |",
             "|---:|---:|---:|---:|"]
    for r in range(args.rounds):
        rate = {}
        for n in (1, 2):
            threads = [threading.Thread(target=rank, args=(calls[i::n],)) for i in range(n)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            rate[n] = len(calls) / (time.perf_counter() - t0)
        lines.append(f"| {r + 1} | {rate[1]:.0f} | {rate[2]:.0f} | {rate[2] / rate[1]:.2f} |")
    lines += ["", f"Load average {(load0 + uptime_load()) / 2:.1f}."]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
