"""The pair kernels give the same numbers on their serial (one request) and parallel paths,
and topk_rows the same as a posting-list search over the identity matrix."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from iei_match import kernels
from iei_match.kernels import neighbour_link_stats, topk_rows
from iei_match.retrieval import PostingIndex


def _reference_topk(m, k):
    m = sp.csr_matrix(m)
    return PostingIndex(sp.identity(m.shape[1], dtype=np.float32, format="csr")).search(m, k)


@pytest.mark.parametrize("seed", range(5))
def test_topk_rows_is_the_identity_search(seed):
    rng = np.random.default_rng(seed)
    m = sp.random(40, 300, density=0.05, random_state=seed, format="csr")
    m.data = np.round(m.data * 4) / 4  # many ties
    m.data[::7] = 0.0  # stored zeros count as entries
    m = sp.vstack([m, sp.csr_matrix((2, 300))]).tocsr()  # empty rows: all -1
    for k in (1, 3, 15, 40, 500):
        got, want = topk_rows(m, k), _reference_topk(m, k)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    one = sp.csr_matrix(rng.random((1, 5000)) * (rng.random(5000) < 0.1))
    assert all(np.array_equal(a, b) for a, b in zip(topk_rows(one, 60), _reference_topk(one, 60),
                                                    strict=True))


def test_link_stats_serial_and_parallel_agree(monkeypatch):
    rng = np.random.default_rng(0)
    nbrs = sp.random(30, 200, density=0.1, random_state=1, format="csr", dtype=np.float32)
    links = sp.random(200, 80, density=0.05, random_state=2, format="csr", dtype=np.float32)
    rows, cols = rng.integers(0, 30, 500), rng.integers(0, 80, 500)
    serial = neighbour_link_stats(nbrs, links, rows, cols, none_rank=31)
    monkeypatch.setattr(kernels, "SERIAL_BELOW", 0)
    parallel = neighbour_link_stats(nbrs, links, rows, cols, none_rank=31)
    assert np.array_equal(serial, parallel)
