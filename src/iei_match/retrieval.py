"""Sparse top-k retrieval: for each query row, the k document rows with the largest dot product.

The kernel walks the documents' posting lists (the transposed document matrix) into a dense
accumulator, one accumulator per thread, and selects the top k with a partition: the
approach of bm25s, compiled with numba. It never builds the full query x document matrix.

A query that touches most documents (character n-grams over a small alphabet) skips the
posting lists that cannot change its top k, as MaxScore does (Turtle and Flood, 1995): its
terms are walked by their largest possible contribution, highest first; once the k-th best
partial score exceeds what the remaining terms could still add to any document (by each
term's largest weight, and by Cauchy-Schwarz), only the documents that could still reach
it are scored, each from its own row, in the query's term order, so that every score is
the very sum the exhaustive walk adds up and the answer is the same to the bit.

Many such queries at once (a batch job's partition) are scored the other way round: the
documents' rows are read once for a block of queries, and each entry of a row is
multiplied with the weights of that term in every query of the block at once (a sparse
times dense-block product, whose inner loop the compiler vectorises). A document's score
in each query is again the same sum in the same order, so the answer is the same to the
bit; it pays when the queries' posting lists hold many times the rows' entries.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

from .errors import InputError

__all__ = ["topk_sparse", "PostingIndex"]


@numba.njit(cache=True, nogil=True, inline="always")
def _worse(s1, d1, s2, d2):
    # Whether (score s1, document d1) ranks below (s2, d2): lower score, or a tie and a
    # higher document row.
    return s1 < s2 or (s1 == s2 and d1 > d2)


@numba.njit(cache=True, nogil=True)
def _sift_down(h_val, h_idx, i, m):
    while True:
        c = 2 * i + 1
        if c >= m:
            return
        if c + 1 < m and _worse(h_val[c + 1], h_idx[c + 1], h_val[c], h_idx[c]):
            c += 1
        if not _worse(h_val[c], h_idx[c], h_val[i], h_idx[i]):
            return
        h_val[i], h_val[c] = h_val[c], h_val[i]
        h_idx[i], h_idx[c] = h_idx[c], h_idx[i]
        i = c


@numba.njit(cache=True, nogil=True)
def _select_topk(acc, touched, n_touched, k, out_idx, out_score):
    # Top-k of acc[touched[:n_touched]], highest score first, ties by lower index: a heap of
    # the k best seen so far, whose root is the worst of them (one comparison for most
    # documents; nothing allocated per query but the k-sized heap).
    m = min(k, n_touched)
    h_val = np.empty(m, dtype=np.float32)
    h_idx = np.empty(m, dtype=np.int64)
    for i in range(m):
        h_idx[i] = touched[i]
        h_val[i] = acc[touched[i]]
    for i in range(m // 2 - 1, -1, -1):
        _sift_down(h_val, h_idx, i, m)
    for i in range(m, n_touched):
        d = touched[i]
        v = acc[d]
        if _worse(h_val[0], h_idx[0], v, d):
            h_val[0] = v
            h_idx[0] = d
            _sift_down(h_val, h_idx, 0, m)
    # Pop the worst to the back: the array ends sorted best first.
    for end in range(m - 1, 0, -1):
        h_val[0], h_val[end] = h_val[end], h_val[0]
        h_idx[0], h_idx[end] = h_idx[end], h_idx[0]
        _sift_down(h_val, h_idx, 0, end)
    for r in range(m):
        out_idx[r] = h_idx[r]
        out_score[r] = h_val[r]
    for r in range(m, k):
        out_idx[r] = -1
        out_score[r] = 0.0


@numba.njit(cache=True, nogil=True)
def _search_block(q_ptr, q_ind, q_val, p_ptr, p_ind, p_val, n_docs, k, lo, hi, blocked,
                  dense_at, out_idx, out_score):
    # A blocked document starts out "seen", so it never enters ``touched``: it accumulates
    # (never read, never reset) but is never selected, at no cost per posting.
    acc = np.zeros(n_docs, dtype=np.float32)
    seen = blocked.copy()
    touched = np.empty(n_docs, dtype=np.int64)
    for q in range(lo, hi):
        n_touched = 0
        for a in range(q_ptr[q], q_ptr[q + 1]):
            t = q_ind[a]
            w = q_val[a]
            for b in range(p_ptr[t], p_ptr[t + 1]):
                d = p_ind[b]
                acc[d] += w * p_val[b]
                if not seen[d]:
                    seen[d] = True
                    touched[n_touched] = d
                    n_touched += 1
        _select_topk(acc, touched, n_touched, k, out_idx[q], out_score[q])
        for i in range(n_touched):
            acc[touched[i]] = 0.0
            seen[touched[i]] = False


@numba.njit(cache=True, nogil=True)
def _select_topk_dense(acc, blocked, any_blocked, k, out_idx, out_score):
    # _select_topk of every document with a score (acc != 0) that is not blocked, read in
    # row order: the same top k (the order of the candidates does not change it). A
    # document read after the heap is full has a higher row than every one in it, so it
    # enters only with a strictly higher score than the worst kept.
    n_docs = len(acc)
    h_val = np.empty(k, dtype=np.float32)
    h_idx = np.empty(k, dtype=np.int64)
    m = 0
    d = 0
    while d < n_docs and m < k:  # the first k scored documents fill the heap
        if acc[d] != 0.0 and not (any_blocked and blocked[d]):
            h_val[m] = acc[d]
            h_idx[m] = d
            m += 1
        d += 1
    for i in range(m // 2 - 1, -1, -1):
        _sift_down(h_val, h_idx, i, m)
    worst = h_val[0] if m else np.float32(0.0)
    while d < n_docs:
        v = acc[d]
        if v > worst and not (any_blocked and blocked[d]):
            h_val[0] = v
            h_idx[0] = d
            _sift_down(h_val, h_idx, 0, m)
            worst = h_val[0]
        d += 1
    for end in range(m - 1, 0, -1):
        h_val[0], h_val[end] = h_val[end], h_val[0]
        h_idx[0], h_idx[end] = h_idx[end], h_idx[0]
        _sift_down(h_val, h_idx, 0, end)
    for r in range(m):
        out_idx[r] = h_idx[r]
        out_score[r] = h_val[r]
    for r in range(m, k):
        out_idx[r] = -1
        out_score[r] = 0.0


@numba.njit(cache=True, nogil=True)
def _kth_value(acc, blocked, any_blocked, k, out_idx, out_score):
    # The k-th largest non-zero score of the documents not blocked (0 when fewer than k
    # have one), by the dense selection of the top k into ``out_idx``/``out_score``.
    _select_topk_dense(acc, blocked, any_blocked, k, out_idx, out_score)
    return out_score[k - 1] if out_idx[k - 1] >= 0 else np.float32(0.0)


@numba.njit(cache=True, nogil=True)
def _candidates(acc, blocked, any_blocked, k, out_idx, out_score, left, cands):
    # The k-th largest non-zero partial score of the documents not blocked (theta; 0 when
    # fewer than k have one) and the documents that may reach it: those whose partial
    # score plus ``left`` (what the terms set aside can still add) is at least theta, with
    # PRUNE_SLACK.
    theta = float(_kth_value(acc, blocked, any_blocked, k, out_idx, out_score))
    need = theta * (1.0 - PRUNE_SLACK) - left * (1.0 + PRUNE_SLACK)
    n = 0
    for d in range(len(acc)):
        v = acc[d]
        if (v != 0.0 or left > 0.0) and v >= need and not (any_blocked and blocked[d]):
            cands[n] = d
            n += 1
    return theta, n


@numba.njit(cache=True, nogil=True, inline="always")
def _add_posting_list(acc, p_ptr, p_ind, p_val, t, w, tiny):
    # The dense walk of one term's postings: each product added to its document's score.
    for b in range(p_ptr[t], p_ptr[t + 1]):
        d = p_ind[b]
        c = w * p_val[b]
        if c > 0.0:  # 0 + c is c: a first touch as in the list walk
            acc[d] += c
        elif acc[d] == 0.0:  # an underflow (rare): marked as touched
            acc[d] = tiny


@numba.njit(cache=True, nogil=True)
def _row_score(q_ind, q_val, a0, a1, f_ptr, f_ind, f_val, d, tiny):
    # Document d's score from its own (sorted) row: the products of the query's terms in
    # the query's order, added as the walk over the posting lists adds them (a duplicate
    # term of the query or the row counted each time; an underflow marks the document).
    s = np.float32(0.0)
    y = f_ptr[d]
    end = f_ptr[d + 1]
    for a in range(a0, a1):
        t = q_ind[a]
        while y < end and f_ind[y] < t:
            y += 1
        z = y
        while z < end and f_ind[z] == t:
            c = q_val[a] * np.float32(f_val[z])
            if c > 0.0:
                s += c
            elif s == 0.0:
                s = tiny
            z += 1
    return s


# MaxScore's schedule: the terms of highest bound are walked until they cover this share of
# the query's postings; then the terms of lowest bound whose bounds add up to at most this
# share of the k-th best partial score are set aside (the others walked). The answer does
# not depend on them, only its cost (tuned on the batch benchmark's character n-grams).
PRUNE_FIRST = 0.2
PRUNE_SHARE = 0.8
# Scores are float32 sums: the bounds are compared with this relative slack (far above
# the rounding of a sum of a few thousand products), so no document is dropped by rounding.
PRUNE_SLACK = 1e-3


@numba.njit(cache=True, nogil=True)
def _search_pruned(q_ind, q_val, a0, a1, p_ptr, p_ind, p_val, f_ptr, f_ind, f_val,
                   term_max, max_norm, blocked, any_blocked, k, acc, exact, cands, out_idx,
                   out_score):
    # One dense query's top k, the same as the exhaustive walk's (see the module's
    # docstring). ``acc`` comes and goes all zeros; ``exact``'s values are scratch, and
    # so are ``out_idx``/``out_score`` until the answer is written there.
    # Returns how many postings it walked (the exhaustive walk: all of its terms').
    tiny = np.float32(1e-38)
    m = a1 - a0
    bound = np.empty(m, dtype=np.float64)
    work = 0
    for i in range(m):
        t = q_ind[a0 + i]
        bound[i] = float(q_val[a0 + i]) * float(term_max[t])
        work += p_ptr[t + 1] - p_ptr[t]
    order = np.argsort(-bound)  # highest bound first
    walked = 0
    i = 0
    while i < m and walked < PRUNE_FIRST * work:
        t = q_ind[a0 + order[i]]
        _add_posting_list(acc, p_ptr, p_ind, p_val, t, q_val[a0 + order[i]], tiny)
        walked += p_ptr[t + 1] - p_ptr[t]
        i += 1
    # The k-th best partial score so far tells how many terms of lowest bound to set
    # aside (order[rest:]): while they can add at most PRUNE_SHARE of it to any document.
    guess = float(_kth_value(acc, blocked, any_blocked, k, out_idx, out_score))
    rest = m
    sum_bound = 0.0
    sum_sq = 0.0
    while rest > i:
        j = order[rest - 1]
        b2 = sum_bound + bound[j]
        s2 = sum_sq + float(q_val[a0 + j]) ** 2
        if min(b2, np.sqrt(s2) * max_norm) > PRUNE_SHARE * guess:
            break
        sum_bound, sum_sq = b2, s2
        rest -= 1
    for r in range(i, rest):
        t = q_ind[a0 + order[r]]
        _add_posting_list(acc, p_ptr, p_ind, p_val, t, q_val[a0 + order[r]], tiny)
        walked += p_ptr[t + 1] - p_ptr[t]
    left = min(sum_bound, np.sqrt(sum_sq) * max_norm) if rest < m else 0.0
    left_work = 0
    for r in range(rest, m):
        t = q_ind[a0 + order[r]]
        left_work += p_ptr[t + 1] - p_ptr[t]
    avg_row = f_ptr[len(f_ptr) - 1] / max(len(f_ptr) - 1, 1)
    theta, n = _candidates(acc, blocked, any_blocked, k, out_idx, out_score, left,
                           cands)
    # Too many candidates to score from their rows, or no k-th score to prune against:
    # the terms set aside are walked after all.
    if rest < m and (theta <= 0.0 or n * (avg_row + m) >= left_work):
        for r in range(rest, m):
            t = q_ind[a0 + order[r]]
            _add_posting_list(acc, p_ptr, p_ind, p_val, t, q_val[a0 + order[r]], tiny)
        walked += left_work
        theta, n = _candidates(acc, blocked, any_blocked, k, out_idx, out_score, 0.0,
                               cands)
    kept = 0
    for c in range(n):
        d = cands[c]
        s = _row_score(q_ind, q_val, a0, a1, f_ptr, f_ind, f_val, d, tiny)
        if s != 0.0:
            exact[d] = s
            cands[kept] = d
            kept += 1
    _select_topk(exact, cands, kept, k, out_idx, out_score)
    acc[:] = 0.0
    return walked


@numba.njit(cache=True, nogil=True)
def _search_matrix_block(q_ptr, q_ind, q_val, lo, hi, f_ptr, f_ind, f_val, blocked,
                         any_blocked, k, local, out_idx, out_score):
    # The top k of queries lo..hi (every weight positive, no product underflowing, terms
    # in column order without repeats) from the documents' rows: each row is read once,
    # and each of its entries multiplied with the dense block of the queries' weights of
    # its term. Each score is added up in the query's term order, as the walk adds it.
    # ``local`` (one entry per term) comes and goes all 0: the row of the block's weights
    # of each term of its queries (numbered from 1), the zero row 0 for every other term.
    n_b = hi - lo
    n_used = 0
    for a in range(q_ptr[lo], q_ptr[hi]):
        t = q_ind[a]
        if local[t] == 0:
            n_used += 1
            local[t] = n_used
    # Padded to whole vectors of lanes (the padding's weights are 0: its scores stay 0).
    n_pad = -(-n_b // 16) * 16
    weights = np.zeros((n_used + 1, n_pad), dtype=np.float32)
    for b in range(n_b):
        for a in range(q_ptr[lo + b], q_ptr[lo + b + 1]):
            weights[local[q_ind[a]], b] = q_val[a]
    s = np.empty(n_pad, dtype=np.float32)
    h_val = np.empty((n_b, k), dtype=np.float32)
    h_idx = np.empty((n_b, k), dtype=np.int64)
    fill = np.zeros(n_b, dtype=np.int64)
    worst = np.zeros(n_b, dtype=np.float32)
    for d in range(len(f_ptr) - 1):
        if any_blocked and blocked[d]:
            continue
        s[:] = 0.0
        for y in range(f_ptr[d], f_ptr[d + 1]):
            v = np.float32(f_val[y])
            row = weights[local[f_ind[y]]]
            for b in range(n_pad):  # 0 where the query lacks the term: adds nothing
                s[b] += row[b] * v
        # Each query's heap takes the documents in row order as _select_topk_dense does:
        # the first k scored fill it, then one enters only with a strictly higher score
        # than the worst kept (written out here: a function for it cost half the speed).
        for b in range(n_b):
            x = s[b]
            if x == 0.0:
                continue
            if fill[b] < k:
                h_val[b, fill[b]] = x
                h_idx[b, fill[b]] = d
                fill[b] += 1
                if fill[b] == k:
                    for i in range(k // 2 - 1, -1, -1):
                        _sift_down(h_val[b], h_idx[b], i, k)
                    worst[b] = h_val[b, 0]
            elif x > worst[b]:
                h_val[b, 0] = x
                h_idx[b, 0] = d
                _sift_down(h_val[b], h_idx[b], 0, k)
                worst[b] = h_val[b, 0]
    for b in range(n_b):
        m = fill[b]
        if m < k:
            for i in range(m // 2 - 1, -1, -1):
                _sift_down(h_val[b], h_idx[b], i, m)
        for end in range(m - 1, 0, -1):
            h_val[b, 0], h_val[b, end] = h_val[b, end], h_val[b, 0]
            h_idx[b, 0], h_idx[b, end] = h_idx[b, end], h_idx[b, 0]
            _sift_down(h_val[b], h_idx[b], 0, end)
        for r in range(m):
            out_idx[lo + b, r] = h_idx[b, r]
            out_score[lo + b, r] = h_val[b, r]
    for a in range(q_ptr[lo], q_ptr[hi]):
        local[q_ind[a]] = 0


@numba.njit(parallel=True, cache=True)
def _matrix_kernel(q_ptr, q_ind, q_val, f_ptr, f_ind, f_val, n_terms, k, lanes, blocked,
                   out_idx, out_score):
    n_q = len(q_ptr) - 1
    n_blocks = (n_q + lanes - 1) // lanes
    any_blocked = blocked.any()
    for blk in numba.prange(n_blocks):
        local = np.zeros(n_terms, dtype=np.int64)
        _search_matrix_block(q_ptr, q_ind, q_val, blk * n_q // n_blocks,
                             (blk + 1) * n_q // n_blocks, f_ptr, f_ind, f_val, blocked,
                             any_blocked, k, local, out_idx, out_score)


# A query whose posting lists hold at least this share of the documents touches most of
# them: it is summed into the accumulator without a list of the documents it touches (a
# branch per posting that mispredicts when most postings are first touches: 3.6x the time
# of the sums on the batch benchmark's word matrices), and its top k is read from the
# whole accumulator.
DENSE_SHARE = 0.25


@numba.njit(cache=True, nogil=True)
def _search_block_positive(q_ptr, q_ind, q_val, p_ptr, p_ind, p_val, n_docs, k, lo, hi,
                           blocked, dense_at, out_idx, out_score, f_ptr, f_ind, f_val,
                           term_max, max_norm, prune, min_gain):
    # Every weight is positive (TF-IDF): a document is new while its accumulator is 0, so
    # the loop over postings reads no "seen" flag; blocked documents are dropped when the
    # top k is selected. A product that underflows to 0 is kept as the smallest float, so
    # that its document is not taken for new again. Either way each document's score is
    # the same sum, added in the same order.
    acc = np.zeros(n_docs, dtype=np.float32)
    touched = np.empty(n_docs + 1, dtype=np.int64)  # one spare: written before it is kept
    kept = np.empty(n_docs, dtype=np.int64)
    any_blocked = blocked.any()
    tiny = np.float32(1e-38)
    if prune:  # the pruned search's scratch (see _search_pruned)
        exact = np.empty(n_docs, dtype=np.float32)
        avg_row = f_ptr[len(f_ptr) - 1] / max(len(f_ptr) - 1, 1)
    for q in range(lo, hi):
        work = 0
        for a in range(q_ptr[q], q_ptr[q + 1]):
            work += p_ptr[q_ind[a] + 1] - p_ptr[q_ind[a]]
        # Pruning pays when what it adds (passes over the accumulator, k documents scored
        # from their rows) is a small part of the walk: not so for words, whose postings
        # are few, nor for a request's query against a few thousand programs.
        if (work >= dense_at and prune and work > min_gain * (
                n_docs + k * (avg_row + q_ptr[q + 1] - q_ptr[q]))):
            _search_pruned(q_ind, q_val, q_ptr[q], q_ptr[q + 1], p_ptr, p_ind, p_val, f_ptr,
                           f_ind, f_val, term_max, max_norm, blocked, any_blocked, k, acc,
                           exact, kept, out_idx[q], out_score[q])
            continue
        if work >= dense_at:
            for a in range(q_ptr[q], q_ptr[q + 1]):
                _add_posting_list(acc, p_ptr, p_ind, p_val, q_ind[a], q_val[a], tiny)
            _select_topk_dense(acc, blocked, any_blocked, k, out_idx[q], out_score[q])
            acc[:] = 0.0
            continue
        n_touched = 0
        for a in range(q_ptr[q], q_ptr[q + 1]):
            t = q_ind[a]
            w = q_val[a]
            for b in range(p_ptr[t], p_ptr[t + 1]):
                d = p_ind[b]
                v = acc[d]
                c = w * p_val[b]
                # Written every time, kept when new: no branch on whether d is new.
                touched[n_touched] = d
                n_touched += v == 0.0
                if c > 0.0:
                    acc[d] = v + c  # c itself when new
                elif v == 0.0:  # an underflow (rare)
                    acc[d] = tiny
        if any_blocked:
            n_kept = 0
            for i in range(n_touched):
                if not blocked[touched[i]]:
                    kept[n_kept] = touched[i]
                    n_kept += 1
            _select_topk(acc, kept, n_kept, k, out_idx[q], out_score[q])
        else:
            _select_topk(acc, touched, n_touched, k, out_idx[q], out_score[q])
        for i in range(n_touched):
            acc[touched[i]] = 0.0


@numba.njit(parallel=True, cache=True)
def _topk_kernel(q_ptr, q_ind, q_val, p_ptr, p_ind, p_val, n_docs, k, n_blocks, blocked,
                 positive, dense_at, out_idx, out_score, f_ptr, f_ind, f_val, term_max,
                 max_norm, prune, min_gain):
    n_q = len(q_ptr) - 1
    for blk in numba.prange(n_blocks):
        lo, hi = blk * n_q // n_blocks, (blk + 1) * n_q // n_blocks
        if positive:
            _search_block_positive(q_ptr, q_ind, q_val, p_ptr, p_ind, p_val, n_docs, k, lo,
                                   hi, blocked, dense_at, out_idx, out_score, f_ptr, f_ind,
                                   f_val, term_max, max_norm, prune, min_gain)
        else:
            _search_block(q_ptr, q_ind, q_val, p_ptr, p_ind, p_val, n_docs, k, lo, hi,
                          blocked, dense_at, out_idx, out_score)


@numba.njit(cache=True, nogil=True)
def _transpose(indptr, indices, data, out_ptr, out_ind, out_val):
    # Counting sort of the entries by column; rows are visited in order, so each column's
    # rows come out ascending (and duplicates in their order), as in scipy's csr_tocsc.
    n_rows = len(indptr) - 1
    for a in range(indptr[n_rows]):
        out_ptr[indices[a] + 1] += 1
    for j in range(len(out_ptr) - 1):
        out_ptr[j + 1] += out_ptr[j]
    nxt = out_ptr[:-1].copy()
    for r in range(n_rows):
        for a in range(indptr[r], indptr[r + 1]):
            j = indices[a]
            out_ind[nxt[j]] = r
            out_val[nxt[j]] = data[a]
            nxt[j] += 1


class PostingIndex:
    """Documents stored as posting lists, ready for repeated top-k queries.

    Parameters
    ----------
    docs : sparse matrix of shape (n_docs, n_terms)
        One row per document (e.g. L2-normalised TF-IDF).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> index = PostingIndex(sp.csr_matrix([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]]))
    >>> idx, score = index.search(sp.csr_matrix([[0.0, 1.0]]), k=2)
    >>> idx.tolist(), score.astype(float).round(2).tolist()
    ([[2, 1]], [[1.0, 0.8]])
    """

    def __init__(self, docs: sp.spmatrix):
        docs = sp.csr_matrix(docs)
        self.n_docs = docs.shape[0]
        self.n_terms = docs.shape[1]
        # The transpose (each term's documents, in row order), as scipy's ``docs.T.tocsr()``
        # gives it, in one pass and straight into the kernels' types (3x faster).
        # Document numbers as int32 where they fit: 8 bytes a posting to stream, not 12.
        self._ptr = np.zeros(self.n_terms + 1, dtype=np.int64)
        self._ind = np.empty(docs.nnz, dtype=np.int32 if self.n_docs < 2**31 else np.int64)
        self._val = np.empty(docs.nnz, dtype=np.float32)
        values = docs.data.astype(np.float32, copy=False)
        _transpose(docs.indptr, docs.indices, values, self._ptr, self._ind, self._val)
        self._positive = bool(docs.nnz == 0 or values.min() > 0)
        self._keep_rows(docs)

    def _keep_rows(self, docs: sp.csr_matrix | None) -> None:
        # The documents' own rows (the caller's arrays, not copied), for the pruned search
        # of dense queries to score its last candidates; only rows with sorted columns.
        self._rows: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        if docs is not None and docs.shape == (self.n_docs, self.n_terms) \
                and docs.has_sorted_indices:
            self._rows = (docs.indptr, docs.indices, docs.data)
        self._bounds: tuple[np.ndarray, float] | None = None
        self._smallest: np.float32 | None = None  # the smallest weight, when first asked

    def _prune_bounds(self) -> tuple[np.ndarray, float]:
        """Each term's largest weight, and the largest norm of a document (float32 values,
        as the posting lists hold them), made at the first search that uses them."""
        if self._bounds is None:
            term_max = np.zeros(self.n_terms, dtype=np.float32)
            lengths = np.diff(self._ptr)
            if len(self._val):
                full = lengths > 0
                term_max[full] = np.maximum.reduceat(self._val, self._ptr[:-1][full])
            assert self._rows is not None  # only pruned searches ask, and they have rows
            indptr, _, data = self._rows
            squares = np.square(data.astype(np.float32).astype(np.float64))
            starts = indptr[:-1][np.diff(indptr) > 0]
            norm = float(np.sqrt(np.add.reduceat(squares, starts).max())) if len(starts) else 0.0
            self._bounds = term_max, norm * (1.0 + 1e-6)
        return self._bounds

    @classmethod
    def from_arrays(cls, ptr: np.ndarray, ind: np.ndarray, val: np.ndarray, n_docs: int,
                    n_terms: int, positive: bool,
                    docs: sp.csr_matrix | None = None) -> PostingIndex:
        """An index from the posting arrays of another (``_ptr``, ``_ind``, ``_val``), as
        :mod:`~iei_match.catalog_files` keeps them; nothing is copied. ``docs``: the
        matrix they were made from, if at hand (the pruned search reads its rows)."""
        index = cls.__new__(cls)
        index.n_docs, index.n_terms = int(n_docs), int(n_terms)
        index._ptr, index._ind, index._val = ptr, ind, val
        index._positive = bool(positive)
        index._keep_rows(docs)
        return index

    def search(self, queries: sp.spmatrix, k: int,
               blocked: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` documents for each query row.

        Parameters
        ----------
        queries : sparse matrix of shape (n_queries, n_terms)
        k : int
        blocked : ndarray of bool of shape (n_docs,), optional
            Documents never to return (e.g. filtered out by a hard rule), so that a
            filtered search needs no index of its own.

        Returns
        -------
        indices : ndarray of shape (n_queries, k), int64
            Document rows, best first; ties go to the lower row; ``-1`` pads rows that
            share a term with fewer than ``k`` documents.
        scores : ndarray of shape (n_queries, k), float32
            The dot products (0 where padded).
        """
        if k < 1:
            raise InputError(f"k must be at least 1, got {k}")
        # A CSR matrix's arrays are read as they are (its values as float32): scipy's
        # conversion to a float32 matrix cost more than a request's search.
        q = queries if type(queries) is sp.csr_matrix else sp.csr_matrix(queries)
        q_val = q.data.astype(np.float32, copy=False)
        if q.shape[1] != self.n_terms:
            raise InputError(f"queries have {q.shape[1]} terms, the index {self.n_terms}")
        k = min(k, max(self.n_docs, 1))
        if blocked is None:
            blocked = np.zeros(self.n_docs, dtype=np.bool_)
        else:
            blocked = np.asarray(blocked, dtype=np.bool_)
            if blocked.shape != (self.n_docs,):
                raise InputError(f"blocked must have one entry per document ({self.n_docs}), "
                                 f"got shape {blocked.shape}")
        out_idx = np.full((q.shape[0], k), -1, dtype=np.int64)
        out_score = np.zeros((q.shape[0], k), dtype=np.float32)
        q_ptr, q_ind = q.indptr.astype(np.int64), q.indices.astype(np.int64)
        q_ptr, q_ind, q_val = q_ptr[: q.shape[0] + 1], q_ind[: q_ptr[-1]], q_val[: q_ptr[-1]]
        positive = self._positive and (len(q_val) == 0 or q_val.min() > 0)
        dense_at = int(min(np.ceil(DENSE_SHARE * self.n_docs), 2**62))  # tests move it
        # Pruning needs the documents' rows, and the query's terms in column order (a
        # document's score is summed in the query's order, and read from its row by a merge).
        rows = self._rows
        prune = (PRUNE and positive and self.n_docs >= PRUNE_MIN_DOCS and rows is not None
                 and q.has_sorted_indices)
        if prune:
            term_max, max_norm = self._prune_bounds()
        else:
            rows, term_max, max_norm = _NO_ROWS, _NO_BOUNDS, 0.0
        assert rows is not None
        lanes = self._matrix_lanes(q, q_ind, q_val, positive)
        if lanes:
            f_ptr, f_ind, f_val = self._rows  # type: ignore[misc]
            _matrix_kernel(q_ptr, q_ind, q_val, f_ptr, f_ind, f_val, self.n_terms, k, lanes,
                           blocked, out_idx, out_score)
        elif q.shape[0] == 1 and positive:  # one query (a request): no thread pool to wake
            _search_block_positive(q_ptr, q_ind, q_val, self._ptr, self._ind, self._val,
                                   self.n_docs, k, 0, 1, blocked, dense_at, out_idx, out_score,
                                   *rows, term_max, max_norm, prune, PRUNE_MIN_GAIN)
        elif q.shape[0] == 1:
            _search_block(q_ptr, q_ind, q_val, self._ptr, self._ind, self._val, self.n_docs, k,
                          0, 1, blocked, dense_at, out_idx, out_score)
        elif q.shape[0] and self.n_docs:
            _topk_kernel(q_ptr, q_ind, q_val, self._ptr, self._ind, self._val, self.n_docs, k,
                         min(q.shape[0], numba.get_num_threads() * 8), blocked, positive,
                         dense_at, out_idx, out_score, *rows, term_max, max_norm, prune,
                         PRUNE_MIN_GAIN)
        return out_idx, out_score

    def _matrix_lanes(self, q: sp.csr_matrix, q_ind: np.ndarray, q_val: np.ndarray,
                      positive: bool) -> int:
        """Queries per block when the queries are scored a block at a time from the
        documents' rows (:func:`_search_matrix_block`; the same answers as the walk), or 0
        to walk their posting lists: the cheaper of the two by :data:`MATRIX_COST`, on
        this many threads."""
        n_q = q.shape[0]
        if not (MATRIX and positive and self._rows is not None and n_q >= MATRIX_MIN_QUERIES
                and self.n_docs and len(q_val) and q.has_canonical_format):
            return 0
        # No product of a query's weight and a document's may round to 0: the walk marks
        # such a document as touched, the block's product cannot tell it from a missing term.
        if self._smallest is None:
            self._smallest = np.float32(self._val.min())
        if not np.float32(q_val.min()) * self._smallest > 0:
            return 0
        threads = numba.get_num_threads()
        # Blocks for every thread where there are queries enough, of whole vectors (16).
        lanes = min(MATRIX_LANES, max(16, -(-n_q // (16 * threads)) * 16))
        n_blocks = -(-n_q // lanes)
        per_entry, per_lane = MATRIX_COST
        by_rows = -(-n_blocks // threads) * (per_entry + per_lane * lanes) * self._ptr[-1]
        walk = float(np.diff(self._ptr)[q_ind].sum()) / min(threads, n_q)  # postings
        return lanes if walk > by_rows else 0


# Many queries at once (MATRIX_MIN_QUERIES or more) are scored by blocks of up to
# MATRIX_LANES from the documents' rows when the walk would take longer: reading a row
# entry once for a block costs about MATRIX_COST[0] postings walked, plus MATRIX_COST[1]
# per query of the block (measured on one thread with the batch benchmark's character
# n-grams, against the pruned walk). Tests turn MATRIX off to compare, and move the others.
MATRIX = True
MATRIX_LANES = 128
MATRIX_MIN_QUERIES = 16
MATRIX_COST = (2.0, 0.065)


# Whether dense queries take the pruned search (tests turn it off to compare the two):
# only in an index of PRUNE_MIN_DOCS documents or more, and only those queries whose
# postings outnumber PRUNE_MIN_GAIN times the steps that pruning adds (tests set both to
# 0 to prune small corpora). Measured with the batch benchmark's character n-grams, the
# pruned search was 1.4-1.5x faster against 100,000 programs and 1.7x slower against
# 2,000 known needs (a catalog's reach): there the documents' partial scores lie too close
# for the bound to rule many out (1,344 of 2,000 still candidates at the median), and 98%
# of the queries walked every term after all, on top of the passes that pruning adds.
PRUNE = True
PRUNE_MIN_DOCS = 50_000
PRUNE_MIN_GAIN = 4.0
_NO_ROWS = (np.zeros(1, dtype=np.int32), np.zeros(0, dtype=np.int32),
            np.zeros(0, dtype=np.float64))
_NO_BOUNDS = np.zeros(0, dtype=np.float32)


def topk_sparse(queries: sp.spmatrix, docs: sp.spmatrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` rows of ``docs`` by dot product with each row of ``queries``.

    A one-shot shortcut for ``PostingIndex(docs).search(queries, k)``.
    """
    return PostingIndex(docs).search(queries, k)
