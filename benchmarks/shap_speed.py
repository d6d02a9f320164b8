"""Explanations: TreeSHAP from per-leaf tables (``iei_match.tree_shap``) vs LightGBM's own.

    python benchmarks/shap_speed.py [--rows 10,100,5000] [--work DIR]

Uses the default model trained on the bundled Chinese catalog (trained once into ``--work``
and reused, as in ``recommend_latency.py``) and pair features of real candidate pairs (the
bundled needs against the bundled programs). For each direction's booster and each row
count, times ``tree_shap.contributions`` (one thread, and two for the largest count) and
``Booster.predict(pred_contrib=True)`` with the same threads, checks that the values agree,
and prints a markdown table: milliseconds per call, microseconds per row, and the ratio.
The building of the tables (once per model) is timed apart.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
from alliance_data import catalog_tables, machine, train_model, uptime_load

from iei_match import tree_shap
from iei_match.artifacts import load_model
from iei_match.candidates import candidate_pairs
from iei_match.features import build_features
from iei_match.matcher import Matcher
from iei_match.sides import Side


def feature_rows(matcher: Matcher, n: int) -> np.ndarray:
    """``n`` feature rows of real candidate pairs (the first 200 bundled needs against the
    bundled programs), as the ranker scores them."""
    needs, programs, _ = catalog_tables()
    needs = Side.build(needs.iloc[:200], "need_id", matcher.word_, matcher.char_)
    programs = Side.build(programs, "program_id", matcher.word_, matcher.char_)
    memory = matcher.memory_
    nbrs = memory.neighbours(needs)
    n_rows, p_rows = candidate_pairs(memory, needs, programs, nbrs, matcher.n_candidates,
                                     "need")
    x, names = build_features(memory, needs, programs, nbrs, n_rows, p_rows, n_rows)
    x = matcher._aligned(x, names)
    if len(x) < n:
        raise SystemExit(f"only {len(x)} candidate pairs; ask for fewer rows")
    rows = np.random.default_rng(0).choice(len(x), size=n, replace=False)
    return x[np.sort(rows)]


def best_of(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", default="10,100,5000", help="rows per call, comma-separated")
    p.add_argument("--work", type=Path, help="where the model is trained once and kept")
    p.add_argument("--output", type=Path, help="also write the markdown table here")
    args = p.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="iei-shap-"))
    models = work / "models"
    train_model(models)
    matcher = load_model(models / (models / "CURRENT").read_text().strip())
    counts = [int(v) for v in args.rows.split(",")]
    x_all = feature_rows(matcher, max(counts))
    load0 = uptime_load()
    lines = [f"Machine: {machine()}. Load average {load0:.1f} at the start.", "",
             "| booster | trees | tables built (s) | rows | threads | tables (ms) | "
             "LightGBM (ms) | tables µs/row | LightGBM µs/row | speed-up |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for direction, booster in matcher.boosters_.items():
        t0 = time.perf_counter()
        tables = tree_shap.shap_tables(booster)
        built = time.perf_counter() - t0
        assert tables is not None
        for n in counts:
            x = x_all[:n]
            for threads in ([1, 2] if n == max(counts) and n > 1000 else [1]):
                ref = booster.predict(x, pred_contrib=True, num_threads=threads)[:, :-1]
                got = tree_shap.contributions(tables, x, n_threads=threads)
                np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)
                repeat = max(3, min(200, 2000 // n))
                ours = best_of(partial(tree_shap.contributions, tables, x, n_threads=threads),
                               repeat)
                theirs = best_of(partial(booster.predict, x, pred_contrib=True,
                                         num_threads=threads), repeat)
                lines.append(f"| {direction} | {booster.num_trees()} | {built:.2f} | {n:,} | "
                             f"{threads} | {ours * 1e3:.2f} | {theirs * 1e3:.2f} | "
                             f"{ours / n * 1e6:.0f} | {theirs / n * 1e6:.0f} | "
                             f"{theirs / ours:.1f}x |")
    lines += ["", f"Load average {uptime_load():.1f} at the end."]
    text = "\n".join(lines)
    print(text)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
