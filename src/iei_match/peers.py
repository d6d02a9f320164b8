"""The baselines a user would reach for instead of our ranker, behind one call.

Each peer turns queries and documents into sparse rows whose product is the score
(cosine for the TF-IDF peers, Okapi BM25 for ``bm25``); :func:`rank_peer` multiplies
them chunk by chunk and keeps the top ``k`` per query, best first, ties going to
the lower document index.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from .errors import InputError
from .text import has_cjk

__all__ = ["PEERS", "rank_peer", "word_tokens"]

PEERS = ("tfidf-word", "tfidf-char", "bm25")

_WORD = re.compile(r"\w+")
_CELLS = 4_000_000  # dense scores held at once: chunk rows x documents


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def word_tokens(text: str) -> list[str]:
    """Split a text into lower-cased word tokens, with jieba when it holds CJK.

    Parameters
    ----------
    text : str
        Any text; it is NFKC-normalised and lower-cased first.

    Returns
    -------
    list of str
        ``rjieba.cut`` tokens that hold a word character when the text has CJK
        characters, else the ``\\w+`` runs.

    Examples
    --------
    >>> word_tokens("Ｗｅｂ Developer, back-end")
    ['web', 'developer', 'back', 'end']
    >>> word_tokens("Java开发工程师，负责测试")
    ['java', '开发', '工程师', '负责', '测试']
    """
    text = _norm(text)
    if has_cjk(text):
        import rjieba

        return [t.strip() for t in rjieba.cut(text) if _WORD.search(t)]
    return _WORD.findall(text)


def _tfidf(vectorizer: TfidfVectorizer, queries, docs):
    try:
        m = vectorizer.fit_transform(list(docs) + list(queries)).tocsr()
    except ValueError as err:  # nothing to count in any text
        if "empty vocabulary" not in str(err):
            raise
        return sp.csr_matrix((len(queries), 1)), sp.csr_matrix((len(docs), 1))
    return m[len(docs) :], m[: len(docs)]


def _bm25(queries, docs):
    import bm25s

    doc_tokens = [word_tokens(d) for d in docs]
    if not any(doc_tokens):
        return sp.csr_matrix((len(queries), 1)), sp.csr_matrix((len(docs), 1))
    index = bm25s.BM25()
    index.index(doc_tokens, show_progress=False)
    s = index.scores  # CSC (documents x vocabulary) of per-term BM25 contributions
    n_vocab = len(s["indptr"]) - 1
    d = sp.csc_matrix((s["data"], s["indices"], s["indptr"]), shape=(s["num_docs"], n_vocab))
    ids = [[index.vocab_dict.get(t, n_vocab) for t in word_tokens(q)] for q in queries]
    rows = np.repeat(np.arange(len(ids)), [len(x) for x in ids])
    cols = np.fromiter((i for x in ids for i in x), dtype=np.int64, count=len(rows))
    keep = cols < n_vocab  # unknown tokens (and bm25s's empty token) score nothing
    q = sp.csr_matrix(
        (np.ones(keep.sum(), np.float32), (rows[keep], cols[keep])), shape=(len(ids), n_vocab)
    )  # duplicates sum: a repeated query token counts again, as in bm25s
    return q, d.tocsr()


def _top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` of each row, best first, equal scores by lower column index."""
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]
    above = scores > kth
    tied = scores == kth
    need = k - above.sum(axis=1, keepdims=True)
    mask = above | (tied & (np.cumsum(tied, axis=1) <= need))
    cols = np.nonzero(mask)[1].reshape(-1, k)  # row-major: ascending index per row
    vals = np.take_along_axis(scores, cols, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(cols, order, axis=1), np.take_along_axis(vals, order, axis=1)


def rank_peer(
    name: str, queries: list[str], docs: list[str], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rank ``docs`` for each query with one of the baseline rankers in :data:`PEERS`.

    Parameters
    ----------
    name : {"tfidf-word", "tfidf-char", "bm25"}
        ``tfidf-word``: scikit-learn TF-IDF (sublinear tf) over :func:`word_tokens`,
        cosine. ``tfidf-char``: TF-IDF over ``char_wb`` 2- to 4-grams of the
        NFKC lower-cased text, cosine. Both are fitted on docs and queries together.
        ``bm25``: :mod:`bm25s` (Lucene BM25, k1=1.5, b=0.75) indexing the docs'
        :func:`word_tokens`.
    queries : list of str
        The texts to rank documents for.
    docs : list of str
        The texts to rank; at least one.
    k : int
        How many documents to return per query; more than ``len(docs)`` is cut to
        ``len(docs)``.

    Returns
    -------
    indices : numpy.ndarray of int, shape (len(queries), k)
        Document positions, best first; equal scores go to the lower position.
    scores : numpy.ndarray of float, shape (len(queries), k)
        Their scores, non-increasing along each row.

    Raises
    ------
    InputError
        Unknown ``name``, ``k < 1``, no docs, or a query or doc that is not a str.

    Examples
    --------
    >>> docs = ["nursing care of patients", "welding and metal work", "护理 病人"]
    >>> idx, sc = rank_peer("tfidf-word", ["metal welding", "病人护理"], docs, k=2)
    >>> idx.tolist()
    [[1, 0], [2, 0]]
    >>> bool(sc[0, 0] > 0.5), float(sc[0, 1])
    (True, 0.0)
    """
    if name not in PEERS:
        raise InputError(f"unknown peer {name!r}; choose one of {PEERS}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be an int >= 1, got {k!r}")
    queries, docs = list(queries), list(docs)
    if not docs:
        raise InputError("docs is empty: there is nothing to rank")
    if not all(isinstance(t, str) for t in queries + docs):
        raise InputError("every query and doc must be a str")
    k = min(int(k), len(docs))
    if name == "tfidf-word":
        q, d = _tfidf(TfidfVectorizer(analyzer=word_tokens, sublinear_tf=True), queries, docs)
    elif name == "tfidf-char":
        vec = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, preprocessor=_norm
        )
        q, d = _tfidf(vec, queries, docs)
    else:
        q, d = _bm25(queries, docs)
    dt = d.T.tocsc()
    step = max(1, _CELLS // len(docs))
    idx = np.zeros((len(queries), k), dtype=np.int64)
    val = np.zeros((len(queries), k), dtype=np.float64)
    for start in range(0, len(queries), step):
        block = (q[start : start + step] @ dt).toarray().astype(np.float64)
        idx[start : start + step], val[start : start + step] = _top_k(block, k)
    return idx, val
