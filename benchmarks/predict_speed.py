"""Scoring: the compiled trees of ``iei_match.tree_predict`` vs LightGBM's own ``predict``.

    python benchmarks/predict_speed.py [--rows 1,10,150,1000,10000] [--work DIR]

Uses the default model trained on the bundled Chinese catalog (trained once into ``--work``
and reused, as in ``recommend_latency.py``) and pair features of real candidate pairs (the
first 200 bundled needs against the bundled programs, as ``shap_speed.py`` draws them; the
fit model reads their absolute columns). For each of the model's boosters (the two rankers
and the fit model) and each row count, times ``tree_predict.predict`` and
``Booster.predict(raw_score=True)`` in one thread, as CPU time (best of several runs, so
that other processes on the machine weigh less), and LightGBM in two threads as wall time
for the counts of 1,000 rows and more (what the rankers use from 4,096 rows); checks that
the scores are equal and prints a markdown table with the largest absolute difference.
The building of the trees (once per model) is timed apart.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
from alliance_data import machine, train_model, uptime_load
from shap_speed import feature_rows

from iei_match import tree_predict
from iei_match.artifacts import load_model


def best_of(fn, repeat: int, clock=time.process_time) -> float:
    """The shortest of ``repeat`` runs of ``fn`` after one warm-up run, in seconds."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return min(times)


def timed(fn, n_rows: int, clock=time.process_time) -> float:
    """Microseconds per row of ``fn``, each run repeated to last at least ~20 ms (the CPU
    clock is coarse)."""
    inner = max(1, 2000 // n_rows)

    def many():
        for _ in range(inner):
            fn()

    return best_of(many, 5, clock) / inner / n_rows * 1e6


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", default="1,10,150,1000,10000",
                   help="rows per call, comma-separated")
    p.add_argument("--work", type=Path, help="where the model is trained once and kept")
    p.add_argument("--output", type=Path, help="also write the markdown table here")
    args = p.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="iei-predict-"))
    models = work / "models"
    train_model(models)
    matcher = load_model(models / (models / "CURRENT").read_text().strip())
    counts = [int(v) for v in args.rows.split(",")]
    x_all = feature_rows(matcher, max(counts))
    boosters = {f"{d} ranker": (b, x_all) for d, b in matcher.boosters_.items()}
    boosters["fit"] = (matcher.fit_model_.booster_,
                       np.ascontiguousarray(x_all[:, matcher._absolute_columns()]))
    load0 = uptime_load()
    lines = [f"Machine: {machine()}. Load average {load0:.1f} at the start.", "",
             "| booster | trees | trees built (s) | rows | compiled µs/row (CPU) | "
             "LightGBM µs/row (CPU, 1 thread) | speed-up | LightGBM µs/row (wall, 2 threads) "
             "| max abs diff |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, (booster, x_full) in boosters.items():
        t0 = time.process_time()
        trees = tree_predict.forest(booster)
        built = time.process_time() - t0
        assert trees is not None
        for n in counts:
            x = x_full[:n]
            ref = booster.predict(x, raw_score=True, num_threads=1)
            diff = float(np.max(np.abs(tree_predict.predict(trees, x) - ref)))
            ours = timed(partial(tree_predict.predict, trees, x), n)
            theirs = timed(partial(booster.predict, x, raw_score=True, num_threads=1), n)
            two = "-"
            if n >= 1000:
                wall = timed(partial(booster.predict, x, raw_score=True, num_threads=2), n,
                             time.perf_counter)
                two = f"{wall:.2f}"
            lines.append(f"| {name} | {booster.num_trees()} | {built:.2f} | {n:,} | "
                         f"{ours:.2f} | {theirs:.2f} | {theirs / ours:.1f}x | {two} | "
                         f"{diff:.1g} |")
    lines += ["", f"Load average {uptime_load():.1f} at the end."]
    text = "\n".join(lines)
    print(text)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
