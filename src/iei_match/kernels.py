"""Numba kernels that compute one number per (row, column) pair without forming a full matrix."""

from __future__ import annotations

import threading

import numba
import numpy as np
import scipy.sparse as sp

from .csr import csr_of
from .errors import InputError
from .retrieval import _select_topk

__all__ = ["pair_dots", "PairRows", "neighbour_link_stats", "topk_rows", "topk_stored",
           "topk_pair_products", "row_max_sum", "matmul_rows", "matmul_rows_l2", "group_sums",
           "list_best_and_rank"]


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


# Below this many pairs, waking a thread pool costs more than it saves (a single request's
# few hundred pairs), so the kernels run in the calling thread.
SERIAL_BELOW = 4096


def _csr(m: sp.spmatrix) -> sp.csr_matrix:
    flags = getattr(m, "__dict__", {})
    if type(m) is sp.csr_matrix and flags.get("_has_canonical_format") and flags.get(
            "_has_sorted_indices"):  # scipy's own flags, read without its properties
        return m
    if type(m) is not sp.csr_matrix:  # an exact CSR is used as it is (no new object)
        m = sp.csr_matrix(m)
    if not m.has_canonical_format:
        m = m.copy()
        m.sum_duplicates()
    if not m.has_sorted_indices:
        m = m.sorted_indices()
    return m


@numba.njit(cache=True, nogil=True)
def _pair_dots_scatter(a_ptr, a_ind, a_val, b_ptr, b_ind, b_val, rows, cols, out, dense, bits):
    # Row a[rows[n]] is spread into ``dense`` once per run of equal rows, its columns marked
    # in the bitset ``bits`` (a vocabulary of 200,000 terms in 25 KB, where the dense row
    # takes 1.6 MB), and each pair sums over b's row only, reading ``dense`` where the bit
    # is set: the same products added in the same order (b's columns in increasing order)
    # as the merge of _dot; the columns a lacks would only add an exact 0.0.
    current = -1
    for n in range(len(rows)):
        i = rows[n]
        if i != current:
            if current >= 0:
                for x in range(a_ptr[current], a_ptr[current + 1]):
                    dense[a_ind[x]] = 0.0
                    bits[a_ind[x] >> 6] = 0
            for x in range(a_ptr[i], a_ptr[i + 1]):
                col = a_ind[x]
                dense[col] = float(a_val[x])
                bits[col >> 6] |= np.uint64(1) << np.uint64(col & 63)
            current = i
        j = cols[n]
        s = 0.0
        lo, hi = b_ptr[j], b_ptr[j + 1]
        la = a_ptr[i + 1] - a_ptr[i]
        if la * 16 < hi - lo:
            # A short row of a against a long one of b: each of a's columns is looked up
            # in b's row; the products met are the same, in the same (column) order.
            for x in range(a_ptr[i], a_ptr[i + 1]):
                col = a_ind[x]
                left, right = lo, hi
                while left < right:
                    mid = (left + right) // 2
                    if b_ind[mid] < col:
                        left = mid + 1
                    else:
                        right = mid
                lo = left
                if lo < hi and b_ind[lo] == col:
                    s += float(a_val[x]) * float(b_val[lo])
                    lo += 1
        else:
            for y in range(lo, hi):
                col = b_ind[y]
                if bits[col >> 6] & (np.uint64(1) << np.uint64(col & 63)):
                    s += dense[col] * float(b_val[y])
        out[n] = s
    if current >= 0:
        for x in range(a_ptr[current], a_ptr[current + 1]):
            dense[a_ind[x]] = 0.0
            bits[a_ind[x] >> 6] = 0


_buffers = threading.local()  # a zeroed row and bitset per thread (pair dots, fused_dots)


