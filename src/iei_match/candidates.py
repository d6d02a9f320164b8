"""Candidate retrieval: the pairs the ranker scores, from sparse similarity and past links."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from .kernels import matmul_rows, topk_rows, topk_stored
from .memory import Memory, dense_topk, links_to_programs
from .retrieval import PostingIndex
from .sides import Side

if TYPE_CHECKING:
    from .catalog import Catalog

__all__ = ["candidate_pairs"]


def candidate_pairs(memory: Memory, needs: Side, programs: Side, nbrs: sp.csr_matrix,
                    k: int, direction: str, catalog: Catalog | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Union of the top ``k`` by word TF-IDF, char TF-IDF and collaborative score.

    ``direction`` is ``"need"`` (top programs of each need) or ``"program"`` (top needs of
    each program). ``catalog``, when given, is the side being searched (``programs`` for
    ``"need"``, ``needs`` for ``"program"``) prepared with its indexes and link history,
    and may block some of its rows. Returns (need rows, program rows), unique pairs, sorted.
    """
    if direction == "need":
        queries, docs = needs, programs
        history = (catalog.history if catalog is not None
                   else links_to_programs(memory, memory.program_columns(programs)))
        nbrs = nbrs if type(nbrs) is sp.csr_matrix else sp.csr_matrix(nbrs)
        collab = matmul_rows(nbrs, np.arange(nbrs.shape[0]), history)
    else:
        queries, docs = programs, needs
        collab = sp.csr_matrix(nbrs @ links_to_programs(memory, memory.program_columns(programs))
                               ).T.tocsr()
    blocked = catalog.blocked if catalog is not None else None
    kk = min(k, len(docs))
    if catalog is not None:
        found = list(catalog.search(queries.word.full, queries.char.full, kk))
    else:
        found = [PostingIndex(docs.word.full).search(queries.word.full, kk)[0],
                 PostingIndex(docs.char.full).search(queries.char.full, kk)[0]]
    parts = [*found, _collab_topk(collab, blocked, kk)]
    if queries.dense is not None and docs.dense is not None:
        parts.append(dense_topk(queries.dense, docs.dense, kk, blocked=blocked))
    q = np.repeat(np.arange(len(queries)), kk)
    rows = np.concatenate([q] * len(parts))
    cols = np.concatenate([p.ravel() for p in parts])
    ok = cols >= 0
    if blocked is not None:
        ok &= ~blocked[np.maximum(cols, 0)]
    n_d = len(docs)
    pairs = np.unique(rows[ok] * n_d + cols[ok])
    q_rows, d_rows = pairs // n_d, pairs % n_d
    return (q_rows, d_rows) if direction == "need" else (d_rows, q_rows)


def _collab_topk(collab: sp.csr_matrix, blocked: np.ndarray | None, k: int) -> np.ndarray:
    """``topk_rows`` of ``collab`` without its ``blocked`` columns' entries (nor stored
    zeros), from its arrays: the rows' entries sorted by column, as scipy's
    ``eliminate_zeros`` and ``sorted_indices`` leave them, without copying the matrix."""
    ptr, ind, val = collab.indptr, collab.indices, collab.data
    if blocked is None:
        return topk_rows(collab, k)[0]
    keep = ~blocked[ind] & (val != 0)
    row = np.repeat(np.arange(collab.shape[0]), np.diff(ptr))[keep]
    ind, val = ind[keep], val[keep]
    order = np.lexsort((ind, row))
    new_ptr = np.zeros(len(ptr), dtype=np.int64)
    np.cumsum(np.bincount(row, minlength=collab.shape[0]), out=new_ptr[1:])
    return topk_stored(new_ptr, ind[order], val[order], k, collab.shape[1])[0]
