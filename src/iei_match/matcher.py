"""The matcher: retrieval, a ranker and a calibrated fit, for both directions, as one
estimator.

The parts each live in their own module: the sides' vectors (:mod:`.sides`), the memory of
past links (:mod:`.memory`), candidate retrieval (:mod:`.candidates`), the one feature
builder (:mod:`.features`), the rankers (:mod:`.rankers`), the calibrated fit
(:mod:`.fit`) and the typed result (:mod:`.results`). This module fits them together.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from numbers import Integral, Real
from typing import Literal, TypeAlias, TypeVar, overload

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from tqdm.auto import tqdm

from . import tree_predict
from .bridge import bridge_text, detect_language
from .candidates import candidate_pairs
from .catalog import Catalog, Queries
from .catalog import kind_of as catalog_kind
from .errors import InputError, NotFittedError
from .explanations import is_filler, is_shown, says_in_common
from .features import build_features, is_relative
from .fit import FitModel, SimilarityFit
from .kernels import topk_pair_products
from .memory import Memory, links_to_programs
from .params import Interval, Options, validate_params
from .rankers import ContentRanker, LambdaRanker, Ranker
from .results import Match, Ranking
from .retrieval import PostingIndex
from .rows import SMALL, Rows
from .short_titles import head_title
from .sides import (
    BODY_EXTRAS,
    Side,
    column_strings,
    document_texts,
    stack_rows,
    text_fingerprints,
)
from .skills import expand_title
from .spellings import spell_pairs
from .text import has_cjk
from .threads import in_threads, numba_threadsafe
from .vectorize import FieldVectorizer

__all__ = ["Matcher", "Match", "Ranking"]

EXPLAIN_TOP = 5  # rows per list that get feature contributions when explain=True
MIN_FIT_LINKS = 20  # links among the out-of-fold pairs needed to calibrate the fit
FIT_NEGATIVES = 100_000  # non-link pairs the fit is learned from, at most (a sample)
DIRECTIONS = ("need", "program")
_SPARE_TERMS = 10  # shared terms looked at beyond those shown, in case some are filler


def _side_text(side: Side):
    """Row ``i`` of a side's normalised title and text ("" when the side does not keep them)."""
    if side.titles is None or side.texts is None:
        return lambda i: ""
    return lambda i: f"{side.titles[i]} {side.texts[i]}"


T = TypeVar("T", pd.DataFrame, Rows)  # a table: a DataFrame, or Rows
Table: TypeAlias = pd.DataFrame | list[dict]  # what rank, partners, queries take: frame, records


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
    rows = Rows(frame)
    clean = _clean_columns(rows, id_col, what)
    if (isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0
            and frame.index.step == 1 and all(clean[c] is rows[c] for c in clean)
            and (len(frame) <= SMALL or all(frame[c].dtype == object
                                         for c in (id_col, "title", "text")))):
        return frame  # already what the rest reads (a request's frame): nothing to copy
    # Built from lists: a request's one-row frame spent milliseconds in pandas' string ops.
    # Kept as Python strings (object columns), which the rest reads without converting
    # pandas' string arrays again (~1 µs a long text each time).
    return frame.reset_index(drop=True).assign(**{
        c: pd.Series(vs, dtype=object) for c, vs in clean.items()})


def _check_rows(table, id_col: str, what: str) -> Rows:
    """A table of the rows asked about (a DataFrame or records) as :class:`Rows`, checked
    as :func:`_check_frame` checks a frame: ids, titles and texts as strings."""
    if not isinstance(table, (pd.DataFrame, list, tuple)):
        raise InputError(f"{what} must be a pandas DataFrame or a list of records (dicts)")
    if len(table) == 0:
        raise InputError(f"{what} are empty")
    rows = Rows.of(table)
    return rows.assign(**_clean_columns(rows, id_col, what))


def _clean_columns(rows: Rows, id_col: str, what: str) -> dict[str, list]:
    """The id, title and text columns as Python strings (ids by ``str``, missing titles and
    texts ""), each the column itself when it is so already; refuses a table without them,
    without rows or with a duplicate id."""
    missing = [c for c in (id_col, "title", "text") if c not in rows]
    if missing:
        raise InputError(f"{what} lack the column(s) {missing}")
    if len(rows) == 0:
        raise InputError(f"{what} are empty")
    raw_ids = rows[id_col]
    ids = [str(v) for v in raw_ids]
    seen: set[str] = set()
    for v in ids:
        if v in seen:
            raise InputError(f"{what} have a duplicate {id_col}: {v!r}")
        seen.add(v)
    out = {id_col: raw_ids if raw_ids == ids else ids}
    for c in ("title", "text"):
        vs = rows[c]
        out[c] = vs if all(type(v) is str for v in vs) else column_strings(vs)
    return out


