"""Ranking metrics with binary gain, computed with pandas over a whole run at once.

A *run* is what a ranker returned: one row per (query, document) with its ``rank``
(1 = best). *Qrels* are the known answers: one row per (query, document) with a
``grade``; a grade above 0 counts as relevant, whatever its size.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from .errors import InputError

__all__ = ["evaluate_run"]


def _require(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{what} lacks the column(s) {missing}; it has {list(frame.columns)}")


def evaluate_run(
    run: pd.DataFrame,
    qrels: pd.DataFrame,
    query_col: str,
    doc_col: str,
    ks: Iterable[int] = (10, 50),
) -> dict[str, float]:
    """Score a ranked run against graded relevance judgements (binary gain).

    Parameters
    ----------
    run : pandas.DataFrame
        Columns ``query_col``, ``doc_col`` and ``rank`` (1 = best). Only what the
        run holds is judged: a relevant document absent from it counts as not found.
        If a (query, document) pair appears twice, its best rank is used.
    qrels : pandas.DataFrame
        Columns ``query_col``, ``doc_col`` and ``grade``; ``grade > 0`` is relevant.
    query_col, doc_col : str
        Names of the query and document id columns in both frames.
    ks : iterable of int, default (10, 50)
        Cut-offs; ``ndcg@k`` and ``recall@k`` are reported for each.

    Returns
    -------
    dict of str to float
        ``ndcg@k`` and ``recall@k`` for each ``k``, ``mrr`` (no cut-off beyond the
        run itself) and ``queries``, the number of queries averaged over: those with
        at least one relevant document in ``qrels``. Such queries missing from the run
        score 0; queries with no relevant document are left out.

    Raises
    ------
    InputError
        A frame lacks a column, a ``k`` or a rank is below 1, or ``qrels`` holds no
        relevant document at all.

    Notes
    -----
    ``DCG@k = sum(1 / log2(rank + 1))`` over the relevant documents ranked within
    ``k``; ``IDCG@k`` is the same sum for ranks ``1 .. min(k, n_relevant)``.

    Examples
    --------
    >>> run = pd.DataFrame({"q": ["a", "a", "b"], "d": [1, 2, 3], "rank": [1, 2, 1]})
    >>> qrels = pd.DataFrame({"q": ["a", "b", "c"], "d": [2, 9, 4], "grade": [1, 2, 1]})
    >>> m = evaluate_run(run, qrels, "q", "d", ks=(1, 10))
    >>> m["queries"], round(m["mrr"], 4), round(m["recall@10"], 4)
    (3, 0.1667, 0.3333)
    >>> round(m["ndcg@10"], 4)  # query a: (1 / log2(3)) / 1, b and c: 0
    0.2103
    """
    ks = tuple(int(k) for k in ks)
    if not ks or min(ks) < 1:
        raise InputError(f"ks must hold at least one cut-off, each >= 1; got {ks}")
    _require(run, [query_col, doc_col, "rank"], "run")
    _require(qrels, [query_col, doc_col, "grade"], "qrels")
    keys = [query_col, doc_col]
    rel = qrels.loc[qrels["grade"] > 0, keys].drop_duplicates()
    n_rel = rel.groupby(query_col).size()
    if n_rel.empty:
        raise InputError("qrels holds no relevant document (grade > 0)")
    ranks = pd.to_numeric(run["rank"], errors="raise")
    if (ranks < 1).any():
        raise InputError("run ranks must be >= 1 (1 = best)")
    best = run[keys].assign(rank=ranks).groupby(keys, as_index=False)["rank"].min()
    hits = best.merge(rel, on=keys, how="inner")
    hits["gain"] = 1.0 / np.log2(hits["rank"].to_numpy(dtype=float) + 1.0)

    ideal = np.cumsum(1.0 / np.log2(np.arange(2, max(ks) + 2)))
    nr = n_rel.to_numpy()
    out: dict[str, float] = {}
    for k in ks:
        g = hits[hits["rank"] <= k].groupby(query_col)
        dcg = g["gain"].sum().reindex(n_rel.index, fill_value=0.0).to_numpy()
        out[f"ndcg@{k}"] = float(np.mean(dcg / ideal[np.minimum(k, nr) - 1]))
    for k in ks:
        found = hits[hits["rank"] <= k].groupby(query_col).size()
        out[f"recall@{k}"] = float(np.mean(found.reindex(n_rel.index, fill_value=0) / nr))
    first = hits.groupby(query_col)["rank"].min().reindex(n_rel.index)
    out["mrr"] = float((1.0 / first).fillna(0.0).mean())
    out["queries"] = int(len(n_rel))
    return out
