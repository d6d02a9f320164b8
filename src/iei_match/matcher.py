"""The matcher: retrieval plus a learned ranker, for both directions, as one estimator."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from tqdm.auto import tqdm

from . import tree_shap
from .catalog import Catalog
from .catalog import kind_of as catalog_kind
from .errors import InputError, NotFittedError
from .features import (
    Memory,
    Side,
    candidate_pairs,
    column_strings,
    document_texts,
    links_to_programs,
    pair_feature_columns,
    pair_features,
    stack_rows,
    text_fingerprints,
)
from .kernels import topk_rows
from .retrieval import PostingIndex
from .vectorize import FieldVectorizer

__all__ = ["Matcher", "Match"]

# Features also given relative to the best value in the query's candidate list.
RELATIVE = ("word_full", "char_full", "word_title", "bm25_need_query", "bm25_prog_query",
            "knn_sum", "neighbour_programs_vs_program", "need_vs_program_history",
            "dense_cosine")
EXPLAIN_TOP = 5  # rows per list that get feature contributions when explain=True
# Fewer rows than these are scored / explained by LightGBM in the calling thread only.
PREDICT_SERIAL_BELOW = 4096
CONTRIB_SERIAL_BELOW = 64
CONTENT_ONLY_WEIGHTS = {"word_full": 0.5, "char_full": 0.3, "word_title": 0.2}


@dataclass
class Match:
    """One ranked pair with the reasons behind it."""

    need_id: str
    program_id: str
    rank: int
    score: float
    matched_terms: list[str] = field(default_factory=list)
    contributions: dict[str, float] = field(default_factory=dict)


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


def _relative_columns(columns, groups: np.ndarray) -> dict[str, np.ndarray]:
    """Each :data:`RELATIVE` feature's share of the best in its group and rank there."""
    groups = np.asarray(groups)
    extra = {}
    for name in RELATIVE:
        if name not in columns:
            continue
        col = np.asarray(columns[name]).astype(np.float32, copy=False)
        best, rank = _group_max_and_rank(col.astype(np.float64), groups)
        best = best.astype(np.float32)
        extra[f"{name}_rel"] = np.where(best > 0, col / np.where(best > 0, best, 1), 0.0)
        extra[f"{name}_rank"] = rank
    return extra


def _add_relative(table: pd.DataFrame, groups: np.ndarray) -> pd.DataFrame:
    extra = _relative_columns(table, groups)
    return pd.concat([table.reset_index(drop=True), pd.DataFrame(extra)], axis=1)


def _index(side: Side, previous: Catalog | None, field: str) -> PostingIndex:
    """The retrieval index of ``side``'s ``field`` ("word" or "char") TF-IDF; that of
    ``previous`` when the matrix is the very one it indexed (no row or order changed)."""
    docs = getattr(side, field).full
    if previous is not None and getattr(previous.side, field).full is docs:
        return getattr(previous, f"{field}_index")
    return PostingIndex(docs)


def _check_frame(frame: pd.DataFrame, id_col: str, what: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"{what} must be a pandas DataFrame")
    missing = [c for c in (id_col, "title", "text") if c not in frame]
    if missing:
        raise InputError(f"{what} lack the column(s) {missing}")
    if len(frame) == 0:
        raise InputError(f"{what} are empty")
    ids = [str(v) for v in frame[id_col].tolist()]
    seen: set[str] = set()
    for v in ids:
        if v in seen:
            raise InputError(f"{what} have a duplicate {id_col}: {v!r}")
        seen.add(v)
    # Built from lists: a request's one-row frame spent milliseconds in pandas' string ops.
    return frame.reset_index(drop=True).assign(**{
        id_col: ids, "title": column_strings(frame["title"]),
        "text": column_strings(frame["text"])})