class Matcher(BaseEstimator):
    """Ranks programs for enterprise needs, and needs for programs, with a calibrated fit.

    Stage one retrieves candidates by sparse similarity (word TF-IDF, character n-gram
    TF-IDF, and links of similar past needs); stage two orders them with a LightGBM
    LambdaRank model over pair features (lexical similarities by field, BM25, collaborative
    evidence from past links, category priors learned from links, level). Every returned
    pair also gets a ``fit``: the calibrated probability that it is a real link, which
    depends on the pair alone (see :mod:`iei_match.fit`), and a ``fit_level``.

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
    short_queries : float, default=1.0
        Share of the training needs that are also asked by their title alone (text
        emptied), as enterprises often write them ("电工", "质检员"): their lists train the
        need ranker and the fit next to the full needs', so that both learn how much a
        bare title says (with the ``need_terms`` features). 0 trains on full texts only.
    generic_queries : float, default=1.0
        Share of the training needs that are also asked by the head word of their title
        alone (:func:`~iei_match.short_titles.head_title`: "车工" for "数控车工"), as job
        postings name jobs, with the links of the need: rows of the fit, which so learns
        that a generic title fits many programs less surely than a precise one. 0: none.
    dense : {"auto", True, False}, default="auto"
        Add sentence embeddings (all-MiniLM-L6-v2, from the ``embeddings`` extra) as one more
        retriever and feature source. ``"auto"`` uses them when the extra is installed and
        most of the training text is not Chinese (the model is English-only). A model
        trained with them needs the extra to rank.
    random_state : int, default=0
    n_jobs : int, default=2

    Attributes
    ----------
    rankers_ : dict
        ``{"need": Ranker, "program": Ranker}``: a :class:`~iei_match.rankers.LambdaRanker`
        per direction, or a :class:`~iei_match.rankers.ContentRanker` when there were no
        links to learn from.
    fit_model_ : FitModel or SimilarityFit
        The calibrated fit (uncalibrated similarity without links).
    feature_names_ : list of str
    mode_ : {"learned", "content-only"}

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

    fit_model_: FitModel | SimilarityFit
    _parameter_constraints: dict = {
        "n_candidates": [Interval(Integral, 1)],
        "knn": [Interval(Integral, 1)],
        "n_folds": [Interval(Integral, 2)],
        "title_weight": [Interval(Real, 0, closed="neither")],
        "max_df": [Interval(Real, 0, 1, closed="right")],
        "n_estimators": [Interval(Integral, 1)],
        "learning_rate": [Interval(Real, 0, closed="neither")],
        "num_leaves": [Interval(Integral, 2)],
        "min_child_samples": [Interval(Integral, 1)],
        "early_stopping_rounds": [Interval(Integral, 1)],
        "min_rounds": [Interval(Integral, 1)],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "code_dropout": [Interval(Real, 0, 1)],
        "train_candidates": [Interval(Integral, 1)],
        "short_queries": [Interval(Real, 0, 1)],
        "generic_queries": [Interval(Real, 0, 1)],
        "dense": [Options(("auto", True, False))],
        "random_state": [Interval(Integral, 0)],
        "n_jobs": [Interval(Integral, 1)],
    }

    def __init__(self, n_candidates=60, knn=30, n_folds=5, title_weight=3.0, max_df=0.5,
                 n_estimators=600, learning_rate=0.05, num_leaves=31, min_child_samples=20,
                 early_stopping_rounds=50, min_rounds=50, validation_fraction=0.15,
                 code_dropout=0.25, train_candidates=40, short_queries=1.0, dense="auto",
                 random_state=0, n_jobs=2, generic_queries=1.0):
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
        self.short_queries = short_queries
        self.generic_queries = generic_queries
        self.dense = dense
        self.random_state = random_state
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ fitting
    def fit(self, needs: pd.DataFrame, programs: pd.DataFrame, links: pd.DataFrame | None,
            progress: bool = False) -> Matcher:
        """Learn vocabularies, the memory of past links, the rankers and the fit.

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
        validate_params(self)
        needs = _check_frame(needs, "need_id", "needs")
        programs = _check_frame(programs, "program_id", "programs")
        needs = _expanded(needs)
        self.word_ = FieldVectorizer("word", self.title_weight, max_df=self.max_df)
        self.char_ = FieldVectorizer("char", self.title_weight, max_df=self.max_df)
        (n_titles, n_texts), (p_titles, p_texts) = document_texts(needs), document_texts(programs)
        titles, texts = n_titles + p_titles, n_texts + p_texts
        self.word_.fit(titles, texts)
        self.char_.fit(titles, texts)
        self.dense_ = self._use_dense(texts)
        self.dense_cache_: dict[str, np.ndarray] = {}
        need_side = Side.build(needs, "need_id", self.word_, self.char_,
                               self._embed(needs, remember=True), n_jobs=self.n_jobs)
        prog_side = Side.build(programs, "program_id", self.word_, self.char_,
                               self._embed(programs, remember=True), n_jobs=self.n_jobs)
        matrix = self._link_matrix(links, need_side, prog_side)
        self.memory_ = self._memory(need_side, prog_side, matrix)
        linked_needs = int((matrix.getnnz(axis=1) > 0).sum())
        if linked_needs < 2:
            return self._content_only(need_side, prog_side,
                                      "no links to learn from" if linked_needs == 0 else
                                      "links for a single need are too few to learn from")
        short_side = None
        if self.short_queries > 0:
            bare = needs.assign(text="", **{c: "" for c in BODY_EXTRAS if c in needs})
            short_side = Side.build(bare, "need_id", self.word_, self.char_,
                                    self._embed(bare) if self.dense_ else None)
        generic = None
        heads = [head_title(t) for t in needs["title"].tolist()]
        if self.generic_queries > 0 and any(heads):
            headed = needs.assign(title=[h or "" for h in heads], text="",
                                  **{c: "" for c in BODY_EXTRAS if c in needs})
            generic = (Side.build(headed, "need_id", self.word_, self.char_,
                                  self._embed(headed) if self.dense_ else None),
                       np.array([h is not None for h in heads]))
        tables, fit_table = self._out_of_fold_tables(need_side, prog_side, matrix, progress,
                                                     short_side, generic)
        if any(len(np.unique(g)) < 2 for _, _, g in tables.values()):
            return self._content_only(need_side, prog_side,
                                      "the links are too few to learn a ranker from")
        x, y, folds, weight = fit_table
        positives = int((y > 0).sum())
        calibrate = not (positives < MIN_FIT_LINKS or positives == len(y))
        # The two rankers and the fit's classifiers (one per fold, and the final one) train
        # side by side, each LightGBM in fewer threads: its boosting scales poorly past one
        # thread on tables of this size, and its models do not depend on the number of
        # threads (deterministic=True). The rankers, the longest, start first.
        fit_model = FitModel(random_state=self.random_state) if calibrate else None
        n_trainings = len(tables) + (fit_model.n_folds + 1 if fit_model is not None else 0)
        workers = min(self.n_jobs, n_trainings)
        threads = max(1, self.n_jobs // workers)
        rankers = [self._ranker(threads) for _ in tables]
        with ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(r.fit, tx, ty, tg, self.feature_names_)
                       for r, (tx, ty, tg) in zip(rankers, tables.values(), strict=True)]
            if fit_model is not None:
                fit_model.n_jobs = threads
                fit_model.fit(x, y, folds, self._absolute_names(), weight, executor=pool)
            for future in futures:
                future.result()
        for ranker in rankers:  # predictions use every thread again
            ranker.n_jobs = self.n_jobs
        if fit_model is not None:
            fit_model.n_jobs = self.n_jobs
        self.rankers_: dict[str, Ranker] = dict(zip(tables, rankers, strict=True))
        if fit_model is not None:
            self.fit_model_ = fit_model
        else:
            self.fit_model_ = SimilarityFit().fit(self._absolute_names())
            warnings.warn(f"only {positives} candidate pairs are links: too few to calibrate "
                          f"the fit, which is content similarity instead", UserWarning,
                          stacklevel=2)
        return self

    def _ranker(self, n_jobs: int) -> LambdaRanker:
        return LambdaRanker(
            n_estimators=self.n_estimators, learning_rate=self.learning_rate,
            num_leaves=self.num_leaves, min_child_samples=self.min_child_samples,
            early_stopping_rounds=self.early_stopping_rounds, min_rounds=self.min_rounds,
            validation_fraction=self.validation_fraction, random_state=self.random_state,
            n_jobs=n_jobs)

    def _content_only(self, needs: Side, programs: Side, reason: str) -> Matcher:
        # The feature names of this memory (absolute and relative), from one tiny list.
        nbrs = self.memory_.neighbours(needs.take(np.array([0])))
        zero = np.zeros(1, dtype=np.int64)
        _, self.feature_names_ = build_features(self.memory_, needs.take(np.array([0])),
                                                programs, nbrs, zero, zero, zero)
        self.rankers_ = {d: ContentRanker().fit(None, None, None, self.feature_names_)
                         for d in DIRECTIONS}
        self.fit_model_ = SimilarityFit().fit(self._absolute_names())
        warnings.warn(f"{reason}: ranking by content similarity only, and the fit is "
                      f"similarity, not a calibrated probability", UserWarning, stacklevel=3)
        return self

    @property
    def calibrated_(self) -> bool:
        """Whether ``fit`` is a calibrated probability (False: content similarity)."""
        return isinstance(self.fit_model_, FitModel)

    @property
    def mode_(self) -> str:
        """``"learned"``, or ``"content-only"`` when there were no links to learn from."""
        if not hasattr(self, "rankers_"):
            raise AttributeError("mode_")
        return self.rankers_["need"].kind

    @property
    def boosters_(self) -> dict:
        """The LightGBM boosters of the learned rankers (``{}`` for content-only)."""
        return {d: r.booster_ for d, r in self.rankers_.items() if hasattr(r, "booster_")}

    @property
    def best_iterations_(self) -> dict:
        return {d: r.best_iteration_ for d, r in self.rankers_.items()
                if hasattr(r, "best_iteration_")}

    @property
    def language_(self) -> str:
        """The language of the texts the model was trained on: ``"zh"`` when most of its
        words are Chinese, else ``"en"``."""
        cached = self.__dict__.get("_language")
        if cached is None:
            vocab = self.word_.vocabulary_
            sample = vocab[:: max(1, len(vocab) // 2000)]
            chinese = bool(sample) and float(np.mean([has_cjk(t) for t in sample])) >= 0.5
            cached = self.__dict__["_language"] = "zh" if chinese else "en"
        return cached

    def _bridged(self, frame: T, rows: np.ndarray | None = None) -> T:
        """Needs in English for a Chinese model get the Chinese terms of their trades in
        front of their title and text (:func:`~iei_match.bridge.bridge_text`); other rows
        are left as they are. Then every need's title is :func:`_expanded`, as in
        training. ``frame``: a DataFrame or :class:`Rows`, returned as one; ``rows``: a
        mask of the rows to bridge and expand (default all; the others are left as they
        are)."""
        at = None if rows is None else np.flatnonzero(rows).tolist()
        if self.language_ != "zh":
            return _expanded(frame, rows=at)
        columns = Rows.of(frame)  # the frame's columns, each read once
        titles, texts = columns["title"], columns["text"]
        english = [i for i in (range(len(titles)) if at is None else at)
                   if detect_language(f"{titles[i]} {texts[i]}") == "en"]
        if not english:
            return _expanded(frame, titles, at)
        titles, texts = list(titles), list(texts)  # a copy: Rows hand out their lists
        for i in english:
            titles[i], texts[i] = bridge_text(titles[i]).text, bridge_text(texts[i]).text
        return _expanded(frame.assign(title=titles, text=texts), rows=at)

    def _absolute_names(self) -> list[str]:
        return [n for n in self.feature_names_ if not is_relative(n)]

    def _absolute_columns(self) -> np.ndarray:
        cached = self.__dict__.get("_abs_cols")
        if cached is None or cached[0] is not self.feature_names_:
            cols = np.array([j for j, n in enumerate(self.feature_names_)
                             if not is_relative(n)], dtype=np.int64)
            cached = self.__dict__["_abs_cols"] = (self.feature_names_, cols)
        return cached[1]

    def _use_dense(self, texts: list[str]) -> bool:
        from . import embeddings

        if self.dense == "auto":
            sample = texts[:: max(1, len(texts) // 500)]
            mostly_chinese = np.mean([has_cjk(t) for t in sample]) >= 0.5
            return embeddings.available() and not mostly_chinese
        if self.dense not in (True, False):
            raise InputError(f"dense must be 'auto', True or False, got {self.dense!r}")
        if self.dense and not embeddings.available():
            embeddings.DenseEncoder()  # raises OptionalDependencyError with the install hint
        return bool(self.dense)

    def _embed(self, frame: pd.DataFrame | Rows, remember: bool = False
               ) -> np.ndarray | None:
        """Sentence embeddings of title + text, reusing those of texts seen in training.

        Only training (``remember=True``) adds to the cache that is saved with the model.
        """
        if not self.dense_:
            return None
        from .embeddings import DenseEncoder

        rows = Rows.of(frame)
        docs = [f"{t}. {x}" for t, x in zip(rows["title"], rows["text"], strict=True)]
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
                            progress: bool, short: Side | None = None,
                            generic: tuple[Side, np.ndarray] | None = None
                            ) -> tuple[dict[str, tuple], tuple]:
        """The training rows of the rankers and of the fit, out of fold.

        ``short`` is ``needs`` asked by their titles alone: a share
        (``short_queries``) of each fold's needs is also ranked that way, as lists of the
        need ranker (groups after those of the full needs) and rows of the fit.
        ``generic`` is ``needs`` asked by the head words of their titles, and which needs
        have one: a share (``generic_queries``) of those of each fold gives rows of the fit.

        Returns
        -------
        tables : dict
            Per direction ``(x, y, groups)``: candidate lists that hold a link, sorted by
            list.
        fit_table : tuple
            ``(x, y, folds, weight)``: the absolute features of every candidate pair of
            either direction (once per pair), whether it is a link, its need's fold, and a
            weight (non-links are subsampled to bound the training time; their weight makes
            up for it).
        """
        rng = np.random.default_rng(self.random_state)
        n = len(needs)
        n_folds = max(2, min(self.n_folds, n))
        fold_of = rng.permutation(n) % n_folds
        g_rng = np.random.default_rng(self.random_state + 1)  # leaves rng's draws as they were
        # Every random draw is made here, fold by fold in the order of a loop over the folds,
        # so that the folds can then be computed in any order (two at a time) with the same
        # rows.
        all_programs = programs
        draws = []
        for f in range(n_folds):
            held = np.flatnonzero(fold_of == f)
            hide = rng.random(len(held)) < self.code_dropout
            generic_draw = g_rng.random(len(held)) if generic is not None else None
            asked = short_hide = None
            if short is not None:
                asked = held[rng.random(len(held)) < self.short_queries]
                short_hide = rng.random(len(asked)) < self.code_dropout
            draws.append((held, hide, generic_draw, asked, short_hide))

        def fold_rows(f: int) -> tuple[dict[str, list], list[tuple], list[str] | None]:
            held, hide, generic_draw, asked, short_hide = draws[f]
            kept = np.flatnonzero(fold_of != f)
            # The programs with caches of their own: what a fold derives from them depends
            # on its memory, and another fold may run beside it.
            programs = replace(all_programs, _prefixes=dict(all_programs._prefixes),
                               _reach={}, _derived={})
            memory = self._memory(needs.take(kept), programs, matrix[kept])
            queries = needs.take(held)
            # Some new needs come without a taxonomy code: hide it for a share of the
            # training needs so the ranker learns to do without the code priors.
            queries.codes = np.where(hide, "", queries.codes).astype(object)
            queries._prefixes = {}  # the prefixes of the codes as they were
            nbrs = memory.neighbours(queries)
            labels = matrix[held]
            seen: dict[int, None] = {}
            out: dict[str, list] = {"need": [], "program": []}
            fits: list[tuple] = []
            names = None
            for direction in DIRECTIONS:
                n_rows, p_rows = candidate_pairs(memory, queries, programs, nbrs,
                                                 self.train_candidates, direction)
                y = np.asarray(labels[n_rows, p_rows]).ravel()
                groups = held[n_rows] if direction == "need" else p_rows + f * len(programs)
                x, names = build_features(memory, queries, programs, nbrs, n_rows, p_rows,
                                          groups)
                out[direction].append((x, y, groups))
                key = n_rows * len(programs) + p_rows
                new = np.array([k not in seen for k in key.tolist()], dtype=bool)
                seen.update(dict.fromkeys(key[new].tolist()))
                fits.append((x[new], y[new], np.full(int(new.sum()), f)))
            if generic is not None:
                assert generic_draw is not None  # drawn for every fold when generic is
                fits += self._generic_rows(generic, held, memory, programs, matrix, f,
                                           generic_draw)
            if asked is not None and len(asked):
                assert short is not None and short_hide is not None  # drawn with asked
                bare = short.take(asked)
                bare.codes = np.where(short_hide, "", bare.codes).astype(object)
                bare._prefixes = {}
                b_nbrs = memory.neighbours(bare)
                n_rows, p_rows = candidate_pairs(memory, bare, programs, b_nbrs,
                                                 self.train_candidates, "need")
                if len(n_rows):
                    y = np.asarray(matrix[asked][n_rows, p_rows]).ravel()
                    groups = asked[n_rows] + n  # lists of their own, after the full needs'
                    x, names = build_features(memory, bare, programs, b_nbrs, n_rows, p_rows,
                                              groups)
                    out["need"].append((x, y, groups))
                    fits.append((x, y, np.full(len(y), f)))
            return out, fits, names

        parts: dict[str, list] = {"need": [], "program": []}
        fit_parts: list[tuple] = []
        names: list[str] | None = None
        # Two folds at once only where numba lets two threads launch its parallel kernels.
        folds = in_threads([partial(fold_rows, f) for f in range(n_folds)],
                           self.n_jobs if numba_threadsafe() else 1)
        for out, fits, fold_names in tqdm(folds, desc="out-of-fold features",
                                          disable=not progress):
            for direction in DIRECTIONS:
                parts[direction] += out[direction]
            fit_parts += fits
            names = fold_names or names
        assert names is not None
        self.feature_names_ = names
        tables = {}
        for direction, chunks in parts.items():
            x = np.concatenate([c[0] for c in chunks])
            y = np.concatenate([c[1] for c in chunks])
            g = np.concatenate([c[2] for c in chunks])
            has_pos = pd.Series(y > 0).groupby(g).transform("any").to_numpy()
            x, y, g = x[has_pos], y[has_pos], g[has_pos]
            order = np.argsort(g, kind="stable")
            tables[direction] = (x[order], y[order], g[order])
        return tables, self._fit_rows(fit_parts, rng)

    def _generic_rows(self, generic: tuple[Side, np.ndarray], held: np.ndarray,
                      memory: Memory, programs: Side, matrix: sp.csr_matrix, fold: int,
                      draw: np.ndarray) -> list[tuple]:
        """Fit rows of fold ``fold``'s needs asked by the head words of their titles
        (``draw``: a uniform draw per held need; below ``generic_queries``, it is asked)."""
        side, has_head = generic
        asked = held[has_head[held] & (draw < self.generic_queries)]
        if len(asked) == 0:
            return []
        heads = side.take(asked)
        heads.codes = np.full(len(asked), "", dtype=object)  # a posting has no code
        heads._prefixes = {}
        nbrs = memory.neighbours(heads)
        n_rows, p_rows = candidate_pairs(memory, heads, programs, nbrs,
                                         self.train_candidates, "need")
        if len(n_rows) == 0:  # no head word shares a term with any program
            return []
        y = np.asarray(matrix[asked][n_rows, p_rows]).ravel()
        x, _ = build_features(memory, heads, programs, nbrs, n_rows, p_rows, n_rows)
        return [(x, y, np.full(len(y), fold))]

    def _fit_rows(self, parts: list[tuple], rng: np.random.Generator) -> tuple:
        cols = self._absolute_columns()
        x = np.concatenate([p[0][:, cols] for p in parts])
        y = (np.concatenate([p[1] for p in parts]) > 0).astype(np.float64)
        folds = np.concatenate([p[2] for p in parts])
        n_neg = int((y == 0).sum())
        rate = min(1.0, FIT_NEGATIVES / max(n_neg, 1))
        keep = (y > 0) | (rng.random(len(y)) < rate)
        weight = np.where(y > 0, 1.0, 1.0 / rate)
        return x[keep], y[keep], folds[keep], weight[keep]

    # ------------------------------------------------------------------ ranking
    def _check_fitted(self) -> None:
        if not hasattr(self, "memory_") or not hasattr(self, "rankers_"):
            raise NotFittedError("this Matcher is not fitted yet: call fit or load a model")

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
            :func:`~iei_match.sides.text_fingerprints`) copies that row's vectors,
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
        # Of the texts as given: a need's bridged and expanded texts follow from them (for
        # this model), so a copied row is not looked at again (detecting the language of
        # every need was most of the time of preparing a table again for a few new rows).
        fingerprints = text_fingerprints(frame)
        source = self._reusable_rows(frame[id_col], fingerprints, kind, previous)
        if kind == "need":
            frame = self._bridged(frame, None if source is None else source < 0)
        memory = self.memory_
        if source is None or previous is None:
            side = Side.build(frame, id_col, self.word_, self.char_, self._embed(frame),
                              n_jobs=self.n_jobs)
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
        word_index, char_index = in_threads(
            [partial(_index, side, previous, f) for f in ("word", "char")],
            self.n_jobs if len(side) >= 1000 else 1)
        return Catalog(kind, side, word_index, char_index, history, (self.word_, self.char_),
                       fingerprints=fingerprints, reused=reused)

    def _check_catalog(self, catalog: Catalog | Queries, kind: str, name: str) -> None:
        """Refuse a catalog (or queries) of the other kind, or one made by another model."""
        if catalog.kind != kind:
            raise InputError(f"{name} holds {catalog.kind}s, not {kind}s")
        if catalog.vectorizers[0] is not self.word_ or catalog.vectorizers[1] is not self.char_:
            done, again = (("prepared", "prepare") if isinstance(catalog, Catalog)
                           else ("made", "make"))
            raise InputError(f"{name} was {done} by another model: {again} it again with "
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

    def queries(self, frame: Table, kind: str = "need") -> Queries:
        """Vectorise needs (or programs) once, to rank them against several catalogs.

        Parameters
        ----------
        frame : DataFrame or list of dict
            Needs (``kind="need"``) or programs (``kind="program"``), as for :meth:`rank`.
        kind : {"need", "program"}

        Returns
        -------
        Queries
            Pass it as the ``needs`` of :meth:`rank` (the ``programs`` of
            :meth:`partners`): results are those on ``frame``, without vectorising it
            (and finding the needs' nearest known needs) again on every call.

        Raises
        ------
        InputError
            ``kind`` is not ``"need"`` or ``"program"``, or ``frame`` is not a valid table.
        """
        self._check_fitted()
        kind = catalog_kind(kind)
        side = self._frame_side(frame, kind)
        nbrs = self.memory_.neighbours(side) if kind == "need" else None
        return Queries(kind, side, nbrs, (self.word_, self.char_))

    def _side(self, data, kind: str, searched: bool
              ) -> tuple[Side, Catalog | None, sp.csr_matrix | None]:
        """The side of ``data`` (a frame, a :class:`Catalog` or :class:`Queries`), its
        catalog (None unless it is one), and for needs their nearest known needs when
        ``data`` holds them already."""
        if isinstance(data, Catalog):
            if not searched:
                searched_side = "programs of rank" if kind == "program" else "needs of partners"
                raise InputError(f"a Catalog can only be the side being searched (the "
                                 f"{searched_side}); pass these {kind}s as a DataFrame or "
                                 f"as queries")
            self._check_catalog(data, kind, "this Catalog")
            return data.side, data, data.history if kind == "need" else None
        if isinstance(data, Queries):
            if searched:
                searched_side = "programs of rank" if kind == "program" else "needs of partners"
                raise InputError(f"queries cannot be searched (the {searched_side}): "
                                 f"prepare these {kind}s as a Catalog")
            self._check_catalog(data, kind, "these queries")
            return data.side, None, data.neighbours
        return self._frame_side(data, kind), None, None

    def _frame_side(self, data, kind: str) -> Side:
        """The side of a table of needs (bridged and expanded, as in training) or programs:
        a DataFrame or records, read as :class:`Rows`."""
        rows = _check_rows(data, f"{kind}_id", f"{kind}s")
        if kind == "need":
            rows = self._bridged(rows)
        return Side.build(rows, f"{kind}_id", self.word_, self.char_, self._embed(rows),
                          n_jobs=self.n_jobs)

    def _ranking(self, needs, programs, k: int, direction: str, explain: bool | int,
                 min_fit: float | None) -> Ranking:
        self._check_fitted()
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise InputError(f"k must be a whole number of at least 1, got {k!r}")
        if min_fit is not None and not (isinstance(min_fit, (int, float, np.floating))
                                        and not isinstance(min_fit, bool)
                                        and 0 <= min_fit <= 1):
            raise InputError(f"min_fit must be a number from 0 to 1, got {min_fit!r}")
        if explain is True:
            n_explain = EXPLAIN_TOP
        elif isinstance(explain, (bool, int, np.integer)) and explain >= 0:
            n_explain = int(explain)
        else:
            raise InputError(f"explain must be True, False or a whole number, got {explain!r}")
        need_side, need_cat, nbrs = self._side(needs, "need", searched=direction == "program")
        prog_side, prog_cat, _ = self._side(programs, "program", searched=direction == "need")
        catalog = need_cat or prog_cat
        memory = self.memory_
        if nbrs is None:
            nbrs = memory.neighbours(need_side)
        n_rows, p_rows = candidate_pairs(memory, need_side, prog_side, nbrs,
                                         max(self.n_candidates, k), direction, catalog)
        if len(n_rows) == 0:  # nothing shares a term (or everything is filtered out)
            return self._empty(direction, n_explain)
        groups = n_rows if direction == "need" else p_rows
        x, names = build_features(memory, need_side, prog_side, nbrs, n_rows, p_rows, groups)
        x = self._aligned(x, names)
        score = self.rankers_[direction].score(x)
        absolute = self._absolute_columns()
        rows = np.arange(len(x))
        other = p_rows if direction == "need" else n_rows
        fit_all = None
        if min_fit is not None:
            fit_all = self._fit_of_best(x, score, other, groups, k, min_fit)
            rows = np.flatnonzero(fit_all >= min_fit)  # NaN: not needed, not listed
        order = rows[np.lexsort((other[rows], -score[rows], groups[rows]))]
        g_sorted = groups[order]
        start = np.r_[0, np.flatnonzero(np.diff(g_sorted)) + 1] if len(order) else np.zeros(
            0, dtype=np.int64)
        rank = np.arange(len(order)) - np.repeat(start, np.diff(np.r_[start, len(order)]))
        keep, rank = order[rank < k], rank[rank < k] + 1
        fit = (fit_all[keep] if fit_all is not None
               else self.fit_model_.predict(x[keep][:, absolute], n_threads=self.n_jobs))
        terms: list[list[str]] | None = None
        contributions: list[dict[str, float]] | None = None
        if n_explain > 0:
            terms = self._matched_terms(need_side, prog_side, n_rows[keep], p_rows[keep])
            contributions = [{} for _ in range(len(keep))]
            top = np.flatnonzero(rank <= n_explain)
            for i, factors in zip(top, self._top_factors(x[keep[top]], direction)
                                  if len(top) else [], strict=True):
                contributions[i] = factors
        return Ranking(direction, need_side.ids[n_rows[keep]], prog_side.ids[p_rows[keep]],
                       rank.astype(np.int64), score[keep].astype(np.float64),
                       np.round(fit, 6), self.fit_model_.level(fit), terms, contributions)

    def _fit_of_best(self, x: np.ndarray, score: np.ndarray, other: np.ndarray,
                     groups: np.ndarray, k: int, min_fit: float) -> np.ndarray:
        """The fit of the rows a ranking with ``min_fit`` needs: of every row, or, for one
        list (a request), of its rows in rank order until ``k`` of them reach ``min_fit``
        (NaN for the rows below, which cannot be listed), in batches that double. A
        row's fit depends on that row alone, so the list is the one the fit of every row
        gives; most requests need a batch or two, not the ~150 candidates."""
        absolute = self._absolute_columns()
        if not (groups == groups[0]).all():
            return self.fit_model_.predict(x[:, absolute], n_threads=self.n_jobs)
        fit = np.full(len(x), np.nan)
        order = np.lexsort((other, -score))  # rank order, as the lists are cut
        done, found, step = 0, 0, 2 * k
        while done < len(order) and found < k:
            at = order[done:done + step]
            fit[at] = self.fit_model_.predict(x[at][:, absolute], n_threads=self.n_jobs)
            found += int((fit[at] >= min_fit).sum())
            done, step = done + len(at), 2 * step
        return fit

    @staticmethod
    def _empty(direction: str, n_explain: int) -> Ranking:
        none = np.zeros(0, dtype=object)
        return Ranking(direction, none, none, np.zeros(0, dtype=np.int64), np.zeros(0),
                       np.zeros(0), none, [] if n_explain > 0 else None,
                       [] if n_explain > 0 else None)

    def _aligned(self, x: np.ndarray, names: list[str]) -> np.ndarray:
        """``x`` with the model's columns, in its order (NaN for a feature it lacks)."""
        if names == self.feature_names_:
            return x
        at = {name: j for j, name in enumerate(names)}
        out = np.full((len(x), len(self.feature_names_)), np.nan, dtype=np.float32)
        for j, name in enumerate(self.feature_names_):
            if name in at:
                out[:, j] = x[:, at[name]]
        return out

    def _matched_terms(self, needs: Side, programs: Side, n_rows, p_rows,
                       n_terms=5) -> list[list[str]]:
        """The shared terms that weigh most in each pair, filler left out and each shown as
        the pair's texts spell it (:func:`~.explanations.surface_terms`).

        A pair whose shown terms are all Chinese (their own spelling) takes them straight
        from the vocabulary; only pairs with an English stem read their texts' spellings.
        """
        cols, _ = topk_pair_products(needs.word.full, programs.word.full, n_rows, p_rows,
                                     n_terms + _SPARE_TERMS)
        words, filler, latin = self._term_table()
        valid = cols >= 0
        safe = np.where(valid, cols, 0)
        shown = valid & ~filler[safe]
        spelled = (shown & latin[safe]).any(axis=1)
        packed = np.take_along_axis(safe, np.argsort(~shown, axis=1, kind="stable"), axis=1)
        n_shown = shown.sum(axis=1)
        plain = np.flatnonzero(~spelled)
        listed = [row[:c] for row, c in zip(words[packed[plain, :n_terms]].tolist(),
                                            np.minimum(n_shown[plain], n_terms).tolist(),
                                            strict=True)]
        if len(plain) == len(cols):
            return listed
        at = np.flatnonzero(spelled)
        self.word_._check_fitted()
        read = spell_pairs(packed[at], n_shown[at], self.word_.vocabulary_, self.word_._index,
                           _side_text(needs), n_rows[at], _side_text(programs), p_rows[at],
                           n_terms)
        out: list = [None] * len(cols)
        for rows, terms in ((plain, listed), (at, read)):
            for i, t in zip(rows.tolist(), terms, strict=True):
                out[i] = t
        return out

    def _term_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The word vocabulary as an object array, and which of its terms are filler
        (:func:`~.explanations.is_filler`) and which have no Chinese character."""
        vocab = self.word_.vocabulary_
        cached = self.__dict__.get("_terms")
        if cached is None or cached[0] is not vocab:
            words = np.array(vocab, dtype=object)
            filler = np.fromiter((is_filler(t) for t in vocab), dtype=bool, count=len(vocab))
            latin = np.fromiter((not has_cjk(t) for t in vocab), dtype=bool, count=len(vocab))
            cached = self.__dict__["_terms"] = (vocab, words, filler, latin)
        return cached[1], cached[2], cached[3]

    def _top_factors(self, x: np.ndarray, direction: str, n_factors=3
                     ) -> list[dict[str, float]]:
        """The ``n_factors`` shown features (:func:`~.explanations.is_shown`) that moved each
        score most; the others still count in the score.

        A feature the pair lacks (NaN: a need without an occupation code has no prior of its
        code's kind, a need without a level no level match) is no reason about the pair,
        whatever its missing value moved: it is not shown either. Nor is a feature that
        would say the two sides have something in common (:func:`~.explanations.says_in_common`)
        where they have nothing (its value is 0) and it raised the score."""
        contrib = self.rankers_[direction].contributions(x)
        names = self.feature_names_
        never, in_common = self._factor_masks()
        hidden = never | np.isnan(x) | (in_common & (x <= 0) & (contrib > 0))
        magnitude = np.where(hidden, -1.0, np.abs(contrib))
        top = np.argsort(-magnitude, axis=1, kind="stable")[:, :n_factors]
        return [{names[j]: round(float(contrib[i, j]), 6) for j in row if not hidden[i, j]}
                for i, row in enumerate(top)]

    def _factor_masks(self) -> tuple[np.ndarray, np.ndarray]:
        """Per feature (as rows of one): never shown, and says the sides have something
        in common; made once per list of feature names."""
        cached = self.__dict__.get("_factor_masks_of")
        if cached is None or cached[0] is not self.feature_names_:
            names = self.feature_names_
            masks = (np.array([not is_shown(n) for n in names])[None, :],
                     np.array([says_in_common(n) for n in names])[None, :])
            cached = self.__dict__["_factor_masks_of"] = (names, masks)
        return cached[1]

    def contributions(self, x, direction: str) -> np.ndarray:
        """Per-feature contributions of the ranker of ``direction`` to each pair's score
        (exact TreeSHAP values for the learned ranker); with the ranker's
        ``expected_value_`` they add up to the score.

        ``x`` is a feature matrix in ``feature_names_`` order, or a DataFrame with those
        columns."""
        self._check_fitted()
        if isinstance(x, pd.DataFrame):
            x = x.reindex(columns=self.feature_names_).to_numpy(np.float32)
        return self.rankers_[direction].contributions(np.asarray(x, dtype=np.float32))

    def prepare_explanations(self) -> Matcher:
        """Build the TreeSHAP tables of both rankers now (0.1-0.5 s for the bundled models)
        rather than in the first ranking that explains, and the compiled trees that score
        small batches (:mod:`.tree_predict`, compiled too) rather than in the first ranking;
        returns the matcher."""
        self._check_fitted()
        for ranker in self.rankers_.values():
            if isinstance(ranker, LambdaRanker):
                ranker.shap_tables()
                tree_predict.warm_up(ranker.forest())
        if isinstance(self.fit_model_, FitModel):
            tree_predict.warm_up(self.fit_model_.forest())
        return self

    @overload
    def rank(self, needs: Table | Queries, programs: Table | Catalog, k: int = ...,
             explain: bool | int = ..., *, min_fit: float | None = ...,
             as_frame: Literal[True] = ...) -> pd.DataFrame: ...

    @overload
    def rank(self, needs: Table | Queries, programs: Table | Catalog, k: int = ...,
             explain: bool | int = ..., *, min_fit: float | None = ...,
             as_frame: Literal[False]) -> Ranking: ...

    def rank(self, needs: Table | Queries, programs: Table | Catalog, k: int = 10,
             explain: bool | int = True, *, min_fit: float | None = None,
             as_frame: bool = True) -> pd.DataFrame | Ranking:
        """The best ``k`` programs for each need.

        Parameters
        ----------
        needs, programs : DataFrame or list of dict
            Columns ``need_id`` / ``program_id``, ``title``, ``text``; optional ``level``,
            ``code``, ``skills``, ``industry``, ``province``, ``city``, ``headcount`` /
            ``graduates_per_year``. A list of records (one dict a row) gives the same
            results as a DataFrame of object columns holding them, without building one
            (a request's need). ``programs`` may be a :class:`Catalog` made by
            :meth:`prepare` (same results, much faster for repeated calls), and ``needs``
            :class:`Queries` made by :meth:`queries` (the same, for needs ranked against
            several catalogs).
        k : int
            How many programs per need (fewer when fewer share anything with the need).
        explain : bool or int, default=True
            Add ``matched_terms`` (shared terms, strongest first) to every row and the
            three features that moved the score most (TreeSHAP values) to the top
            ``explain`` rows of each list (True: 5).
        min_fit : float, optional
            Leave out pairs whose fit is below this; the best ``k`` of the others are
            returned.
        as_frame : bool, default=True
            Return a DataFrame (False: the typed :class:`~iei_match.results.Ranking`).

        Returns
        -------
        DataFrame or Ranking
            Columns ``need_id, program_id, rank, score, fit, fit_level`` (rank 1 = best),
            then ``matched_terms`` and ``top_factors`` when explained.
        """
        out = self._ranking(needs, programs, k, "need", explain, min_fit)
        return out.to_frame() if as_frame else out

    @overload
    def partners(self, programs: Table | Queries, needs: Table | Catalog, k: int = ...,
             explain: bool | int = ..., *, min_fit: float | None = ...,
             as_frame: Literal[True] = ...) -> pd.DataFrame: ...

    @overload
    def partners(self, programs: Table | Queries, needs: Table | Catalog, k: int = ...,
             explain: bool | int = ..., *, min_fit: float | None = ...,
             as_frame: Literal[False]) -> Ranking: ...

    def partners(self, programs: Table | Queries, needs: Table | Catalog, k: int = 10,
                 explain: bool | int = True, *, min_fit: float | None = None,
                 as_frame: bool = True) -> pd.DataFrame | Ranking:
        """The best ``k`` needs for each program: columns ``program_id, need_id, rank,
        score, fit, fit_level``.

        The other direction of :meth:`rank`, with the same parameters and explanations;
        ``needs`` may be a :class:`Catalog` of needs made by :meth:`prepare`, and
        ``programs`` :class:`Queries` of programs made by :meth:`queries`.
        """
        out = self._ranking(needs, programs, k, "program", explain, min_fit)
        return out.to_frame() if as_frame else out


def _expanded(frame: T, titles: list | None = None, rows: list[int] | None = None) -> T:
    """``frame`` (a DataFrame or :class:`Rows`) with each Chinese title followed by the
    catalog's forms of the market's short forms it holds
    (:func:`~iei_match.skills.expand_title`: "幼师" also says "幼儿教师"); other titles are
    left as they are. ``titles``: the frame's titles, when read already; ``rows``: the
    positions of the titles to expand (default all)."""
    if titles is None:
        titles = Rows.of(frame)["title"]
    if rows is None:
        expanded = [expand_title(t) if has_cjk(t) else t for t in titles]
    else:
        expanded = list(titles)
        for i in rows:
            expanded[i] = expand_title(expanded[i]) if has_cjk(expanded[i]) else expanded[i]
    if expanded == titles:
        return frame
    return frame.assign(title=expanded)