def _zeroed(size: int) -> tuple[np.ndarray, np.ndarray]:
    buf = getattr(_buffers, "dense", None)
    if buf is None or len(buf[0]) < size:
        n = max(size, 1024)
        buf = _buffers.dense = (np.zeros(n), np.zeros(n // 64 + 1, dtype=np.uint64))
    return buf


@numba.njit(parallel=True, cache=True)
def _pair_dots_scatter_chunks(a_ptr, a_ind, a_val, b_ptr, b_ind, b_val, rows, cols, out,
                              bounds, n_cols):
    # Each thread spreads the rows of its own chunk of pairs into buffers of its own.
    for c in numba.prange(len(bounds) - 1):
        lo, hi = bounds[c], bounds[c + 1]
        _pair_dots_scatter(a_ptr, a_ind, a_val, b_ptr, b_ind, b_val, rows[lo:hi],
                           cols[lo:hi], out[lo:hi], np.zeros(n_cols),
                           np.zeros(n_cols // 64 + 1, dtype=np.uint64))


class PairRows:
    """The pairs (``rows[n]``, ``cols[n]``) of several :func:`pair_dots`, checked and
    measured once (a request computes a dozen dot products over the same pairs).

    Examples
    --------
    >>> a = sp.csr_matrix([[1.0, 2.0], [0.0, 1.0]])
    >>> pairs = PairRows(np.array([0, 0]), np.array([0, 1]))
    >>> pairs.dots(a, a).tolist(), pairs.swapped().dots(a, a).tolist()
    ([5.0, 2.0], [5.0, 2.0])
    """

    def __init__(self, rows: np.ndarray, cols: np.ndarray):
        self.rows, self.cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
        self.row_runs = np.count_nonzero(np.diff(self.rows))
        self.col_runs = np.count_nonzero(np.diff(self.cols))

    def swapped(self) -> PairRows:
        """The pairs (``cols[n]``, ``rows[n]``)."""
        out = PairRows.__new__(PairRows)
        out.rows, out.cols, out.row_runs, out.col_runs = (self.cols, self.rows,
                                                          self.col_runs, self.row_runs)
        return out

    def dots(self, a: sp.spmatrix, b: sp.spmatrix) -> np.ndarray:
        """``pair_dots(a, b, rows, cols)``."""
        return pair_dots(a, b, self.rows, self.cols, self)


def pair_dots(a: sp.spmatrix, b: sp.spmatrix, rows: np.ndarray, cols: np.ndarray,
              pairs: PairRows | None = None) -> np.ndarray:
    """``(a[rows[n]] * b[cols[n]]).sum()`` for every n: the dot product of row pairs.

    Pairs that come in runs sharing a row of ``a`` or of ``b`` (one need against its
    candidates; a batch's needs each against theirs) are summed by spreading that row
    once per run instead of merging two rows per pair; other pairs are merged. The sums
    are the same to the last bit either way. ``pairs``: the :class:`PairRows` of ``rows``
    and ``cols``, when made already.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> a = sp.csr_matrix([[1.0, 2.0], [0.0, 1.0]])
    >>> pair_dots(a, a, np.array([0, 0]), np.array([0, 1])).tolist()
    [5.0, 2.0]
    """
    a, b = _csr(a), _csr(b)
    if pairs is None:
        pairs = PairRows(rows, cols)
    rows, cols, row_runs, col_runs = pairs.rows, pairs.cols, pairs.row_runs, pairs.col_runs
    out = np.zeros(len(rows), dtype=np.float64)
    if len(rows) == 0:
        return out.astype(np.float32)
    if col_runs < row_runs:
        a, b, rows, cols, row_runs = b, a, cols, rows, col_runs  # spread the steadier side
    if len(rows) < SERIAL_BELOW:
        _pair_dots_scatter(a.indptr, a.indices, a.data, b.indptr, b.indices, b.data,
                           rows, cols, out, *_zeroed(a.shape[1]))
    elif row_runs * 4 <= len(rows):  # runs of 4 pairs or more on average
        n_chunks = 4 * numba.get_num_threads()
        bounds = np.linspace(0, len(rows), n_chunks + 1).astype(np.int64)
        _pair_dots_scatter_chunks(a.indptr, a.indices, a.data, b.indptr, b.indices, b.data,
                                  rows, cols, out, bounds, a.shape[1])
    else:
        _pair_dots(a.indptr, a.indices, a.data, b.indptr, b.indices, b.data, rows, cols, out)
    return out.astype(np.float32)


@numba.njit(cache=True, inline="always")
def _link_stats(s_ptr, s_ind, s_val, l_ptr, l_ind, l_val, rows, cols, none_rank, out, n):
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


@numba.njit(parallel=True, cache=True)
def _neighbour_link_stats(s_ptr, s_ind, s_val, l_ptr, l_ind, l_val, rows, cols, none_rank, out):
    for n in numba.prange(len(rows)):
        _link_stats(s_ptr, s_ind, s_val, l_ptr, l_ind, l_val, rows, cols, none_rank, out, n)


@numba.njit(cache=True, nogil=True)
def _neighbour_link_stats_serial(s_ptr, s_ind, s_val, l_ptr, l_ind, l_val, rows, cols,
                                 none_rank, out):
    for n in range(len(rows)):
        _link_stats(s_ptr, s_ind, s_val, l_ptr, l_ind, l_val, rows, cols, none_rank, out, n)


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
        kernel = (_neighbour_link_stats_serial if len(rows) < SERIAL_BELOW
                  else _neighbour_link_stats)
        kernel(
            neighbours.indptr, neighbours.indices, neighbours.data.astype(np.float64),
            links.indptr, links.indices, links.data.astype(np.float64),
            np.asarray(rows, np.int64), np.asarray(cols, np.int64), int(none_rank), out)
    return out.astype(np.float32)


@numba.njit(cache=True, nogil=True)
def _topk_stored(ptr, ind, val, k, out_idx, out_score):
    for r in range(len(ptr) - 1):
        lo, hi = ptr[r], ptr[r + 1]
        # positions within the row: ties go to the lower position, i.e. the lower column
        _select_topk(val[lo:hi], np.arange(hi - lo), hi - lo, k, out_idx[r], out_score[r])
        for j in range(k):
            if out_idx[r, j] >= 0:
                out_idx[r, j] = ind[lo + out_idx[r, j]]


def topk_rows(m: sp.spmatrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest stored entries of each row (columns, values), best first, ``-1`` padded.

    Values are compared as float32; ties go to the lower column. The same as a
    :class:`~iei_match.retrieval.PostingIndex` search over the identity matrix, without
    building one (its cost followed the number of columns, e.g. every program of a
    catalog, on each call).

    Examples
    --------
    >>> cols, vals = topk_rows(sp.csr_matrix([[0.0, 3.0, 1.0, 3.0]]), 3)
    >>> cols.tolist(), vals.tolist()
    ([[1, 3, 2]], [[3.0, 3.0, 1.0]])
    """
    m = _csr(m)
    return topk_stored(m.indptr, m.indices, m.data, k, m.shape[1])


def topk_stored(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, k: int,
                n_cols: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`topk_rows` of the CSR matrix with these canonical arrays and ``n_cols``
    columns, without making the matrix."""
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}")
    k = min(k, max(n_cols, 1))
    n_rows = len(indptr) - 1
    out_idx = np.full((n_rows, k), -1, dtype=np.int64)
    out_score = np.zeros((n_rows, k), dtype=np.float32)
    if n_rows:
        _topk_stored(indptr.astype(np.int64), indices.astype(np.int64),
                     data.astype(np.float32), k, out_idx, out_score)
    return out_idx, out_score


@numba.njit(cache=True, nogil=True)
def _topk_pair_products(a_ptr, a_ind, a_val, b_ptr, b_ind, b_val, rows, cols, k, out_idx,
                        out_score):
    for n in range(len(rows)):
        x, x_end = a_ptr[rows[n]], a_ptr[rows[n] + 1]
        y, y_end = b_ptr[cols[n]], b_ptr[cols[n] + 1]
        size = min(x_end - x, y_end - y)
        vals = np.empty(size, dtype=np.float32)
        where = np.empty(size, dtype=np.int64)
        c = 0
        while x < x_end and y < y_end:  # the product's stored entries, by column
            if a_ind[x] == b_ind[y]:
                p = a_val[x] * b_val[y]
                if p != 0:
                    vals[c] = np.float32(p)
                    where[c] = a_ind[x]
                    c += 1
                x += 1
                y += 1
            elif a_ind[x] < b_ind[y]:
                x += 1
            else:
                y += 1
        _select_topk(vals, np.arange(c), c, k, out_idx[n], out_score[n])
        for j in range(k):
            if out_idx[n, j] >= 0:
                out_idx[n, j] = where[out_idx[n, j]]


def topk_pair_products(a: sp.csr_matrix, b: sp.csr_matrix, rows: np.ndarray,
                       cols: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``topk_rows(a[rows].multiply(b[cols]), k)``: the ``k`` columns where each pair of
    rows weighs most together, without making the product (for float64 matrices with
    sorted indices; others go through scipy's product).

    Examples
    --------
    >>> a = sp.csr_matrix([[1.0, 2.0, 3.0]])
    >>> cols, vals = topk_pair_products(a, a, np.array([0]), np.array([0]), 2)
    >>> cols.tolist(), vals.tolist()
    ([[2, 1]], [[9.0, 4.0]])
    """
    a, b = _csr(a), _csr(b)
    if a.dtype != np.float64 or b.dtype != np.float64 or k < 1:
        return topk_rows(sp.csr_matrix(a[rows].multiply(b[cols])), k)
    k = min(k, max(a.shape[1], 1))
    out_idx = np.full((len(rows), k), -1, dtype=np.int64)
    out_score = np.zeros((len(rows), k), dtype=np.float32)
    if len(rows):
        _topk_pair_products(a.indptr, a.indices, a.data, b.indptr, b.indices, b.data,
                            np.asarray(rows, np.int64), np.asarray(cols, np.int64), k,
                            out_idx, out_score)
    return out_idx, out_score


@numba.njit(cache=True, nogil=True)
def _row_max(ptr, val, rows, best):
    for n in range(len(rows)):
        r = rows[n]
        m = val.dtype.type(0)
        for a in range(ptr[r], ptr[r + 1]):
            if val[a] > m:
                m = val[a]
        best[n] = m


def row_max_sum(m: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The largest stored value (0 if none is larger) and the sum of each of ``rows`` of a
    CSR matrix, in its dtype: ``m[rows].max(axis=1)`` and ``m[rows].sum(axis=1)`` for
    non-negative values, without taking the rows. The sums are numpy's, as scipy's
    (``np.add.reduceat`` over each row's values), to the last bit.

    Examples
    --------
    >>> best, total = row_max_sum(sp.csr_matrix([[1.0, 2.0], [0.0, 0.0]]), np.array([1, 0]))
    >>> best.tolist(), total.tolist()
    ([0.0, 2.0], [0.0, 3.0])
    """
    m = _csr(m)
    rows = np.asarray(rows, np.int64)
    best = np.zeros(len(rows), dtype=m.data.dtype)
    total = np.zeros(len(rows), dtype=m.data.dtype)
    if len(rows):
        _row_max(m.indptr, m.data, rows, best)
        starts, ends = m.indptr[rows], m.indptr[rows + 1]
        lengths = ends - starts
        full = lengths > 0
        if full.any():
            offsets = np.cumsum(lengths) - lengths
            pos = np.arange(lengths.sum(), dtype=np.int64) + np.repeat(starts - offsets, lengths)
            total[full] = np.add.reduceat(m.data[pos], offsets[full])
    return best, total


@numba.njit(cache=True, inline="always")
def _product_bound(a_ptr, a_ind, rows, b_ptr):
    # The most entries the product's rows can hold.
    bound = 0
    for n in range(len(rows)):
        r = rows[n]
        for jj in range(a_ptr[r], a_ptr[r + 1]):
            j = a_ind[jj]
            bound += b_ptr[j + 1] - b_ptr[j]
    return bound


@numba.njit(cache=True, inline="always")
def _product_buffers(bound, n_rows, n_col, dtype):
    # The product's arrays (room for ``bound`` entries) and the rows' workspace.
    return (np.zeros(n_rows + 1, dtype=np.int64), np.empty(bound, dtype=np.int32),
            np.empty(bound, dtype=dtype), np.full(n_col, -1, dtype=np.int64),
            np.zeros(n_col, dtype=dtype))


@numba.njit(cache=True, inline="always")
def _product_row(a_ptr, a_ind, a_val, r, b_ptr, b_ind, b_val, nxt, sums):
    # Row r of a times b summed into ``sums`` as scipy's csr_matmat (SMMP) sums it; its
    # columns linked from the returned head through ``nxt``, the last one touched first.
    head = -2
    length = 0
    for jj in range(a_ptr[r], a_ptr[r + 1]):
        j = a_ind[jj]
        v = a_val[jj]
        for kk in range(b_ptr[j], b_ptr[j + 1]):
            k = b_ind[kk]
            sums[k] += v * b_val[kk]
            if nxt[k] == -1:
                nxt[k] = head
                head = k
                length += 1
    return head, length


@numba.njit(cache=True, nogil=True)
def _matmat_rows(a_ptr, a_ind, a_val, rows, b_ptr, b_ind, b_val, n_col):
    # SciPy's csr_matmat (SMMP) on the given rows of a: the same sums in the same order,
    # and each row's columns in the same (unsorted) order, so that what is computed from
    # the product downstream is bit for bit what it was with scipy's product.
    c_ptr, c_ind, c_val, nxt, sums = _product_buffers(
        _product_bound(a_ptr, a_ind, rows, b_ptr), len(rows), n_col, b_val.dtype)
    nnz = 0
    for n in range(len(rows)):
        head, length = _product_row(a_ptr, a_ind, a_val, rows[n], b_ptr, b_ind, b_val, nxt,
                                    sums)
        for _ in range(length):
            if sums[head] != 0:
                c_ind[nnz] = head
                c_val[nnz] = sums[head]
                nnz += 1
            temp = head
            head = nxt[head]
            nxt[temp] = -1
            sums[temp] = 0
        c_ptr[n + 1] = nnz
    return c_ptr, c_ind[:nnz].copy(), c_val[:nnz].copy()


def matmul_rows(a: sp.csr_matrix, rows: np.ndarray, b: sp.csr_matrix) -> sp.csr_matrix:
    """``a[rows] @ b`` for CSR matrices, exactly as scipy computes it (the same values, and
    each row's entries in the same order), without taking the rows and with far less
    overhead per call: a request multiplies one row by the link matrices several times.

    Examples
    --------
    >>> a = sp.csr_matrix([[1.0, 0.0], [2.0, 3.0]])
    >>> matmul_rows(a, np.array([1]), sp.identity(2, format="csr")).toarray().tolist()
    [[2.0, 3.0]]
    """
    out = _product(_matmat_rows, a, rows, b)
    out.has_sorted_indices = False
    return out


def _product(kernel, a: sp.csr_matrix, rows: np.ndarray, b: sp.csr_matrix,
             canonical: bool = False) -> sp.csr_matrix:
    """The CSR matrix of ``kernel`` (:func:`_matmat_rows` or :func:`_matmat_rows_l2`) on
    ``a[rows]`` and ``b``, in their common dtype."""
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"shapes {a.shape} and {b.shape} do not align")
    dtype = np.result_type(a.dtype, b.dtype)
    ptr, ind, val = kernel(a.indptr, a.indices, a.data.astype(dtype, copy=False),
                           np.asarray(rows, np.int64), b.indptr, b.indices,
                           b.data.astype(dtype, copy=False), b.shape[1])
    if len(ind) <= np.iinfo(np.int32).max:  # as scipy's constructor narrows them
        ptr = ptr.astype(np.int32)
    return csr_of(val, ind, ptr, (len(rows), b.shape[1]), canonical=canonical)


@numba.njit(cache=True, nogil=True)
def _group_sums(ptr, ind, val, group, out):
    for q in range(len(ptr) - 1):
        for a in range(ptr[q], ptr[q + 1]):
            g = group[ind[a]]
            if g >= 0:
                out[q, g] += val[a]


def group_sums(m: sp.csr_matrix, group: np.ndarray, n_groups: int, dtype) -> np.ndarray:
    """Dense ``m @ onehot`` where ``onehot`` (of ``dtype``) has a 1 at (column ``j``,
    ``group[j]``) and nothing where ``group[j]`` is -1: each row's values summed by group
    in ``dtype``, in the row's order, as scipy's product (and :func:`matmul_rows`) adds
    them, without making the product's sparse rows.

    Examples
    --------
    >>> m = sp.csr_matrix([[1.0, 2.0, 4.0], [0.0, 0.0, 8.0]])
    >>> group_sums(m, np.array([1, 1, -1]), 2, np.float64).tolist()
    [[0.0, 3.0], [0.0, 0.0]]
    """
    out = np.zeros((m.shape[0], n_groups), dtype=dtype)
    _group_sums(m.indptr, m.indices, m.data.astype(dtype, copy=False),
                np.asarray(group, np.int64), out)
    return out


@numba.njit(cache=True, nogil=True)
def _matmat_rows_l2(a_ptr, a_ind, a_val, rows, b_ptr, b_ind, b_val, n_col):
    # _matmat_rows, then each row divided by its L2 norm summed in the order the product
    # stores the row (sklearn's inplace_csr_row_normalize_l2 on it), the row's columns
    # written in ascending order (read from a bitset of the columns kept).
    c_ptr, c_ind, c_val, nxt, sums = _product_buffers(
        _product_bound(a_ptr, a_ind, rows, b_ptr), len(rows), n_col, b_val.dtype)
    bits = np.zeros(n_col // 64 + 1, dtype=np.uint64)
    nnz = 0
    for n in range(len(rows)):
        head, length = _product_row(a_ptr, a_ind, a_val, rows[n], b_ptr, b_ind, b_val, nxt,
                                    sums)
        square = 0.0  # a double, as sklearn's
        at = head
        for _ in range(length):
            if sums[at] != 0:
                square += sums[at] * sums[at]
                bits[at >> 6] |= np.uint64(1) << np.uint64(at & 63)
            at = nxt[at]
        norm = np.sqrt(square)
        for w in range(len(bits)):
            word = bits[w]
            if word == 0:
                continue
            for b in range(64):
                if (word >> np.uint64(b)) & np.uint64(1):
                    k = w * 64 + b
                    c_ind[nnz] = k
                    c_val[nnz] = sums[k] / norm if square != 0.0 else sums[k]
                    nnz += 1
            bits[w] = 0
        while head != -2:  # the workspace cleared for the next row
            at = nxt[head]
            nxt[head] = -1
            sums[head] = 0
            head = at
        c_ptr[n + 1] = nnz
    return c_ptr, c_ind[:nnz].copy(), c_val[:nnz].copy()


def matmul_rows_l2(a: sp.csr_matrix, rows: np.ndarray, b: sp.csr_matrix) -> sp.csr_matrix:
    """:func:`matmul_rows` with each row L2-normalised as
    ``sklearn.utils.sparsefuncs_fast.inplace_csr_row_normalize_l2`` normalises it (the same
    values, to the bit), and its columns sorted: the product is not copied to be sorted
    when it is one side of a dot product.

    Examples
    --------
    >>> a = sp.csr_matrix([[3.0, 4.0]])
    >>> m = matmul_rows_l2(a, np.array([0]), sp.identity(2, format="csr"))
    >>> m.toarray().tolist(), m.has_sorted_indices
    ([[0.6, 0.8]], True)
    """
    return _product(_matmat_rows_l2, a, rows, b, canonical=True)


@numba.njit(cache=True, nogil=True)
def _list_best_and_rank(values, best, rank):
    n = values.shape[1]
    for f in range(values.shape[0]):
        v = values[f]
        kept = np.flatnonzero(v == v)  # not NaN
        if len(kept) == 0:
            best[f] = np.nan
            rank[f, :] = np.nan
            continue
        rank[f, :] = np.nan
        by = kept[np.argsort(-v[kept])]  # largest first
        top = v[by[0]]
        best[f] = np.nan if np.isinf(top) else top
        start = 0
        for p in range(len(by)):
            if p > 0 and v[by[p]] != v[by[p - 1]]:
                start = p
            rank[f, by[p]] = start + 1.0
    return n


def list_best_and_rank(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``values`` (float64; one feature per row, the values of one list):
    its largest value (NaN when the row holds no number, or when the largest is
    infinite), and each value's rank (1 = largest; ties share the smallest rank; NaN stays
    NaN and is not counted), as pandas' ``max`` and ``rank(ascending=False,
    method="min")`` give them.

    Examples
    --------
    >>> best, rank = list_best_and_rank(np.array([[0.5, np.nan, 2.0, 0.5]]))
    >>> best.tolist(), rank.tolist()
    ([2.0], [[2.0, nan, 1.0, 2.0]])
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    best = np.empty(values.shape[0])
    rank = np.empty(values.shape)
    _list_best_and_rank(values, best, rank)
    return best, rank
