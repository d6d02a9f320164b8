"""The pruned search of dense queries (MaxScore) gives the exhaustive walk's answer to the bit.

A query whose posting lists cover most documents (character n-grams over a small
alphabet) sets aside the terms of lowest bound and scores its last candidates from their
rows. These tests compare it with the exhaustive walk (``retrieval.PRUNE`` off) on such
corpora, and check that it does set terms aside, so that the comparison means something.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

import iei_match.retrieval as retrieval_module
from iei_match.retrieval import PostingIndex


@pytest.fixture(autouse=True)
def every_query_pruned(monkeypatch):
    """Every query takes the dense walk and the pruned search, however small the corpus
    (not the block product of many queries: ``test_retrieval_matrix.py``)."""
    monkeypatch.setattr(retrieval_module, "MATRIX", False)
    monkeypatch.setattr(retrieval_module, "DENSE_SHARE", 0.0)
    monkeypatch.setattr(retrieval_module, "PRUNE_MIN_GAIN", 0.0)
    monkeypatch.setattr(retrieval_module, "PRUNE_MIN_DOCS", 0)


def topic_texts(rng, n, n_topics=12, own_share=0.6, letters="bcdfgklmnprst", vowels="aeiou"):
    """Documents of pseudo-words from a small alphabet, each mostly from its topic's words:
    character n-grams shared by nearly every document, a few that tell topics apart."""
    def word():
        return "".join(rng.choice(list(letters)) + rng.choice(list(vowels))
                       for _ in range(int(rng.integers(2, 4))))
    shared = [word() for _ in range(300)]
    topics = [[word() for _ in range(30)] for _ in range(n_topics)]
    texts = []
    for _ in range(n):
        own = topics[int(rng.integers(n_topics))]
        words = [own[int(rng.integers(len(own)))] if rng.random() < own_share
                 else shared[int(rng.integers(len(shared)))]
                 for _ in range(int(rng.integers(20, 60)))]
        texts.append(" ".join(words))
    return texts


def char_tfidf(seed=0, n_docs=800, n_queries=60, n_topics=12, own_share=0.6):
    rng = np.random.default_rng(seed)
    texts = topic_texts(rng, n_docs + n_queries, n_topics, own_share)
    m = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True,
                        dtype=np.float64).fit_transform(texts).tocsr()
    m.sort_indices()
    return m[n_queries:], m[:n_queries]


def both(index, queries, k, blocked=None):
    """The search with pruning and without."""
    pruned = index.search(queries, k, blocked)
    retrieval_module.PRUNE = False
    try:
        exhaustive = index.search(queries, k, blocked)
    finally:
        retrieval_module.PRUNE = True
    return pruned, exhaustive


def assert_same(a, b):
    for x, y in zip(a, b, strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("k", [1, 10, 50])
@pytest.mark.parametrize("seed", [0, 1])
def test_the_pruned_search_is_the_exhaustive_one_to_the_bit(seed, k):
    docs, queries = char_tfidf(seed)
    index = PostingIndex(docs)
    assert index._rows is not None and queries.has_sorted_indices
    rng = np.random.default_rng(seed)
    for blocked in (None, rng.random(docs.shape[0]) < 0.3):
        assert_same(*both(index, queries, k, blocked))  # a batch, on the thread pool
        for q in range(0, queries.shape[0], 7):  # one query, as a request
            assert_same(*both(index, queries[q:q + 1], k, blocked))


def walked_shares(index, queries, k):
    """Per query, the share of its postings that the pruned search walked, and its top k
    as the pruned search of one query gives it."""
    term_max, max_norm = index._prune_bounds()
    f_ptr, f_ind, f_val = index._rows
    n = index.n_docs
    acc, exact = np.zeros(n, np.float32), np.empty(n, np.float32)
    cands = np.empty(n, np.int64)
    blocked = np.zeros(n, np.bool_)
    shares = []
    for q in range(queries.shape[0]):
        lo, hi = queries.indptr[q], queries.indptr[q + 1]
        q_ind = queries.indices.astype(np.int64)
        q_val = queries.data.astype(np.float32)
        work = int(sum(index._ptr[t + 1] - index._ptr[t] for t in q_ind[lo:hi]))
        out_idx, out_score = np.full(k, -1, np.int64), np.zeros(k, np.float32)
        walked = retrieval_module._search_pruned(
            q_ind, q_val, lo, hi, index._ptr, index._ind, index._val, f_ptr, f_ind, f_val,
            term_max, max_norm, blocked, False, k, acc, exact, cands, out_idx, out_score)
        assert not acc.any()  # left as it came: all zeros
        expected = index.search(queries[q:q + 1], k)
        np.testing.assert_array_equal(out_idx, expected[0][0])
        shares.append(walked / work)
    return np.array(shares)


def test_the_pruned_search_sets_terms_aside():
    # Topics of ~10 documents: few documents come near a query's top 10.
    docs, queries = char_tfidf(2, n_docs=12000, n_queries=30, n_topics=300, own_share=0.9)
    index = PostingIndex(docs)
    shares = walked_shares(index, queries, 10)
    assert shares.max() <= 1.0
    # Most queries leave the postings of common n-grams unwalked (a query whose candidates
    # would cost more to score than those postings walks them after all).
    assert (shares < 0.5).mean() >= 0.5
    assert shares.mean() < 0.7
    # and on this corpus too the answers are the exhaustive walk's, blocked or not
    blocked = np.random.default_rng(2).random(docs.shape[0]) < 0.3
    for mask in (None, blocked):
        assert_same(*both(index, queries, 10, mask))
        assert_same(*both(index, queries[:1], 10, mask))


def test_documents_with_equal_scores_keep_the_lower_rows():
    docs, queries = char_tfidf(3, n_docs=200, n_queries=20)
    copies = sp.vstack([docs[:50]] * 4 + [docs[50:]], format="csr")  # each of 50 rows 4 times
    copies.sort_indices()
    (idx, score), exhaustive = both(PostingIndex(copies), queries, 12)
    assert_same((idx, score), exhaustive)
    for row_idx, row_score in zip(idx, score, strict=True):
        for r in range(1, len(row_idx)):  # best first, a tie to the lower row
            assert (row_score[r - 1], -row_idx[r - 1]) > (row_score[r], -row_idx[r])


def test_a_corpus_that_cannot_be_pruned_gives_the_same_answer():
    # Every document holds every term with the same weight: no bound can set one aside,
    # and every document ties.
    docs = sp.csr_matrix(np.full((300, 40), 1 / np.sqrt(40)))
    queries = sp.csr_matrix(np.random.default_rng(4).random((5, 40)))
    (idx, score), exhaustive = both(PostingIndex(docs), queries, 7)
    assert_same((idx, score), exhaustive)
    assert (idx == np.arange(7)).all()


def test_fewer_documents_than_k_and_a_blocked_majority():
    docs, queries = char_tfidf(5, n_docs=300, n_queries=10)
    blocked = np.ones(docs.shape[0], np.bool_)
    blocked[::40] = False  # 8 documents left for k = 20
    (idx, score), exhaustive = both(PostingIndex(docs), queries, 20, blocked)
    assert_same((idx, score), exhaustive)
    assert ((idx >= 0).sum(axis=1) == 8).all()


def test_a_query_with_unsorted_terms_is_not_pruned_and_is_answered_alike():
    docs, queries = char_tfidf(6, n_docs=300, n_queries=8)
    shuffled = queries.copy()
    for q in range(shuffled.shape[0]):
        lo, hi = shuffled.indptr[q], shuffled.indptr[q + 1]
        shuffled.indices[lo:hi] = shuffled.indices[lo:hi][::-1]
        shuffled.data[lo:hi] = shuffled.data[lo:hi][::-1]
    shuffled.has_sorted_indices = False
    pruned, exhaustive = both(PostingIndex(docs), shuffled, 10)
    assert_same(pruned, exhaustive)
    np.testing.assert_array_equal(pruned[0], PostingIndex(docs).search(queries, 10)[0])


def test_an_index_from_arrays_prunes_only_with_its_documents():
    docs, queries = char_tfidf(7, n_docs=400, n_queries=15)
    index = PostingIndex(docs)
    args = (index._ptr, index._ind, index._val, index.n_docs, index.n_terms, True)
    with_rows = PostingIndex.from_arrays(*args, docs=docs)
    without = PostingIndex.from_arrays(*args)
    assert with_rows._rows is not None and without._rows is None
    assert_same(with_rows.search(queries, 10), without.search(queries, 10))
    unsorted = docs.copy()
    unsorted.has_sorted_indices = False  # rows that cannot be merged: not kept
    assert PostingIndex.from_arrays(*args, docs=unsorted)._rows is None
