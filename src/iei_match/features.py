"""Pair features: everything the ranker knows about one (need, program) pair.

A :class:`Memory` is what the engine remembers from training: the vectorizers, the known
needs and programs as vectors, and their graded links. :func:`pair_features` turns candidate
pairs of new needs and programs into a feature table, using only the memory and the two
:class:`Side` objects, so the same code serves training (with out-of-fold memories) and
ranking.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.preprocessing import normalize as l2_normalize

from .kernels import neighbour_link_stats, pair_dots, topk_rows
from .retrieval import PostingIndex
from .text import normalize
from .vectorize import FieldMatrices, FieldVectorizer, bm25_weights

if TYPE_CHECKING:
    from .catalog import Catalog

__all__ = ["Side", "Memory", "pair_features", "pair_feature_columns", "candidate_pairs",
           "links_to_programs", "code_prefix", "column_strings", "document_texts",
           "text_fingerprints", "stack_rows", "describe_feature", "FEATURE_LABELS"]

LEVELS = ("中职", "高职专科", "职教本科", "本科", "技工院校")


_NOT_CODE = re.compile(r"[^0-9a-z]")


def code_prefix(codes: pd.Series, length: int) -> np.ndarray:
    """The first ``length`` letters or digits of a taxonomy code (separators dropped)."""
    return np.array([_NOT_CODE.sub("", normalize(str(c)))[:length] for c in codes],
                    dtype=object)


BODY_EXTRAS = ("skills", "industry", "certificates")  # columns that count as body text
_MIX = np.uint64(0x100000001B3)  # combines the columns' hashes (FNV-1a's 64-bit prime)


def document_texts(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Titles and bodies of a needs or programs table; ``skills``, ``industry`` and
    ``certificates`` count as body text."""
    body = column_strings(frame["text"])
    for extra in BODY_EXTRAS:
        if extra in frame:
            body = [f"{b} {e}" for b, e in zip(body, column_strings(frame[extra]), strict=True)]
    return [str(v) for v in frame["title"].tolist()], body


def column_strings(column: pd.Series) -> list[str]:
    """``column.fillna("").astype(str).tolist()``, without building pandas objects (a
    request's one-row frame spent milliseconds on them)."""
    missing = column.isna().to_numpy()
    return ["" if m else str(v) for v, m in zip(column.tolist(), missing, strict=True)]


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
        values = frame[c] if c == "title" else frame[c].fillna("")
        out = out * _MIX ^ _hash_strings(np.array(values.astype(str).tolist(), dtype=object))
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

    def code_prefixes(self, length: int) -> np.ndarray:
        """:func:`code_prefix` of every row's code (computed once per length)."""
        found = self._prefixes.get(length)
        if found is None:
            found = self._prefixes[length] = code_prefix(self.codes, length)
        return found

    @classmethod
    def build(cls, frame: pd.DataFrame, id_col: str, word: FieldVectorizer,
              char: FieldVectorizer, dense: np.ndarray | None = None) -> Side:
        titles, texts = document_texts(frame)
        titles = [normalize(t) for t in titles]  # once, for both vectorizers and the side
        texts = [normalize(t) for t in texts]
        return cls(
            word=word.transform(titles, texts, normalized=True),
            char=char.transform(titles, texts, normalized=True),
            dense=dense,
            titles=np.array(titles, dtype=object),
            texts=np.array(texts, dtype=object),
            **_row_fields(frame, id_col),
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
                    _prefixes={n: a[rows] for n, a in self._prefixes.items()})

    def __len__(self) -> int:
        return len(self.ids)


def _stack_fields(parts: list[FieldMatrices], source: np.ndarray) -> FieldMatrices:
    """:func:`stack_rows` of each matrix of ``parts``."""
    return FieldMatrices(**{f.name: stack_rows([getattr(p, f.name) for p in parts], source)
                            for f in fields(FieldMatrices)})


