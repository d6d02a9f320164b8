"""Wall-clock time to train on one whole bundled benchmark and rank it in both directions.

    python benchmarks/train_rank_speed.py [--repeat 3] [--dense auto]

The target is 30 s for training plus ranking one benchmark on 2 cores. Prints the median
of the repeats per stage and dataset, and the run's peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
import warnings

from iei_match.bundled import CATALOGS, catalog_dir
from iei_match.io import load_links, load_needs, load_programs
from iei_match.matcher import Matcher


def run(name: str, dense) -> dict[str, float]:
    d = catalog_dir(name)
    t0 = time.perf_counter()
    needs, programs = load_needs(d / "needs.csv"), load_programs(d / "programs.csv")
    links = load_links(d / "links.csv")
    t1 = time.perf_counter()
    matcher = Matcher(dense=dense).fit(needs, programs, links)
    t2 = time.perf_counter()
    matcher.rank(needs, programs, k=100)
    t3 = time.perf_counter()
    matcher.partners(programs, needs, k=100)
    t4 = time.perf_counter()
    return {"load": t1 - t0, "fit": t2 - t1, "rank": t3 - t2, "partners": t4 - t3,
            "total": t4 - t0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--dense", choices=("off", "auto"), default="off",
                   help="auto: add sentence embeddings where the extra is installed (English)")
    args = p.parse_args()
    warnings.simplefilter("ignore")
    d = catalog_dir(CATALOGS[0])  # compile or load every kernel outside the timings
    needs, programs = load_needs(d / "needs.csv"), load_programs(d / "programs.csv")
    warm = Matcher().fit(needs, programs, load_links(d / "links.csv"))
    warm.rank(needs.iloc[:50], programs, k=100)
    warm.partners(programs.iloc[:50], needs, k=100)
    del warm, needs, programs
    print(f"{'dataset':<15}{'load':>8}{'fit':>8}{'rank':>8}{'partners':>10}{'total':>8}  (s)")
    for name in CATALOGS:
        runs = [run(name, False if args.dense == "off" else "auto") for _ in range(args.repeat)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"{name:<15}{med['load']:>8.1f}{med['fit']:>8.1f}{med['rank']:>8.1f}"
              f"{med['partners']:>10.1f}{med['total']:>8.1f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # KiB on Linux
    print(f"peak RSS of the run: {peak:.2f} GiB")


if __name__ == "__main__":
    main()
