"""csr_of: the matrix scipy's constructor makes from the same arrays, made without its checks."""

import numpy as np
import pytest
import scipy.sparse as sp

from iei_match.csr import csr_of


@pytest.mark.parametrize("index", [np.int32, np.int64])
def test_csr_of_is_the_constructors_matrix(index):
    m = sp.random(7, 40, density=0.2, random_state=0, format="csr", dtype=np.float32)
    m.sort_indices()
    arrays = (m.data, m.indices.astype(index), m.indptr.astype(index))
    want = sp.csr_matrix(arrays, shape=m.shape, copy=False)
    got = csr_of(*arrays, m.shape)
    assert type(got) is sp.csr_matrix and got.shape == want.shape
    assert set(got.__dict__) == set(want.__dict__)
    for name in ("data", "indices", "indptr"):
        assert getattr(got, name).dtype == getattr(want, name).dtype, name
        assert np.array_equal(getattr(got, name), getattr(want, name)), name
    assert np.shares_memory(got.data, m.data) == np.shares_memory(want.data, m.data)
    assert (got @ got.T - want @ want.T).nnz == 0
    assert np.array_equal(got.toarray(), m.toarray())
    assert repr(got) == repr(want)


def test_csr_of_flags_canonical_arrays():
    m = csr_of(np.array([1.0, 2.0]), np.array([1, 3], np.int32), np.array([0, 2], np.int32),
               (1, 4), canonical=True)
    assert m.has_sorted_indices and m.has_canonical_format
    m.sum_duplicates()  # nothing to do: not sorted again
    assert m.indices.tolist() == [1, 3]
