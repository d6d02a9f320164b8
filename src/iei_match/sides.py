"""One side of the pairs (needs or programs), vectorised: :class:`Side` and the helpers that
read a table's texts and rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from functools import partial

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .rows import SMALL, Rows
from .runs import RunTable, normalized_run_table
from .state import get_sparse, put_sparse
from .taxonomy import code_prefix, level_index
from .text import normalize, normalize_many
from .threads import in_threads
from .vectorize import FieldMatrices, FieldVectorizer, small_texts

__all__ = ["Side", "column_strings", "document_texts", "text_fingerprints", "stack_rows"]


BODY_EXTRAS = ("skills", "industry", "certificates")  # columns that count as body text
_MIX = np.uint64(0x100000001B3)  # combines the columns' hashes (FNV-1a's 64-bit prime)


def document_texts(table) -> tuple[list[str], list[str]]:
    """Titles and bodies of a needs or programs table (a DataFrame, :class:`~.rows.Rows` or
    records); ``skills``, ``industry`` and ``certificates`` count as body text."""
    rows = Rows.of(table)
    body = column_strings(rows["text"])
    for extra in BODY_EXTRAS:
        if extra in rows:
            body = [f"{b} {e}" for b, e in zip(body, column_strings(rows[extra]), strict=True)]
    return [str(v) for v in rows["title"]], body


def column_strings(values: pd.Series | list) -> list[str]:
    """``fillna("").astype(str).tolist()`` of a column (a Series, or its values as a
    list), without building pandas objects (a request's one-row frame spent milliseconds
    on them)."""
    if isinstance(values, pd.Series):
        if len(values) > SMALL:  # pandas' isna pays off over many rows
            missing = values.isna().to_numpy()
            return ["" if m else str(v) for v, m in zip(values.tolist(), missing, strict=True)]
        values = values.tolist()
    return [v if type(v) is str else "" if _missing(v) else str(v) for v in values]


def _missing(value) -> bool:
    """Whether pandas' ``isna`` reads ``value`` (a cell) as missing."""
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def _hash_strings(values: np.ndarray) -> np.ndarray:
    try:
        return pd.util.hash_array(values, categorize=False)
    except UnicodeEncodeError:  # lone surrogates: an escaping that is still one-to-one
        return pd.util.hash_array(values, encoding="unicode_escape", categorize=False)


