"""Wall-clock time to train on one whole bundled benchmark and rank it in both directions.

    python benchmarks/train_rank_speed.py [--repeat 3] [--dense auto] [--trainings]

The target is 30 s for training plus ranking one benchmark on 2 cores. Prints the median
of the repeats per stage and dataset, and the run's peak resident memory.

``--trainings`` also lists each LightGBM training of the last fit of each dataset (the
rankers' early-stopping run and refit, the fit's classifiers): its rows, features and
rounds, when it started and ended from the start of the fit, and the CPU seconds of its
thread. Their CPU over the cores is the least the boosting alone can take on this machine,
however the trainings are scheduled.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import threading
import time
import warnings

from iei_match.bundled import CATALOGS, catalog_dir
from iei_match.io import load_links, load_needs, load_programs
from iei_match.matcher import Matcher


class Trainings:
    """Records each ``lightgbm.train`` call made while it is installed."""

    def __init__(self):
        import lightgbm

        self.module, self.original = lightgbm, lightgbm.train
        self.rows: list[dict] = []
        self.start = time.perf_counter()
        self.lock = threading.Lock()

    def install(self) -> None:
        def timed(params, train_set, num_boost_round=100, **kwargs):
            t0, c0 = time.perf_counter(), time.thread_time()
            booster = self.original(params, train_set, num_boost_round=num_boost_round,
                                    **kwargs)
            row = {"objective": params.get("objective"), "rows": train_set.num_data(),
                   "features": train_set.num_feature(), "rounds": booster.current_iteration(),
                   "start": t0 - self.start, "end": time.perf_counter() - self.start,
                   "cpu": time.thread_time() - c0, "threads": params.get("num_threads")}
            with self.lock:
                self.rows.append(row)
            return booster

        self.module.train = timed

    def reset(self) -> None:
        self.rows, self.start = [], time.perf_counter()

    def report(self, name: str, fit_seconds: float) -> str:
        cores = os.cpu_count() or 1
        lines = [f"{name}: LightGBM trainings of the fit ({fit_seconds:.1f} s)",
                 f"{'objective':<12}{'rows':>9}{'feat':>6}{'rounds':>8}{'start':>8}{'end':>8}"
                 f"{'cpu s':>8}"]
        for r in sorted(self.rows, key=lambda r: r["start"]):
            lines.append(f"{r['objective']:<12}{r['rows']:>9,}{r['features']:>6}"
                         f"{r['rounds']:>8}{r['start']:>8.1f}{r['end']:>8.1f}{r['cpu']:>8.1f}")
        cpu = sum(r["cpu"] for r in self.rows)
        first = min((r["start"] for r in self.rows), default=0.0)
        lines.append(f"boosting CPU {cpu:.1f} s; over {cores} cores at least {cpu / cores:.1f} s; "
                     f"the first training started {first:.1f} s into the fit")
        return "\n".join(lines)


def run(name: str, dense, trainings: Trainings | None = None) -> dict[str, float]:
    d = catalog_dir(name)
    t0 = time.perf_counter()
    needs, programs = load_needs(d / "needs.csv"), load_programs(d / "programs.csv")
    links = load_links(d / "links.csv")
    t1 = time.perf_counter()
    if trainings is not None:
        trainings.reset()
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
    p.add_argument("--trainings", action="store_true",
                   help="list each LightGBM training of the last fit of each dataset")
    args = p.parse_args()
    warnings.simplefilter("ignore")
    d = catalog_dir(CATALOGS[0])  # compile or load every kernel outside the timings
    needs, programs = load_needs(d / "needs.csv"), load_programs(d / "programs.csv")
    warm = Matcher().fit(needs, programs, load_links(d / "links.csv"))
    warm.rank(needs.iloc[:50], programs, k=100)
    warm.partners(programs.iloc[:50], needs, k=100)
    del warm, needs, programs
    print(f"{'dataset':<15}{'load':>8}{'fit':>8}{'rank':>8}{'partners':>10}{'total':>8}  (s)")
    trainings = Trainings() if args.trainings else None
    if trainings is not None:
        trainings.install()
    reports = []
    for name in CATALOGS:
        runs = [run(name, False if args.dense == "off" else "auto", trainings)
                for _ in range(args.repeat)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"{name:<15}{med['load']:>8.1f}{med['fit']:>8.1f}{med['rank']:>8.1f}"
              f"{med['partners']:>10.1f}{med['total']:>8.1f}")
        if trainings is not None:
            reports.append(trainings.report(name, runs[-1]["fit"]))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # KiB on Linux
    print(f"peak RSS of the run: {peak:.2f} GiB")
    for report in reports:
        print()
        print(report)


if __name__ == "__main__":
    main()
