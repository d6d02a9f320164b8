"""Matched English terms as the pair's texts spell them, for many pairs at once.

:func:`~iei_match.explanations.spelled_terms` spells the stems of one pair in Python: a
whole catalog ranked both ways asks it for a few hundred thousand pairs, and an English
catalog spent a quarter of its ranking there. :func:`spell_pairs` gives the same spellings
from a table of each text's spellings and one compiled pass over the pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numba
import numpy as np

from .explanations import surface_forms

__all__ = ["spell_pairs"]


class _Forms:
    """The spellings of the stems of some texts, as arrays: for text ``r`` (its position in
    ``rows``), entries ``ptr[r]:ptr[r + 1]`` give a stem's vocabulary column, a spelling's
    id and its count, sorted by column and then by id."""

    def __init__(self, text: Callable[[int], str], rows: np.ndarray, column: dict[str, int],
                 ids: dict[str, int]):
        self.at = {r: i for i, r in enumerate(rows.tolist())}
        ptr, stem, word, count = [0], [], [], []
        for r in rows.tolist():
            entries = sorted((column[s], ids.setdefault(w, len(ids)), c)
                             for s, forms in surface_forms(text(r)).items() if s in column
                             for w, c in forms.items())
            for s, w, c in entries:
                stem.append(s)
                word.append(w)
                count.append(c)
            ptr.append(len(stem))
        self.ptr = np.array(ptr, np.int64)
        self.stem = np.array(stem, np.int64)
        self.word = np.array(word, np.int64)
        self.count = np.array(count, np.int64)

    def positions(self, rows: np.ndarray) -> np.ndarray:
        return np.fromiter((self.at[r] for r in rows.tolist()), np.int64, count=len(rows))


def spell_pairs(terms: np.ndarray, shown: np.ndarray, vocabulary: Sequence[str],
                column: dict[str, int], a_text: Callable[[int], str], a_rows: np.ndarray,
                b_text: Callable[[int], str], b_rows: np.ndarray,
                n_terms: int) -> list[list[str]]:
    """The first ``n_terms`` distinct spellings of each pair's terms.

    Pair ``i`` is (row ``a_rows[i]`` of side a, row ``b_rows[i]`` of side b); its terms are
    the vocabulary columns ``terms[i, :shown[i]]``, in order. A term becomes its most
    frequent spelling over the two texts (the shortest, then the first in code-point order,
    on a tie), or stays as it is when neither text spells it; a spelling already shown is
    skipped. The result equals :func:`~iei_match.explanations.spelled_terms` of each pair's
    terms with the :func:`~iei_match.explanations.surface_forms` of its two texts.

    Parameters
    ----------
    terms : ndarray of int, shape (n_pairs, m)
    shown : ndarray of int, shape (n_pairs,)
        How many of each row's ``terms`` to look at (at most ``m``).
    vocabulary : sequence of str
        The word vocabulary (column ``j`` is ``vocabulary[j]``).
    column : dict
        A vocabulary term's column.
    a_text, b_text : callable
        The (normalised) text of a row of each side.
    a_rows, b_rows : ndarray of int, shape (n_pairs,)
    n_terms : int

    Examples
    --------
    >>> vocab = ["cnc", "lath", "oper"]
    >>> texts = ["cnc lathe operator", "lathes and lathe work, operators"]
    >>> spell_pairs(np.array([[1, 2, 0]]), np.array([3]), vocab,
    ...             {t: j for j, t in enumerate(vocab)}, texts.__getitem__, np.array([0]),
    ...             texts.__getitem__, np.array([1]), 5)
    [['lathe', 'operator', 'cnc']]
    """
    terms = np.asarray(terms, np.int64)
    shown = np.minimum(np.asarray(shown, np.int64), terms.shape[1])
    a_rows, b_rows = np.asarray(a_rows, np.int64), np.asarray(b_rows, np.int64)
    ids: dict[str, int] = {}
    a = _Forms(a_text, np.unique(a_rows), column, ids)
    b = _Forms(b_text, np.unique(b_rows), column, ids)
    # Each term that may show as itself gets an id too, so that equal strings share one.
    used = np.unique(terms[np.arange(terms.shape[1]) < shown[:, None]])
    own = np.full(len(vocabulary), -1, np.int64)
    for j in used.astype(np.int64).tolist():
        own[j] = ids.setdefault(vocabulary[j], len(ids))
    strings = list(ids)
    if not strings:  # no term to show
        return [[] for _ in range(len(terms))]
    order = np.empty(len(strings), np.int64)  # rank by (length, string), as the tie-break
    order[sorted(range(len(strings)), key=lambda i: (len(strings[i]), strings[i]))] = \
        np.arange(len(strings))
    out = np.full((len(terms), n_terms), -1, np.int64)
    _spell(terms, shown, a.positions(a_rows), a.ptr, a.stem, a.word, a.count,
           b.positions(b_rows), b.ptr, b.stem, b.word, b.count, own, order, out)
    text = np.array(strings, dtype=object)
    counts = (out >= 0).sum(axis=1).tolist()  # the spellings fill each row from the left
    return [row[:c] for row, c in zip(text[np.maximum(out, 0)].tolist(), counts, strict=True)]


@numba.njit(cache=True, nogil=True)
def _spell(terms, shown, a_at, a_ptr, a_stem, a_word, a_count, b_at, b_ptr, b_stem, b_word,
           b_count, own, order, out):
    n_terms = out.shape[1]
    for i in range(terms.shape[0]):
        k = 0
        ra, rb = a_at[i], b_at[i]
        for j in range(shown[i]):
            t = terms[i, j]
            x = a_ptr[ra] + np.searchsorted(a_stem[a_ptr[ra]:a_ptr[ra + 1]], t)
            x_end = x
            while x_end < a_ptr[ra + 1] and a_stem[x_end] == t:
                x_end += 1
            y = b_ptr[rb] + np.searchsorted(b_stem[b_ptr[rb]:b_ptr[rb + 1]], t)
            y_end = y
            while y_end < b_ptr[rb + 1] and b_stem[y_end] == t:
                y_end += 1
            best, best_count = own[t], 0
            # Both runs are sorted by spelling id: walk them together, summing the counts
            # of a spelling found in both texts.
            while x < x_end or y < y_end:
                if y >= y_end or (x < x_end and a_word[x] < b_word[y]):
                    w, c = a_word[x], a_count[x]
                    x += 1
                elif x >= x_end or b_word[y] < a_word[x]:
                    w, c = b_word[y], b_count[y]
                    y += 1
                else:
                    w, c = a_word[x], a_count[x] + b_count[y]
                    x += 1
                    y += 1
                if best_count == 0 or c > best_count or (c == best_count
                                                          and order[w] < order[best]):
                    best, best_count = w, c
            seen = False
            for q in range(k):
                if out[i, q] == best:
                    seen = True
                    break
            if not seen:
                out[i, k] = best
                k += 1
                if k == n_terms:
                    break
