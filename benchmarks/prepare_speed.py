"""Preparing a catalog: ``Matcher.prepare(frame, "program")``, wall and CPU seconds, peak RSS.

    python benchmarks/prepare_speed.py --work W [--sizes 10000,100000] [--texts alliance,distinct]

``alliance``: the programs of ``alliance_data.make_alliance`` (the bundled Chinese majors
offered by many colleges: the same majors' texts again and again, each with a line about
its college); ``distinct``: the synthetic documents of ``batch_speed.py`` (400 topics, Zipf
vocabularies, 120 words a program: no two alike). The model is the one ``alliance_data``
trains on the bundled catalog (kept in ``W/models``). Each size runs in a fresh process, so
its peak RSS is its own (the table and the model included: the RSS before ``prepare`` is
printed too).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

from alliance_data import engine_programs, make_alliance, train_model


def _one(work: Path, size: int, texts: str) -> None:
    from iei_match.artifacts import load_model

    models = work / "models"
    matcher = load_model(models / (models / "CURRENT").read_text().strip())
    if texts == "alliance":
        frame = engine_programs(make_alliance(size, seed=0))
    else:
        from batch_speed import Corpus

        frame, _ = Corpus(400).documents(size, 120, "program_id", "prog")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    t0, c0 = time.perf_counter(), time.process_time()
    matcher.prepare(frame, "program")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"| {size:,} | {texts} | {wall:.1f} | {cpu:.1f} | {before:.2f} | {peak:.2f} | "
          f"{os.getloadavg()[0]:.1f} |", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--sizes", default="10000,100000")
    p.add_argument("--texts", default="alliance,distinct")
    p.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    warnings.simplefilter("ignore")
    if args.one:
        _one(args.work, int(args.one[0]), args.one[1])
        return
    train_model(args.work / "models")
    print("| programs | texts | wall (s) | CPU (s) | RSS before (GB) | peak RSS (GB) | load avg |\n"
          "|---:|---|---:|---:|---:|---:|---:|", flush=True)
    for texts in args.texts.split(","):
        for size in map(int, args.sizes.split(",")):
            subprocess.run([sys.executable, __file__, "--work", str(args.work),
                            "--one", str(size), texts], check=True)


if __name__ == "__main__":
    main()
