"""Many dense queries scored a block at a time from the documents' rows give the walk's
answer to the bit.

A batch of queries whose posting lists hold many times the documents' entries (character
n-grams over a small alphabet) is scored by reading each document's row once per block of
queries (``retrieval._search_matrix_block``). These tests compare it with the walk
(``retrieval.MATRIX`` off) on such corpora: with and without blocked rows, blocks that are
not whole vectors of lanes, ties, documents stored as float64 or float32, and check that
the cost model sends such batches to it and leaves single queries and sparse ones alone.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import iei_match.retrieval as retrieval_module
from iei_match.retrieval import PostingIndex
from test_retrieval_pruning import assert_same, char_tfidf


@pytest.fixture
def always(monkeypatch):
    """Every batch of queries takes the block product, whatever it costs."""
    monkeypatch.setattr(retrieval_module, "MATRIX_COST", (0.0, 0.0))
    monkeypatch.setattr(retrieval_module, "MATRIX_MIN_QUERIES", 1)


def lanes(index, queries):
    q = sp.csr_matrix(queries)
    return index._matrix_lanes(q, q.indices.astype(np.int64), q.data.astype(np.float32),
                               True)


def walked(index, queries, k, blocked=None, prune=True):
    """The same search over the posting lists (pruned, or every posting walked)."""
    retrieval_module.MATRIX, retrieval_module.PRUNE = False, prune
    try:
        return index.search(queries, k, blocked)
    finally:
        retrieval_module.MATRIX, retrieval_module.PRUNE = True, True


@pytest.mark.parametrize("k", [1, 10, 50])
@pytest.mark.parametrize("seed", [0, 1])
def test_the_block_product_is_the_walk_to_the_bit(always, seed, k):
    docs, queries = char_tfidf(seed, n_queries=150)  # blocks of 75 queries: padded lanes
    index = PostingIndex(docs)
    assert lanes(index, queries) > 0
    rng = np.random.default_rng(seed)
    for blocked in (None, rng.random(docs.shape[0]) < 0.3):
        found = index.search(queries, k, blocked)
        assert_same(found, walked(index, queries, k, blocked))
        assert_same(found, walked(index, queries, k, blocked, prune=False))
        if blocked is not None:
            assert not blocked[found[0][found[0] >= 0]].any()


def test_ties_fewer_documents_than_k_and_empty_queries(always):
    docs, queries = char_tfidf(2, n_docs=40, n_queries=40)
    docs = sp.vstack([docs, docs], format="csr")  # every document twice: ties everywhere
    docs.sort_indices()
    queries = sp.vstack([queries, sp.csr_matrix((3, queries.shape[1]))], format="csr")
    index = PostingIndex(docs)
    assert lanes(index, queries) > 0
    for k in (1, 5, 11, 100):  # 100: more than the documents
        found = index.search(queries, k)
        assert_same(found, walked(index, queries, k))
        assert (found[0][-3:] == -1).all() and (found[1][-3:] == 0).all()
        # of two equal documents, the lower row comes first (or alone)
        for row in found[0][:40]:
            kept = [int(r) for r in row if r >= 0]
            for j in kept:
                if j >= 40:
                    assert j - 40 in kept and kept.index(j - 40) < kept.index(j)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_documents_of_either_float_type(always, dtype):
    docs, queries = char_tfidf(3, n_queries=50)
    index = PostingIndex(docs.astype(dtype))
    assert_same(index.search(queries, 10), walked(index, queries, 10))


def test_one_thread_and_many(always):
    import numba

    docs, queries = char_tfidf(4, n_queries=300)
    index = PostingIndex(docs)
    expected = walked(index, queries, 10)
    before = numba.get_num_threads()
    try:
        for threads in {1, before}:
            numba.set_num_threads(threads)
            assert_same(index.search(queries, 10), expected)
    finally:
        numba.set_num_threads(before)


def test_what_the_block_product_cannot_mark_is_walked(always):
    docs, queries = char_tfidf(5, n_queries=30)
    index = PostingIndex(docs)
    assert lanes(index, queries) > 0
    # a repeated term of a query (the walk adds it twice)
    repeated = sp.csr_matrix((np.r_[queries.data, 0.5], np.r_[queries.indices,
                              queries.indices[0]], np.r_[queries.indptr[:-1],
                              queries.indptr[-1] + 1]), shape=queries.shape)
    assert not repeated.has_canonical_format
    assert lanes(index, repeated) == 0
    # a product that may round to 0 (the walk marks its document as touched)
    tiny = queries.copy()
    tiny.data[0] = 1e-44  # float32: 1e-44 times any document weight rounds to 0
    assert lanes(index, tiny) == 0
    assert_same(index.search(tiny, 10), walked(index, tiny, 10))
    # an index without its rows (made from posting arrays alone)
    bare = PostingIndex.from_arrays(index._ptr, index._ind, index._val, index.n_docs,
                                    index.n_terms, True)
    assert lanes(bare, queries) == 0
    assert_same(bare.search(queries, 10), index.search(queries, 10))


def test_the_cost_model_keeps_single_and_sparse_queries_on_the_walk():
    docs, queries = char_tfidf(6, n_docs=3000, n_queries=400)
    index = PostingIndex(docs)
    assert lanes(index, queries) > 0  # dense queries, many: the block product
    assert lanes(index, queries[:1]) == 0  # one query (a request)
    # sparse queries: one term each, of the rarest
    rare = np.argsort(np.diff(index._ptr))[:400] % docs.shape[1]
    sparse = sp.csr_matrix((np.ones(400), rare, np.arange(401)), shape=queries.shape)
    assert lanes(index, sparse) == 0
    assert_same(index.search(queries, 10), walked(index, queries, 10))
