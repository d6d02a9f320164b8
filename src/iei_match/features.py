"""Pair features: everything the ranker knows about one (need, program) pair.

:func:`build_features` is the one feature builder: training (with out-of-fold memories)
and ranking call it alike, so the rows a model is trained on and the rows it scores are
made by the same code. It returns a float32 matrix and its column names: the pair's
*absolute* features (which depend on the pair and the memory only) followed by the
*relative* ones (a feature's share of the best value in the query's candidate list, and its
rank there), which depend on the other candidates. The ranker uses both; the calibrated
fit (:mod:`.fit`) uses the absolute ones only, so that it does not depend on the list.

What the training data cannot teach is not a feature: headcounts, graduates per year and
regions are known for the service's own needs and programs but not for the catalogs the
models learn from, so a model would learn them from a handful of database rows whose
outcomes are mostly unrecorded ("a need with a headcount is seldom a link") and carry that
into every request. Regions are hard rules of the service instead, and capacities are the
allocation's.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .csr import csr_of
from .fused_dots import dots_many, mark_ones
from .kernels import (
    PairRows,
    group_sums,
    list_best_and_rank,
    matmul_rows,
    matmul_rows_l2,
    neighbour_link_stats,
    pair_dots,
    row_max_sum,
)
from .memory import Memory
from .sides import Side
from .text import tokenize
from .vectorize import bm25_weights

__all__ = ["build_features", "pair_feature_columns", "relative_columns", "is_relative",
           "RELATIVE"]

def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(b > 0, a / np.where(b > 0, b, 1), 0.0).astype(np.float32)


def _binary(m: sp.csr_matrix) -> sp.csr_matrix:
    """``m`` with every stored value 1, sharing ``m``'s index arrays (not copied)."""
    out = csr_of(mark_ones(np.ones_like(m.data)), m.indices, m.indptr, m.shape)
    out.has_sorted_indices = m.has_sorted_indices
    return out


def _on_arrays_of(m: sp.csr_matrix, like: sp.csr_matrix) -> sp.csr_matrix:
    """``m`` on ``like``'s index arrays when its columns are the same (a side's counts and
    its TF-IDF), so that :func:`~.fused_dots.dots_many` reads them once for both. The
    matrices made from it (BM25 weights, binary counts) share them too: none of them may be
    sorted, summed or pruned in place."""
    same = (m.shape == like.shape and m.indices.dtype == like.indices.dtype
            and m.indptr.dtype == like.indptr.dtype and np.array_equal(m.indptr, like.indptr)
            and np.array_equal(m.indices, like.indices))
    if not same:
        return m
    out = csr_of(m.data, like.indices, like.indptr, m.shape)
    out.has_sorted_indices = m.has_sorted_indices
    return out


def _row_sizes(binary: sp.csr_matrix) -> np.ndarray:
    """``binary.sum(axis=1)`` of a matrix of ones (:func:`_binary`): its rows' lengths, in
    its dtype (exact: small whole numbers)."""
    return np.diff(binary.indptr).astype(binary.dtype)


def _side_arrays(memory: Memory, side: Side, kind: str) -> dict:
    """What the pair features read of each row of ``side`` beyond its vectors: binary term
    counts, BM25 weights (with the memory's average length of its ``kind``), the sizes of
    its titles and bodies, for needs the index of their code prefixes among those of past
    needs, and for programs their column in the links and their categories.
    Made once per side and memory (:meth:`Side.derived`): a catalog's rows are asked about
    on every request, and each row's values depend on that row only."""
    def make() -> dict:
        word, char = side.word, side.char
        avgdl = memory.need_avgdl if kind == "need" else memory.program_avgdl
        char_title, word_title = _binary(char.title), _binary(word.title)
        word_counts = _on_arrays_of(word.counts, word.full)
        out = {"bm25": bm25_weights(word_counts, memory.word_idf, avgdl=avgdl),
               "word_binary": _binary(word_counts),
               "char_title_binary": char_title,
               "char_binary": _binary(_on_arrays_of(char.counts, char.full)),
               "char_title_size": _row_sizes(char_title),
               "word_title_binary": word_title,
               "word_title_size": _row_sizes(word_title),
               "terms": np.log1p(np.diff(word.counts.indptr)).astype(np.float32),
               "body_terms": np.log1p(np.diff(word.body.indptr)).astype(np.float32),
               "title_chars": np.log1p(np.diff(char.title.indptr)).astype(np.float32)}
        if kind == "need":
            out["title_idf"], out["title_unknown_words"] = _title_word_stats(
                side, memory.word_idf)
            for length, seen in memory.seen_prefixes.items():
                out[f"prefix_n{length}"] = np.array(
                    [seen.get(c, -1) for c in side.code_prefixes(length).tolist()],
                    dtype=np.int64)
        if kind == "program":
            known = memory.program_columns(side)
            out["known"] = known
            out["degree"] = np.log1p(np.where(
                known >= 0, memory.program_degree[np.maximum(known, 0)], 0.0)
            ).astype(np.float32)
            for length in memory.program_prefix_len:
                lookup = memory.categories[length][0]
                out[f"category_p{length}"] = np.array(
                    [lookup.get(c, -1) for c in side.code_prefixes(length).tolist()],
                    dtype=np.int64)
        return out

    return side.derived(f"pair_features.{kind}", memory, make)


