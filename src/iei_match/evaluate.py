"""Hold-out evaluation of the matcher next to the peers a user would use instead."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .errors import InputError
from .matcher import Matcher
from .metrics import evaluate_run
from .peers import PEERS, rank_peer

__all__ = ["holdout_split", "evaluate", "default_peers"]


def holdout_split(needs: pd.DataFrame, links: pd.DataFrame, test_size: float = 0.2,
                  random_state: int = 0):
    """Split needs (and their links) into a training part and an unseen test part.

    Returns
    -------
    train_needs, test_needs, train_links, test_links : DataFrame
    """
    if not 0 < test_size < 1:
        raise InputError(f"test_size must be between 0 and 1, got {test_size}")
    ids = np.sort(needs["need_id"].astype(str).unique())
    n_test = max(1, int(round(len(ids) * test_size)))
    if n_test >= len(ids):
        raise InputError("too few needs to hold some out")
    test = set(np.random.default_rng(random_state).choice(ids, n_test, replace=False))
    is_test = needs["need_id"].astype(str).isin(test)
    link_test = links["need_id"].astype(str).isin(test)
    return needs[~is_test], needs[is_test], links[~link_test], links[link_test]


def _doc(frame: pd.DataFrame) -> list[str]:
    return (frame["title"].astype(str) + " " + frame["text"].astype(str)).tolist()


def _dense_peer(queries: list[str], docs: list[str], k: int):
    from .embeddings import DenseEncoder
    from .features import dense_topk

    enc = DenseEncoder()
    q, d = enc.encode(queries), enc.encode(docs)
    idx = dense_topk(q, d, k)
    return idx, np.take_along_axis(q @ d.T, idx, axis=1)


def default_peers(texts: list[str] | None = None) -> tuple[str, ...]:
    """The sparse peers, plus dense embeddings when the ``embeddings`` extra is installed
    and ``texts`` are mostly not Chinese (the embedding model is English-only)."""
    from . import embeddings
    from .text import has_cjk

    sample = (texts or [])[:: max(1, len(texts or []) // 500)]
    english = not sample or np.mean([has_cjk(t) for t in sample]) < 0.5
    return PEERS + (("dense",) if english and embeddings.available() else ())


def _peer_run(name, queries, docs, q_col, d_col, k) -> pd.DataFrame:
    if name == "dense":
        idx, score = _dense_peer(_doc(queries), _doc(docs), k)
    else:
        idx, score = rank_peer(name, _doc(queries), _doc(docs), k)
    kk = idx.shape[1]
    return pd.DataFrame({
        q_col: np.repeat(queries[q_col].astype(str).to_numpy(), kk),
        d_col: docs[d_col].astype(str).to_numpy()[idx.ravel()],
        "rank": np.tile(np.arange(1, kk + 1), len(queries)),
        "score": score.ravel(),
    })


def evaluate(needs: pd.DataFrame, programs: pd.DataFrame, links: pd.DataFrame, *,
             test_size: float = 0.2, random_state: int = 0, k: int = 100,
             peers: tuple[str, ...] | None = None, matcher: Matcher | None = None,
             progress: bool = False) -> pd.DataFrame:
    """Train on most needs, then rank the held-out ones in both directions.

    The matcher and every peer (by default TF-IDF words, TF-IDF char n-grams, BM25, and
    dense embeddings when installed) are scored in the same run on the same split: NDCG@10,
    Recall@10, Recall@50 and MRR, averaged over held-out needs (``need->program``) or over
    programs with at least one held-out link (``program->need``).

    Returns
    -------
    DataFrame
        One row per (method, direction) with the metrics and the seconds taken.
    """
    tr_needs, te_needs, tr_links, te_links = holdout_split(needs, links, test_size, random_state)
    if (pd.to_numeric(te_links.get("grade", 1), errors="coerce").fillna(1) > 0).sum() == 0:
        raise InputError("the held-out needs have no links to evaluate against")
    matcher = matcher if matcher is not None else Matcher(random_state=random_state)
    peers = default_peers(_doc(programs)) if peers is None else peers
    rows = []
    t0 = time.perf_counter()
    matcher.fit(tr_needs, programs, tr_links, progress=progress)
    fit_s = time.perf_counter() - t0
    runs = {}
    t0 = time.perf_counter()
    runs[("iei-match", "need->program")] = matcher.rank(te_needs, programs, k=k, explain=False)
    runs[("iei-match", "program->need")] = matcher.partners(programs, te_needs, k=k,
                                                            explain=False)
    rank_s = time.perf_counter() - t0
    seconds = {"iei-match": (fit_s, rank_s)}
    for name in tqdm(peers, desc="peers", disable=not progress):
        t0 = time.perf_counter()
        runs[(name, "need->program")] = _peer_run(name, te_needs, programs, "need_id",
                                                  "program_id", k)
        runs[(name, "program->need")] = _peer_run(name, programs, te_needs, "program_id",
                                                  "need_id", k)
        seconds[name] = (0.0, time.perf_counter() - t0)
    for (name, direction), run in runs.items():
        q_col, d_col = ("need_id", "program_id") if direction == "need->program" else \
            ("program_id", "need_id")
        scores = evaluate_run(run, te_links, q_col, d_col, ks=(10, 50))
        rows.append({"method": name, "direction": direction,
                     "ndcg@10": scores["ndcg@10"], "recall@10": scores["recall@10"],
                     "recall@50": scores["recall@50"], "mrr": scores["mrr"],
                     "queries": scores["queries"], "fit_s": seconds[name][0],
                     "rank_s": seconds[name][1]})
    return pd.DataFrame(rows)
