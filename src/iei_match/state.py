"""How the engine's parts keep their numbers in a model's ``arrays.npz``: plain arrays, and
sparse matrices as their CSR arrays (nothing pickled)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["put_sparse", "get_sparse"]


def put_sparse(arrays: dict, name: str, m) -> None:
    """Store ``m`` (any scipy sparse matrix) in ``arrays`` as CSR under ``name.*``."""
    m = sp.csr_matrix(m)
    arrays[f"{name}.data"] = m.data
    arrays[f"{name}.indices"] = m.indices
    arrays[f"{name}.indptr"] = m.indptr
    arrays[f"{name}.shape"] = np.asarray(m.shape, dtype=np.int64)


def get_sparse(arrays, name: str) -> sp.csr_matrix:
    """The matrix :func:`put_sparse` stored under ``name``."""
    shape = tuple(int(v) for v in arrays[f"{name}.shape"])
    return sp.csr_matrix((arrays[f"{name}.data"], arrays[f"{name}.indices"],
                          arrays[f"{name}.indptr"]), shape=shape)