def _normalized(frame: pd.DataFrame, column: str) -> list[str]:
    """:func:`normalize` of each value of a column ("" without it); a string that repeats
    (a province, a city) is normalised once."""
    if column not in frame:
        return [""] * len(frame)
    done: dict[str, str] = {}
    out = []
    for v in frame[column].tolist():
        if type(v) is str:
            n = done.get(v)
            if n is None:
                n = done[v] = normalize(v)
        else:
            n = normalize(v)
        out.append(n)
    return out


def _row_fields(frame: pd.DataFrame, id_col: str) -> dict:
    """What a :class:`Side` reads from each row besides its texts: id, level, code, attrs."""
    capacity = next((frame[c] for c in ("headcount", "graduates_per_year") if c in frame),
                    None)
    attrs = {
        "province": np.array(_normalized(frame, "province"), dtype=object),
        "city": np.array(_normalized(frame, "city"), dtype=object),
        "capacity": (np.full(len(frame), np.nan) if capacity is None else
                     pd.to_numeric(capacity, errors="coerce").to_numpy(np.float64,
                                                                     na_value=np.nan)),
    }
    level = frame["level"].tolist() if "level" in frame else [""] * len(frame)
    lookup = {name: i for i, name in enumerate(LEVELS)}
    # A ``code`` column, where there is one, is the taxonomy code (empty: unknown);
    # otherwise the id is taken for the code, as in official catalogs.
    codes = column_strings(frame["code"] if "code" in frame else frame[id_col])
    return {
        "ids": np.array([str(v) for v in frame[id_col].tolist()], dtype=object),
        "level": np.array([lookup.get(str(v).strip(), -1) for v in level], dtype=np.int32),
        "codes": np.array(codes, dtype=object),
        "attrs": attrs,
    }


