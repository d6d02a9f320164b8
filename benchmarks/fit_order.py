"""Does a list show a higher fit level below a lower one, and what would ordering by it cost?

    python benchmarks/fit_order.py [--datasets cn-vocational,us-onet-cip] [--seed 0]

The ranker orders a need's programs; the fit (a calibrated probability from the pair's
absolute features) gives each a level, ``high``, ``medium`` or ``low``. The two are
trained apart and can disagree: a ``medium`` program may be listed above a ``high`` one.
On the held-out needs of each bundled catalog (``evaluate.holdout_split``, the model
trained on the rest, as ``iei-match evaluate`` does), this prints, for the top 10 of
each need's list (need -> program):

- the share of lists where a program has a higher fit level than one listed above it;
- NDCG@10 of the lists as ranked, of the top 100 re-ordered by fit level and then by
  the ranker's order, and of the top 100 re-ordered by fit alone.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

from iei_match.bundled import catalog_dir
from iei_match.evaluate import holdout_split
from iei_match.io import load_links, load_needs, load_programs
from iei_match.matcher import Matcher
from iei_match.metrics import evaluate_run


def reordered(run: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``run`` with each need's rows ranked again by ``keys`` (descending)."""
    out = run.sort_values(["need_id", *keys], ascending=[True] + [False] * len(keys)).copy()
    out["rank"] = out.groupby("need_id").cumcount() + 1
    return out


def inverted(levels: np.ndarray) -> bool:
    """Whether a level is higher than one listed above it."""
    best_below = np.maximum.accumulate(levels[::-1])[::-1]
    return bool((best_below[1:] > levels[:-1]).any())


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="cn-vocational,us-onet-cip")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    print("| dataset | held-out needs | lists with a higher level below a lower one (top 10) "
          "| NDCG@10 as ranked | by fit level, then as ranked | by fit alone |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in args.datasets.split(","):
        d = catalog_dir(name)
        needs, programs = load_needs(d / "needs.csv"), load_programs(d / "programs.csv")
        links = load_links(d / "links.csv")
        tr_needs, te_needs, tr_links, te_links = holdout_split(needs, links, 0.2, args.seed)
        matcher = Matcher(random_state=args.seed).fit(tr_needs, programs, tr_links)
        run = matcher.rank(te_needs, programs, k=100, explain=False)
        th = matcher.fit_model_.thresholds_
        fit = run["fit"].to_numpy()
        run = run.assign(level=np.where(fit >= th["high"], 2, np.where(fit >= th["medium"], 1, 0)),
                         order=-run["rank"].to_numpy())

        def ndcg(r: pd.DataFrame, truth: pd.DataFrame = te_links) -> float:
            return evaluate_run(r, truth, "need_id", "program_id", ks=(10,))["ndcg@10"]

        top = run[run["rank"] <= 10].sort_values(["need_id", "rank"])
        share = top.groupby("need_id")["level"].apply(lambda s: inverted(s.to_numpy())).mean()
        print(f"| {name} | {te_needs.shape[0]} | {share:.0%} | {ndcg(run):.3f} | "
              f"{ndcg(reordered(run, ['level', 'order'])):.3f} | "
              f"{ndcg(reordered(run, ['fit'])):.3f} |", flush=True)
    print(f"\n(seed {args.seed}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
