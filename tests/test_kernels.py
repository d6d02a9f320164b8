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


@pytest.mark.parametrize("seed", range(4))
def test_pair_dots_spread_rows_equal_the_merge_to_the_last_bit(seed, monkeypatch):
    """One request's pairs (one need, many programs; or many programs, one need) are summed
    by spreading the shared row; the many pairs of a batch by merging two rows. Both equal
    each other bit for bit, and scipy's product up to rounding."""
    rng = np.random.default_rng(seed)
    a = sp.random(5, 3000, density=0.03, random_state=seed, format="csr", dtype=np.float32)
    b = sp.random(400, 3000, density=0.05, random_state=seed + 9, format="csr")
    rows = np.sort(rng.integers(0, 5, 300))  # runs of one row, as a request's pairs are
    cols = rng.integers(0, 400, 300)
    spread = kernels.pair_dots(a, b, rows, cols)
    swapped = kernels.pair_dots(b, a, cols, rows)  # the constant side second
    monkeypatch.setattr(kernels, "SERIAL_BELOW", 0)  # a batch: threads spread chunks
    chunks = kernels.pair_dots(a, b, rows, cols)
    shuffled = rng.permutation(len(rows))  # no runs: merged pair by pair
    unordered = kernels.pair_dots(a, b, rows[shuffled], cols[shuffled])
    merged = np.zeros(len(rows))
    ac, bc = kernels._csr(a), kernels._csr(b)
    kernels._pair_dots(ac.indptr, ac.indices, ac.data, bc.indptr, bc.indices, bc.data,
                       rows, cols, merged)
    merged = merged.astype(np.float32)
    for got in (spread, swapped, chunks, unordered[np.argsort(shuffled)]):
        assert np.array_equal(got, merged)
    want = np.asarray(a[rows].multiply(b[cols]).sum(axis=1)).ravel()
    np.testing.assert_allclose(merged, want, rtol=1e-5)


@pytest.mark.parametrize("dtypes", [(np.float32, np.float32), (np.float32, np.float64)])
def test_matmul_rows_is_scipys_product_entry_for_entry(dtypes):
    """The same values and each row's entries in the same (unsorted) order as scipy, so
    that sums and norms taken afterwards are the same to the last bit."""
    a = sp.random(30, 700, density=0.04, random_state=1, format="csr", dtype=dtypes[0])
    b = sp.random(700, 1300, density=0.01, random_state=2, format="csr", dtype=dtypes[1])
    for rows in (np.array([3]), np.array([5, 1, 5, 29]), np.arange(30), np.array([], int)):
        want, got = a[rows] @ b, kernels.matmul_rows(a, rows, b)
        assert got.dtype == want.dtype and got.shape == want.shape
        for name in ("indptr", "indices", "data"):
            assert np.array_equal(getattr(got, name), getattr(want, name)), name
    with pytest.raises(ValueError):
        kernels.matmul_rows(a, np.array([0]), a)


@pytest.mark.parametrize("dtypes", [(np.float32, np.float32), (np.float32, np.float64),
                                    (np.float64, np.float64)])
def test_matmul_rows_l2_is_sklearns_normalize_of_the_product_sorted(dtypes):
    """The values of sklearn's in-place L2 normalisation of scipy's product (its norm
    summed in the product's order), to the bit, with each row's columns sorted."""
    from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2

    a = sp.random(30, 700, density=0.04, random_state=3, format="csr", dtype=dtypes[0])
    b = sp.random(700, 1300, density=0.01, random_state=4, format="csr", dtype=dtypes[1])
    a = sp.vstack([a, sp.csr_matrix((1, 700), dtype=dtypes[0])]).tocsr()  # an empty row
    for rows in (np.array([3]), np.array([5, 1, 5, 29]), np.arange(31), np.array([30, 2]),
                 np.array([], int)):
        want = a[rows] @ b
        inplace_csr_row_normalize_l2(want)
        want.sort_indices()
        got = kernels.matmul_rows_l2(a, rows, b)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert got.has_canonical_format
        for name in ("indptr", "indices", "data"):
            assert np.array_equal(getattr(got, name), getattr(want, name)), name
    with pytest.raises(ValueError):
        kernels.matmul_rows_l2(a, np.array([0]), a)


@pytest.mark.parametrize("dtypes", [(np.float32, np.float32), (np.float32, np.float64)])
def test_group_sums_are_the_product_with_a_one_hot_matrix(dtypes):
    """Each row's values summed by group in the product's order and dtype: the dense
    ``m @ onehot`` of scipy, to the bit (columns of group -1 left out)."""
    rng = np.random.default_rng(5)
    m = sp.random(20, 300, density=0.1, random_state=6, format="csr", dtype=dtypes[0])
    group = rng.integers(-1, 12, 300)
    has = group >= 0
    onehot = sp.csr_matrix((np.ones(has.sum(), dtypes[1]), (np.flatnonzero(has), group[has])),
                           shape=(300, 12))
    got = kernels.group_sums(m, group, 12, np.result_type(*dtypes))
    want = (m @ onehot).toarray()
    assert got.dtype == want.dtype and np.array_equal(got, want)