@dataclass
class Memory:
    """What the ranker may consult about the past: known needs, known programs, their links.

    ``links`` has one row per known need and one column per known program. Programs are
    matched to the programs being ranked by id.
    """

    needs: Side
    programs: Side
    links: sp.csr_matrix
    word_idf: np.ndarray
    need_prefix_len: tuple[int, ...] = (2, 3)
    program_prefix_len: tuple[int, ...] = (2, 4)
    knn: int = 30

    def __post_init__(self) -> None:
        self.links = sp.csr_matrix(self.links, dtype=np.float32)
        self.links.sort_indices()
        self.program_index = {pid: j for j, pid in enumerate(self.programs.ids)}
        self.need_index_word = PostingIndex(self.needs.word.full)
        self.need_index_char = PostingIndex(self.needs.char.full)
        self.need_avgdl = float(self.needs.word.counts.sum(axis=1).mean())
        self.program_avgdl = float(self.programs.word.counts.sum(axis=1).mean())
        degree = np.asarray((self.links > 0).sum(axis=0)).ravel().astype(np.float32)
        self.program_degree = degree
        # Programs' linked-need centroids (word space): "needs this program served before".
        centroid = self.links.T @ self.needs.word.full
        self.program_centroid = l2_normalize(sp.csr_matrix(centroid, dtype=np.float32))
        self.program_dense_centroid = None
        if self.needs.dense is not None:
            dense = np.asarray(self.links.T @ self.needs.dense, dtype=np.float32)
            norm = np.linalg.norm(dense, axis=1, keepdims=True)
            self.program_dense_centroid = dense / np.where(norm > 0, norm, 1)
        self.priors = {}
        linked = self.links.tocoo()
        for ln in self.need_prefix_len:
            need_pre = self.needs.code_prefixes(ln)[linked.row]
            for lp in self.program_prefix_len:
                prog_pre = self.programs.code_prefixes(lp)[linked.col]
                table = pd.DataFrame({"n": need_pre, "p": prog_pre, "g": linked.data})
                counts = table.groupby(["n", "p"])["g"].sum()
                totals = table.groupby("n")["g"].sum()
                prob = (counts / totals.reindex(counts.index.get_level_values(0)).to_numpy())
                # (need prefix, program prefix) -> share; the need prefixes seen
                self.priors[(ln, lp)] = (dict(zip(prob.index, prob.to_numpy(np.float64).tolist(),
                                                  strict=True)), set(totals.index))
        # Known programs' categories (code prefixes): index of each, and program -> category.
        self.categories = {}
        for length in self.program_prefix_len:
            cats, idx = np.unique(self.programs.code_prefixes(length), return_inverse=True)
            onehot = sp.csr_matrix((np.ones(len(idx), np.float32), (np.arange(len(idx)), idx)),
                                   shape=(len(idx), len(cats)))
            self.categories[length] = ({c: i for i, c in enumerate(cats)}, onehot)

    def neighbours(self, queries: Side) -> sp.csr_matrix:
        """Each query need's ``knn`` most similar known needs (mean of word and char cosine)."""
        k = min(self.knn, len(self.needs))
        n_q, n_k = len(queries), len(self.needs)
        found = [self.need_index_word.search(queries.word.full, k)[0],
                 self.need_index_char.search(queries.char.full, k)[0]]
        if queries.dense is not None and self.needs.dense is not None:
            found.append(dense_topk(queries.dense, self.needs.dense, k))
        rows = np.repeat(np.arange(n_q), len(found) * k)
        cols = np.concatenate(found, axis=1).ravel()
        keep = cols >= 0
        rows, cols = rows[keep], cols[keep]
        pairs = np.unique(rows * n_k + cols)
        rows, cols = pairs // n_k, pairs % n_k
        sim = (pair_dots(queries.word.full, self.needs.word.full, rows, cols)
               + pair_dots(queries.char.full, self.needs.char.full, rows, cols))
        if queries.dense is not None and self.needs.dense is not None:
            sim = (sim + np.einsum("ij,ij->i", queries.dense[rows], self.needs.dense[cols])) / 3
        else:
            sim = sim / 2
        m = sp.csr_matrix((sim, (rows, cols)), shape=(n_q, n_k))
        top_cols, top_sim = topk_rows(m, k)
        r = np.repeat(np.arange(n_q), k)
        ok = top_cols.ravel() >= 0
        return sp.csr_matrix((top_sim.ravel()[ok], (r[ok], top_cols.ravel()[ok])), shape=(n_q, n_k))

    def program_columns(self, programs: Side) -> np.ndarray:
        """Column of each given program in ``links`` (-1 for programs never seen).

        A program is found by its id; one whose id is unknown but whose taxonomy code is
        the id of a known program (a college's offering of a catalog major) shares that
        program's history.
        """
        index = self.program_index
        return np.array([index.get(pid, index.get(code, -1)) for pid, code
                         in zip(programs.ids, programs.codes, strict=True)], dtype=np.int64)


def links_to_programs(memory: Memory, prog_cols: np.ndarray) -> sp.csr_matrix:
    """Links of every known need to each given program (columns ``prog_cols`` of
    ``memory.links``; none for programs never seen): ``nbrs @`` it is the collaborative
    score of each query need for each given program."""
    known = prog_cols >= 0
    to_given = sp.csr_matrix(
        (np.ones(known.sum(), np.float32), (prog_cols[known], np.flatnonzero(known))),
        shape=(memory.links.shape[1], len(prog_cols)))
    return sp.csr_matrix(memory.links @ to_given)


def dense_topk(queries: np.ndarray, docs: np.ndarray, k: int, chunk: int = 2048,
               blocked: np.ndarray | None = None) -> np.ndarray:
    """Rows of the ``k`` documents with the largest dot product, best first (ties: lower row).

    ``blocked`` documents rank last (callers drop them).
    """
    k = min(k, len(docs))
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), chunk):
        sims = queries[start:start + chunk] @ docs.T
        if blocked is not None:
            sims[:, blocked] = -np.inf
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(sims, part, axis=1)
        order = np.lexsort((part, -vals), axis=1)
        out[start:start + chunk] = np.take_along_axis(part, order, axis=1)
    return out


