"""CSR matrices made from arrays the engine has checked already, without scipy's checks.

A request builds a score of small CSR matrices (a need's vectors, their binary copies, the
products of its neighbours with the link matrices), and scipy's constructor spends about
10 µs on each validating its index dtypes and pointers: a few hundred µs of a request that
does little else per matrix. :func:`csr_of` makes the same matrix from the same arrays
(shared, not copied) in well under a microsecond when this scipy's matrices are what the
fast path makes; otherwise (a scipy whose CSR matrices keep other attributes) it calls the
constructor, so a new scipy can make it slower, never wrong.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["csr_of"]


def _constructed(data, indices, indptr, shape) -> sp.csr_matrix:
    return sp.csr_matrix((data, indices, indptr), shape=shape, copy=False)


def _assembled(data, indices, indptr, shape) -> sp.csr_matrix:
    m = sp.csr_matrix.__new__(sp.csr_matrix)
    m.__dict__.update(_shape=shape, maxprint=_MAXPRINT, indices=indices, indptr=indptr,
                      data=data)
    return m


def _probe() -> tuple[bool, int]:
    """Whether an assembled matrix has exactly the attributes of a constructed one."""
    arrays = (np.array([1.0, 2.0]), np.array([0, 2], np.int32), np.array([0, 1, 2], np.int32))
    made = _constructed(*arrays, (2, 3))
    keys = set(made.__dict__)
    return keys == {"_shape", "maxprint", "indices", "indptr", "data"}, made.maxprint


_FAST, _MAXPRINT = _probe()


def csr_of(data: np.ndarray, indices: np.ndarray, indptr: np.ndarray,
           shape: tuple[int, int], canonical: bool = False) -> sp.csr_matrix:
    """``sp.csr_matrix((data, indices, indptr), shape=shape, copy=False)`` for arrays that
    are already valid: 1-d, ``indptr`` of ``shape[0] + 1`` non-decreasing offsets ending at
    ``len(indices) == len(data)``, columns below ``shape[1]``, and both index arrays of one
    integer dtype that holds them. The arrays are shared, as with ``copy=False``; index
    arrays other than int32 go through the constructor, which may narrow them.

    ``canonical=True`` says each row's columns are sorted and distinct, and flags the
    matrix so (scipy then never sorts or sums it again).

    Examples
    --------
    >>> m = csr_of(np.array([1.0, 2.0]), np.array([0, 2], np.int32),
    ...            np.array([0, 1, 2], np.int32), (2, 3), canonical=True)
    >>> m.toarray().tolist(), m.has_sorted_indices
    ([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]], True)
    """
    shape = (int(shape[0]), int(shape[1]))
    fast = _FAST and indices.dtype == np.int32 and indptr.dtype == np.int32
    m = (_assembled if fast else _constructed)(data, indices, indptr, shape)
    if canonical:
        m.has_sorted_indices = True
        m.has_canonical_format = True
    return m
