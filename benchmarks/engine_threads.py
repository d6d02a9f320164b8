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

import random
import threading
import time
import warnings

from alliance_data import EngineAlliance, machine, uptime_load
from recommend_latency import need_records


def main(argv=None) -> None:
    p = EngineAlliance.arguments(__doc__)
    p.add_argument("--calls", type=int, default=600)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    engine = EngineAlliance.from_args(args)
    matcher = engine.matcher
    min_fit = float(matcher.fit_model_.thresholds_["medium"])
    rng = random.Random(args.seed)
    calls = []
    for _ in range(args.calls):
        row = engine.rows[rng.randrange(len(engine.rows))]
        calls.append((need_records(row), engine.restricted(row)))

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
