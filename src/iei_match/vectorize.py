"""TF-IDF and BM25 vectorisation of two-field documents (title + body).

The vectorizer keeps title and body apart so that a title match can weigh more than a
word somewhere in a long profile, and so the ranker can see both. Its learned state is a
vocabulary list and an idf array, saved as JSON + ``.npy`` (no pickle).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain, repeat

import numba
import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2

from .csr import csr_of
from .errors import InputError, NotFittedError
from .ngram_counts import NgramKeys, char_ngram_counts
from .runs import RunTable, normalized_run_table, run_table
from .text import all_cjk, char_ngrams, normalize_many, tokenize

__all__ = ["FieldVectorizer", "FieldMatrices", "bm25_weights", "take_rows", "small_texts"]

ANALYZERS = {"word": tokenize, "char": char_ngrams}


@dataclass(frozen=True)
class FieldMatrices:
    """L2-normalised TF-IDF rows of a set of documents.

    Attributes
    ----------
    title, body : scipy.sparse.csr_matrix
        Each field on its own.
    full : scipy.sparse.csr_matrix
        The document as a whole: TF-IDF of the title's counts times ``title_weight`` plus
        the body's counts.
    counts : scipy.sparse.csr_matrix
        Raw term counts of title + body, for BM25.
    """

    title: sp.csr_matrix
    body: sp.csr_matrix
    full: sp.csr_matrix
    counts: sp.csr_matrix

    def take(self, rows: np.ndarray) -> FieldMatrices:
        """The same matrices restricted to ``rows``."""
        rows = np.asarray(rows, dtype=np.int64)
        return FieldMatrices(*(take_rows(m, rows)
                               for m in (self.title, self.body, self.full, self.counts)))


def take_rows(m: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
    """``m[rows]`` for a CSR matrix and an array of row numbers, with the same arrays and
    index order; a request takes a few hundred rows of eight matrices, and scipy's general
    indexing spent more time checking than copying (a batch partition takes ~150,000)."""
    if not isinstance(m, sp.csr_matrix) or rows.ndim != 1:
        return m[rows]
    if len(rows) and (rows.min() < -m.shape[0] or rows.max() >= m.shape[0]):
        raise IndexError(f"row index out of range for a matrix of {m.shape[0]} rows")
    rows = np.where(rows < 0, rows + m.shape[0], rows)
    lengths = m.indptr[rows + 1] - m.indptr[rows]
    total = int(lengths.sum())
    indptr = np.zeros(len(rows) + 1, dtype=np.int64 if total >= 2**31 else m.indptr.dtype)
    np.cumsum(lengths, out=indptr[1:])
    indices = np.empty(total, dtype=m.indices.dtype)
    data = np.empty(total, dtype=m.data.dtype)
    _gather_rows(m.indptr, m.indices, m.data, rows, indptr, indices, data)
    out = sp.csr_matrix((data, indices, indptr), shape=(len(rows), m.shape[1]), copy=False)
    if m.has_sorted_indices:  # rows are copied as they are: order and duplicates kept
        out.has_sorted_indices = True
    return out


@numba.njit(cache=True, nogil=True)
def _gather_rows(ptr, ind, val, rows, out_ptr, out_ind, out_val):
    for r in range(len(rows)):
        a, b, o = ptr[rows[r]], ptr[rows[r] + 1], out_ptr[r]
        for x in range(b - a):
            out_ind[o + x] = ind[a + x]
            out_val[o + x] = val[a + x]


_MAX_PIECE = 8  # characters: the longest vocabulary word sought in an unseen word
_MAX_SPLITS = 65_536  # unseen words whose pieces are kept

SMALL_TEXTS = 4096  # characters: below this, texts are counted one by one (small_texts)


def small_texts(*columns: Sequence[str]) -> bool:
    """Whether these few texts are better counted one by one than as a batch (a request's
    need: the counts are the same either way)."""
    size = 0
    for column in columns:
        if len(column) > 16:
            return False
        size += sum(len(t) for t in column)
    return size <= SMALL_TEXTS


def _count_matrix(token_lists: Sequence[list[str]], index: dict[str, int]) -> sp.csr_matrix:
    indptr = [0]
    indices: list[int] = []
    data: list[float] = []
    get = index.get
    for tokens in token_lists:
        for term, n in Counter(tokens).items():  # count in C, look up each term once
            j = get(term)
            if j is not None:
                indices.append(j)
                data.append(n)
        indptr.append(len(indices))
    m = sp.csr_matrix(
        (np.asarray(data, np.float32), np.asarray(indices, np.int32), np.asarray(indptr, np.int64)),
        shape=(len(token_lists), len(index)),
    )
    m.sort_indices()
    return m


def _raw_csr(data: np.ndarray, indices: np.ndarray, indptr: np.ndarray,
             shape: tuple[int, int]) -> sp.csr_matrix:
    """A CSR matrix of canonical arrays (sorted, no duplicates), flagged as such."""
    return csr_of(data, indices, indptr, shape, canonical=True)


def _sub_ptr(keep: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """The row pointer of the entries where ``keep`` is true, of a matrix with ``indptr``."""
    kept = np.zeros(len(keep) + 1, dtype=indptr.dtype)
    np.cumsum(keep, out=kept[1:])
    return kept[indptr]


# auto_wrap_output_keys=None: transform returns FieldMatrices, never an array that
# scikit-learn's set_output could wrap, so its wrapper (~10 us a call) is left out.
class FieldVectorizer(TransformerMixin, BaseEstimator,
                      auto_wrap_output_keys=None):  # type: ignore[call-arg]
    """TF-IDF over word tokens or character n-grams, field by field.

    Parameters
    ----------
    analyzer : {"word", "char"}, default="word"
        ``"word"``: jieba segmentation for Chinese, stemmed words for English.
        ``"char"``: character 2- and 3-grams inside each word or Chinese run.
    title_weight : float, default=1.0
        How many times each title term counts in :attr:`FieldMatrices.full`.
    min_df : int, default=1
        Terms in fewer documents are dropped.
    max_df : float, default=0.5
        Terms in more than this share of documents are dropped (catalogue boilerplate).

    Attributes
    ----------
    vocabulary_ : list of str
        The kept terms; column ``j`` of every matrix is ``vocabulary_[j]``.
    idf_ : ndarray of shape (n_terms,)
        Smoothed inverse document frequency, as in scikit-learn.
    stop_words_ : list of str
        The terms of the corpus that ``min_df`` / ``max_df`` dropped, as in scikit-learn.

    Notes
    -----
    A bare title (a document whose body holds no known word) is all there is to match by
    words, and jieba keeps many market titles whole ("化验员", "数据库管理员"). So a
    Chinese word of a bare title that the corpus never held is counted, when a text is
    transformed, as the known words it is made of (化验; 数据库 and 管理员): the longest
    cover of its characters by vocabulary words of two characters or more
    (:meth:`pieces`). Where there is a body, its words say more than the pieces of unseen
    ones (split there too, they lowered the held-out full texts). Every word of the corpus
    is either in the vocabulary or a stop word, so this never changes how the corpus itself
    is counted.

    Examples
    --------
    >>> v = FieldVectorizer(max_df=1.0).fit(["数控 技术", "护理"], ["数控 机床 操作", "临床 护理"])
    >>> m = v.transform(["数控 编程"], ["机床"])
    >>> sorted(v.vocabulary_[j] for j in m.full.indices)
    ['数控', '机床']
    """

    def __init__(self, analyzer="word", title_weight=1.0, min_df=1, max_df=0.5):
        self.analyzer = analyzer
        self.title_weight = title_weight
        self.min_df = min_df
        self.max_df = max_df

    def _analyze(self, texts: Sequence[str], normalized: bool = False,
                 split: bool = False) -> list[list[str]]:
        """Each text's terms; ``split``: unseen Chinese words as their known pieces."""
        if self.analyzer not in ANALYZERS:
            raise InputError(f"analyzer must be one of {sorted(ANALYZERS)}, got {self.analyzer!r}")
        fn = ANALYZERS[self.analyzer]
        docs = ([fn(t, normalized=True) for t in texts] if normalized
                else [fn(t) for t in texts])
        if split and self._splits_words():
            docs = [self._known_pieces(doc) for doc in docs]
        return docs

    def _splits_words(self) -> bool:
        """Whether unseen words of bare titles are split (a word vectorizer that knows its
        stop words: one saved before they were kept splits nothing)."""
        return self.analyzer == "word" and self.__dict__.get("_stop") is not None

    def _known_pieces(self, tokens: list[str]) -> list[str]:
        index, splits = self._index, self._splits
        out: list[str] = []
        for t in tokens:
            if t in index:
                out.append(t)
                continue
            pieces = splits.get(t)
            if pieces is None:
                if len(splits) >= _MAX_SPLITS:  # a long-running service meets many words
                    splits.clear()
                pieces = splits[t] = self.pieces(t)
            out += pieces
        return out

    def pieces(self, word: str) -> tuple[str, ...]:
        """The vocabulary words an unseen Chinese word is made of.

        The cover of the most characters by vocabulary words of two characters or more
        (of the fewest words among such covers), in order; ``(word,)`` itself when the
        word is known, is a stop word, is not Chinese, or no piece is known.

        Examples
        --------
        >>> v = FieldVectorizer(max_df=1.0).fit(["化验", "数据库 管理员"], ["", ""])
        >>> v.pieces("化验员"), v.pieces("数据库管理员"), v.pieces("化验")
        (('化验',), ('数据库', '管理员'), ('化验',))
        """
        self._check_fitted()
        n = len(word)
        if (word in self._index or n < 3 or word in (self._stop or ())
                or not all_cjk(word)):
            return (word,)
        # best[i]: (characters covered, -pieces) of the best cover of word[:i], and its
        # last piece's start (or -1: character i-1 left out).
        best: list[tuple[tuple[int, int], int]] = [((0, 0), -1)] * (n + 1)
        for i in range(1, n + 1):
            cand = (best[i - 1][0], -1)
            for j in range(max(0, i - _MAX_PIECE), i - 1):
                if word[j:i] in self._index:
                    covered, neg = best[j][0]
                    score = (covered + i - j, neg - 1)
                    if score > cand[0]:
                        cand = (score, j)
            best[i] = cand
        out: list[str] = []
        i = n
        while i > 0:
            j = best[i][1]
            if j < 0:
                i -= 1
            else:
                out.append(word[j:i])
                i = j
        return tuple(reversed(out)) or (word,)

    def fit(self, titles: Sequence[str], texts: Sequence[str]) -> FieldVectorizer:
        """Learn the vocabulary and idf from a corpus of (title, body) documents."""
        if len(titles) != len(texts) or len(titles) == 0:
            raise InputError("titles and texts must be non-empty and of the same length")
        docs = [a + b for a, b in zip(self._analyze(titles), self._analyze(texts), strict=True)]
        df = Counter(t for doc in docs for t in set(doc))
        n = len(docs)
        limit = self.max_df * n if isinstance(self.max_df, float) else self.max_df
        vocab = sorted(t for t, c in df.items() if self.min_df <= c <= limit)
        self.stop_words_ = sorted(t for t, c in df.items() if not self.min_df <= c <= limit)
        if not vocab:
            raise InputError("no term is left after min_df / max_df: the corpus is too small")
        self.vocabulary_ = vocab
        counts = np.array([df[t] for t in vocab], dtype=np.float64)
        self.idf_ = (np.log((1.0 + n) / (1.0 + counts)) + 1.0).astype(np.float32)
        self.n_docs_ = n
        self._index = {t: j for j, t in enumerate(vocab)}
        self._stop: frozenset[str] | None = frozenset(self.stop_words_)
        self._splits: dict[str, tuple[str, ...]] = {}
        self.__dict__.pop("_keys", None)  # the n-gram keys of an earlier fit
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "idf_"):
            raise NotFittedError("this FieldVectorizer is not fitted yet: call fit first")
        if not hasattr(self, "_index"):
            self._index = {t: j for j, t in enumerate(self.vocabulary_)}
        if not hasattr(self, "_splits"):
            stop = getattr(self, "stop_words_", None)  # None: a model saved without them
            self._stop, self._splits = (None if stop is None else frozenset(stop)), {}

    def _tfidf(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        if counts.shape[0] == 0:
            return counts.copy()
        m = sp.csr_matrix(counts)
        if not m.has_canonical_format:  # a copy: the caller's counts stay as they are
            m = m.copy()
            m.sum_duplicates()
        return self._raw_tfidf(m.data, m.indices, m.indptr, m.shape)

    def _counts(self, texts: Sequence[str], normalized: bool,
                runs: RunTable | None = None, split: bool = False) -> sp.csr_matrix:
        """Term counts of each text in the learned vocabulary (``runs``: the
        :func:`~iei_match.runs.run_table` of ``texts``, made here when not given;
        ``split``: unseen Chinese words counted as their known pieces)."""
        if runs is None:
            texts, runs = (normalized_run_table(texts) if not normalized
                           else (texts, run_table(texts)))
        if self.analyzer == "char":
            if not hasattr(self, "_keys"):
                self._keys = NgramKeys(self._index)
            if self._keys.usable:  # counted in numpy (ngram_counts.py): same counts
                return runs.term_counts(lambda r: char_ngram_counts(r, self._keys),
                                        len(self._index))
        n = len(self._index)
        # Words (or n-grams the keys cannot hold): the distinct runs of the distinct pieces
        # analysed once each (jieba costs more per character than cutting them).
        return runs.term_counts(lambda pieces: run_table(pieces, by="runs").term_counts(
            lambda r: _count_matrix(self._analyze(r, True, split), self._index), n), n)

    def transform(self, titles: Sequence[str], texts: Sequence[str], *,
                  normalized: bool = False,
                  runs: tuple[RunTable | None, RunTable | None] = (None, None)
                  ) -> FieldMatrices:
        """Vectorise documents with the learned vocabulary; unknown terms are ignored.

        ``normalized=True`` says every title and text is already the output of
        :func:`iei_match.text.normalize` (they are not normalised again); ``runs`` may
        then give the :func:`~iei_match.runs.run_table` of the titles and of the texts,
        to share them between vectorizers.
        """
        self._check_fitted()
        if len(titles) != len(texts):
            raise InputError("titles and texts must be of the same length")
        if runs == (None, None) and len(titles) and small_texts(titles, texts):
            # A request: a few texts counted term by term in Python and their matrices
            # made directly (scipy's sums and slices of matrices cost more than the counts).
            if not normalized:
                titles, texts = normalize_many(titles), normalize_many(texts)
            return self._few(titles, texts)
        t_counts = self._counts(titles, normalized, runs[0] if normalized else None)
        b_counts = self._counts(texts, normalized, runs[1] if normalized else None)
        if self._splits_words():
            bare = np.flatnonzero(np.diff(b_counts.indptr) == 0)
            if len(bare):  # bare titles counted again, their unseen words split
                split = self._counts([titles[i] for i in bare.tolist()], normalized, split=True)
                order = np.arange(len(titles))
                order[bare] = len(titles) + np.arange(len(bare))
                t_counts = sp.vstack([t_counts, split], format="csr")[order]
        counts = (t_counts + b_counts).tocsr()
        full = self._tfidf((self.title_weight * t_counts + b_counts).tocsr())
        return FieldMatrices(self._tfidf(t_counts), self._tfidf(b_counts), full, counts)

    def _few(self, titles: Sequence[str], texts: Sequence[str]) -> FieldMatrices:
        """:meth:`transform` of a few normalised texts, without scipy's arithmetic: the same
        matrices to the last bit (dtypes, sorted indices, values). Each token is looked up
        in the vocabulary once, in C (``map``), and the counts are made by numpy: a
        character n-gram body has a few hundred tokens."""
        n = len(titles)
        heads, bodies = self._analyze(titles, True), self._analyze(texts, True)
        if self._splits_words():
            index = self._index
            heads = [h if any(map(index.__contains__, b)) else self._known_pieces(h)
                     for h, b in zip(heads, bodies, strict=True)]
        tokens = heads + bodies
        sizes = np.fromiter(map(len, tokens), dtype=np.int64, count=2 * n)
        ids = np.fromiter(map(self._index.get, chain.from_iterable(tokens), repeat(-1)),
                          dtype=np.int64, count=int(sizes.sum()))
        part = np.repeat(np.arange(2 * n), sizes)  # titles 0..n-1, then the bodies
        known = ids >= 0
        ids, part = ids[known], part[known]
        n_terms = len(self._index)
        in_title = part < n
        keys, where = np.unique(np.where(in_title, part, part - n) * n_terms + ids,
                                return_inverse=True)  # by document, then column
        tc = np.bincount(where[in_title], minlength=len(keys)).astype(np.float32)
        bc = np.bincount(where[~in_title], minlength=len(keys)).astype(np.float32)
        indices = (keys % n_terms).astype(np.int32)
        indptr = np.searchsorted(keys, np.arange(n + 1) * n_terms).astype(np.int32)
        shape = (n, n_terms)
        counts = _raw_csr(tc + bc, indices, indptr, shape)
        full = self._raw_tfidf(tc * self.title_weight + bc, indices, indptr, shape)
        in_t, in_b = tc > 0, bc > 0
        title = self._raw_tfidf(tc[in_t], indices[in_t], _sub_ptr(in_t, indptr), shape)
        body = self._raw_tfidf(bc[in_b], indices[in_b], _sub_ptr(in_b, indptr), shape)
        return FieldMatrices(title, body, full, counts)

    def _raw_tfidf(self, counts: np.ndarray, indices: np.ndarray, indptr: np.ndarray,
                   shape: tuple[int, int]) -> sp.csr_matrix:
        """:meth:`_tfidf` of the canonical count matrix with these arrays."""
        data = np.log1p(counts.astype(np.float64))
        data *= self.idf_[indices]  # (counts @ diag(idf)) without a vocabulary-sized diag
        m = _raw_csr(data, indices, indptr, shape)
        inplace_csr_row_normalize_l2(m)  # sklearn's normalize(), without its validation
        return m

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        self._check_fitted()
        return np.asarray(self.vocabulary_, dtype=object)

    def get_state(self) -> tuple[dict, np.ndarray]:
        """Parameters and vocabulary as JSON-able data, and the idf array."""
        self._check_fitted()
        state = {"params": self.get_params(), "vocabulary": self.vocabulary_,
                 "n_docs": self.n_docs_}
        if getattr(self, "stop_words_", None) is not None:
            state["stop_words"] = self.stop_words_
        return state, self.idf_

    @classmethod
    def from_state(cls, state: dict, idf: np.ndarray) -> FieldVectorizer:
        """Rebuild a fitted vectorizer from :meth:`get_state`'s output."""
        v = cls(**state["params"])
        v.vocabulary_ = list(state["vocabulary"])
        v.n_docs_ = int(state["n_docs"])
        v.idf_ = np.asarray(idf, dtype=np.float32)
        if "stop_words" in state:  # models saved before they were kept split nothing
            v.stop_words_ = list(state["stop_words"])
        if len(v.idf_) != len(v.vocabulary_):
            raise InputError("vocabulary and idf have different lengths")
        v._check_fitted()
        return v


def bm25_weights(
    counts: sp.csr_matrix, idf: np.ndarray, k1: float = 1.2, b: float = 0.75,
    avgdl: float | None = None,
) -> sp.csr_matrix:
    """Per-document BM25 term weights, so that ``query_binary @ weights.T`` is the BM25 score.

    Parameters
    ----------
    counts : csr_matrix of shape (n_docs, n_terms)
        Raw term counts of the documents.
    idf : ndarray of shape (n_terms,)
        Term weights (the vectorizer's ``idf_``).
    avgdl : float, optional
        Average document length to normalise by; by default that of ``counts``. Pass the
        training corpus's so that a document's weights do not depend on its batch.
    """
    counts = counts.tocsr()
    if not counts.has_canonical_format:  # summed and sorted, as a conversion of dtype would
        counts = counts.copy()
        counts.sum_duplicates()
    data, indptr = counts.data.astype(np.float32, copy=False), counts.indptr
    sizes = np.diff(indptr)
    # Row sums as scipy's ``sum(axis=1)`` makes them (np.add.reduceat over each non-empty
    # row's stored values, in float32), without its copies of the matrix.
    lengths = np.zeros(counts.shape[0], dtype=np.float32)
    full = sizes > 0
    if full.any():
        lengths[full] = np.add.reduceat(data[:indptr[-1]], indptr[:-1][full])
    avg = avgdl if avgdl is not None else (lengths.mean() if len(lengths) else 1.0)
    avg = avg if avg > 0 else 1.0
    norm = k1 * (1.0 - b + b * lengths / avg)
    row_norm = np.repeat(norm, sizes).astype(np.float32)
    weights = data * (k1 + 1.0) / (data + row_norm) * idf[counts.indices]
    w = csr_of(weights, counts.indices, indptr, counts.shape)
    if counts.__dict__.get("_has_canonical_format"):
        w.has_sorted_indices = w.has_canonical_format = True
    return w