class Matcher(BaseEstimator):
    """Ranks programs for enterprise needs, and needs for programs.

    Stage one retrieves candidates by sparse similarity (word TF-IDF, character n-gram
    TF-IDF, and links of similar past needs); stage two scores them with a LightGBM
    LambdaRank model over pair features (lexical similarities by field, BM25, collaborative
    evidence from past links, category priors learned from links, level).

    Parameters
    ----------
    n_candidates : int, default=60
        Candidates taken from each retriever before ranking.
    knn : int, default=30
        How many similar past needs lend their links to a new need.
    n_folds : int, default=5
        Training features are computed out of fold: each fold's needs are scored against a
        memory of the other folds' links, as a new need will be.
    title_weight : float, default=3.0
        How many times a title term counts in whole-document vectors.
    max_df : float, default=0.5
        Terms in more than this share of documents are ignored.
    n_estimators, learning_rate, num_leaves, min_child_samples : LightGBM parameters.
    early_stopping_rounds : int, default=50
        Boosting stops when NDCG@10 on held-aside queries has not improved for this long.
    min_rounds : int, default=50
        The refit on all training queries uses at least this many rounds.
    validation_fraction : float, default=0.15
        Share of training queries held aside for early stopping; the final model is then
        refit on every query with the number of rounds found.
    code_dropout : float, default=0.25
        Share of training needs whose taxonomy code is hidden, so that needs without a code
        (free text from an enterprise) are ranked well too.
    train_candidates : int, default=40
        Candidates per retriever for the training lists (fewer than at ranking time, to
        keep training fast).
    dense : {"auto", True, False}, default="auto"
        Add sentence embeddings (all-MiniLM-L6-v2, from the ``embeddings`` extra) as one more
        retriever and feature source. ``"auto"`` uses them when the extra is installed and
        most of the training text is not Chinese (the model is English-only). A model
        trained with them needs the extra to rank.
    random_state : int, default=0
    n_jobs : int, default=2

    Attributes
    ----------
    mode_ : {"learned", "content-only"}
        ``"content-only"`` when there were no links to learn from.
    feature_names_ : list of str
    boosters_ : dict
        ``{"need": lightgbm.Booster, "program": lightgbm.Booster}`` (empty in content-only mode).
    best_iterations_ : dict

    Examples
    --------
    >>> needs = pd.DataFrame({"need_id": ["n1", "n2"], "title": ["数控车工", "护士"],
    ...                       "text": ["操作数控机床加工零件", "临床护理病人"]})
    >>> programs = pd.DataFrame({"program_id": ["p1", "p2"], "title": ["数控技术", "护理"],
    ...                          "text": ["数控机床编程与加工", "临床护理与健康照护"]})
    >>> m = Matcher().fit(needs, programs, links=None)
    >>> m.mode_
    'content-only'
    >>> m.rank(needs.iloc[:1], programs, k=1)[["need_id", "program_id", "rank"]].values.tolist()
    [['n1', 'p1', 1]]
    """

    def __init__(self, n_candidates=60, knn=30, n_folds=5, title_weight=3.0, max_df=0.5,
                 n_estimators=600, learning_rate=0.05, num_leaves=31, min_child_samples=20,
                 early_stopping_rounds=50, min_rounds=50, validation_fraction=0.15,
                 code_dropout=0.25, train_candidates=40, dense="auto", random_state=0,
                 n_jobs=2):
        self.n_candidates = n_candidates
        self.knn = knn
        self.n_folds = n_folds
        self.title_weight = title_weight
        self.max_df = max_df
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.code_dropout = code_dropout
        self.min_rounds = min_rounds
        self.train_candidates = train_candidates
        self.dense = dense
        self.random_state = random_state
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ fitting
    def fit(self, needs: pd.DataFrame, programs: pd.DataFrame, links: pd.DataFrame | None,
            progress: bool = False) -> Matcher:
        """Learn vocabularies, the memory of past links and the ranker.

        Parameters
        ----------
        needs : DataFrame with columns need_id, title, text (optional: level, code)
        programs : DataFrame with columns program_id, title, text (optional: level, code)
        links : DataFrame with columns need_id, program_id, grade, or None
            Past partnerships; grade 1-3 is a positive outcome (3 best); grade 0 counts like
            no link at all.
        progress : bool
            Show progress bars.
        """
        needs = _check_frame(needs, "need_id", "needs")
        programs = _check_frame(programs, "program_id", "programs")
        self.word_ = FieldVectorizer("word", self.title_weight, max_df=self.max_df)
        self.char_ = FieldVectorizer("char", self.title_weight, max_df=self.max_df)
        (n_titles, n_texts), (p_titles, p_texts) = document_texts(needs), document_texts(programs)
        titles, texts = n_titles + p_titles, n_texts + p_texts
        self.word_.fit(titles, texts)
        self.char_.fit(titles, texts)
        self.dense_ = self._use_dense(texts)
        self.dense_cache_: dict[str, np.ndarray] = {}
        need_side = Side.build(needs, "need_id", self.word_, self.char_,
                               self._embed(needs, remember=True))
        prog_side = Side.build(programs, "program_id", self.word_, self.char_,
                               self._embed(programs, remember=True))
        matrix = self._link_matrix(links, need_side, prog_side)
        self.memory_ = self._memory(need_side, prog_side, matrix)
        self.boosters_: dict[str, lgb.Booster] = {}
        self.best_iterations_: dict[str, int] = {}
        if not 0 <= self.validation_fraction < 1:
            raise InputError("validation_fraction must be at least 0 and below 1")
        linked_needs = int((matrix.getnnz(axis=1) > 0).sum())
        if linked_needs < 2:
            return self._content_only("no links to learn from" if linked_needs == 0 else
                                      "links for a single need are too few to learn from")
        tables = self._out_of_fold_tables(need_side, prog_side, matrix, progress)
        if any(len(np.unique(g)) < 2 for _, _, g in tables.values()):
            return self._content_only("the links are too few to learn a ranker from")
        self.mode_ = "learned"
        try:
            for direction, (x, y, groups) in tables.items():
                self.boosters_[direction] = self._train(x, y, groups, direction)
        except lgb.basic.LightGBMError as exc:
            raise InputError(f"the ranker could not be trained on these data: {exc}") from exc
        return self

    def _content_only(self, reason: str) -> Matcher:
        self.mode_ = "content-only"
        self.feature_names_: list[str] = []
        self.boosters_ = {}
        warnings.warn(f"{reason}: ranking by content similarity only", UserWarning,
                      stacklevel=3)
        return self

    def _use_dense(self, texts: list[str]) -> bool:
        from . import embeddings
        from .text import has_cjk

        if self.dense == "auto":
            sample = texts[:: max(1, len(texts) // 500)]
            mostly_chinese = np.mean([has_cjk(t) for t in sample]) >= 0.5
            return embeddings.available() and not mostly_chinese
        if self.dense not in (True, False):
            raise InputError(f"dense must be 'auto', True or False, got {self.dense!r}")
        if self.dense and not embeddings.available():
            embeddings.DenseEncoder()  # raises OptionalDependencyError with the install hint
        return bool(self.dense)

    def _embed(self, frame: pd.DataFrame, remember: bool = False) -> np.ndarray | None:
        """Sentence embeddings of title + text, reusing those of texts seen in training.

        Only training (``remember=True``) adds to the cache that is saved with the model.
        """
        if not self.dense_:
            return None
        from .embeddings import DenseEncoder

        docs = (frame["title"].astype(str) + ". " + frame["text"].astype(str)).tolist()
        cache = self.dense_cache_ if remember else dict(self.dense_cache_)
        return DenseEncoder(max_seq_length=128).encode_cached(docs, cache)

    def _memory(self, needs: Side, programs: Side, links: sp.csr_matrix) -> Memory:
        return Memory(needs, programs, links, self.word_.idf_, knn=self.knn)

    @staticmethod
    def _link_matrix(links, needs: Side, programs: Side) -> sp.csr_matrix:
        shape = (len(needs), len(programs))
        if links is None or (isinstance(links, pd.DataFrame) and len(links) == 0):
            return sp.csr_matrix(shape, dtype=np.float32)
        if not isinstance(links, pd.DataFrame):
            raise InputError("links must be a pandas DataFrame (need_id, program_id, grade)")
        missing = [c for c in ("need_id", "program_id") if c not in links]
        if missing:
            raise InputError(f"links lack the column(s) {missing}")
        n_index = {v: i for i, v in enumerate(needs.ids)}
        p_index = {v: j for j, v in enumerate(programs.ids)}
        rows = links["need_id"].astype(str).map(n_index)
        cols = links["program_id"].astype(str).map(p_index)
        unknown = rows.isna() | cols.isna()
        if unknown.any():
            first = links[unknown].iloc[0]
            raise InputError(f"{int(unknown.sum())} link(s) name an unknown need or program, "
                             f"first: need_id={first['need_id']!r}, "
                             f"program_id={first['program_id']!r}")
        grade = (links["grade"] if "grade" in links else pd.Series(1, index=links.index))
        grade = pd.to_numeric(grade, errors="coerce")
        bad = grade.isna() | (grade % 1 != 0) | (grade < 0) | (grade > 3)
        if bad.any():
            raise InputError(f"{int(bad.sum())} link(s) have a grade that is not a whole number "
                             f"from 0 to 3, first: {links.loc[bad, 'grade'].iloc[0]!r}")
        if pd.DataFrame({"r": rows, "c": cols}).duplicated().any():
            raise InputError("links name the same (need_id, program_id) pair more than once")
        grade = grade.astype(np.float32)
        m = sp.csr_matrix((grade.to_numpy(), (rows.to_numpy(int), cols.to_numpy(int))),
                          shape=shape, dtype=np.float32)
        m.eliminate_zeros()
        return m

    def _out_of_fold_tables(self, needs: Side, programs: Side, matrix: sp.csr_matrix,
                            progress: bool) -> dict[str, tuple]:
        rng = np.random.default_rng(self.random_state)
        n = len(needs)
        n_folds = max(2, min(self.n_folds, n))
        fold_of = rng.permutation(n) % n_folds
        parts: dict[str, list] = {"need": [], "program": []}
        for f in tqdm(range(n_folds), desc="out-of-fold features", disable=not progress):
            held = np.flatnonzero(fold_of == f)
            kept = np.flatnonzero(fold_of != f)
            memory = self._memory(needs.take(kept), programs, matrix[kept])
            queries = needs.take(held)
            # Some new needs come without a taxonomy code: hide it for a share of the
            # training needs so the ranker learns to do without the code priors.
            hide = rng.random(len(held)) < self.code_dropout
            queries.codes = np.where(hide, "", queries.codes).astype(object)
            queries._prefixes = {}  # the prefixes of the codes as they were
            nbrs = memory.neighbours(queries)
            labels = matrix[held]
            for direction in ("need", "program"):
                n_rows, p_rows = candidate_pairs(memory, queries, programs, nbrs,
                                                 self.train_candidates, direction)
                y = np.asarray(labels[n_rows, p_rows]).ravel()
                groups = held[n_rows] if direction == "need" else p_rows + f * len(programs)
                x = pair_features(memory, queries, programs, nbrs, n_rows, p_rows)
                x = _add_relative(x, groups)
                parts[direction].append((x, y, groups))
        out = {}
        for direction, chunks in parts.items():
            x = pd.concat([c[0] for c in chunks], ignore_index=True)
            y = np.concatenate([c[1] for c in chunks])
            g = np.concatenate([c[2] for c in chunks])
            has_pos = pd.Series(y > 0).groupby(g).transform("any").to_numpy()
            x, y, g = x[has_pos].reset_index(drop=True), y[has_pos], g[has_pos]
            order = np.argsort(g, kind="stable")
            out[direction] = (x.iloc[order].reset_index(drop=True), y[order], g[order])
        self.feature_names_ = list(out["need"][0].columns)
        return out

    def _train(self, x: pd.DataFrame, y: np.ndarray, groups: np.ndarray,
               direction: str) -> lgb.Booster:
        uniq = np.unique(groups)
        rng = np.random.default_rng(self.random_state + 1)
        n_val = min(int(round(len(uniq) * self.validation_fraction)), len(uniq) - 1)
        val_groups = set(rng.choice(uniq, size=n_val, replace=False).tolist()) if n_val else set()
        is_val = np.array([g in val_groups for g in groups])
        params = {
            "objective": "lambdarank", "metric": "ndcg", "eval_at": [10],
            "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples, "feature_fraction": 0.8,
            "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0,
            "num_threads": self.n_jobs, "seed": self.random_state, "deterministic": True,
            "force_row_wise": True, "verbose": -1,
        }

        def dataset(mask):
            _, counts = np.unique(groups[mask], return_counts=True)
            return lgb.Dataset(x[mask].to_numpy(np.float32), y[mask], group=counts,
                               feature_name=list(x.columns), free_raw_data=True)

        train = dataset(~is_val)
        callbacks: list = []
        valid_sets = []
        if is_val.any():
            valid_sets = [dataset(is_val)]
            callbacks.append(lgb.early_stopping(self.early_stopping_rounds, verbose=False))
        booster = lgb.train(params, train, num_boost_round=self.n_estimators,
                            valid_sets=valid_sets, callbacks=callbacks)
        best = booster.best_iteration or booster.current_iteration()
        best = min(max(best, self.min_rounds), self.n_estimators)
        self.best_iterations_[direction] = int(best)
        if is_val.any():  # refit on every query with the tuned number of rounds
            booster = lgb.train(params, dataset(np.ones(len(y), bool)), num_boost_round=best)
        return booster

    # ------------------------------------------------------------------ ranking
    def _check_fitted(self) -> None:
        if not hasattr(self, "memory_"):
            raise NotFittedError("this Matcher is not fitted yet: call fit or load a model")

    def _feature_matrix(self, columns: dict[str, np.ndarray], n: int) -> np.ndarray:
        """The model's features as float32 rows (NaN for a feature ``columns`` lacks), as
        ``DataFrame(columns).reindex(columns=feature_names_).to_numpy(np.float32)``."""
        out = np.empty((n, len(self.feature_names_)), dtype=np.float32)
        for j, name in enumerate(self.feature_names_):
            out[:, j] = columns[name] if name in columns else np.nan
        return out

    def _score(self, columns: dict[str, np.ndarray], x: np.ndarray,
               direction: str) -> np.ndarray:
        if self.mode_ == "content-only":
            score = np.zeros(len(x))
            for name, w in CONTENT_ONLY_WEIGHTS.items():
                score += w * np.asarray(columns[name], dtype=np.float64)
            return score
        return np.asarray(self.boosters_[direction].predict(
            x, num_threads=self._threads(len(x), PREDICT_SERIAL_BELOW)))

    def _threads(self, rows: int, serial_below: int) -> int:
        # A request's few hundred rows: waking OpenMP threads costs more than it saves, and
        # concurrent requests already use the other cores. Same results either way.
        return 1 if rows < serial_below else self.n_jobs

    def prepare(self, frame: pd.DataFrame, kind: str = "program",
                previous: Catalog | None = None) -> Catalog:
        """Vectorise and index a set of programs (or needs) once, for repeated ranking.

        Parameters
        ----------
        frame : DataFrame
            Programs (``kind="program"``) or needs (``kind="need"``), as for :meth:`rank`.
        kind : {"program", "need"}
        previous : Catalog, optional
            A catalog this model prepared earlier for the same ``kind``, typically of the
            same table before some rows were added, changed, deleted or reordered. A row of
            ``frame`` with the id of one of its rows and the same texts (title, text,
            skills, industry, certificates: see
            :func:`~iei_match.features.text_fingerprints`) copies that row's vectors,
            embedding and (needs) nearest known needs instead of analysing its text again,
            which is almost all the cost; only the new and changed rows are vectorised.
            Ids, levels, codes, places, capacities, the order of the rows, the indexes and
            the programs' link history are taken from ``frame`` as without it, so the
            result equals ``prepare(frame, kind)``. A catalog of the other kind or of
            another model is refused, not ignored (it is a mistake of the caller).

        Returns
        -------
        Catalog
            Pass it as the ``programs`` of :meth:`rank` or the ``needs`` of
            :meth:`partners`: results are those on ``frame``, without redoing its vectors,
            indexes and link history on every call. It belongs to this fitted model. Its
            ``reused`` is the number of rows copied from ``previous``.

        Raises
        ------
        InputError
            ``kind`` is not ``"program"`` or ``"need"``, ``frame`` is not a valid table,
            or ``previous`` is not a catalog of this model and of this ``kind``.

        Notes
        -----
        Copying is exact: a row's word and character TF-IDF (fixed vocabulary and idf,
        per-row norm), its BM25 counts and its nearest known needs depend on that row
        only. Sentence embeddings (``dense``) are computed in batches, whose make-up moves
        the last float bits; a copied row keeps the embedding it was first given.
        """
        self._check_fitted()
        kind = catalog_kind(kind)
        id_col = f"{kind}_id"
        frame = _check_frame(frame, id_col, f"{kind}s")
        fingerprints = text_fingerprints(frame)
        source = self._reusable_rows(frame[id_col], fingerprints, kind, previous)
        memory = self.memory_
        if source is None or previous is None:
            side = Side.build(frame, id_col, self.word_, self.char_, self._embed(frame))
            history = None if kind == "program" else memory.neighbours(side)
            reused = 0
        else:
            old = previous.side
            side = old.update(frame, id_col, self.word_, self.char_, source,
                              self._embed_reusing(frame, source, old.dense))
            history = None if kind == "program" else self._neighbours_reusing(
                side, source, previous.history)
            reused = int((source >= 0).sum())
        if kind == "program":  # cheap, and follows the ids and codes
            history = links_to_programs(memory, memory.program_columns(side))
        return Catalog(kind, side, _index(side, previous, "word"),
                       _index(side, previous, "char"), history, (self.word_, self.char_),
                       fingerprints=fingerprints, reused=reused)

    def _check_catalog(self, catalog: Catalog, kind: str, name: str) -> None:
        """Refuse a catalog of the other kind, or one prepared by another model."""
        if catalog.kind != kind:
            raise InputError(f"{name} holds {catalog.kind}s, not {kind}s")
        if catalog.vectorizers[0] is not self.word_ or catalog.vectorizers[1] is not self.char_:
            raise InputError(f"{name} was prepared by another model: prepare it again with "
                             "this one")

    def _reusable_rows(self, ids: pd.Series, fingerprints: np.ndarray, kind: str,
                       previous: Catalog | None) -> np.ndarray | None:
        """For each row, the row of ``previous`` with its id and texts, or -1 (None: none)."""
        if previous is None:
            return None
        if not isinstance(previous, Catalog):
            raise InputError(f"previous must be a Catalog made by prepare, got "
                             f"{type(previous).__name__}")
        self._check_catalog(previous, kind, "previous")
        if previous.fingerprints is None:
            return None
        at = pd.Index(previous.ids).get_indexer(ids.to_numpy(dtype=object))
        same = (at >= 0) & (previous.fingerprints[np.maximum(at, 0)] == fingerprints)
        return np.where(same, at, -1) if same.any() else None

    def _embed_reusing(self, frame: pd.DataFrame, source: np.ndarray,
                       old: np.ndarray | None) -> np.ndarray | None:
        """:meth:`_embed` of the rows with ``source`` -1; row ``source[i]`` of ``old`` else."""
        if not self.dense_ or old is None:
            return self._embed(frame)
        fresh = source < 0
        out = np.empty((len(frame), old.shape[1]), dtype=old.dtype)
        out[~fresh] = old[source[~fresh]]
        if fresh.any():
            out[fresh] = self._embed(frame[fresh])
        return out

    def _neighbours_reusing(self, side: Side, source: np.ndarray,
                            old: sp.csr_matrix) -> sp.csr_matrix:
        """``memory_.neighbours(side)``, copying row ``source[i]`` of ``old`` where it is set."""
        fresh = np.flatnonzero(source < 0)
        index = source.copy()
        index[fresh] = old.shape[0] + np.arange(len(fresh))
        parts = [old] if len(fresh) == 0 else [old, self.memory_.neighbours(side.take(fresh))]
        return stack_rows(parts, index)

    def _side(self, data, kind: str, searched: bool) -> tuple[Side, Catalog | None]:
        if isinstance(data, Catalog):
            if not searched:
                searched_side = "programs of rank" if kind == "program" else "needs of partners"
                raise InputError(f"a Catalog can only be the side being searched (the "
                                 f"{searched_side}); pass these {kind}s as a DataFrame")
            self._check_catalog(data, kind, "this Catalog")
            return data.side, data
        frame = _check_frame(data, f"{kind}_id", f"{kind}s")
        return Side.build(frame, f"{kind}_id", self.word_, self.char_, self._embed(frame)), None

    def _run(self, needs, programs, k: int, direction: str,
             explain: bool | int) -> pd.DataFrame:
        self._check_fitted()
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise InputError(f"k must be a whole number of at least 1, got {k!r}")
        need_side, need_cat = self._side(needs, "need", searched=direction == "program")
        prog_side, prog_cat = self._side(programs, "program", searched=direction == "need")
        catalog = need_cat or prog_cat
        if explain is True:
            n_explain = EXPLAIN_TOP
        elif isinstance(explain, (bool, int, np.integer)) and explain >= 0:
            n_explain = int(explain)
        else:
            raise InputError(f"explain must be True, False or a whole number, got {explain!r}")
        memory = self.memory_
        nbrs = need_cat.history if need_cat is not None else memory.neighbours(need_side)
        n_cand = max(self.n_candidates, k)
        n_rows, p_rows = candidate_pairs(memory, need_side, prog_side, nbrs, n_cand, direction,
                                         catalog)
        if len(n_rows) == 0:  # nothing shares a term (or everything is filtered out)
            n_rows = p_rows = np.zeros(0, dtype=np.int64)
            return self._table(need_side, prog_side, n_rows, p_rows, n_rows, n_rows, None,
                               np.zeros(0), direction, n_explain)
        groups = n_rows if direction == "need" else p_rows
        columns = pair_feature_columns(memory, need_side, prog_side, nbrs, n_rows, p_rows)
        columns.update(_relative_columns(columns, groups))
        x = self._feature_matrix(columns, len(n_rows))
        score = self._score(columns, x, direction)
        other = p_rows if direction == "need" else n_rows
        order = np.lexsort((other, -score, groups))
        g_sorted = groups[order]
        start = np.r_[0, np.flatnonzero(np.diff(g_sorted)) + 1]
        rank = np.arange(len(order)) - np.repeat(start, np.diff(np.r_[start, len(order)]))
        keep = order[rank < k]
        return self._table(need_side, prog_side, n_rows, p_rows, keep, rank[rank < k] + 1, x,
                           score, direction, n_explain)

    def _table(self, need_side: Side, prog_side: Side, n_rows, p_rows, keep, rank,
               x: np.ndarray | None, score, direction: str, n_explain: int) -> pd.DataFrame:
        """The kept pairs as the result table, with explanations for the top rows.

        ``x`` is the pairs' feature matrix (:meth:`_feature_matrix`)."""
        rank = np.asarray(rank, dtype=int)
        ids = {"need_id": need_side.ids[n_rows[keep]],
               "program_id": prog_side.ids[p_rows[keep]]}
        first, second = ("need_id", "program_id") if direction == "need" else (
            "program_id", "need_id")
        out = {first: ids[first], second: ids[second], "rank": rank,
               "score": score[keep].astype(float)}
        if n_explain > 0:
            out["matched_terms"] = self._matched_terms(need_side, prog_side, n_rows[keep],
                                                       p_rows[keep])
            # Feature contributions (TreeSHAP, ~0.2 ms a row) for the top rows of each list.
            factors = np.full(len(keep), "", dtype=object)
            top = np.flatnonzero(rank <= n_explain)
            if x is not None and len(top):
                factors[top] = self._factors(x[keep[top]], direction)
            out["top_factors"] = factors
        return pd.DataFrame(out)

    def _matched_terms(self, needs: Side, programs: Side, n_rows, p_rows, n_terms=5) -> list[str]:
        prod = sp.csr_matrix(needs.word.full[n_rows].multiply(programs.word.full[p_rows]))
        cols, vals = topk_rows(prod, n_terms)
        vocab = self.word_.vocabulary_
        return ["|".join(vocab[c] for c in row if c >= 0) for row in cols]

    def _factors(self, x: np.ndarray, direction: str, n_factors=3) -> list[str]:
        if self.mode_ == "content-only" or len(x) == 0:
            return ["content similarity only"] * len(x)
        contrib = self._contributions(x, direction)
        names = np.asarray(self.feature_names_)
        top = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, :n_factors]
        return ["; ".join(f"{names[j]}:{contrib[i, j]:+.3f}" for j in row)
                for i, row in enumerate(top)]

    def contributions(self, x: pd.DataFrame, direction: str) -> np.ndarray:
        """Per-feature contributions (exact path-dependent TreeSHAP values, as LightGBM's
        ``pred_contrib`` gives them, from :mod:`.tree_shap`'s tables) to each pair's score."""
        return self._contributions(x.reindex(columns=self.feature_names_).to_numpy(np.float32),
                                   direction)

    def _contributions(self, x: np.ndarray, direction: str) -> np.ndarray:
        """:meth:`contributions` of a float32 feature matrix in ``feature_names_`` order."""
        threads = self._threads(len(x), CONTRIB_SERIAL_BELOW)
        tables = self._shap_tables(direction)
        if tables is None:  # a tree structure the tables do not cover
            out = self.boosters_[direction].predict(x, pred_contrib=True, num_threads=threads)
            return np.asarray(out)[:, :-1]
        return tree_shap.contributions(tables, x, n_threads=threads)

    def prepare_explanations(self) -> Matcher:
        """Build the TreeSHAP tables of both rankers now (0.1-0.5 s for the bundled models)
        rather than in the first ranking that explains; returns the matcher."""
        self._check_fitted()
        for direction in self.boosters_:
            self._shap_tables(direction)
        return self

    def _shap_tables(self, direction: str) -> tree_shap.ShapTables | None:
        """The booster's TreeSHAP tables, built on first use (0.1-0.5 s for the bundled
        models). Concurrent first calls may each build them; the results are equal."""
        cache = self.__dict__.setdefault("_shap_cache", {})
        booster = self.boosters_[direction]
        cached = cache.get(direction)
        if cached is None or cached[0] is not booster:  # first use, or refitted since
            cached = cache[direction] = (booster, tree_shap.shap_tables(booster))
        return cached[1]

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: the live object keeps its cache
        state.pop("_shap_cache", None)  # rebuilt from the boosters where it is used
        return state

    def rank(self, needs: pd.DataFrame, programs: pd.DataFrame | Catalog, k: int = 10,
             explain: bool | int = True) -> pd.DataFrame:
        """The best ``k`` programs for each need.

        Parameters
        ----------
        needs, programs : DataFrame
            Columns ``need_id`` / ``program_id``, ``title``, ``text``; optional ``level``,
            ``code``, ``skills``, ``industry``, ``province``, ``city``, ``headcount`` /
            ``graduates_per_year``. ``programs`` may be a :class:`Catalog` made by
            :meth:`prepare` (same results, much faster for repeated calls).
        k : int
            How many programs per need (fewer when fewer share anything with the need).
        explain : bool or int, default=True
            Add ``matched_terms`` (shared terms, ``|``-separated, strongest first) to every
            row and ``top_factors`` (the three features that moved the score most, from
            LightGBM's SHAP values) to the top ``explain`` rows of each list (True: 5).

        Returns
        -------
        DataFrame
            Columns ``need_id, program_id, rank, score`` (rank 1 = best), then the
            explanation columns.
        """
        return self._run(needs, programs, k, "need", explain)

    def partners(self, programs: pd.DataFrame, needs: pd.DataFrame | Catalog, k: int = 10,
                 explain: bool | int = True) -> pd.DataFrame:
        """The best ``k`` needs for each program: columns ``program_id, need_id, rank, score``.

        The other direction of :meth:`rank`, with the same parameters and explanations;
        ``needs`` may be a :class:`Catalog` of needs made by :meth:`prepare`.
        """
        return self._run(needs, programs, k, "program", explain)

    def explain(self, ranked: pd.DataFrame) -> list[Match]:
        """The rows returned by :meth:`rank` or :meth:`partners` as :class:`Match` objects."""
        out = []
        for row in ranked.itertuples(index=False):
            factors = {}
            for part in str(getattr(row, "top_factors", "") or "").split("; "):
                name, _, value = part.rpartition(":")
                if name:
                    factors[name] = float(value)
            terms = str(getattr(row, "matched_terms", "") or "")
            out.append(Match(row.need_id, row.program_id, int(row.rank), float(row.score),
                             [t for t in terms.split("|") if t], factors))
        return out