def candidate_pairs(memory: Memory, needs: Side, programs: Side, nbrs: sp.csr_matrix,
                    k: int, direction: str, catalog: Catalog | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Union of the top ``k`` by word TF-IDF, char TF-IDF and collaborative score.

    ``direction`` is ``"need"`` (top programs of each need) or ``"program"`` (top needs of
    each program). ``catalog``, when given, is the side being searched (``programs`` for
    ``"need"``, ``needs`` for ``"program"``) prepared with its indexes and link history,
    and may block some of its rows. Returns (need rows, program rows), unique pairs, sorted.
    """
    if direction == "need":
        queries, docs = needs, programs
        history = (catalog.history if catalog is not None
                   else links_to_programs(memory, memory.program_columns(programs)))
        collab = sp.csr_matrix(nbrs @ history)
    else:
        queries, docs = programs, needs
        collab = sp.csr_matrix(nbrs @ links_to_programs(memory, memory.program_columns(programs))
                               ).T.tocsr()
    blocked = catalog.blocked if catalog is not None else None
    if blocked is not None:  # drop the blocked columns' entries (and stored zeros)
        collab = collab.copy()
        collab.data[blocked[collab.indices]] = 0
        collab.eliminate_zeros()
    kk = min(k, len(docs))
    if catalog is not None:
        found = list(catalog.search(queries.word.full, queries.char.full, kk))
    else:
        found = [PostingIndex(docs.word.full).search(queries.word.full, kk)[0],
                 PostingIndex(docs.char.full).search(queries.char.full, kk)[0]]
    parts = [*found, topk_rows(collab, kk)[0]]
    if queries.dense is not None and docs.dense is not None:
        parts.append(dense_topk(queries.dense, docs.dense, kk, blocked=blocked))
    q = np.repeat(np.arange(len(queries)), kk)
    rows = np.concatenate([q] * len(parts))
    cols = np.concatenate([p.ravel() for p in parts])
    ok = cols >= 0
    if blocked is not None:
        ok &= ~blocked[np.maximum(cols, 0)]
    n_d = len(docs)
    pairs = np.unique(rows[ok] * n_d + cols[ok])
    q_rows, d_rows = pairs // n_d, pairs % n_d
    return (q_rows, d_rows) if direction == "need" else (d_rows, q_rows)


def _coverage(title_counts: sp.csr_matrix, doc_counts: sp.csr_matrix, rows, cols) -> np.ndarray:
    """Share of a title's distinct char n-grams found in the other document."""
    t = title_counts.copy()
    t.data[:] = 1.0
    d = doc_counts.copy()
    d.data[:] = 1.0
    size = np.asarray(t.sum(axis=1)).ravel()
    hit = pair_dots(t, d, rows, cols)
    return np.where(size[rows] > 0, hit / np.maximum(size[rows], 1), 0.0).astype(np.float32)


def _contains(titles: np.ndarray | None, texts: np.ndarray | None, rows, cols) -> np.ndarray:
    """1 where the whole (normalised) title occurs verbatim in the other side's text."""
    if titles is None or texts is None:
        return np.full(len(rows), np.nan, np.float32)
    pairs = zip(rows, cols, strict=True)
    return np.fromiter((len(titles[i]) > 1 and titles[i] in texts[j] for i, j in pairs),
                       dtype=np.float32, count=len(rows))


def _region_capacity(needs: Side, programs: Side, n_rows, p_rows) -> dict[str, np.ndarray]:
    """Same city / province (NaN when either side does not say) and capacities (log)."""
    out = {}
    n_attr = needs.attrs or {}
    p_attr = programs.attrs or {}
    for col in ("province", "city"):
        a = n_attr[col][n_rows] if col in n_attr else np.full(len(n_rows), "", dtype=object)
        b = p_attr[col][p_rows] if col in p_attr else np.full(len(p_rows), "", dtype=object)
        known = (a != "") & (b != "")
        out[f"same_{col}"] = np.where(known, a == b, np.nan).astype(np.float32)
    for name, attr, rows in (("need_headcount", n_attr, n_rows),
                             ("program_capacity", p_attr, p_rows)):
        cap = (attr["capacity"][rows] if "capacity" in attr
               else np.full(len(rows), np.nan))
        out[name] = np.log1p(np.clip(cap, 0, None)).astype(np.float32)
    return out


def _prior(memory: Memory, needs: Side, programs: Side, n_rows, p_rows) -> dict[str, np.ndarray]:
    """Share of the links of past needs with the same code prefix that went to the program's
    prefix; NaN when no past need had the need's prefix."""
    out = {}
    nan = float("nan")
    for (ln, lp), (share, seen) in memory.priors.items():
        n_pre = needs.code_prefixes(ln)[n_rows].tolist()
        p_pre = programs.code_prefixes(lp)[p_rows].tolist()
        val = [share.get(pair, 0.0) if pair[0] in seen else nan
               for pair in zip(n_pre, p_pre, strict=True)]
        out[f"prior_n{ln}_p{lp}"] = np.array(val, dtype=np.float64).astype(np.float32)
    return out


def _category_collab(memory: Memory, neighbour_links: sp.csr_matrix, programs: Side, n_rows,
                     p_rows, length: int) -> np.ndarray:
    """Neighbour-weighted share of links that went to the program's category (code prefix).

    ``neighbour_links`` is ``nbrs @ memory.links``: each query's neighbour-weighted links.
    """
    lookup, onehot = memory.categories[length]
    per_cat = sp.csr_matrix(neighbour_links @ onehot)
    total = np.asarray(per_cat.sum(axis=1)).ravel()
    given = np.array([lookup.get(c, -1) for c in programs.code_prefixes(length)])
    gc = given[p_rows]
    val = np.zeros(len(n_rows), np.float32)
    ok = gc >= 0
    if per_cat.shape[0] * per_cat.shape[1] <= 4_000_000:  # a few queries: look up densely
        val[ok] = per_cat.toarray()[n_rows[ok], gc[ok]]
    else:
        val[ok] = np.asarray(per_cat[n_rows[ok], gc[ok]]).ravel()
    return np.where(total[n_rows] > 0, val / np.maximum(total[n_rows], 1e-9), 0.0)


def pair_features(memory: Memory, needs: Side, programs: Side, nbrs: sp.csr_matrix,
                  n_rows: np.ndarray, p_rows: np.ndarray) -> pd.DataFrame:
    """Features of the pairs (``needs[n_rows[i]]``, ``programs[p_rows[i]]``).

    ``nbrs`` is ``memory.neighbours(needs)``. Group-relative features (share of the best
    score in the query's list) are added later by the ranker, per direction.

    Every feature depends only on the pair (and the memory), so the work is done on the
    rows that occur in some pair: its cost follows the number of pairs, not the size of
    the sides.
    """
    return pd.DataFrame(pair_feature_columns(memory, needs, programs, nbrs, n_rows, p_rows))


def pair_feature_columns(memory: Memory, needs: Side, programs: Side, nbrs: sp.csr_matrix,
                         n_rows: np.ndarray, p_rows: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`pair_features` as a dict of columns (in the table's order)."""
    used_n, n_rows = np.unique(n_rows, return_inverse=True)
    used_p, p_rows = np.unique(p_rows, return_inverse=True)
    if len(used_n) < len(needs):
        needs, nbrs = needs.take(used_n), sp.csr_matrix(nbrs)[used_n]
    else:
        n_rows = used_n[n_rows]
    if len(used_p) < len(programs):
        programs = programs.take(used_p)
    else:
        p_rows = used_p[p_rows]
    f: dict[str, np.ndarray] = {}
    nw, pw, nc, pc = needs.word, programs.word, needs.char, programs.char
    known_cols = memory.program_columns(programs)[p_rows]
    ok = known_cols >= 0
    f["word_full"] = pair_dots(nw.full, pw.full, n_rows, p_rows)
    f["char_full"] = pair_dots(nc.full, pc.full, n_rows, p_rows)
    f["word_title"] = pair_dots(nw.title, pw.title, n_rows, p_rows)
    f["char_title"] = pair_dots(nc.title, pc.title, n_rows, p_rows)
    f["need_title_prog_body"] = pair_dots(nw.title, pw.body, n_rows, p_rows)
    f["need_body_prog_title"] = pair_dots(nw.body, pw.title, n_rows, p_rows)
    f["word_body"] = pair_dots(nw.body, pw.body, n_rows, p_rows)
    idf = memory.word_idf
    bm_p = bm25_weights(pw.counts, idf, avgdl=memory.program_avgdl)
    bm_n = bm25_weights(nw.counts, idf, avgdl=memory.need_avgdl)
    bin_n, bin_p = nw.counts.copy(), pw.counts.copy()
    bin_n.data[:] = 1.0
    bin_p.data[:] = 1.0
    f["bm25_need_query"] = pair_dots(bin_n, bm_p, n_rows, p_rows)
    f["bm25_prog_query"] = pair_dots(bin_p, bm_n, p_rows, n_rows)
    f["need_title_coverage"] = _coverage(nc.title, pc.counts, n_rows, p_rows)
    f["prog_title_coverage"] = _coverage(pc.title, nc.counts, p_rows, n_rows)
    f["need_title_in_prog_text"] = _contains(needs.titles, programs.texts, n_rows, p_rows)
    f["prog_title_in_need_text"] = _contains(programs.titles, needs.texts, p_rows, n_rows)
    if needs.dense is not None and programs.dense is not None:
        f["dense_cosine"] = np.einsum("ij,ij->i", needs.dense[n_rows], programs.dense[p_rows])
        hist = np.zeros(len(n_rows), np.float32)
        if memory.program_dense_centroid is not None:
            hist[ok] = np.einsum("ij,ij->i", needs.dense[n_rows[ok]],
                                 memory.program_dense_centroid[known_cols[ok]])
        f["dense_need_vs_program_history"] = hist
    stats = np.zeros((len(n_rows), 4), np.float32)
    stats[ok] = neighbour_link_stats(nbrs, memory.links, n_rows[ok], known_cols[ok],
                                     none_rank=memory.knn + 1)
    stats[~ok, 3] = memory.knn + 1
    f["knn_sum"], f["knn_max"], f["knn_share"], f["knn_first_rank"] = stats.T
    degree = np.where(ok, memory.program_degree[np.maximum(known_cols, 0)], 0.0)
    f["program_links"] = np.log1p(degree).astype(np.float32)
    f["program_known"] = ok.astype(np.float32)
    centroid = np.zeros(len(n_rows), np.float32)
    centroid[ok] = pair_dots(nw.full, memory.program_centroid, n_rows[ok], known_cols[ok])
    f["need_vs_program_history"] = centroid
    neighbour_links = sp.csr_matrix(nbrs @ memory.links)  # computed once, used below
    profile = l2_normalize(neighbour_links @ memory.programs.word.full)
    f["neighbour_programs_vs_program"] = pair_dots(profile, pw.full, n_rows, p_rows)
    for length in memory.program_prefix_len:
        f[f"category_share_p{length}"] = _category_collab(memory, neighbour_links, programs,
                                                          n_rows, p_rows, length)
    f.update(_prior(memory, needs, programs, n_rows, p_rows))
    f.update(_region_capacity(needs, programs, n_rows, p_rows))
    f["need_level"] = needs.level[n_rows].astype(np.float32)
    f["program_level"] = programs.level[p_rows].astype(np.float32)
    same = (needs.level[n_rows] == programs.level[p_rows]) & (needs.level[n_rows] >= 0)
    f["same_level"] = np.where(needs.level[n_rows] >= 0, same, np.nan).astype(np.float32)
    return f



# What each feature means, for people reading an explanation (English, Chinese). Names ending
# in ``_rel`` / ``_rank`` are the same measure relative to the best candidate in the list.
FEATURE_LABELS: dict[str, tuple[str, str]] = {
    "word_full": ("word overlap, whole text", "全文词语相似度"),
    "char_full": ("character n-gram overlap", "全文字符相似度"),
    "word_title": ("titles share words", "名称词语相似度"),
    "char_title": ("titles share characters", "名称字符相似度"),
    "need_title_prog_body": ("need title found in the program profile", "岗位名称见于专业简介"),
    "need_body_prog_title": ("program title found in the need", "专业名称见于岗位描述"),
    "word_body": ("descriptions share words", "描述词语相似度"),
    "bm25_need_query": ("BM25, need as query", "BM25（以岗位为查询）"),
    "bm25_prog_query": ("BM25, program as query", "BM25（以专业为查询）"),
    "need_title_coverage": ("need title covered by the program", "岗位名称覆盖率"),
    "prog_title_coverage": ("program title covered by the need", "专业名称覆盖率"),
    "need_title_in_prog_text": ("need title named verbatim in the program",
                                "专业简介直接提及该岗位"),
    "prog_title_in_need_text": ("program title named verbatim in the need",
                                "岗位描述直接提及该专业"),
    "dense_cosine": ("sentence-embedding similarity", "语义向量相似度"),
    "dense_need_vs_program_history": ("semantically like needs this program served",
                                      "与该专业以往对接岗位语义相近"),
    "knn_sum": ("similar past needs partnered with this program", "相似岗位曾与该专业合作"),
    "knn_max": ("closest past need that partnered with it", "最相似的已合作岗位"),
    "knn_share": ("share of similar needs that partnered with it", "相似岗位中合作的比例"),
    "knn_first_rank": ("rank of the first similar need that partnered", "首个已合作相似岗位的名次"),
    "program_links": ("program's number of past partnerships", "该专业以往合作数"),
    "program_known": ("program has partnership history", "该专业有合作记录"),
    "need_vs_program_history": ("like the needs this program served before",
                                "与该专业以往对接岗位相近"),
    "neighbour_programs_vs_program": ("like programs that similar needs chose",
                                      "与相似岗位所选专业相近"),
    "category_share_p2": ("similar needs chose this program category", "相似岗位选择该专业大类"),
    "category_share_p4": ("similar needs chose this program class", "相似岗位选择该专业类"),
    "same_province": ("same province", "同省"),
    "same_city": ("same city", "同城"),
    "need_headcount": ("headcount asked", "需求人数"),
    "program_capacity": ("graduates per year", "年毕业生数"),
    "need_level": ("level asked", "需求层次"),
    "program_level": ("program level", "专业层次"),
    "same_level": ("same level", "层次一致"),
}


def describe_feature(name: str, language: str = "en") -> str:
    """A short human description of a feature name, in ``"en"`` or ``"zh"``.

    Examples
    --------
    >>> describe_feature("knn_sum", "zh")
    '相似岗位曾与该专业合作'
    >>> describe_feature("word_full_rel")
    'word overlap, whole text (relative to the best candidate)'
    """
    base, suffix = name, ""
    for end, words in (("_rel", ("relative to the best candidate", "相对最佳候选")),
                       ("_rank", ("rank among the candidates", "候选中的名次"))):
        if name.endswith(end) and name[: -len(end)] in FEATURE_LABELS:
            base, suffix = name[: -len(end)], words[language == "zh"]
    if base.startswith("prior_"):
        label = ("taxonomy prior learned from past links", "由以往合作学得的类别先验")
    else:
        label = FEATURE_LABELS.get(base, (base, base))
    text = label[language == "zh"]
    return f"{text} ({suffix})" if suffix and language != "zh" else (
        f"{text}（{suffix}）" if suffix else text)
