"""Rankers: what orders a query's candidates, given the pairs' feature matrix.

Every ranker follows the :class:`Ranker` protocol, so the matcher, the explanations, the
artifacts and one contract test suite (``tests/test_rankers.py``) treat them alike:

- :class:`LambdaRanker`, LightGBM LambdaRank learned from past links (one per direction);
- :class:`ContentRanker`, a fixed blend of three similarities, for data with no links.

A ranker's ``contributions`` sum, with its ``expected_value_``, to its ``score``: they are
what the explanations show.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from . import tree_predict, tree_shap
from .errors import InputError, NotFittedError

__all__ = ["Ranker", "LambdaRanker", "ContentRanker", "ranker_from_state"]

# Fewer rows than these are scored / explained in the calling thread only: waking OpenMP
# threads for a request's few hundred rows costs more than it saves.
PREDICT_SERIAL_BELOW = 4096
CONTRIB_SERIAL_BELOW = 64
# Fewer rows than these are scored by :mod:`.tree_predict`'s compiled trees (the same
# scores, ~2x faster than LightGBM in one thread); more by LightGBM in ``n_jobs`` threads.
COMPILED_BELOW = PREDICT_SERIAL_BELOW


@runtime_checkable
class Ranker(Protocol):
    """What the matcher asks of a ranker."""

    kind: str
    feature_names_: list[str]
    expected_value_: float

    def fit(self, x: np.ndarray, y: np.ndarray, groups: np.ndarray,
            feature_names: list[str]) -> Ranker: ...

    def score(self, x: np.ndarray) -> np.ndarray: ...

    def contributions(self, x: np.ndarray) -> np.ndarray: ...

    def get_state(self) -> tuple[dict, dict[str, str]]: ...


def _threads(rows: int, serial_below: int, n_jobs: int) -> int:
    return 1 if rows < serial_below else n_jobs


class LambdaRanker:
    """LightGBM LambdaRank over the pair features, with early stopping and a refit.

    Parameters
    ----------
    n_estimators, learning_rate, num_leaves, min_child_samples : LightGBM parameters
    early_stopping_rounds : int
        Boosting stops when NDCG@10 on held-aside queries has not improved for this long.
    min_rounds : int
        The refit on all queries uses at least this many rounds.
    validation_fraction : float
        Share of the queries held aside for early stopping (0: none).
    random_state, n_jobs : int

    Attributes
    ----------
    booster_ : lightgbm.Booster
    best_iteration_ : int
    feature_names_ : list of str
    expected_value_ : float
        What a row's contributions add up to its score with (TreeSHAP's base value, the
        last column of LightGBM's ``pred_contrib``: the same for every row).
    """

    kind = "learned"

    def __init__(self, n_estimators=600, learning_rate=0.05, num_leaves=31,
                 min_child_samples=20, early_stopping_rounds=50, min_rounds=50,
                 validation_fraction=0.15, random_state=0, n_jobs=2):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.early_stopping_rounds = early_stopping_rounds
        self.min_rounds = min_rounds
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _params(self) -> dict:
        return {
            "objective": "lambdarank", "metric": "ndcg", "eval_at": [10],
            "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples, "feature_fraction": 0.8,
            "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0,
            "num_threads": self.n_jobs, "seed": self.random_state, "deterministic": True,
            "force_row_wise": True, "verbose": -1,
        }

    def fit(self, x, y, groups, feature_names) -> LambdaRanker:
        """Learn from candidate lists: ``x`` rows sorted by ``groups`` (one group per list),
        ``y`` the grades (0-3)."""
        import lightgbm as lgb

        groups = np.asarray(groups)
        uniq = np.unique(groups)
        rng = np.random.default_rng(self.random_state + 1)
        n_val = min(int(round(len(uniq) * self.validation_fraction)), len(uniq) - 1)
        val_groups = rng.choice(uniq, size=n_val, replace=False) if n_val else uniq[:0]
        is_val = np.isin(groups, val_groups)

        def dataset(mask):
            _, counts = np.unique(groups[mask], return_counts=True)
            return lgb.Dataset(x[mask], y[mask], group=counts,
                               feature_name=list(feature_names), free_raw_data=True)

        try:
            callbacks: list = []
            valid_sets = []
            if is_val.any():
                valid_sets = [dataset(is_val)]
                callbacks.append(lgb.early_stopping(self.early_stopping_rounds, verbose=False))
            booster = lgb.train(self._params(), dataset(~is_val),
                                num_boost_round=self.n_estimators, valid_sets=valid_sets,
                                callbacks=callbacks)
            best = booster.best_iteration or booster.current_iteration()
            best = min(max(best, self.min_rounds), self.n_estimators)
            if is_val.any():  # refit on every query with the tuned number of rounds
                booster = lgb.train(self._params(), dataset(np.ones(len(y), bool)),
                                    num_boost_round=best)
        except lgb.basic.LightGBMError as exc:
            raise InputError(f"the ranker could not be trained on these data: {exc}") from exc
        self.booster_ = booster
        self.best_iteration_ = int(best)
        self.feature_names_ = list(feature_names)
        self._set_expected_value()
        return self

    def _set_expected_value(self) -> None:
        row = np.zeros((1, len(self.feature_names_)))
        contrib = np.asarray(self.booster_.predict(row, pred_contrib=True))
        self.expected_value_ = float(contrib[0, -1])

    def _check(self) -> None:
        if not hasattr(self, "booster_"):
            raise NotFittedError("this ranker is not fitted yet")

    def score(self, x: np.ndarray) -> np.ndarray:
        """LightGBM's prediction for each row; computed by :mod:`.tree_predict` for a
        small batch (the same numbers), by LightGBM itself otherwise."""
        self._check()
        if tree_predict.compiled_rows(x, self.booster_, COMPILED_BELOW):
            forest = self.forest()
            if forest is not None and forest.identity_output:
                return tree_predict.predict(forest, x)
        return np.asarray(self.booster_.predict(
            x, num_threads=_threads(len(x), PREDICT_SERIAL_BELOW, self.n_jobs)))

    def forest(self) -> tree_predict.Forest | None:
        """The booster's trees for :func:`.tree_predict.predict`, built on first use
        (0.05-0.25 s for the bundled models; ``None`` for a model it does not handle)."""
        return tree_predict.cached_forest(self, self.booster_)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Exact path-dependent TreeSHAP values of each row (as LightGBM's ``pred_contrib``
        gives them, from :mod:`.tree_shap`'s tables; LightGBM itself for tree structures
        the tables do not cover)."""
        self._check()
        threads = _threads(len(x), CONTRIB_SERIAL_BELOW, self.n_jobs)
        tables = self.shap_tables()
        if tables is None:
            out = np.asarray(self.booster_.predict(x, pred_contrib=True, num_threads=threads))
            return out[:, :-1]
        return tree_shap.contributions(tables, x, n_threads=threads)

    def shap_tables(self) -> tree_shap.ShapTables | None:
        """The booster's TreeSHAP tables, built on first use (0.1-0.5 s for the bundled
        models). Concurrent first calls may each build them; the results are equal."""
        cached = self.__dict__.get("_shap")
        if cached is None or cached[0] is not self.booster_:
            cached = self.__dict__["_shap"] = (self.booster_, tree_shap.shap_tables(
                self.booster_))
        return cached[1]

    def __getstate__(self):
        state = dict(self.__dict__)  # a copy: the live object keeps its tables
        state.pop("_shap", None)
        state.pop("_forest", None)
        return state

    def get_state(self) -> tuple[dict, dict[str, str]]:
        """``(state, texts)``: parameters and learned numbers as JSON; the booster in
        LightGBM's text format."""
        self._check()
        params = {k: getattr(self, k) for k in (
            "n_estimators", "learning_rate", "num_leaves", "min_child_samples",
            "early_stopping_rounds", "min_rounds", "validation_fraction", "random_state",
            "n_jobs")}
        return ({"kind": self.kind, "params": params, "best_iteration": self.best_iteration_,
                 "feature_names": self.feature_names_},
                {"booster": self.booster_.model_to_string()})

    @classmethod
    def from_state(cls, state: dict, texts: dict[str, str]) -> LambdaRanker:
        import lightgbm as lgb

        out = cls(**state["params"])
        out.booster_ = lgb.Booster(model_str=texts["booster"])
        out.best_iteration_ = int(state["best_iteration"])
        out.feature_names_ = list(state["feature_names"])
        out._set_expected_value()
        return out


