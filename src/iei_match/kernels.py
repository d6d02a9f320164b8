"""Numba kernels that compute one number per (row, column) pair without forming a full matrix."""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

__all__ = ["pair_dots", "neighbour_link_stats", "topk_rows"]


@numba.njit(cache=True, inline="always")
def _dot(a_ptr, a_ind, a_val, b_ptr, b_ind, b_val, i, j):
    x, x_end = a_ptr[i], a_ptr[i + 1]
    y, y_end = b_ptr[j], b_ptr[j + 1]
    s = 0.0
    while x < x_end and y < y_end:
        if a_ind[x] == b_ind[y]:
            s += float(a_val[x]) * float(b_val[y])
            x += 1
            y += 1
        elif a_ind[x] < b_ind[y]:
            x += 1
        else:
            y += 1
    return s


@numba.njit(parallel=True, cache=True)
def _pair_dots(a_ptr, a_ind, a_val, b_ptr, b_ind, b_val, rows, cols, out):
    for n in numba.prange(len(rows)):
        out[n] = _dot(a_ptr, a_ind, a_val, b_ptr, b_ind, b_val, rows[n], cols[n])


@numba.njit(cache=True)
def _pair_dots_serial(a_ptr, a_ind, a_val, b_ptr, b_ind, b_val, rows, cols, out):
    for n in range(len(rows)):
        out[n] = _dot(a_ptr, a_ind, a_val, b_ptr, b_ind, b_val, rows[n], cols[n])


# Below this many pairs, waking a thread pool costs more than it saves (a single request's
# few hundred pairs), so the kernels run in the calling thread.
SERIAL_BELOW = 4096


def _csr(m: sp.spmatrix) -> sp.csr_matrix:
    m = sp.csr_matrix(m)
    if not m.has_canonical_format:
        m = m.copy()
        m.sum_duplicates()
    if not m.has_sorted_indices:
        m = m.sorted_indices()
    return m


def pair_dots(a: sp.spmatrix, b: sp.spmatrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``(a[rows[n]] * b[cols[n]]).sum()`` for every n: the dot product of row pairs.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> a = sp.csr_matrix([[1.0, 2.0], [0.0, 1.0]])
    >>> pair_dots(a, a, np.array([0, 0]), np.array([0, 1])).tolist()
    [5.0, 2.0]
    """
    a, b = _csr(a), _csr(b)
    out = np.zeros(len(rows), dtype=np.float64)
    if len(rows):
        kernel = _pair_dots_serial if len(rows) < SERIAL_BELOW else _pair_dots
        kernel(a.indptr, a.indices, a.data, b.indptr, b.indices, b.data,
               np.asarray(rows, np.int64), np.asarray(cols, np.int64), out)
    return out.astype(np.float32)


@numba.njit(parallel=True, cache=True)
def _neighbour_link_stats(s_ptr, s_ind, s_val, l_ptr, l_ind, l_val, rows, cols, none_rank, out):
    for n in numba.prange(len(rows)):
        q, p = rows[n], cols[n]
        total = 0.0
        best = 0.0
        best_sim = -1.0  # similarity of the most similar neighbour linked to the item
        weight = 0.0
        for a in range(s_ptr[q], s_ptr[q + 1]):
            nb = s_ind[a]
            sim = s_val[a]
            weight += sim
            lo, hi = l_ptr[nb], l_ptr[nb + 1]
            while lo < hi:  # binary search for program p among the neighbour's links
                mid = (lo + hi) // 2
                if l_ind[mid] < p:
                    lo = mid + 1
                else:
                    hi = mid
            if lo < l_ptr[nb + 1] and l_ind[lo] == p:
                g = l_val[lo] * sim
                total += g
                if g > best:
                    best = g
                if sim > best_sim:
                    best_sim = sim
        rank = 1
        if best_sim < 0:
            rank = none_rank
        else:
            for a in range(s_ptr[q], s_ptr[q + 1]):
                if s_val[a] > best_sim:
                    rank += 1
        out[n, 0] = total
        out[n, 1] = best
        out[n, 2] = total / weight if weight > 0 else 0.0
        out[n, 3] = rank


def neighbour_link_stats(
    neighbours: sp.csr_matrix, links: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray,
    none_rank: int | None = None,
) -> np.ndarray:
    """Collaborative evidence for (query, item) pairs from the query's nearest neighbours.

    Parameters
    ----------
    neighbours : csr_matrix of shape (n_queries, n_known)
        Similarity of each query to its nearest known queries (its row holds the k best).
    links : csr_matrix of shape (n_known, n_items)
        Graded past links of the known queries.
    rows, cols : ndarray of int
        The pairs (query row, item column).

    Returns
    -------
    ndarray of shape (n_pairs, 4)
        Per pair: sum of sim x grade over neighbours linked to the item; the largest
        sim x grade; the sum divided by the total neighbour similarity; the 1-based rank, by
        similarity, of the most similar neighbour linked to the item (``none_rank`` when
        none is; by default the largest number of neighbours of any query + 1).
    """
    neighbours, links = _csr(neighbours), _csr(links)
    out = np.zeros((len(rows), 4), dtype=np.float64)
    if none_rank is None:
        none_rank = int(np.diff(neighbours.indptr).max(initial=0)) + 1
    if len(rows):
        _neighbour_link_stats(
            neighbours.indptr, neighbours.indices, neighbours.data.astype(np.float64),
            links.indptr, links.indices, links.data.astype(np.float64),
            np.asarray(rows, np.int64), np.asarray(cols, np.int64), int(none_rank), out)
    return out.astype(np.float32)


def topk_rows(m: sp.spmatrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest stored entries of each row (columns, values), best first, ``-1`` padded."""
    from .retrieval import PostingIndex

    m = _csr(m)
    return PostingIndex(sp.identity(m.shape[1], dtype=np.float32, format="csr")).search(m, k)