def test_row_max_sum_is_scipys_max_and_sum():
    m = sp.random(50, 300, density=0.05, random_state=3, format="csr", dtype=np.float32)
    m = sp.vstack([m, sp.csr_matrix((1, 300), dtype=np.float32)]).tocsr()  # an empty row
    rows = np.array([50, 0, 7, 7, 49])
    best, total = kernels.row_max_sum(m, rows)
    assert best.dtype == total.dtype == np.float32
    assert np.array_equal(best, np.asarray(m[rows].max(axis=1).todense()).ravel())
    assert np.array_equal(total, np.asarray(m[rows].sum(axis=1)).ravel())


def _merged(a, b, rows, cols):
    out = np.zeros(len(rows))
    kernels._pair_dots(a.indptr, a.indices, a.data, b.indptr, b.indices, b.data,
                       np.asarray(rows, np.int64), np.asarray(cols, np.int64), out)
    return out


def _spread(a, b, rows, cols):
    out = np.zeros(len(rows))
    dense, bits = np.zeros(a.shape[1]), np.zeros(a.shape[1] // 64 + 1, dtype=np.uint64)
    kernels._pair_dots_scatter(a.indptr, a.indices, a.data, b.indptr, b.indices, b.data,
                               np.asarray(rows, np.int64), np.asarray(cols, np.int64), out,
                               dense, bits)
    assert not dense.any() and not bits.any()  # left as found, for the next call
    return out


@pytest.mark.parametrize("seed", range(3))
def test_short_rows_looked_up_in_long_ones_sum_as_the_merge(seed):
    """A short row against long ones (a need's title against programs' texts) is summed by
    looking its columns up: the float64 sums equal the merge's bit for bit, for rows of
    every length (empty, one entry, a few, as long as the other side's)."""
    rng = np.random.default_rng(seed)
    lengths = np.r_[0, 1, 2, 3, 5, 8, 40, rng.integers(0, 400, 5)]
    a = sp.vstack([sp.random(1, 5000, density=n / 5000, random_state=seed + i, format="csr")
                   for i, n in enumerate(lengths)], format="csr")
    b = sp.random(300, 5000, density=0.1, random_state=seed + 50, format="csr",
                  dtype=np.float32)
    b[:, a.indices[: len(a.indices) // 2]] = 0.25  # columns the short rows do have
    b = kernels._csr(b)
    rows = np.repeat(np.arange(len(lengths)), 300)
    cols = np.tile(np.arange(300), len(lengths))
    want = _merged(a, b, rows, cols)
    assert np.array_equal(_spread(a, b, rows, cols), want)
    pairs = kernels.PairRows(rows, cols)
    assert np.array_equal(pairs.dots(a, b), want.astype(np.float32))
    assert np.array_equal(pairs.swapped().dots(b, a), want.astype(np.float32))
    assert np.count_nonzero(want) > len(want) // 2


def test_a_needs_title_against_program_texts_sums_as_the_merge():
    """The same on real vectors: need titles (a few n-grams) against program texts."""
    from iei_match.bundled import catalog_dir
    from iei_match.io import load_needs, load_programs
    from iei_match.sides import document_texts
    from iei_match.vectorize import FieldVectorizer

    folder = catalog_dir("cn-vocational")
    needs, programs = (document_texts(f.iloc[:300]) for f in
                       (load_needs(folder / "needs.csv"), load_programs(folder / "programs.csv")))
    v = FieldVectorizer("char", 3.0).fit(needs[0] + programs[0], needs[1] + programs[1])
    n, p = v.transform(*needs), v.transform(*programs)
    rows, cols = np.repeat(np.arange(300), 300), np.tile(np.arange(300), 300)
    for a, b in ((n.title, p.full), (n.title, p.body), (n.full, p.full), (p.title, n.body)):
        want = _merged(a, b, rows, cols)
        assert np.array_equal(_spread(a, b, rows, cols), want)
        assert np.array_equal(kernels.pair_dots(a, b, rows, cols), want.astype(np.float32))


def test_topk_pair_products_is_the_top_of_scipys_product():
    """The terms a pair shares, best first, found without forming the product: the columns
    and float32 values of ``topk_rows(a[rows].multiply(b[cols]), k)``, ties included, on
    the bundled catalog's word vectors (Chinese and English) and on random float64 rows."""
    from iei_match.bundled import catalog_dir
    from iei_match.io import load_needs, load_programs
    from iei_match.sides import document_texts
    from iei_match.vectorize import FieldVectorizer

    cases = []
    for name in ("cn-vocational", "us-onet-cip"):
        folder = catalog_dir(name)
        needs, programs = (document_texts(f.iloc[:200]) for f in
                           (load_needs(folder / "needs.csv"),
                            load_programs(folder / "programs.csv")))
        v = FieldVectorizer("word", 3.0).fit(needs[0] + programs[0], needs[1] + programs[1])
        cases.append((v.transform(*needs).full, v.transform(*programs).full))
    rng = np.random.default_rng(0)
    a = sp.random(20, 300, density=0.2, random_state=1, format="csr")
    a.data = np.round(a.data * 4) / 4  # ties
    cases.append((a, a))
    for a, b in cases:
        rows = np.repeat(rng.integers(0, a.shape[0], 40), 5)
        cols = rng.integers(0, b.shape[0], len(rows))
        for k in (1, 3, 15):
            got = kernels.topk_pair_products(a, b, rows, cols, k)
            want = kernels.topk_rows(sp.csr_matrix(a[rows].multiply(b[cols])), k)
            for g, w in zip(got, want, strict=True):
                assert g.dtype == w.dtype and np.array_equal(g, w)
        assert (got[0] >= 0).sum() > len(rows)