def text_fingerprints(frame: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of each row's texts: everything its vectors are made from.

    Covers the ``title``, ``text`` and body-text columns (``skills``, ``industry``,
    ``certificates``) as :func:`document_texts` reads them, and which of those columns the
    frame has; the sentence embeddings read title and text only. Two rows with the same
    fingerprint get the same word and character vectors, normalised texts and embedding
    (barring a 64-bit hash collision); ids, levels, codes, places and capacities are not
    covered.

    Parameters
    ----------
    frame : DataFrame
        Needs or programs, with string ``title`` and ``text`` columns.

    Returns
    -------
    ndarray of uint64, one per row

    Examples
    --------
    >>> a = pd.DataFrame({"title": ["护理", "护理"], "text": ["临床", "临床护理"]})
    >>> h = text_fingerprints(a)
    >>> bool(h[0] == h[1]), bool(text_fingerprints(a.iloc[:1])[0] == h[0])
    (False, True)
    """
    cols = ["title", "text", *(c for c in BODY_EXTRAS if c in frame)]
    which = _hash_strings(np.array(["\x00".join(cols)], dtype=object))[0]
    out = np.full(len(frame), which, dtype=np.uint64)
    for c in cols:
        column = frame[c]
        values = column.tolist() if column.dtype == object else None
        if values is None or not all(type(v) is str for v in values):  # else the same
            values = (column if c == "title" else column.fillna("")).astype(str).tolist()
        out = out * _MIX ^ _hash_strings(np.array(values, dtype=object))
    return out


def stack_rows(parts: Sequence, source: np.ndarray):
    """Row ``i`` of the result is row ``source[i]`` of ``parts`` stacked one under another.

    ``parts`` are sparse matrices (stacked as CSR) or arrays. A sole part whose rows are
    all taken in order is returned as it is, not copied.
    """
    if len(parts) == 1 and np.array_equal(source, np.arange(parts[0].shape[0])):
        return parts[0]
    if sp.issparse(parts[0]):
        stacked = parts[0] if len(parts) == 1 else sp.vstack(parts, format="csr")
        return stacked[source]
    return np.concatenate(parts)[source]


@dataclass
class Side:
    """One side (needs or programs) of the pairs, vectorised.

    Attributes
    ----------
    ids : ndarray of str
    word, char : FieldMatrices
    level : ndarray of int
        Index into :data:`LEVELS`, -1 when unknown.
    codes : ndarray of str (object)
        Taxonomy code of each row (its ``code`` column if the frame has one, else its id).
    attrs : dict of ndarray, or None
        Optional per-row attributes of the rows being ranked: ``province``, ``city``
        (normalised, "" when unknown) and ``capacity`` (a need's headcount, a program's
        graduates per year; NaN when unknown).
    """

    ids: np.ndarray
    word: FieldMatrices
    char: FieldMatrices
    level: np.ndarray
    codes: np.ndarray
    dense: np.ndarray | None = None
    titles: np.ndarray | None = None  # normalised, kept for the rows being ranked only
    texts: np.ndarray | None = None
    attrs: dict[str, np.ndarray] | None = None
    # code_prefix(codes, n) by n, made when first asked for (kept by take()).
    _prefixes: dict = field(default_factory=dict, repr=False, compare=False)
    # Memory.reach of the rows by kind: (memory, values), made when first asked for.
    _reach: dict = field(default_factory=dict, repr=False, compare=False)
    # Per-row arrays derived from the vectors for the pair features (binary counts, BM25
    # weights, known-program columns ...), by name: (memory, value), made when first
    # asked for; a catalog's side keeps them from one request to the next.
    _derived: dict = field(default_factory=dict, repr=False, compare=False)

    def derived(self, name: str, owner, make):
        """``make()``, computed once per ``name`` and ``owner`` (the memory it depends on)
        and kept on this side."""
        cached = self._derived.get(name)
        if cached is not None and cached[0] is owner:
            return cached[1]
        value = make()
        self._derived[name] = (owner, value)
        return value

    def code_prefixes(self, length: int) -> np.ndarray:
        """:func:`code_prefix` of every row's code (computed once per length)."""
        found = self._prefixes.get(length)
        if found is None:
            found = self._prefixes[length] = code_prefix(self.codes, length)
        return found

    @classmethod
    def build(cls, frame: pd.DataFrame | Rows, id_col: str, word: FieldVectorizer,
              char: FieldVectorizer, dense: np.ndarray | None = None,
              n_jobs: int = 1) -> Side:
        """The side of ``frame``'s rows (a DataFrame or :class:`~.rows.Rows`); ``n_jobs``
        > 1 vectorises a large batch's words and character n-grams in two threads (the
        sparse arithmetic releases the GIL)."""
        rows = Rows.of(frame)
        titles, texts = document_texts(rows)
        # Normalised and cut once, for both vectorizers and the side; a request's few texts
        # are counted directly.
        small = small_texts(titles, texts)
        runs: tuple[RunTable | None, RunTable | None] = (None, None)
        if small:
            titles, texts = normalize_many(titles), normalize_many(texts)
        else:
            (titles, title_runs), (texts, text_runs) = map(normalized_run_table, (titles, texts))
            runs = (title_runs, text_runs)
        matrices = in_threads([partial(v.transform, titles, texts, normalized=True, runs=runs)
                               for v in (word, char)], 1 if small else n_jobs)
        return cls(
            word=matrices[0],
            char=matrices[1],
            dense=dense,
            titles=np.array(titles, dtype=object),
            texts=np.array(texts, dtype=object),
            **_row_fields(rows, id_col),
        )

    def update(self, frame: pd.DataFrame, id_col: str, word: FieldVectorizer,
               char: FieldVectorizer, source: np.ndarray,
               dense: np.ndarray | None = None) -> Side:
        """The side of ``frame``, copying this side's vectors for rows whose texts it has.

        Parameters
        ----------
        frame : DataFrame
            The rows, as for :meth:`build`.
        id_col : str
        word, char : FieldVectorizer
            The vectorizers this side was built with.
        source : ndarray of int, one per row of ``frame``
            The row of this side with the same texts (same :func:`text_fingerprints`), or
            -1: only the rows marked -1 are vectorised. Everything else about a row (id,
            level, code, place, capacity) is read from ``frame``.
        dense : ndarray, optional
            The embeddings of every row of ``frame``.

        Returns
        -------
        Side
            Equal to ``Side.build(frame, id_col, word, char, dense)``: vectorising a row
            depends on that row only (fixed vocabulary and idf, per-row norms).
        """
        source = np.asarray(source, dtype=np.int64)
        fresh = np.flatnonzero(source < 0)
        index = source.copy()
        index[fresh] = len(self) + np.arange(len(fresh))
        parts = [self]
        if len(fresh):
            parts.append(Side.build(frame.iloc[fresh], id_col, word, char))
        return Side(
            word=_stack_fields([p.word for p in parts], index),
            char=_stack_fields([p.char for p in parts], index),
            dense=dense,
            titles=stack_rows([p.titles for p in parts], index),
            texts=stack_rows([p.texts for p in parts], index),
            **_row_fields(frame, id_col),
        )

    def take(self, rows: np.ndarray) -> Side:
        def part(a):
            return None if a is None else a[rows]

        return Side(self.ids[rows], self.word.take(rows), self.char.take(rows), self.level[rows],
                    self.codes[rows], dense=part(self.dense),
                    titles=part(self.titles), texts=part(self.texts),
                    attrs=None if self.attrs is None
                    else {name: a[rows] for name, a in self.attrs.items()},
                    _prefixes={n: a[rows] for n, a in self._prefixes.items()},
                    _reach={k: (m, a[rows]) for k, (m, a) in self._reach.items()})

    def __len__(self) -> int:
        return len(self.ids)

    def get_state(self, prefix: str, arrays: dict) -> dict:
        """Put this side's matrices and levels into ``arrays`` (under ``prefix``); returns
        the JSON part (ids, codes). Titles, texts and attributes are not kept: a model's
        memory does not need them."""
        for kind in ("word", "char"):
            fm: FieldMatrices = getattr(self, kind)
            for part in ("title", "body", "full", "counts"):
                put_sparse(arrays, f"{prefix}.{kind}.{part}", getattr(fm, part))
        arrays[f"{prefix}.level"] = self.level
        if self.dense is not None:
            arrays[f"{prefix}.dense"] = self.dense
        return {"ids": [str(v) for v in self.ids], "codes": [str(v) for v in self.codes]}

    @classmethod
    def from_state(cls, state: dict, prefix: str, arrays: dict) -> Side:
        """The inverse of :meth:`get_state`."""
        mats = {kind: FieldMatrices(*(get_sparse(arrays, f"{prefix}.{kind}.{part}")
                                      for part in ("title", "body", "full", "counts")))
                for kind in ("word", "char")}
        return cls(np.asarray(state["ids"], dtype=object), mats["word"], mats["char"],
                   np.asarray(arrays[f"{prefix}.level"]), np.array(state["codes"], dtype=object),
                   arrays.get(f"{prefix}.dense"))


def _stack_fields(parts: list[FieldMatrices], source: np.ndarray) -> FieldMatrices:
    """:func:`stack_rows` of each matrix of ``parts``."""
    return FieldMatrices(**{f.name: stack_rows([getattr(p, f.name) for p in parts], source)
                            for f in fields(FieldMatrices)})


def _normalized(rows: Rows, column: str) -> list[str]:
    """:func:`normalize` of each value of a column ("" without it); a string that repeats
    (a province, a city) is normalised once."""
    if column not in rows:
        return [""] * len(rows)
    done: dict[str, str] = {}
    out = []
    for v in rows[column]:
        if type(v) is str:
            n = done.get(v)
            if n is None:
                n = done[v] = normalize(v)
        else:
            n = normalize(v)
        out.append(n)
    return out


def _row_fields(table, id_col: str) -> dict:
    """What a :class:`Side` reads from each row besides its texts: id, level, code, attrs."""
    rows = Rows.of(table)
    capacity = next((c for c in ("headcount", "graduates_per_year") if c in rows), None)
    attrs = {
        "province": np.array(_normalized(rows, "province"), dtype=object),
        "city": np.array(_normalized(rows, "city"), dtype=object),
        "capacity": (np.full(len(rows), np.nan) if capacity is None else
                     rows.numbers(capacity)),
    }
    level = rows["level"] if "level" in rows else [""] * len(rows)
    # A ``code`` column, where there is one, is the taxonomy code (empty: unknown);
    # otherwise the id is taken for the code, as in official catalogs.
    codes = column_strings(rows["code"] if "code" in rows else rows[id_col])
    return {
        "ids": np.array([str(v) for v in rows[id_col]], dtype=object),
        "level": level_index(level),
        "codes": np.array(codes, dtype=object),
        "attrs": attrs,
    }
