"""Training time vs number of links: ``Matcher.fit`` on a share of a bundled catalog's links.

    python benchmarks/train_speed.py [--catalogs cn-vocational,us-onet-cip]
                                     [--fractions 0.1,0.25,0.5,1] [--repeat 1]
                                     [--output FILE.md]

For each catalog and fraction, the links are subsampled (seeded; every need and program
stays in the tables, only the labelled pairs shrink) and a default ``Matcher`` is fitted
on the whole catalog. Reports the seconds (median of ``--repeat``), the links and the
needs that have one, the boosting rounds kept, and the load average during the fit.
``--params`` passes Matcher parameters as JSON (e.g. ``'{"n_estimators": 40}'`` for a
quick check).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import warnings
from pathlib import Path

from iei_match.bundled import catalog_dir
from iei_match.io import load_links, load_needs, load_programs
from iei_match.matcher import Matcher


def fit_once(needs, programs, links, params: dict) -> tuple[float, Matcher, float]:
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    m = Matcher(**params).fit(needs, programs, links)
    return time.perf_counter() - t0, m, (load0 + os.getloadavg()[0]) / 2


def rounds(m: Matcher) -> str:
    boosters = getattr(m, "boosters_", None) or {}
    return "/".join(str(b.num_trees()) for b in boosters.values()) or "-"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--catalogs", default="cn-vocational,us-onet-cip")
    p.add_argument("--fractions", default="0.1,0.25,0.5,1")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--params", default="{}", help="Matcher parameters, JSON")
    p.add_argument("--output", type=Path)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    params = {"random_state": 0, **json.loads(args.params)}
    rows = []
    for name in [c for c in args.catalogs.split(",") if c]:
        d = catalog_dir(name)
        needs, programs = load_needs(d / "needs.csv"), load_programs(d / "programs.csv")
        links = load_links(d / "links.csv")
        for frac in [float(f) for f in args.fractions.split(",") if f]:
            part = links.sample(frac=frac, random_state=args.seed) if frac < 1 else links
            runs = [fit_once(needs, programs, part, params) for _ in range(args.repeat)]
            seconds = statistics.median(r[0] for r in runs)
            row = {"catalog": name, "fraction": frac, "links": len(part),
                   "linked_needs": part["need_id"].nunique(), "needs": len(needs),
                   "programs": len(programs), "seconds": seconds,
                   "rounds": rounds(runs[-1][1]), "mode": runs[-1][1].mode_,
                   "load": statistics.median(r[2] for r in runs)}
            rows.append(row)
            print(f"{name:<14} {frac:>5.0%} {len(part):>6} links: {seconds:6.1f} s "
                  f"(rounds {row['rounds']}, load {row['load']:.1f})", flush=True)
    lines = [f"`Matcher({', '.join(f'{k}={v!r}' for k, v in params.items())}).fit`, "
             f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}; median of "
             f"{args.repeat}.", "",
             "| catalog | links | share | needs with links | fit (s) | trees (need/program "
             "ranker) | load avg |", "|---|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        lines.append(f"| {r['catalog']} ({r['needs']} needs x {r['programs']:,} programs) | "
                     f"{r['links']:,} | {r['fraction']:.0%} | {r['linked_needs']} | "
                     f"{r['seconds']:.1f} | {r['rounds']} | {r['load']:.1f} |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.output:
        args.output.write_text(table)


if __name__ == "__main__":
    main()
