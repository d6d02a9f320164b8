"""Character n-gram counts of many documents at once, in numpy.

:func:`iei_match.text.char_ngrams` builds a Python string per n-gram: about a microsecond
each, 30 s for the 20,000 fields of 10,000 program profiles. Here a batch of normalised
texts becomes one array of code points; the runs (a Chinese run, or a word of letters and
digits as ``text._RUN`` finds them), the n-grams inside each run and their vocabulary
columns are found with array operations. The counts are exactly those of
``char_ngrams`` looked up in the vocabulary (``tests/test_ngram_counts.py`` checks it).

An n-gram of up to three characters is one 64-bit key, ``(c0+1) << 42 | (c1+1) << 21 |
(c2+1)`` (21 bits per code point; a shorter n-gram leaves the high parts zero), so the
vocabulary lookup is a hash-table lookup of integers (``pandas.Index.get_indexer``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["NgramKeys", "char_ngram_counts"]

_BITS = 21  # code points are below 0x110000 < 2**21
_CHUNK = 1 << 22  # characters per batch (arrays of 8 bytes each: ~32 MB)
# The Chinese ranges of ``text._CJK``.
_CJK_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2EBEF))


def _key(term: str) -> int:
    key = 0
    for ch in term:
        key = (key << _BITS) | (ord(ch) + 1)
    return key


class NgramKeys:
    """A vocabulary of n-grams of 1-3 characters as 64-bit keys.

    Parameters
    ----------
    index : dict of str to int
        Term -> column. Terms longer than three characters cannot be keyed: ``usable`` is
        then False and callers count with Python instead.
    """

    def __init__(self, index: dict[str, int]):
        self.n_columns = len(index)
        self.usable = all(1 <= len(t) <= 3 for t in index)
        if not self.usable:
            return
        keys = np.fromiter((_key(t) for t in index), np.uint64, len(index))
        self.cols = np.fromiter(index.values(), np.int32, len(index))
        self._table = pd.Index(keys)  # a hash table: 3x faster than a binary search here

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Column of each key, -1 where it is not in the vocabulary."""
        if self.n_columns == 0:
            return np.full(len(keys), -1, np.int32)
        at = self._table.get_indexer(keys)
        return np.where(at >= 0, self.cols[at], -1)


def _run_mask(cp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which characters are in a run, and where each run starts."""
    cjk = np.zeros(len(cp), bool)
    for lo, hi in _CJK_RANGES:
        cjk |= (cp >= lo) & (cp <= hi)
    start_ok = ((cp >= 0x61) & (cp <= 0x7A)) | ((cp >= 0x30) & (cp <= 0x39))  # [a-z0-9]
    latin = start_ok | (cp == 0x2B) | (cp == 0x23)  # and "+", "#" inside a word
    group = np.where(cjk, 1, np.where(latin, 2, 0)).astype(np.int8)
    new_block = np.ones(len(cp), bool)
    new_block[1:] = group[1:] != group[:-1]
    # A word starts at its block's first letter or digit ("+" and "#" before it are skipped).
    seen = np.cumsum(start_ok)
    block_start = np.flatnonzero(new_block)
    before: np.ndarray = (seen - start_ok)[block_start]  # letters and digits before each block
    seen_in_block: np.ndarray = seen - np.repeat(before, np.diff(np.r_[block_start, len(cp)]))
    in_run = cjk | (latin & (seen_in_block > 0))
    starts = in_run.copy()
    starts[1:] &= ~(in_run[:-1] & ~new_block[1:])
    return in_run, starts


def _chunk_counts(texts: Sequence[str], vocab: NgramKeys, ngram_range: tuple[int, int]
                  ) -> sp.csr_matrix:
    lo, hi = ngram_range
    if not texts:
        return sp.csr_matrix((0, vocab.n_columns), dtype=np.float32)
    joined = " ".join(texts) + " "
    cp = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), np.uint32).astype(np.uint64)
    lengths = np.fromiter((len(t) + 1 for t in texts), np.int64, len(texts))
    doc = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
    in_run, starts = _run_mask(cp)
    run_id = np.cumsum(starts)
    # Padding: the joined text ends with a space, so n-grams never run past the end.
    pad = hi
    cp_p = np.r_[cp, np.zeros(pad, np.uint64)] + 1
    in_p = np.r_[in_run, np.zeros(pad, bool)]
    rid_p = np.r_[run_id, np.full(pad, -1)]
    n_chars = len(cp)
    rows, cols = [], []
    key = np.zeros(n_chars, np.uint64)
    for n in range(1, hi + 1):
        key = (key << np.uint64(_BITS)) | cp_p[n - 1: n - 1 + n_chars]
        if n < lo:
            continue
        last = n - 1
        ok = in_run & in_p[last: last + n_chars] & (run_id == rid_p[last: last + n_chars])
        at = np.flatnonzero(ok)
        col = vocab.lookup(key[at])
        hit = col >= 0
        rows.append(doc[at[hit]])
        cols.append(col[hit])
    # A run shorter than ``lo`` counts as itself.
    run_start = np.flatnonzero(starts)
    run_len = np.bincount(run_id[in_run], minlength=len(run_start) + 1)[1:]
    short = run_len < lo
    if short.any():
        at, length = run_start[short], run_len[short]
        key = np.zeros(len(at), np.uint64)
        for j in range(lo - 1):
            key = np.where(j < length, (key << np.uint64(_BITS)) | cp_p[at + j], key)
        col = vocab.lookup(key)
        hit = col >= 0
        rows.append(doc[at[hit]])
        cols.append(col[hit])
    r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, np.int32)
    m = sp.csr_matrix((np.ones(len(r), np.float32), (r, c)),
                      shape=(len(texts), vocab.n_columns))
    m.sum_duplicates()
    m.sort_indices()
    return m


def char_ngram_counts(texts: Sequence[str], vocab: NgramKeys,
                      ngram_range: tuple[int, int] = (2, 3)) -> sp.csr_matrix:
    """Counts of each vocabulary n-gram in each text (``text.char_ngrams`` of each).

    Parameters
    ----------
    texts : sequence of str
        Texts already normalised (:func:`iei_match.text.normalize`).
    vocab : NgramKeys
    ngram_range : (int, int), default=(2, 3)
        Smallest and largest n (at most 3).

    Returns
    -------
    csr_matrix of shape (len(texts), vocab.n_columns), float32
    """
    if not 1 <= ngram_range[0] <= ngram_range[1] <= 3:
        raise ValueError(f"ngram_range must lie within (1, 3), got {ngram_range}")
    parts, batch, size = [], [], 0
    for t in texts:
        batch.append(t)
        size += len(t) + 1
        if size >= _CHUNK:
            parts.append(_chunk_counts(batch, vocab, ngram_range))
            batch, size = [], 0
    if batch or not parts:  # an empty ``texts`` gives an empty matrix
        parts.append(_chunk_counts(batch, vocab, ngram_range))
    out = parts[0] if len(parts) == 1 else sp.vstack(parts).tocsr()
    return sp.csr_matrix(out, dtype=np.float32)
