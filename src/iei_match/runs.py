"""Normalised texts as counts of their pieces, for vectorising many documents at once.

Both analyzers look at a text run by run (a Chinese run, or a word of letters and digits:
``text._RUN``), and what they make of a run depends on that run only: jieba's words or
the stemmed word (:func:`~iei_match.text.tokenize`), its character n-grams
(:func:`~iei_match.text.char_ngrams`). A run never holds a space, so a normalised text is
the concatenation of its space-separated pieces as far as the analyzers can tell: its term
counts are the sum of its pieces' counts. A catalog repeats its pieces (sentences, phrases,
words) across documents, so a batch of texts is split into pieces once, the distinct pieces
are analysed once each, and a document's term counts are its piece counts times each
piece's term counts (one sparse product): the same counts as analysing every document on
its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .text import RUN_OR_SEPARATOR, SEPARATOR, normalize_many

__all__ = ["RunTable", "normalized_run_table", "run_table"]

_CHUNK = 1 << 23  # characters split at once: bounds the list of piece strings held


@dataclass(frozen=True)
class RunTable:
    """Texts as counts of their distinct pieces.

    Attributes
    ----------
    counts : csr_matrix of shape (n_texts, len(runs)), float32
    runs : list of str
        The distinct pieces (each one or more runs and what separates them), in the order
        of ``counts``' columns.
    """

    counts: sp.csr_matrix
    runs: list[str]

    def term_counts(self, per_run: Callable[[list[str]], sp.csr_matrix],
                    n_columns: int) -> sp.csr_matrix:
        """Term counts of each text, float32 with sorted indices; ``per_run(runs)`` gives
        each piece's counts (a CSR matrix, one row per piece, ``n_columns`` columns)."""
        if not self.runs:
            return sp.csr_matrix((self.counts.shape[0], n_columns), dtype=np.float32)
        m = sp.csr_matrix(self.counts @ per_run(self.runs), dtype=np.float32)
        m.sort_indices()
        return m


def run_table(texts: Sequence[str], by: str = "pieces") -> RunTable:
    """The distinct pieces (or runs) of each normalised text
    (:func:`~iei_match.text.normalize`'s output), and how often each text holds them.

    ``by="pieces"``: the texts split at spaces. Texts are joined (a batch of ``_CHUNK``
    characters at a time, which bounds the strings held) and split, and each piece is
    hashed once: a fraction of the cost of cutting every text into runs with a regular
    expression (a Chinese sentence is one piece of many runs). ``by="runs"``: cut into runs
    (``text._RUN``), for an analyzer that costs more per character than the cut (jieba),
    given the distinct pieces of many texts.
    """
    if by not in ("pieces", "runs"):
        raise ValueError(f"by must be 'pieces' or 'runs', got {by!r}")
    index: dict[str, int] = {SEPARATOR: 0}
    doc, code = _split_texts(texts, index, by)
    return RunTable(_counts(doc, code, len(texts), len(index) - 1), list(index)[1:])


def _counts(doc: np.ndarray, code: np.ndarray, n_texts: int, n_codes: int) -> sp.csr_matrix:
    """How often each text holds each code (codes from 1, 0 being the separator)."""
    counts = sp.csr_matrix((np.ones(len(code), np.float32), (doc, code - 1)),
                           shape=(n_texts, n_codes))
    counts.sum_duplicates()
    return counts


def _split_texts(texts: Sequence[str], index: dict[str, int], by: str
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(text, code) of each piece or run of ``texts``, split a batch of ``_CHUNK``
    characters at a time; codes from ``index`` (grown here)."""
    docs, codes, batch, size, first = [], [], [], 0, 0
    for i, t in enumerate(texts):
        batch.append(t)
        size += len(t) + 3
        if size >= _CHUNK or i == len(texts) - 1:
            d, c = _split_batch(batch, index, by)
            docs.append(d + first)
            codes.append(c)
            first += len(batch)
            batch, size = [], 0
    return (np.concatenate(docs) if docs else np.zeros(0, np.int64),
            np.concatenate(codes) if codes else np.zeros(0, np.int64))


def _split_batch(texts: list[str], index: dict[str, int], by: str
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(text, code) of each piece or run of ``texts``; codes from ``index`` (grown here)."""
    def split(text: str) -> list[str]:
        return text.split(" ") if by == "pieces" else RUN_OR_SEPARATOR.findall(text)

    found = split(f" {SEPARATOR} ".join(texts))
    codes = np.fromiter((index.setdefault(p, len(index)) for p in found), np.int64, len(found))
    is_sep = codes == 0
    if int(is_sep.sum()) != len(texts) - 1:
        # A text holds the separator: split text by text, without it (it is no run, and a
        # piece of it alone holds no term).
        parts = [[p for p in split(t) if p != SEPARATOR] for t in texts]
        doc = np.repeat(np.arange(len(texts)), [len(ps) for ps in parts])
        return doc, np.fromiter((index.setdefault(p, len(index)) for ps in parts for p in ps),
                                np.int64, len(doc))
    doc = np.cumsum(is_sep)  # the text each piece belongs to
    return doc[~is_sep], codes[~is_sep]


def normalized_run_table(texts: Sequence[str]) -> tuple[list[str], RunTable]:
    """``(normalize_many(texts), run_table(...))`` of raw texts in one pass.

    NFKC, the control characters and ``lower()`` treat an ASCII space as a boundary
    (nothing composes with it; it is neither cased nor case-ignorable), so a text's normal
    form is its space-separated pieces' normal forms joined by spaces, without the empty
    ones. The raw texts are split at spaces once, each distinct piece is normalised once
    and becomes a column of the table (two raw pieces of one normal form are two columns
    with the same counts). The texts' counts are those of :func:`run_table` of the
    normalised texts.
    """
    if any(SEPARATOR in t for t in texts):  # rare: the joined batch would be ambiguous
        normalized = normalize_many(texts)
        return normalized, run_table(normalized)
    index: dict[str, int] = {SEPARATOR: 0}
    doc, code = _split_texts(texts, index, "pieces")
    pieces = normalize_many(list(index)[1:])
    forms = np.array(pieces, dtype=object)
    keep = np.array([bool(p) for p in pieces], dtype=bool)[code - 1]
    # Each text is its non-empty pieces' forms joined (a text's pieces are consecutive).
    marks = np.flatnonzero(np.diff(doc[keep], prepend=-1))  # first kept piece of each text
    normalized = [""] * len(texts)
    if keep.any():
        kept_doc, kept_form = doc[keep], forms[code[keep] - 1]
        starts = np.r_[marks, len(kept_doc)]
        joined = [" ".join(kept_form[a:b]) for a, b in zip(starts[:-1], starts[1:], strict=True)]
        for d, t in zip(kept_doc[marks], joined, strict=True):
            normalized[d] = t
    return normalized, RunTable(_counts(doc, code, len(texts), len(pieces)), pieces)
