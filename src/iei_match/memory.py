"""The link memory: what the ranker may consult about the past (known needs, known
programs, their graded links), and the lookups built on it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.preprocessing import normalize as l2_normalize

from .csr import csr_of
from .kernels import pair_dots, topk_stored
from .retrieval import PostingIndex
from .sides import Side
from .state import get_sparse, put_sparse

__all__ = ["Memory", "links_to_programs", "dense_topk"]


SPREAD_K = 10  # the rank whose similarity tells how generic a row is (:meth:`Memory.reach`)


@dataclass(frozen=True)
class Prior:
    """Shares of past links between need code prefixes and program categories, looked up
    for many pairs at once (:meth:`shares`).

    ``keys`` (sorted) are ``need prefix index * n_categories + category index`` of the
    (prefix, category) pairs that have links; ``values`` their shares of the links of the
    need prefix.
    """

    n_categories: int
    keys: np.ndarray
    values: np.ndarray

    @classmethod
    def of(cls, seen: dict[str, int], categories: dict[str, int], share: pd.Series) -> Prior:
        """From the shares by (need prefix, program prefix) (a Series with that index)."""
        keys = np.array([seen[n] * len(categories) + categories[p] for n, p in share.index],
                        dtype=np.int64)
        order = np.argsort(keys, kind="stable")
        return cls(len(categories), keys[order], share.to_numpy(np.float64)[order])

    def shares(self, need: np.ndarray, category: np.ndarray) -> np.ndarray:
        """The share of each pair (need prefix index, category index; -1: not known):
        NaN where the need prefix had no past links, 0 where its links went elsewhere."""
        key = need * self.n_categories + category
        at = np.minimum(np.searchsorted(self.keys, key), max(len(self.keys) - 1, 0))
        hit = (need >= 0) & (category >= 0)
        if len(self.keys):
            hit &= self.keys[at] == key
            found = np.where(hit, self.values[at], 0.0)
        else:
            found = np.zeros(len(key))
        return np.where(need >= 0, found, np.nan)


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
        self.program_index_word = PostingIndex(self.programs.word.full)
        self.program_index_char = PostingIndex(self.programs.char.full)
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
        # Known programs' categories (code prefixes): index of each, and program -> category.
        self.categories = {}
        self.program_category: dict[int, np.ndarray] = {}  # by length, each program's index
        for length in self.program_prefix_len:
            cats, idx = np.unique(self.programs.code_prefixes(length), return_inverse=True)
            onehot = sp.csr_matrix((np.ones(len(idx), np.float32), (np.arange(len(idx)), idx)),
                                   shape=(len(idx), len(cats)))
            self.categories[length] = ({c: i for i, c in enumerate(cats)}, onehot)
            self.program_category[length] = idx.astype(np.int64)
        # The share of the links of past needs with a code prefix that went to each program
        # category: the need prefixes seen (prefix -> index) by length, and per pair of
        # lengths a :class:`Prior`. A need without a code has no kind: its links count in
        # no prior, and the priors of such a need are unknown (NaN), not those of "needs
        # without a code" (every need an enterprise writes in the service).
        self.seen_prefixes: dict[int, dict[str, int]] = {}
        self.priors: dict[tuple[int, int], Prior] = {}
        linked = self.links.tocoo()
        for ln in self.need_prefix_len:
            need_pre = self.needs.code_prefixes(ln)[linked.row]
            coded = need_pre != ""
            for lp in self.program_prefix_len:
                prog_pre = self.programs.code_prefixes(lp)[linked.col]
                table = pd.DataFrame({"n": need_pre[coded], "p": prog_pre[coded],
                                      "g": linked.data[coded]})
                counts = table.groupby(["n", "p"])["g"].sum()
                totals = table.groupby("n")["g"].sum()
                prob = (counts / totals.reindex(counts.index.get_level_values(0)).to_numpy())
                seen = self.seen_prefixes[ln] = {n: i for i, n in enumerate(totals.index)}
                self.priors[(ln, lp)] = Prior.of(seen, self.categories[lp][0], prob)

    def get_state(self, arrays: dict, prefix: str = "memory") -> dict:
        """Put the known needs, programs and links into ``arrays``; returns the JSON part.
        Everything else is derived again by :meth:`from_state`."""
        put_sparse(arrays, f"{prefix}.links", self.links)
        return {"needs": self.needs.get_state(f"{prefix}.needs", arrays),
                "programs": self.programs.get_state(f"{prefix}.programs", arrays),
                "knn": self.knn}

    @classmethod
    def from_state(cls, state: dict, arrays: dict, word_idf: np.ndarray,
                   prefix: str = "memory") -> Memory:
        """The inverse of :meth:`get_state` (``word_idf``: the word vectorizer's idf)."""
        return cls(Side.from_state(state["needs"], f"{prefix}.needs", arrays),
                   Side.from_state(state["programs"], f"{prefix}.programs", arrays),
                   get_sparse(arrays, f"{prefix}.links"), word_idf, knn=int(state["knn"]))

    def reach(self, side: Side, kind: str) -> np.ndarray:
        """How close each row of ``side`` comes to anything known of the other kind.

        For needs (``kind="need"``): the largest word and character TF-IDF cosine with any
        known program, then the :data:`SPREAD_K`-th largest of each (how many known rows
        come about as close: a generic title such as "文员" finds many, a specific one a
        few); for programs, the same with the known needs. Shape ``(len(side), 4)``. A
        pair's similarity divided by it says how the pair compares with the best the row
        could find among everything the model knows: a yardstick that depends on the row
        and the model only, never on the other candidates of a list. Kept on ``side``
        (keyed by this memory), since a catalog's rows are asked about again and again.
        """
        cache = side._reach
        cached = cache.get(kind)
        if cached is not None and cached[0] is self:
            return cached[1]
        if kind == "need":
            word, char = self.program_index_word, self.program_index_char
        else:
            word, char = self.need_index_word, self.need_index_char
        k = max(1, min(SPREAD_K, word.n_docs))
        w, c = word.search(side.word.full, k)[1], char.search(side.char.full, k)[1]
        w, c = np.maximum(w, 0), np.maximum(c, 0)  # a missing hit counts as 0
        out = np.stack([w[:, 0], c[:, 0], w[:, -1], c[:, -1]], axis=1).astype(np.float32)
        cache[kind] = (self, out)
        return out

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
        # The CSR arrays of the pairs (unique and sorted: no scipy conversion needed), then
        # those of each query's k best, columns sorted within each row.
        indptr = np.zeros(n_q + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_q), out=indptr[1:])
        top_cols, top_sim = topk_stored(indptr, cols, sim.astype(np.float32, copy=False), k,
                                        n_k)
        r = np.repeat(np.arange(n_q), top_cols.shape[1])
        top_cols, top_sim = top_cols.ravel(), top_sim.ravel()
        ok = top_cols >= 0
        order = np.argsort(r[ok] * n_k + top_cols[ok], kind="stable")
        counts = np.bincount(r[ok], minlength=n_q)
        index = np.int32 if max(n_k, int(ok.sum())) <= np.iinfo(np.int32).max else np.int64
        out_ptr = np.zeros(n_q + 1, dtype=index)
        np.cumsum(counts, out=out_ptr[1:])
        out = csr_of(top_sim[ok][order], top_cols[ok][order].astype(index), out_ptr, (n_q, n_k))
        out.has_sorted_indices = True
        return out

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
