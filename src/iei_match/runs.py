"""Normalised texts as counts of their runs, for vectorising many documents at once.

Both analyzers look at a text run by run (a Chinese run, or a word of letters and digits:
``text._RUN``), and what they make of a run depends on that run only: jieba's words or
the stemmed word (:func:`~iei_match.text.tokenize`), its character n-grams
(:func:`~iei_match.text.char_ngrams`). A catalog repeats its runs (phrases, words) across
documents, so a batch of texts is cut into runs once, the distinct runs are analysed once
each, and a document's term counts are its run counts times each run's term counts (one
sparse product): the same counts as analysing every document on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .text import RUN_OR_SEPARATOR, SEPARATOR

__all__ = ["RunTable", "run_table"]

_CHUNK = 1 << 23  # characters cut at once: bounds the list of run strings held


@dataclass(frozen=True)
class RunTable:
    """Texts as counts of their distinct runs.

    Attributes
    ----------
    counts : csr_matrix of shape (n_texts, len(runs)), float32
    runs : list of str
        The distinct runs, in the order of ``counts``' columns.
    """

    counts: sp.csr_matrix
    runs: list[str]

    def term_counts(self, per_run: Callable[[list[str]], sp.csr_matrix],
                    n_columns: int) -> sp.csr_matrix:
        """Term counts of each text, float32 with sorted indices; ``per_run(runs)`` gives
        each run's counts (a CSR matrix, one row per run, ``n_columns`` columns)."""
        if not self.runs:
            return sp.csr_matrix((self.counts.shape[0], n_columns), dtype=np.float32)
        m = sp.csr_matrix(self.counts @ per_run(self.runs), dtype=np.float32)
        m.sort_indices()
        return m


def run_table(texts: Sequence[str]) -> RunTable | None:
    """The runs of each normalised text (:func:`~iei_match.text.normalize`'s output).

    Returns None when a text holds the private-use character that separates texts here
    (callers then analyse text by text).
    """
    index: dict[str, int] = {SEPARATOR: 0}
    parts, batch, size = [], [], 0
    for i, t in enumerate(texts):
        batch.append(t)
        size += len(t) + 1
        if size >= _CHUNK or i == len(texts) - 1:
            part = _cut_batch(batch, index)
            if part is None:
                return None
            parts.append(part)
            batch, size = [], 0
    offsets = np.cumsum([0] + [n for _, _, n in parts])
    doc = np.concatenate([d + o for (d, _, _), o in zip(parts, offsets, strict=False)]) \
        if parts else np.zeros(0, np.int64)
    code = np.concatenate([c for _, c, _ in parts]) if parts else np.zeros(0, np.int64)
    counts = sp.csr_matrix((np.ones(len(code), np.float32), (doc, code - 1)),
                           shape=(len(texts), len(index) - 1))
    counts.sum_duplicates()
    return RunTable(counts, list(index)[1:])


def _cut_batch(texts: list[str], index: dict[str, int]
               ) -> tuple[np.ndarray, np.ndarray, int] | None:
    """(text, run code) of each run of ``texts``; codes from ``index`` (grown here)."""
    found = RUN_OR_SEPARATOR.findall("".join(t + SEPARATOR for t in texts))
    codes = np.fromiter((index.setdefault(r, len(index)) for r in found), np.int64, len(found))
    is_sep = codes == 0
    if int(is_sep.sum()) != len(texts):
        return None
    doc = np.cumsum(is_sep) - is_sep  # the text each run belongs to
    return doc[~is_sep], codes[~is_sep], len(texts)
