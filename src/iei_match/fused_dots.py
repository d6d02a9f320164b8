"""Several dot products over the same pairs, each row of the walked side read once.

A request's pair features are a dozen :func:`~.kernels.pair_dots` over the same (need,
program) pairs, and several of them read the programs' rows of one index pattern: the
TF-IDF of the whole text, its BM25 weights and its binary counts share their columns. The
candidates' rows are rows of the whole catalog, mostly cold in the cache on a request, and
each pass reads their columns again: :func:`dots_many` computes the dots that walk one
pattern in one pass (a request's 14 dots in 5), with the same values, to the bit, as one
:func:`~.kernels.pair_dots` per dot.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import numba
import numpy as np
import scipy.sparse as sp

from . import kernels
from .errors import InputError
from .kernels import PairRows, _csr, _zeroed, pair_dots

__all__ = ["dots_many", "mark_ones"]

# The data arrays known to hold only ones (binary matrices): a dot that walks one does not
# read it. Keyed by id(); the value is the array itself, so a reused id is not mistaken.
_ONES: weakref.WeakValueDictionary[int, np.ndarray] = weakref.WeakValueDictionary()

# At most this many dots are walked together (the spread rows take a table of this many
# columns per term).
MAX_SLOTS = 6
_F64, _F32, _ONE = 0, 1, 2  # where a slot's walked values come from
_KIND = {np.dtype(np.float64): _F64, np.dtype(np.float32): _F32}


def mark_ones(data: np.ndarray) -> np.ndarray:
    """Record that ``data`` (a binary matrix's data array, every value 1) holds only ones,
    so that :func:`dots_many` does not read it; returns ``data``."""
    _ONES[id(data)] = data
    return data


def _is_ones(data: np.ndarray) -> bool:
    return _ONES.get(id(data)) is data


@numba.njit(cache=True, nogil=True)
def _gather(ptr, ind, val, used, slot, t_fill, t_col, t_slot, t_val):
    # Appends row used[r] of one spread matrix to row r of the table (t_fill[r]: where
    # the row's next entry goes), in the slot of that matrix.
    for r in range(len(used)):
        at = t_fill[r]
        for x in range(ptr[used[r]], ptr[used[r] + 1]):
            t_col[at] = ind[x]
            t_slot[at] = slot
            t_val[at] = float(val[x])
            at += 1
        t_fill[r] = at


@numba.njit(cache=True, nogil=True)
def _dots_walked(t_ptr, t_col, t_slot, t_val, n_slots, w_ptr, w_ind, w64, w32, src,
                 rows, cols, out, dense, bits):
    # Spread row rows[n] of the table once per run of equal rows (dense[col * n_slots +
    # slot], columns marked in the bitset), then walk row cols[n] of the walked pattern
    # once for every slot: slot k adds dense[col, k] * (its walked value) where the bit is
    # set, in the walked row's column order, as _pair_dots_scatter adds the products of
    # one dot (a slot whose spread row lacks the column adds an exact 0.0 * value, which
    # leaves the sum as it is when the value is finite).
    acc = np.zeros(n_slots)
    current = -1
    for n in range(len(rows)):
        i = rows[n]
        if i != current:
            if current >= 0:
                for x in range(t_ptr[current], t_ptr[current + 1]):
                    dense[t_col[x] * n_slots + t_slot[x]] = 0.0
                    bits[t_col[x] >> 6] = 0
            for x in range(t_ptr[i], t_ptr[i + 1]):
                col = t_col[x]
                dense[col * n_slots + t_slot[x]] = t_val[x]
                bits[col >> 6] |= np.uint64(1) << np.uint64(col & 63)
            current = i
        acc[:] = 0.0
        j = cols[n]
        for y in range(w_ptr[j], w_ptr[j + 1]):
            col = w_ind[y]
            if bits[col >> 6] & (np.uint64(1) << np.uint64(col & 63)):
                base = col * n_slots
                for k in range(n_slots):
                    s = src[k]
                    if s == 0:
                        acc[k] += dense[base + k] * w64[y]
                    elif s == 1:
                        acc[k] += dense[base + k] * float(w32[y])
                    else:
                        acc[k] += dense[base + k]
        for k in range(n_slots):
            out[k, n] = acc[k]
    if current >= 0:
        for x in range(t_ptr[current], t_ptr[current + 1]):
            dense[t_col[x] * n_slots + t_slot[x]] = 0.0
            bits[t_col[x] >> 6] = 0


@numba.njit(parallel=True, cache=True)
def _dots_walked_chunks(t_ptr, t_col, t_slot, t_val, n_slots, w_ptr, w_ind, w64, w32, src,
                        rows, cols, out, bounds, n_cols):
    # Each thread spreads the rows of its own chunk of pairs into buffers of its own.
    for c in numba.prange(len(bounds) - 1):
        lo, hi = bounds[c], bounds[c + 1]
        _dots_walked(t_ptr, t_col, t_slot, t_val, n_slots, w_ptr, w_ind, w64, w32, src,
                     rows[lo:hi], cols[lo:hi], out[:, lo:hi], np.zeros(n_cols * n_slots),
                     np.zeros(n_cols // 64 + 1, dtype=np.uint64))


def _source(data: np.ndarray, slots: dict) -> int | None:
    """The slot source of walked values ``data`` given the arrays the group holds already
    (``slots``: source -> array), or None when they do not fit beside them."""
    if _is_ones(data):
        return _ONE
    kind = _KIND.get(data.dtype)
    if kind is None or slots.get(kind, data) is not data:
        return None
    return kind


def dots_many(pairs: PairRows, dots: Sequence[tuple[sp.spmatrix, sp.spmatrix]]
              ) -> list[np.ndarray]:
    """``[pairs.dots(a, b) for a, b in dots]``, the same values to the bit, with the dots
    whose walked matrices share their index arrays computed in one pass.

    As :func:`~.kernels.pair_dots` does, the side with the fewer runs of equal rows is
    spread and the other walked. The dots whose walked matrices have the same ``indptr``
    and ``indices`` objects (a TF-IDF matrix, the BM25 weights and the binary counts made
    on its arrays) go together, up to :data:`MAX_SLOTS` at a time and up to one float64
    and one float32 data array besides ones (:func:`mark_ones`); the others, and pairs
    that :func:`~.kernels.pair_dots` would merge row by row, are computed one dot at a
    time. The walked values must be finite (TF-IDF, BM25 weights, counts are): a dot adds
    an exact 0.0 times the walked value where another dot of its pass has a column it
    lacks, which leaves its sum as it is (the sum starts at +0.0), where ``0.0 * inf``
    would make it NaN.
    """
    mats = [(_csr(a), _csr(b)) for a, b in dots]
    for a, b in mats:
        if a.shape[1] != b.shape[1]:
            raise InputError(f"the dot of a matrix of {a.shape[1]} columns with one of "
                             f"{b.shape[1]}")
    rows, cols = pairs.rows, pairs.cols
    n = len(rows)
    spread_b = pairs.col_runs < pairs.row_runs
    runs = pairs.col_runs if spread_b else pairs.row_runs
    if n == 0 or not (n < kernels.SERIAL_BELOW or runs * 4 <= n):
        return [pair_dots(a, b, rows, cols, pairs) for a, b in mats]
    s_rows, w_rows = (cols, rows) if spread_b else (rows, cols)
    spread = [b if spread_b else a for a, b in mats]
    walked = [a if spread_b else b for a, b in mats]
    out: list[np.ndarray | None] = [None] * len(mats)
    groups: dict[tuple[int, int], list[int]] = {}
    for d, w in enumerate(walked):
        groups.setdefault((id(w.indptr), id(w.indices)), []).append(d)
    used: np.ndarray | None = None
    inverse = np.zeros(0, dtype=np.int64)
    for members in groups.values():
        while members:
            slots: dict[int, np.ndarray] = {}
            taken: list[int] = []
            sources: list[int] = []
            rest: list[int] = []
            for d in members:
                src = _source(walked[d].data, slots) if len(taken) < MAX_SLOTS else None
                if src is None:
                    rest.append(d)
                    continue
                if src != _ONE:
                    slots[src] = walked[d].data
                taken.append(d)
                sources.append(src)
            if len(taken) < 2:
                for d in taken:
                    out[d] = pair_dots(*mats[d], rows, cols, pairs)
                if not taken:  # nothing fits a pass: one dot at a time
                    for d in rest:
                        out[d] = pair_dots(*mats[d], rows, cols, pairs)
                    rest = []
            else:
                if used is None:
                    used, inverse = np.unique(s_rows, return_inverse=True)
                values = _walk(spread, walked[taken[0]], taken, sources, slots, used,
                               inverse, w_rows)
                for k, d in enumerate(taken):
                    out[d] = values[k].astype(np.float32)
            members = rest
    return out  # type: ignore[return-value]


def _walk(spread: list[sp.csr_matrix], w: sp.csr_matrix, taken: list[int],
          sources: list[int], slots: dict, used: np.ndarray, inverse: np.ndarray,
          w_rows: np.ndarray) -> np.ndarray:
    """The dots ``taken`` (one row of the result each): their spread rows gathered in one
    table, each walked row read once."""
    k_slots = len(taken)
    lengths = np.zeros(len(used), dtype=np.int64)
    for d in taken:
        ptr = spread[d].indptr
        lengths += ptr[used + 1] - ptr[used]
    t_ptr = np.zeros(len(used) + 1, dtype=np.int64)
    np.cumsum(lengths, out=t_ptr[1:])
    t_fill = t_ptr[:-1].copy()
    size = int(t_ptr[-1])
    t_col = np.empty(size, dtype=np.int64)
    t_slot = np.empty(size, dtype=np.int64)
    t_val = np.empty(size, dtype=np.float64)
    for k, d in enumerate(taken):
        s = spread[d]
        _gather(s.indptr, s.indices, s.data, used, k, t_fill, t_col, t_slot, t_val)
    w64 = slots.get(_F64, np.zeros(1))
    w32 = slots.get(_F32, np.zeros(1, dtype=np.float32))
    src = np.array(sources, dtype=np.int64)
    rows = inverse.astype(np.int64, copy=False)
    n, n_cols = len(rows), w.shape[1]
    out = np.zeros((k_slots, n))
    if n < kernels.SERIAL_BELOW:
        _dots_walked(t_ptr, t_col, t_slot, t_val, k_slots, w.indptr, w.indices, w64, w32,
                     src, rows, w_rows, out, *_zeroed(n_cols * k_slots))
    else:
        n_chunks = 4 * numba.get_num_threads()
        bounds = np.linspace(0, n, n_chunks + 1).astype(np.int64)
        _dots_walked_chunks(t_ptr, t_col, t_slot, t_val, k_slots, w.indptr, w.indices, w64,
                            w32, src, rows, w_rows, out, bounds, n_cols)
    return out