def _coverage(hits: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Share of a title's distinct terms found in the other document: ``hits``, the dots
    of the binary title and document of each pair; ``size``, the title's size in each."""
    return np.where(size > 0, hits / np.maximum(size, 1), 0.0).astype(np.float32)


def _rows_at(m: sp.csr_matrix, rows: np.ndarray, n_rows: int) -> sp.csr_matrix:
    """A matrix of ``n_rows`` rows whose row ``rows[i]`` is row ``i`` of ``m`` (``rows``
    sorted and distinct), the others empty; ``m``'s data and indices, not copied."""
    lengths = np.zeros(n_rows, dtype=np.int64)
    lengths[rows] = np.diff(m.indptr)
    indptr = np.zeros(n_rows + 1, dtype=m.indptr.dtype)
    np.cumsum(lengths, out=indptr[1:])
    out = csr_of(m.data, m.indices, indptr, (n_rows, m.shape[1]))
    out.has_sorted_indices = m.has_sorted_indices
    return out


def _contains(titles: np.ndarray | None, texts: np.ndarray | None, rows, cols) -> np.ndarray:
    """1 where the whole (normalised) title occurs verbatim in the other side's text."""
    n = len(rows)
    if titles is None or texts is None:
        return np.full(n, np.nan, np.float32)
    if n and cols[0] == cols[-1] and (cols == cols[0]).all():  # a request: one need's text
        return _titles_in_text(titles[rows].tolist(), texts[cols[0]])
    pairs = zip(titles[rows].tolist(), texts[cols].tolist(), strict=True)
    return np.fromiter((len(t) > 1 and t in x for t, x in pairs), dtype=np.float32, count=n)


def _titles_in_text(titles: list[str], text: str) -> np.ndarray:
    """:func:`_contains` of each of ``titles`` in one text (each distinct title sought once)."""
    found = {t for t in set(titles) if len(t) > 1 and t in text}
    return np.fromiter(map(found.__contains__, titles), dtype=np.float32, count=len(titles))


def _title_words(na: dict, n_rows: np.ndarray, in_program: np.ndarray,
                 in_title: np.ndarray) -> dict[str, np.ndarray]:
    """How a need's title matches as whole words, and how specific its words are.

    Character n-grams find "护工" in 道路养护与管理's "养护工程" and "文员" in any text that
    has the two characters side by side; the words (jieba's segmentation) do not. So, for a
    short title above all: the share of the title's words that are words of the program
    (anywhere, and in its title), the idf of the title's rarest word (a generic title, "经理",
    has common words only; 0 when none is known) and how many of its words the model has
    never seen (NaN when the need's title is not kept). ``na``: the needs' arrays
    (:func:`_side_arrays`); ``n_rows``: the pairs' need rows; ``in_program``,
    ``in_title``: the dots of the binary words of the need's title and of the program's
    text and title.
    """
    size = na["word_title_size"][n_rows]
    return {"need_title_words_in_program": _coverage(in_program, size),
            "need_title_words_in_program_title": _coverage(in_title, size),
            "need_title_idf": na["title_idf"][n_rows],
            "need_title_unknown_words": na["title_unknown_words"][n_rows]}


def _title_word_stats(side: Side, idf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the idf of its title's rarest known word (0: none), and how many of its
    title's words the vocabulary lacks (NaN when the side keeps no titles)."""
    nt = side.word.title
    known = np.diff(nt.indptr)
    rarest = np.zeros(nt.shape[0], np.float32)
    if nt.nnz:
        starts = np.minimum(nt.indptr[:-1], nt.nnz - 1)
        rarest = np.where(known > 0, np.maximum.reduceat(idf[nt.indices], starts), 0.0)
    if side.titles is None:
        unknown = np.full(nt.shape[0], np.nan)
    else:
        unknown = np.array([max(0, len(set(tokenize(t, normalized=True))) - k)
                            for t, k in zip(side.titles, known, strict=True)], dtype=float)
    return rarest.astype(np.float32), unknown.astype(np.float32)


def _prior(memory: Memory, na: dict, pa: dict, n_rows, p_rows) -> dict[str, np.ndarray]:
    """Share of the links of past needs with the same code prefix that went to the program's
    prefix; NaN when no past need had the need's prefix. ``na``, ``pa``: the sides' arrays
    (:func:`_side_arrays`: the rows' prefix and category indexes)."""
    return {f"prior_n{ln}_p{lp}": prior.shares(na[f"prefix_n{ln}"][n_rows],
                                               pa[f"category_p{lp}"][p_rows]).astype(np.float32)
            for (ln, lp), prior in memory.priors.items()}


def _category_collab(memory: Memory, neighbour_links: sp.csr_matrix, given: np.ndarray,
                     q_rows, length: int) -> np.ndarray:
    """Neighbour-weighted share of links that went to the program's category (code prefix).

    ``neighbour_links`` is ``nbrs @ memory.links`` of the needs of the pairs (row
    ``q_rows[i]`` for pair i); ``given`` the category of each pair's program (-1: none).
    """
    onehot = memory.categories[length][1]
    n_q = neighbour_links.shape[0]
    val = np.zeros(len(q_rows), np.float32)
    ok = given >= 0
    if n_q * onehot.shape[1] <= 4_000_000:  # a few queries: look up densely
        dense = group_sums(neighbour_links, memory.program_category[length], onehot.shape[1],
                           np.result_type(neighbour_links.dtype, onehot.dtype))
        dense += 0.0  # a sum of -0.0 is +0.0, as where the product stores nothing
        # Each row's values summed in column order (np.add.reduceat, as row_max_sum sums
        # the sorted matrix), as they were on the product's sorted rows.
        row, col = np.nonzero(dense)
        total = np.zeros(n_q, dtype=dense.dtype)
        lengths = np.bincount(row, minlength=n_q)
        full = lengths > 0
        if full.any():
            starts = np.cumsum(lengths) - lengths
            total[full] = np.add.reduceat(dense[row, col], starts[full])
        val[ok] = dense[q_rows[ok], given[ok]]
    else:
        per_cat = matmul_rows(neighbour_links, np.arange(n_q), onehot)
        total = row_max_sum(per_cat, np.arange(n_q))[1]
        val[ok] = np.asarray(per_cat[q_rows[ok], given[ok]]).ravel()
    return np.where(total[q_rows] > 0, val / np.maximum(total[q_rows], 1e-9), 0.0)


def pair_feature_columns(memory: Memory, needs: Side, programs: Side, nbrs: sp.csr_matrix,
                         n_rows: np.ndarray, p_rows: np.ndarray) -> dict[str, np.ndarray]:
    """The absolute features of the pairs (``needs[n_rows[i]]``, ``programs[p_rows[i]]``),
    as a dict of columns.

    ``nbrs`` is ``memory.neighbours(needs)``. Every feature depends only on the pair (and
    the memory). The rows' own values (norms, BM25 weights, known columns) are made once
    per side and kept on it (:func:`_side_arrays`), and the pair values are read from the
    sides' rows in place: a request against a prepared catalog does no work per program
    of the catalog, only per pair.
    """
    n_rows = np.asarray(n_rows, dtype=np.int64)
    p_rows = np.asarray(p_rows, dtype=np.int64)
    n_reach = memory.reach(needs, "need")[n_rows]
    p_reach = memory.reach(programs, "program")[p_rows]
    na, pa = _side_arrays(memory, needs, "need"), _side_arrays(memory, programs, "program")
    f: dict[str, np.ndarray] = {}
    nw, pw, nc, pc = needs.word, programs.word, needs.char, programs.char
    known_cols = pa["known"][p_rows]
    ok = known_cols >= 0
    pairs = PairRows(n_rows, p_rows)  # checked once for the dot products below
    # The needs' neighbour-weighted links, for the needs of the pairs only, and the word
    # profile of the programs they link to (L2-normalised as sklearn's normalize() does,
    # its columns sorted for the dots).
    nbrs = sp.csr_matrix(nbrs) if type(nbrs) is not sp.csr_matrix else nbrs
    used_n, q_rows = np.unique(n_rows, return_inverse=True)
    neighbour_links = matmul_rows(nbrs, used_n, memory.links)  # computed once, used below
    profile = matmul_rows_l2(neighbour_links, np.arange(len(used_n)), memory.programs.word.full)
    # The dots of the pairs, those that walk the same rows in one pass (fused_dots.py).
    (f["word_full"], f["char_full"], f["word_title"], f["char_title"],
     f["need_title_prog_body"], f["need_body_prog_title"], f["word_body"], bm25_need,
     bm25_prog, need_title_hits, prog_title_hits, title_words_hits, title_words_title_hits,
     neighbour_programs) = dots_many(pairs, [
        (nw.full, pw.full), (nc.full, pc.full), (nw.title, pw.title), (nc.title, pc.title),
        (nw.title, pw.body), (nw.body, pw.title), (nw.body, pw.body),
        (na["word_binary"], pa["bm25"]), (na["bm25"], pa["word_binary"]),
        (na["char_title_binary"], pa["char_binary"]),
        (na["char_binary"], pa["char_title_binary"]),
        (na["word_title_binary"], pa["word_binary"]),
        (na["word_title_binary"], pa["word_title_binary"]),
        (_rows_at(profile, used_n, nw.full.shape[0]), pw.full)])
    # The pair against the best each side finds among everything the model knows.
    for j, name in enumerate(("word_full", "char_full")):
        f[f"{name}_vs_need_best"] = _ratio(f[name], n_reach[:, j])
        f[f"{name}_vs_program_best"] = _ratio(f[name], p_reach[:, j])
    f["need_best_word"] = n_reach[:, 0]
    f["program_best_word"] = p_reach[:, 0]
    # How generic the need is: its 10th best known program against its best.
    f["need_spread_word"] = _ratio(n_reach[:, 2], n_reach[:, 0])
    f["need_spread_char"] = _ratio(n_reach[:, 3], n_reach[:, 1])
    f["bm25_need_query"] = bm25_need
    f["bm25_prog_query"] = bm25_prog
    f["need_title_coverage"] = _coverage(need_title_hits, na["char_title_size"][n_rows])
    f["prog_title_coverage"] = _coverage(prog_title_hits, pa["char_title_size"][p_rows])
    f["need_title_in_prog_text"] = _contains(needs.titles, programs.texts, n_rows, p_rows)
    f["prog_title_in_need_text"] = _contains(programs.titles, needs.texts, p_rows, n_rows)
    if needs.dense is not None and programs.dense is not None:
        f["dense_cosine"] = np.einsum("ij,ij->i", needs.dense[n_rows], programs.dense[p_rows])
        hist = np.zeros(len(n_rows), np.float32)
        if memory.program_dense_centroid is not None:
            hist[ok] = np.einsum("ij,ij->i", needs.dense[n_rows[ok]],
                                 memory.program_dense_centroid[known_cols[ok]])
        f["dense_need_vs_program_history"] = hist
    # How close the nearest known needs come (a bare title borrows from far ones).
    nb_best, nb_sum = row_max_sum(nbrs, n_rows)
    f["need_neighbour_best"] = nb_best.astype(np.float32)
    f["need_neighbour_mean"] = (nb_sum / np.maximum(np.diff(nbrs.indptr)[n_rows], 1)
                                ).astype(np.float32)
    stats = np.zeros((len(n_rows), 4), np.float32)
    stats[ok] = neighbour_link_stats(nbrs, memory.links, n_rows[ok], known_cols[ok],
                                     none_rank=memory.knn + 1)
    stats[~ok, 3] = memory.knn + 1
    f["knn_sum"], f["knn_max"], f["knn_share"], f["knn_first_rank"] = stats.T
    f["program_links"] = pa["degree"][p_rows]
    f["program_known"] = ok.astype(np.float32)
    centroid = np.zeros(len(n_rows), np.float32)
    centroid[ok] = pair_dots(nw.full, memory.program_centroid, n_rows[ok], known_cols[ok])
    f["need_vs_program_history"] = centroid
    f["neighbour_programs_vs_program"] = neighbour_programs
    for length in memory.program_prefix_len:
        f[f"category_share_p{length}"] = _category_collab(
            memory, neighbour_links, pa[f"category_p{length}"][p_rows], q_rows, length)
    f.update(_prior(memory, na, pa, n_rows, p_rows))
    # How much the need says: a bare title ("电工") carries far less evidence than an
    # occupation's definition and tasks, and the ranker and the fit learn to weigh the
    # other features by it (training lists hold title-only copies of needs).
    f["need_terms"] = na["terms"][n_rows]
    f["need_body_terms"] = na["body_terms"][n_rows]
    f["need_title_chars"] = na["title_chars"][n_rows]
    f.update(_title_words(na, n_rows, title_words_hits, title_words_title_hits))
    f["need_level"] = needs.level[n_rows].astype(np.float32)
    f["program_level"] = programs.level[p_rows].astype(np.float32)
    same = (needs.level[n_rows] == programs.level[p_rows]) & (needs.level[n_rows] >= 0)
    f["same_level"] = np.where(needs.level[n_rows] >= 0, same, np.nan).astype(np.float32)
    return f


# Features also given relative to the best value in the query's candidate list.
RELATIVE = ("word_full", "char_full", "word_title", "bm25_need_query", "bm25_prog_query",
            "knn_sum", "neighbour_programs_vs_program", "need_vs_program_history",
            "dense_cosine")
_RELATIVE_SUFFIXES = ("_rel", "_rank")


def is_relative(name: str) -> bool:
    """Whether a feature depends on the other candidates of its list (``_rel``, ``_rank``)."""
    return any(name.endswith(s) and name[: -len(s)] in RELATIVE for s in _RELATIVE_SUFFIXES)


def _group_max_and_rank(values: np.ndarray, groups: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Per element: the largest value of its group, and its rank in the group (1 = largest;
    ties share the smallest rank; NaN stays NaN and is not counted), as pandas' groupby
    ``max`` and ``rank(ascending=False, method="min")`` give them."""
    n = len(values)
    ok = ~np.isnan(values)
    key = np.where(ok, -values, np.inf)  # NaN last within its group
    order = np.lexsort((key, groups))
    g, v = groups[order], key[order]
    new_group = np.r_[True, g[1:] != g[:-1]]
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
    new_value = new_group | np.r_[True, v[1:] != v[:-1]]
    tie_start = np.maximum.accumulate(np.where(new_value, np.arange(n), 0))
    rank = np.empty(n, dtype=np.float64)
    rank[order] = tie_start - group_start + 1
    rank[~ok] = np.nan
    best = np.empty(n, dtype=np.float64)
    first = v[group_start]  # the group's largest value (negated), or inf if all NaN
    best[order] = np.where(np.isinf(first), np.nan, -first)
    return best, rank


def relative_columns(columns: dict[str, np.ndarray], groups: np.ndarray
                     ) -> dict[str, np.ndarray]:
    """Each :data:`RELATIVE` feature's share of the best in its group, and its rank there."""
    groups = np.asarray(groups)
    names = [name for name in RELATIVE if name in columns]
    cols = [np.asarray(columns[name]).astype(np.float32, copy=False) for name in names]
    n = len(groups)
    extra = {}
    if n and names and groups[0] == groups[-1] and (groups == groups[0]).all():
        # A request: one list, its features ranked at once.
        stacked = np.stack(cols)
        best, ranks = list_best_and_rank(stacked)
        best = best.astype(np.float32)[:, None]
        shares = np.where(best > 0, stacked / np.where(best > 0, best, 1), 0.0)
        for name, share, rank in zip(names, shares, ranks, strict=True):
            extra[f"{name}_rel"] = share
            extra[f"{name}_rank"] = rank
        return extra
    for name, col in zip(names, cols, strict=True):
        best, rank = _group_max_and_rank(col.astype(np.float64), groups)
        best = best.astype(np.float32)
        extra[f"{name}_rel"] = np.where(best > 0, col / np.where(best > 0, best, 1), 0.0)
        extra[f"{name}_rank"] = rank
    return extra


def build_features(memory: Memory, needs: Side, programs: Side, nbrs: sp.csr_matrix,
                   n_rows: np.ndarray, p_rows: np.ndarray, groups: np.ndarray
                   ) -> tuple[np.ndarray, list[str]]:
    """The feature matrix of the pairs (``needs[n_rows[i]]``, ``programs[p_rows[i]]``).

    Parameters
    ----------
    memory : Memory
    needs, programs : Side
    nbrs : csr_matrix
        ``memory.neighbours(needs)``.
    n_rows, p_rows : ndarray of int
        The pairs.
    groups : ndarray
        The list each pair belongs to (its need's row when ranking programs for needs, its
        program's when ranking needs for programs): relative features compare a pair with
        the others of its list.

    Returns
    -------
    x : ndarray of float32, shape (n_pairs, n_features)
    names : list of str
        The absolute features first (:func:`pair_feature_columns`), then the relative ones
        (:func:`relative_columns`; :func:`is_relative` tells them apart).
    """
    columns = pair_feature_columns(memory, needs, programs, nbrs, n_rows, p_rows)
    columns.update(relative_columns(columns, groups))
    names = list(columns)
    x = np.empty((len(n_rows), len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        x[:, j] = columns[name]
    return x, names
