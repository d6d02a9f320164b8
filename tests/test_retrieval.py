"""Differential tests of the numba retrieval kernels against slow, obvious references."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import scipy.sparse as sp

import iei_match.kernels as kernels_module
import iei_match.retrieval as retrieval_module
from iei_match.errors import InputError
from iei_match.kernels import neighbour_link_stats, pair_dots, topk_rows
from iei_match.retrieval import PostingIndex, topk_sparse


@pytest.fixture(autouse=True, params=["lists", "dense"])
def accumulator(request, monkeypatch):
    """Every search of these tests runs both ways: each query's touched documents kept in
    a list (no query is dense enough) and every query read from the whole accumulator."""
    monkeypatch.setattr(retrieval_module, "DENSE_SHARE", 1e30 if request.param == "lists"
                        else 0.0)
    return request.param


def random_sparse(rng, shape, density, integer=False, empty_rows=()):
    """A random CSR matrix with non-negative values; small integers make ties frequent."""
    n_rows, n_cols = shape
    mask = rng.random(shape) < density
    values = rng.integers(1, 4, size=shape) if integer else rng.random(shape) + 0.01
    dense = np.where(mask, values, 0.0).astype(np.float32)
    for r in empty_rows:
        if r < n_rows:
            dense[r] = 0
    return sp.csr_matrix(dense)


def reference_topk(queries, docs, k):
    """Rank every document that shares a term with the query by (-score, index)."""
    scores = (queries.astype(np.float64) @ docs.astype(np.float64).T).toarray()
    shares = ((abs(queries) > 0).astype(np.int64) @ (abs(docs) > 0).astype(np.int64).T).toarray()
    k = min(k, max(docs.shape[0], 1))
    idx = np.full((queries.shape[0], k), -1, dtype=np.int64)
    val = np.zeros((queries.shape[0], k))
    for q in range(queries.shape[0]):
        cands = [d for d in range(docs.shape[0]) if shares[q, d] > 0]
        cands.sort(key=lambda d: (-scores[q, d], d))
        for r, d in enumerate(cands[:k]):
            idx[q, r] = d
            val[q, r] = scores[q, d]
    return idx, val, scores


CASES = [
    # (seed, n_queries, n_docs, n_terms, density, k, integer values)
    (0, 20, 50, 30, 0.15, 5, True),
    (1, 15, 40, 12, 0.30, 10, True),  # few terms: many equal scores
    (2, 10, 8, 20, 0.20, 25, True),  # k > n_docs
    (3, 30, 200, 60, 0.05, 7, True),
    (4, 25, 60, 40, 0.10, 1, True),
    (5, 12, 35, 25, 0.20, 6, False),
    (6, 40, 100, 80, 0.04, 15, False),
    (7, 3, 1, 5, 0.90, 4, True),  # a single document
    (8, 100, 30, 10, 0.25, 3, True),  # more queries than documents, more blocks than threads
]


@pytest.mark.parametrize(("seed", "n_q", "n_d", "n_t", "density", "k", "integer"), CASES)
def test_posting_index_matches_dense_reference(seed, n_q, n_d, n_t, density, k, integer):
    rng = np.random.default_rng(seed)
    queries = random_sparse(rng, (n_q, n_t), density, integer, empty_rows=(0, n_q // 2))
    docs = random_sparse(rng, (n_d, n_t), density, integer, empty_rows=(1,))
    idx, score = PostingIndex(docs).search(queries, k)
    ref_idx, ref_val, scores = reference_topk(queries, docs, k)
    assert idx.shape == score.shape == (n_q, min(k, n_d))
    assert idx.dtype == np.int64 and score.dtype == np.float32
    assert (idx[0] == -1).all() and (score[0] == 0).all()  # an empty query row
    if integer:  # sums of small integers are exact in float32: compare exactly, ties included
        np.testing.assert_array_equal(idx, ref_idx)
        np.testing.assert_array_equal(score, ref_val.astype(np.float32))
    else:
        np.testing.assert_allclose(score, ref_val, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(idx < 0, ref_idx < 0)
        for q in range(n_q):
            for r in range(idx.shape[1]):
                if idx[q, r] >= 0:  # the returned document really has the returned score
                    assert scores[q, idx[q, r]] == pytest.approx(score[q, r], rel=1e-5)
    # topk_sparse is the one-shot shortcut of the same search
    idx2, score2 = topk_sparse(queries, docs, k)
    np.testing.assert_array_equal(idx, idx2)
    np.testing.assert_array_equal(score, score2)


def test_ties_go_to_the_lower_document_row():
    docs = sp.csr_matrix(np.array([[0, 1], [1, 0], [1, 0], [0, 1], [1, 0]], dtype=np.float32))
    idx, score = PostingIndex(docs).search(sp.csr_matrix([[1.0, 0.0]]), k=2)
    assert idx.tolist() == [[1, 2]]
    assert score.tolist() == [[1.0, 1.0]]
    idx, _ = PostingIndex(docs).search(sp.csr_matrix([[1.0, 1.0]]), k=5)
    assert idx.tolist() == [[0, 1, 2, 3, 4]]


def test_rows_sharing_fewer_than_k_documents_are_padded():
    docs = sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 0], [0, 2, 0]], dtype=np.float32))
    idx, score = PostingIndex(docs).search(sp.csr_matrix([[0, 1.0, 0], [0, 0, 1.0]]), k=3)
    assert idx.tolist() == [[2, 1, -1], [-1, -1, -1]]
    assert score.tolist() == [[2.0, 1.0, 0.0], [0.0, 0.0, 0.0]]


def test_the_index_is_reusable_and_accepts_other_sparse_formats():
    rng = np.random.default_rng(11)
    docs = random_sparse(rng, (30, 15), 0.2, integer=True)
    index = PostingIndex(docs.tocoo())
    for seed in range(3):
        queries = random_sparse(np.random.default_rng(seed), (5, 15), 0.3, integer=True)
        idx, _ = index.search(queries.tocsc(), 4)
        np.testing.assert_array_equal(idx, reference_topk(queries, docs, 4)[0])


@pytest.mark.parametrize("shape", [(40, 25), (0, 5), (5, 0), (1, 1)])
def test_the_posting_lists_are_scipys_transpose(shape):
    docs = sp.random(*shape, density=0.3, random_state=1, format="csr", dtype=np.float64)
    if docs.nnz > 2:  # a row with its columns out of order and one of them twice
        row = int(np.argmax(np.diff(docs.indptr) >= 2))
        lo = docs.indptr[row]
        docs.indices[lo:lo + 2] = docs.indices[lo:lo + 2][::-1]
        docs = sp.csr_matrix((np.insert(docs.data, lo, 0.5),
                              np.insert(docs.indices, lo, docs.indices[lo]),
                              docs.indptr + (np.arange(len(docs.indptr)) > row)), shape=shape)
    expected = sp.csr_matrix(docs, dtype=np.float32).T.tocsr()
    index = PostingIndex(docs)
    np.testing.assert_array_equal(index._ptr, expected.indptr)
    np.testing.assert_array_equal(index._ind, expected.indices)
    np.testing.assert_array_equal(index._val, expected.data)
    assert index._ind.dtype == np.int32 and index._val.dtype == np.float32


def test_an_empty_query_batch_and_an_empty_corpus():
    docs = sp.csr_matrix(np.eye(3, dtype=np.float32))
    idx, score = PostingIndex(docs).search(sp.csr_matrix((0, 3), dtype=np.float32), 2)
    assert idx.shape == score.shape == (0, 2)
    idx, score = PostingIndex(sp.csr_matrix((0, 3), dtype=np.float32)).search(docs, 2)
    assert (idx == -1).all() and (score == 0).all()


@pytest.mark.parametrize("k", [0, -1])
def test_k_below_one_is_an_input_error(k):
    docs = sp.csr_matrix(np.eye(3, dtype=np.float32))
    with pytest.raises(InputError):
        PostingIndex(docs).search(docs, k)
    with pytest.raises(InputError):
        topk_sparse(docs, docs, k)
    with pytest.raises(InputError):
        topk_rows(docs, k)


def test_dimension_mismatch_is_an_input_error():
    docs = sp.csr_matrix(np.eye(3, dtype=np.float32))
    with pytest.raises(InputError, match="terms"):
        PostingIndex(docs).search(sp.csr_matrix(np.ones((2, 4), np.float32)), 1)
    with pytest.raises(ValueError):  # InputError is a ValueError
        topk_sparse(sp.csr_matrix(np.ones((2, 2), np.float32)), docs, 1)


def test_kernels_docstring_examples_run():
    result = doctest.testmod(kernels_module)
    assert result.attempted > 0
    assert result.failed == 0


def test_retrieval_docstring_examples_run():
    result = doctest.testmod(retrieval_module)
    assert result.attempted > 0
    assert result.failed == 0


# --- pair_dots -------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_pair_dots_matches_dense_row_products(seed):
    rng = np.random.default_rng(seed)
    a = random_sparse(rng, (25, 40), 0.2)
    b = random_sparse(rng, (18, 40), 0.2, empty_rows=(3,))
    rows = rng.integers(0, 25, 300)
    cols = rng.integers(0, 18, 300)
    got = pair_dots(a, b, rows, cols)
    expected = np.einsum("ij,ij->i", a.toarray()[rows].astype(np.float64),
                         b.toarray()[cols].astype(np.float64))
    assert got.shape == (300,) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


def test_pair_dots_with_unsorted_indices_and_no_pairs():
    a = sp.csr_matrix((np.array([3.0, 1.0, 2.0]), np.array([4, 0, 2]), np.array([0, 3])),
                      shape=(1, 5))
    assert not a.has_sorted_indices
    b = sp.csr_matrix(np.array([[1.0, 0, 1.0, 0, 2.0]]))
    assert pair_dots(a, b, np.array([0]), np.array([0])).tolist() == [1.0 + 2.0 + 6.0]
    assert pair_dots(a, b, np.array([], int), np.array([], int)).shape == (0,)


def test_pair_dots_with_duplicate_entries():
    a = sp.csr_matrix((np.array([1.0, 2.0]), np.array([3, 3]), np.array([0, 2])), shape=(1, 5))
    b = sp.csr_matrix(([5.0], ([0], [3])), shape=(1, 5))
    expected = a.multiply(b).sum()  # 15: scipy treats duplicates as summed
    assert pair_dots(a, b, np.array([0]), np.array([0])).tolist() == [expected]


# --- neighbour_link_stats --------------------------------------------------------------


def slow_link_stats(neighbours, links, rows, cols):
    """sum, max and share of sim x grade over a query's neighbours linked to the item, and
    the 1-based similarity rank of the most similar linked neighbour (n_neighbours + 1)."""
    nb = neighbours.tocsr()
    lk = links.toarray()
    out = np.zeros((len(rows), 4))
    for n, (q, p) in enumerate(zip(rows, cols, strict=True)):
        start, end = nb.indptr[q], nb.indptr[q + 1]
        pairs = list(zip(nb.indices[start:end], nb.data[start:end], strict=True))
        by_similarity = sorted(pairs, key=lambda item: (-item[1], item[0]))
        total, best, weight, first = 0.0, 0.0, 0.0, None
        for rank, (j, sim) in enumerate(by_similarity, start=1):
            weight += sim
            if lk[j, p] != 0:
                g = lk[j, p] * sim
                total += g
                best = max(best, g)
                first = rank if first is None else first
        out[n] = (total, best, total / weight if weight > 0 else 0.0,
                  first if first is not None else len(pairs) + 1)
    return out


def random_neighbours_and_links(seed, n_q=20, n_known=30, n_items=12, knn=5):
    rng = np.random.default_rng(seed)
    rows, cols, sims = [], [], []
    for q in range(n_q):
        kq = int(rng.integers(0, knn + 1))  # some queries have fewer (or no) neighbours
        for j in rng.choice(n_known, kq, replace=False):
            rows.append(q)
            cols.append(j)
            sims.append(rng.uniform(0.05, 1.0))
    neighbours = sp.csr_matrix((sims, (rows, cols)), shape=(n_q, n_known))
    link_mask = rng.random((n_known, n_items)) < 0.25
    links = sp.csr_matrix(np.where(link_mask, rng.integers(1, 4, (n_known, n_items)), 0)
                          .astype(np.float32))
    pair_rows = np.repeat(np.arange(n_q), n_items)
    pair_cols = np.tile(np.arange(n_items), n_q)
    return neighbours, links, pair_rows, pair_cols


@pytest.mark.parametrize("seed", range(4))
def test_neighbour_link_stats_sum_max_share_match_a_python_loop(seed):
    neighbours, links, rows, cols = random_neighbours_and_links(seed)
    got = neighbour_link_stats(neighbours, links, rows, cols, none_rank=99)
    expected = slow_link_stats(neighbours, links, rows, cols)
    assert got.shape == (len(rows), 4) and got.dtype == np.float32
    np.testing.assert_allclose(got[:, :3], expected[:, :3], rtol=1e-5, atol=1e-7)
    # no linked neighbour: the same "none" rank whatever the query's neighbour count
    none_linked = expected[:, 0] == 0
    assert none_linked.any()
    np.testing.assert_array_equal(got[none_linked, 3], 99)
    default = neighbour_link_stats(neighbours, links, rows, cols)
    np.testing.assert_array_equal(default[none_linked, 3],
                                  neighbours.getnnz(axis=1).max() + 1)


@pytest.mark.parametrize("seed", range(2))
def test_neighbour_link_stats_first_rank_is_by_similarity(seed):
    neighbours, links, rows, cols = random_neighbours_and_links(seed)
    got = neighbour_link_stats(neighbours, links, rows, cols)
    expected = slow_link_stats(neighbours, links, rows, cols)
    linked = expected[:, 0] > 0
    np.testing.assert_array_equal(got[linked, 3], expected[linked, 3])


def test_neighbour_link_stats_first_rank_small_case():
    # Neighbour 0 is the less similar one (0.1) and the only one linked to item 2: it is the
    # second most similar neighbour, so its rank is 2.
    neighbours = sp.csr_matrix(([0.1, 0.9], ([0, 0], [0, 5])), shape=(1, 6))
    links = sp.csr_matrix(([1.0], ([0], [2])), shape=(6, 3))
    got = neighbour_link_stats(neighbours, links, np.array([0]), np.array([2]))
    assert got[0].tolist() == pytest.approx([0.1, 0.1, 0.1, 2.0])


def test_neighbour_link_stats_without_pairs():
    neighbours, links, _, _ = random_neighbours_and_links(0)
    assert neighbour_link_stats(neighbours, links, np.array([], int),
                                np.array([], int)).shape == (0, 4)


# --- topk_rows -------------------------------------------------------------------------


def naive_topk_rows(m, k):
    m = m.tocsr()
    k = min(k, max(m.shape[1], 1))
    idx = np.full((m.shape[0], k), -1, dtype=np.int64)
    val = np.zeros((m.shape[0], k), dtype=np.float32)
    for r in range(m.shape[0]):
        start, end = m.indptr[r], m.indptr[r + 1]
        entries = sorted(zip(m.indices[start:end], m.data[start:end].astype(np.float32),
                             strict=True), key=lambda item: (-item[1], item[0]))
        for i, (c, v) in enumerate(entries[:k]):
            idx[r, i] = c
            val[r, i] = v
    return idx, val


@pytest.mark.parametrize(("seed", "shape", "k", "integer"), [
    (0, (20, 30), 5, True), (1, (15, 10), 3, True), (2, (10, 6), 20, True),
    (3, (25, 50), 8, False), (4, (5, 1), 2, False),
])
def test_topk_rows_matches_a_naive_sort(seed, shape, k, integer):
    rng = np.random.default_rng(seed)
    m = random_sparse(rng, shape, 0.3, integer, empty_rows=(2,))
    got_idx, got_val = topk_rows(m, k)
    ref_idx, ref_val = naive_topk_rows(m, k)
    np.testing.assert_array_equal(got_idx, ref_idx)
    np.testing.assert_array_equal(got_val, ref_val)


def test_topk_rows_keeps_negative_stored_values():
    m = sp.csr_matrix(np.array([[0, 3, 1, 3], [0, 0, 0, 0], [-1, 0, 2, 0]], dtype=np.float32))
    idx, val = topk_rows(m, 3)
    assert idx.tolist() == [[1, 3, 2], [-1, -1, -1], [2, 0, -1]]
    assert val.tolist() == [[3, 3, 1], [0, 0, 0], [2, -1, 0]]


@pytest.mark.parametrize("n_q", [1, 40])  # one query (the serial path) and a parallel batch
@pytest.mark.parametrize("signs", ["positive", "mixed"])
def test_positive_and_general_kernels_agree_with_the_reference_blocked_or_not(n_q, signs):
    # All-positive weights take the kernel without "seen" flags; any zero or negative weight
    # takes the general one. Both must give the dense reference's answer, blocked or not.
    rng = np.random.default_rng(11)
    queries = random_sparse(rng, (n_q, 30), 0.2, integer=True)
    docs = random_sparse(rng, (120, 30), 0.15, integer=True)
    if signs == "mixed":
        docs.data[::3] *= -1
    index = PostingIndex(docs)
    assert index._positive == (signs == "positive")
    blocked = rng.random(120) < 0.4
    keep = np.flatnonzero(~blocked)
    for mask in (None, blocked):
        idx, score = index.search(queries, 8, mask)
        if mask is None:
            ref_idx, ref_val, _ = reference_topk(queries, docs, 8)
        else:
            ref_idx, ref_val, _ = reference_topk(queries, docs[keep], 8)
            ref_idx = np.where(ref_idx >= 0, keep[np.maximum(ref_idx, 0)], -1)
        np.testing.assert_array_equal(idx, ref_idx)
        np.testing.assert_array_equal(score, ref_val.astype(np.float32))


def test_a_product_that_underflows_still_counts_its_document_once():
    docs = sp.csr_matrix(np.array([[1e-30, 1e-30], [0.5, 0.0]], dtype=np.float32))
    queries = sp.csr_matrix(np.array([[1e-30, 1e-30]], dtype=np.float32))
    idx, score = PostingIndex(docs).search(queries, 3)
    assert idx.tolist() == [[1, 0]]  # document 0 once, though each product is 0 in float32
    assert score[0, 0] > 0 and score[0, 1] > 0


def test_a_csr_query_is_read_in_place_as_its_float32_conversion():
    """A CSR query's arrays are read as they are: the results of scipy's float32
    conversion of it, for float64 values, one query or many, and arrays longer than the
    matrix (which scipy's conversion cut)."""
    rng = np.random.default_rng(3)
    docs = sp.random(400, 120, density=0.08, random_state=4, format="csr")
    index = PostingIndex(docs)
    queries = sp.random(30, 120, density=0.1, random_state=5, format="csr")
    queries.data = queries.data * 1e-3 + rng.random(queries.nnz)
    long = sp.csr_matrix((np.r_[queries.data, 9.0, 9.0], np.r_[queries.indices, 3, 4],
                          queries.indptr), shape=queries.shape)
    for q in (queries, queries[:1], queries[7:8], long, long[:1]):
        for blocked in (None, rng.random(400) < 0.3):
            got = index.search(q, 5, blocked)
            want = index.search(sp.csr_matrix(q, dtype=np.float32), 5, blocked)
            for g, w in zip(got, want, strict=True):
                assert g.dtype == w.dtype and np.array_equal(g, w)