class ContentRanker:
    """A fixed blend of content similarities: for data without links to learn from.

    ``score = sum(weights[name] * feature[name])``, so a feature's contribution is its
    weighted value, exactly.

    Parameters
    ----------
    weights : dict of str to float, optional
        Default: whole-text word overlap 0.5, character n-gram overlap 0.3, title word
        overlap 0.2.
    """

    kind = "content-only"
    DEFAULT_WEIGHTS = {"word_full": 0.5, "char_full": 0.3, "word_title": 0.2}

    def __init__(self, weights: dict[str, float] | None = None):
        self.weights = weights

    def fit(self, x, y, groups, feature_names) -> ContentRanker:
        weights = self.weights or self.DEFAULT_WEIGHTS
        missing = [n for n in weights if n not in feature_names]
        if missing:
            raise InputError(f"the content ranker needs the feature(s) {missing}")
        self.feature_names_ = list(feature_names)
        self.coef_ = np.array([weights.get(n, 0.0) for n in feature_names], dtype=np.float64)
        self.expected_value_ = 0.0
        return self

    def score(self, x: np.ndarray) -> np.ndarray:
        if not hasattr(self, "coef_"):
            raise NotFittedError("this ranker is not fitted yet")
        out = np.zeros(len(x))
        for j in np.flatnonzero(self.coef_):  # column by column: a row's score is the same
            out += self.coef_[j] * np.asarray(x[:, j], dtype=np.float64)  # in any batch
        return out

    def contributions(self, x: np.ndarray) -> np.ndarray:
        return np.nan_to_num(np.asarray(x, dtype=np.float64) * self.coef_)

    def get_state(self) -> tuple[dict, dict[str, str]]:
        return ({"kind": self.kind, "weights": self.weights,
                 "feature_names": self.feature_names_}, {})

    @classmethod
    def from_state(cls, state: dict, texts: dict[str, str]) -> ContentRanker:
        out = cls(state.get("weights"))
        return out.fit(None, None, None, state["feature_names"])


def ranker_from_state(state: dict, texts: dict[str, str]) -> Ranker:
    """The ranker a :meth:`get_state` described."""
    kinds: dict[str, Any] = {LambdaRanker.kind: LambdaRanker,
                             ContentRanker.kind: ContentRanker}
    if state.get("kind") not in kinds:
        raise ValueError(f"unknown ranker kind {state.get('kind')!r}")
    return kinds[state["kind"]].from_state(state, texts)
