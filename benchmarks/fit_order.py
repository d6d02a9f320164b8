"""Does a list show a higher fit level below a lower one, and what would ordering by it cost?

    python benchmarks/fit_order.py [--datasets cn-vocational,us-onet-cip] [--seed 0]

The ranker orders a need's programs; the fit (a calibrated probability from the pair's
absolute features) gives each a level, ``high``, ``medium`` or ``low``. The two are
trained apart and can disagree: a ``medium`` program may be listed above a ``high`` one.
On the held-out needs of each bundled catalog (``evaluate.holdout_split``, the model
trained on the rest, as ``iei-match evaluate`` does), this prints, for the top 10 of
each list, in both directions (a need's programs; a program's held-out needs):

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


def reordered(run: pd.DataFrame, q_col: str, keys: list[str]) -> pd.DataFrame:
    """``run`` with each list's rows ranked again by ``keys`` (descending)."""
    out = run.sort_values([q_col, *keys], ascending=[True] + [False] * len(keys)).copy()
    out["rank"] = out.groupby(q_col).cumcount() + 1
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
    print("| dataset | direction | lists with a held-out link (NDCG over them) | share of "
          "all lists whose top 10 has a higher level below a lower one | NDCG@10 as ranked "
          "| by fit level, then as ranked | by fit alone |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name in args.datasets.split(","):
        d = catalog_dir(name)
        needs, programs = load_needs(d / "needs.csv"), load_programs(d / "programs.csv")
        links = load_links(d / "links.csv")
        tr_needs, te_needs, tr_links, te_links = holdout_split(needs, links, 0.2, args.seed)
        matcher = Matcher(random_state=args.seed).fit(tr_needs, programs, tr_links)
        th = matcher.fit_model_.thresholds_
        runs = {"need -> program": ("need_id", "program_id",
                                    matcher.rank(te_needs, programs, k=100, explain=False)),
                "program -> need": ("program_id", "need_id",
                                    matcher.partners(programs, te_needs, k=100, explain=False))}
        for direction, (q_col, d_col, run) in runs.items():
            fit = run["fit"].to_numpy()
            run = run.assign(level=np.where(fit >= th["high"], 2,
                                            np.where(fit >= th["medium"], 1, 0)),
                             order=-run["rank"].to_numpy())
            scored = evaluate_run(run, te_links, q_col, d_col, ks=(10,))
            by_level = evaluate_run(reordered(run, q_col, ["level", "order"]), te_links, q_col,
                                    d_col, ks=(10,))
            by_fit = evaluate_run(reordered(run, q_col, ["fit"]), te_links, q_col, d_col,
                                  ks=(10,))
            top = run[run["rank"] <= 10].sort_values([q_col, "rank"])
            share = top.groupby(q_col)["level"].apply(lambda s: inverted(s.to_numpy())).mean()
            print(f"| {name} | {direction} | {scored['queries']} | {share:.0%} | "
                  f"{scored['ndcg@10']:.3f} | {by_level['ndcg@10']:.3f} | "
                  f"{by_fit['ndcg@10']:.3f} |", flush=True)
    print(f"\n(seed {args.seed}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
