"""Quality of the baseline peers on the bundled catalogs, both directions.

Run: ``PYTHONPATH=src python benchmarks/peers_quality.py``. The full links are the qrels.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from iei_match.metrics import evaluate_run
from iei_match.peers import PEERS, rank_peer

ROOT = Path(__file__).resolve().parents[1] / "data" / "catalogs"
DATASETS = ("cn-vocational", "us-onet-cip")
K = 50


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def main() -> int:
    t0 = time.perf_counter()
    head = f"{'dataset':<14} {'direction':<16} {'peer':<11} {'queries':>7} "
    print(head + "   ndcg@10 recall@10 recall@50     mrr   secs")
    for name in DATASETS:
        needs, programs = _read(ROOT / name / "needs.csv"), _read(ROOT / name / "programs.csv")
        links = _read(ROOT / name / "links.csv").astype({"grade": float})
        sides = {
            "need": (needs["need_id"], needs["title"] + " " + needs["text"]),
            "program": (programs["program_id"], programs["title"] + " " + programs["text"]),
        }
        for q_side, d_side in (("need", "program"), ("program", "need")):
            (q_ids, q_text), (d_ids, d_text) = sides[q_side], sides[d_side]
            q_col, d_col = f"{q_side}_id", f"{d_side}_id"
            for peer in PEERS:
                t = time.perf_counter()
                idx, _ = rank_peer(peer, q_text.tolist(), d_text.tolist(), k=K)
                run = pd.DataFrame(
                    {
                        q_col: np.repeat(q_ids.to_numpy(), idx.shape[1]),
                        d_col: d_ids.to_numpy()[idx.ravel()],
                        "rank": np.tile(np.arange(1, idx.shape[1] + 1), len(idx)),
                    }
                )
                m = evaluate_run(run, links, q_col, d_col, ks=(10, K))
                print(
                    f"{name:<14} {q_side + '->' + d_side:<16} {peer:<11} {m['queries']:>7} "
                    f"{m['ndcg@10']:9.4f} {m['recall@10']:9.4f} {m[f'recall@{K}']:9.4f} "
                    f"{m['mrr']:7.4f} {time.perf_counter() - t:6.1f}",
                    flush=True,
                )
    print(f"total {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
