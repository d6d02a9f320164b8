"""The calibrated fit: the probability that a (need, program) pair is a real partnership.

The ranker's score orders a list: it says which program is better than the others in it,
and part of it is relative to them (a candidate's share of the best similarity in its list).
The *fit* answers another question, whether a pair fits at all, with a number that means the
same in every alliance:

- it is a function of the pair alone (its absolute features: similarities, the memory of
  past links, the taxonomy priors, levels), never of the other candidates, so a pair gets
  the same fit in the national catalog, in a 30-program alliance, or alone;
- it is learned by a binary LightGBM classifier on out-of-fold candidate pairs (each fold's
  needs scored against a memory of the other folds' links, as a new need will be);
- it is calibrated by isotonic regression on *cross-fitted* predictions: each fold's
  pairs are predicted by a classifier that never saw them, so the calibration is learned
  on held-out data, never on the rows the classifier was fit on;
- the levels ``high`` / ``medium`` / ``low`` are cut from the same out-of-fold data (see
  :class:`FitModel`).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from functools import partial
from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression

from .errors import InputError, NotFittedError

__all__ = ["FitModel", "SimilarityFit", "FIT_LEVELS", "expected_calibration_error",
           "reliability_table", "fit_levels"]

FIT_LEVELS = ("low", "medium", "high")
# Fewer rows than these are predicted by the compiled trees of :mod:`.tree_predict` (the same
# margins as LightGBM's, faster); more by LightGBM.
COMPILED_BELOW = 4096


def _lgb():
    import lightgbm as lgb

    return lgb


class FitModel:
    """P(link | pair features), calibrated out of fold, with data-chosen levels.

    Parameters
    ----------
    n_estimators : int, default=300
        Boosting rounds of the classifier.
    learning_rate : float, default=0.05
    num_leaves : int, default=31
    min_child_samples : int, default=40
    n_folds : int, default=3
        Folds of the cross-fitting that gives the calibration its held-out predictions
        (the given folds are merged into this many).
    high_precision : float, default=0.7
        ``high`` starts at the lowest fit above which at least this share of the
        out-of-fold pairs are real links.
    low_rate : float, default=0.05
        ``low`` ends at the highest fit below which at most this share of the out-of-fold
        pairs are real links...
    low_recall_loss : float, default=0.1
        ...and at most this share of the real links fall (so that ``low``, which lists
        hide by default, hides few real partners).
    random_state : int, default=0
    n_jobs : int, default=2

    Attributes
    ----------
    booster_ : lightgbm.Booster
        The classifier, trained on every out-of-fold pair.
    calibration_ : tuple of ndarray
        Isotonic regression's thresholds ``(margins, probabilities)``, learned on the
        cross-fitted margins; a margin between two thresholds is interpolated linearly.
    thresholds_ : dict
        ``{"medium": t_low, "high": t_high}``: fit ``>= t_high`` is ``high``, ``< t_low``
        is ``low``.
    report_ : dict
        Out-of-fold figures: pairs, real links, ECE, Brier score, and each level's share
        of pairs and precision.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(4000, 3)).astype(np.float32)
    >>> y = (rng.random(4000) < 1 / (1 + np.exp(-3 * x[:, 0]))).astype(float)
    >>> folds = rng.integers(0, 4, 4000)
    >>> fm = FitModel(n_estimators=50).fit(x, y, folds, ["a", "b", "c"])
    >>> p = fm.predict(x)
    >>> bool(0 <= p.min() and p.max() <= 1), fm.report_["ece"] < 0.05
    (True, True)
    """

    def __init__(self, n_estimators=300, learning_rate=0.05, num_leaves=31,
                 min_child_samples=40, n_folds=3, high_precision=0.7, low_rate=0.05,
                 low_recall_loss=0.1, random_state=0, n_jobs=2):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.n_folds = n_folds
        self.high_precision = high_precision
        self.low_rate = low_rate
        self.low_recall_loss = low_recall_loss
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _params(self) -> dict:
        return {"objective": "binary", "learning_rate": self.learning_rate,
                "num_leaves": self.num_leaves, "min_child_samples": self.min_child_samples,
                "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1,
                "lambda_l2": 1.0, "num_threads": self.n_jobs, "seed": self.random_state,
                "deterministic": True, "force_row_wise": True, "verbose": -1}

    def _train(self, x: np.ndarray, y: np.ndarray, names: list[str], weight: np.ndarray):
        lgb = _lgb()
        data = lgb.Dataset(x, y, weight=weight, feature_name=names, free_raw_data=True)
        return lgb.train(self._params(), data, num_boost_round=self.n_estimators)

    def fit(self, x: np.ndarray, y: np.ndarray, folds: np.ndarray,
            feature_names: list[str], weight: np.ndarray | None = None,
            executor: Executor | None = None) -> FitModel:
        """Learn the classifier, its calibration and the levels.

        Parameters
        ----------
        x : ndarray of shape (n_pairs, n_features), float32
            Absolute features of out-of-fold candidate pairs.
        y : ndarray of shape (n_pairs,)
            1 (or any value above 0) where the pair is a real link.
        folds : ndarray of int, shape (n_pairs,)
            The fold of each pair's need: pairs of one fold are predicted, for the
            calibration, by a classifier fit on the other folds (merged into ``n_folds``).
        feature_names : list of str
        weight : ndarray of shape (n_pairs,), optional
            Row weights (a subsample of the non-links weighs 1/rate).
        executor : concurrent.futures.Executor, optional
            Runs the classifier's trainings (one per fold, and the final one) side by
            side; they are independent, and the models do not depend on it.

        Returns
        -------
        FitModel
        """
        x = np.asarray(x, dtype=np.float32)
        y = (np.asarray(y) > 0).astype(np.float64)
        folds = np.asarray(folds)
        weight = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=np.float64)
        if len(np.unique(y)) < 2:
            raise InputError("the fit cannot be calibrated: the pairs are all links or "
                             "all non-links")
        margin = np.zeros(len(y))
        _, folds = np.unique(folds, return_inverse=True)
        folds = folds % max(2, self.n_folds)
        # A fold whose complement holds one class gets no classifier (its margins stay 0).
        trained = [f for f in np.unique(folds)
                   if y[folds != f].min() != y[folds != f].max()]
        def train_on(rows: np.ndarray):
            return self._train(x[rows], y[rows], feature_names, weight[rows])

        jobs: list[Callable[[], Any]] = [partial(train_on, folds != f) for f in trained]
        jobs.append(lambda: self._train(x, y, feature_names, weight))
        if executor is None:
            boosters = [job() for job in jobs]
        else:
            boosters = [future.result() for future in [executor.submit(job) for job in jobs]]
        for f, booster in zip(trained, boosters[:-1], strict=True):
            held = folds == f
            margin[held] = booster.predict(x[held], raw_score=True, num_threads=self.n_jobs)
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
            margin, y, sample_weight=weight)
        self.calibration_ = (np.asarray(iso.X_thresholds_, dtype=np.float64),
                             np.asarray(iso.y_thresholds_, dtype=np.float64))
        self.booster_ = boosters[-1]
        self.feature_names_ = list(feature_names)
        oof = self._calibrate(margin)
        self.thresholds_ = self._levels(oof, y, weight)
        self.report_ = self._report(oof, y, weight)
        return self

    def _calibrate(self, margin: np.ndarray) -> np.ndarray:
        xs, ys = self.calibration_
        return np.clip(np.interp(margin, xs, ys), 0.0, 1.0)

    def _levels(self, p: np.ndarray, y: np.ndarray, w: np.ndarray) -> dict[str, float]:
        # Cuts fall between distinct values only (calibration makes plateaus of equal fit).
        values, inverse = np.unique(p, return_inverse=True)
        wsum = np.bincount(inverse, w, minlength=len(values))
        ysum = np.bincount(inverse, w * y, minlength=len(values))
        # high: the lowest value v whose pairs with fit >= v are >= high_precision links
        at_or_above = np.cumsum(ysum[::-1])[::-1] / np.cumsum(wsum[::-1])[::-1]
        ok = np.flatnonzero(at_or_above >= self.high_precision)
        t_high = float(values[ok[0]]) if len(ok) else 1.0 + 1e-9
        # low: the highest value v with few links among the pairs below it, and few of
        # all the links lost there
        below_links = np.r_[0.0, np.cumsum(ysum)[:-1]]
        below_pairs = np.r_[0.0, np.cumsum(wsum)[:-1]]
        rate = np.divide(below_links, below_pairs, out=np.zeros_like(below_links),
                         where=below_pairs > 0)
        lost = below_links / max(float(ysum.sum()), 1e-12)
        good = np.flatnonzero((rate <= self.low_rate) & (lost <= self.low_recall_loss))
        t_low = float(values[good[-1]]) if len(good) else 0.0
        t_low = min(t_low, t_high)
        return {"medium": round(t_low, 6), "high": round(t_high, 6)}

    def _report(self, p: np.ndarray, y: np.ndarray, w: np.ndarray) -> dict:
        levels = self.level(p)
        total, links = float(w.sum()), float((w * y).sum())
        out = {"pairs": int(len(y)), "links": int(y.sum()),
               "ece": round(expected_calibration_error(p, y, weight=w), 4),
               "brier": round(float(np.average((p - y) ** 2, weights=w)), 4)}
        for name in FIT_LEVELS:
            at = levels == name
            out[f"{name}_share"] = round(float(w[at].sum() / total), 4)
            out[f"{name}_precision"] = round(float((w * y)[at].sum() / max(w[at].sum(), 1e-12)),
                                             4)
            out[f"{name}_links"] = round(float((w * y)[at].sum() / max(links, 1e-12)), 4)
        return out

    def _check(self) -> None:
        if not hasattr(self, "booster_"):
            raise NotFittedError("this FitModel is not fitted yet")

    def predict(self, x: np.ndarray, n_threads: int = 1) -> np.ndarray:
        """The calibrated fit of each row of ``x`` (absolute features, in
        ``feature_names_`` order), in [0, 1]."""
        from . import tree_predict

        self._check()
        if len(x) == 0:
            return np.zeros(0)
        x = np.asarray(x, dtype=np.float32)
        forest = (self.forest() if tree_predict.compiled_rows(x, self.booster_, COMPILED_BELOW)
                  else None)
        if forest is not None:  # the same margins as LightGBM's, for a small batch
            margin = tree_predict.predict(forest, x)
        else:
            margin = self.booster_.predict(x, raw_score=True, num_threads=n_threads)
        return self._calibrate(np.asarray(margin, dtype=np.float64))

    def forest(self):
        """The classifier's trees for :func:`.tree_predict.predict` (``Forest`` or
        ``None``), built on first use."""
        from . import tree_predict

        self._check()
        return tree_predict.cached_forest(self, self.booster_)

    def __getstate__(self):
        state = dict(self.__dict__)  # a copy: the live object keeps its trees
        state.pop("_forest", None)
        return state

    def level(self, fit: np.ndarray) -> np.ndarray:
        """``"high"``, ``"medium"`` or ``"low"`` for each fit value."""
        self._check()
        return fit_levels(fit, self.thresholds_)

    # ------------------------------------------------------------------ persistence
    def get_state(self) -> tuple[dict, dict[str, np.ndarray], str]:
        """``(state, arrays, booster_text)``: JSON-able parameters, levels and report; the
        calibration arrays; the classifier in LightGBM's text format."""
        self._check()
        state = {"kind": "calibrated", "params": {k: getattr(self, k) for k in (
                     "n_estimators", "learning_rate", "num_leaves", "min_child_samples",
                     "n_folds", "high_precision", "low_rate", "low_recall_loss", "random_state",
                     "n_jobs")},
                 "feature_names": self.feature_names_, "thresholds": self.thresholds_,
                 "report": self.report_}
        arrays = {"fit.calibration.x": self.calibration_[0],
                  "fit.calibration.y": self.calibration_[1]}
        return state, arrays, self.booster_.model_to_string()

    @classmethod
    def from_state(cls, state: dict, arrays: dict, booster_text: str) -> FitModel:
        """The inverse of :meth:`get_state`."""
        lgb = _lgb()
        out = cls(**state["params"])
        out.feature_names_ = list(state["feature_names"])
        out.thresholds_ = {k: float(v) for k, v in state["thresholds"].items()}
        out.report_ = dict(state["report"])
        out.calibration_ = (np.asarray(arrays["fit.calibration.x"], dtype=np.float64),
                            np.asarray(arrays["fit.calibration.y"], dtype=np.float64))
        out.booster_ = lgb.Booster(model_str=booster_text)
        return out


class SimilarityFit:
    """The fit of a model trained without links: content similarity, not a probability.

    With no past partnerships there is nothing to calibrate against. The fit is then the
    pair's blended similarity (0.5 whole-text words, 0.3 character n-grams, 0.2 title
    words: cosines in [0, 1]), a function of the pair alone like the calibrated fit; its
    levels are fixed cut-offs (``medium`` from 0.1, ``high`` from 0.3), and the model's
    manifest says it is not calibrated.
    """

    calibrated = False
    WEIGHTS = {"word_full": 0.5, "char_full": 0.3, "word_title": 0.2}
    THRESHOLDS = {"medium": 0.1, "high": 0.3}

    def fit(self, feature_names: list[str]) -> SimilarityFit:
        self.feature_names_ = list(feature_names)
        self.coef_ = np.array([self.WEIGHTS.get(n, 0.0) for n in feature_names])
        self.thresholds_ = dict(self.THRESHOLDS)
        self.report_: dict = {"calibrated": False}
        return self

    def predict(self, x: np.ndarray, n_threads: int = 1) -> np.ndarray:
        out = np.zeros(len(x))
        for j in np.flatnonzero(self.coef_):  # column by column: the same in any batch
            out += self.coef_[j] * np.asarray(x[:, j], dtype=np.float64)
        return np.clip(out, 0, 1)

    def level(self, fit: np.ndarray) -> np.ndarray:
        return fit_levels(fit, self.thresholds_)

    def get_state(self) -> tuple[dict, dict[str, np.ndarray], str | None]:
        return {"kind": "similarity", "feature_names": self.feature_names_}, {}, None

    @classmethod
    def from_state(cls, state: dict, arrays: dict, booster_text: str | None) -> SimilarityFit:
        return cls().fit(state["feature_names"])


def fit_levels(fit, thresholds: dict[str, float]) -> np.ndarray:
    """``"high"`` where ``fit >= thresholds["high"]``, ``"low"`` below
    ``thresholds["medium"]``, ``"medium"`` between."""
    fit = np.asarray(fit, dtype=np.float64)
    return np.where(fit >= thresholds["high"], "high",
                    np.where(fit >= thresholds["medium"], "medium", "low")).astype(object)


def expected_calibration_error(p, y, bins: int = 10, weight=None) -> float:
    """Expected calibration error over ``bins`` equal-width bins of [0, 1].

    The mean over bins of |mean prediction - share of positives|, weighted by the bin's
    share of the rows.

    Examples
    --------
    >>> round(expected_calibration_error([0.1, 0.1, 0.9, 0.9], [0, 0, 1, 1]), 3)
    0.1
    """
    table = reliability_table(p, y, bins, weight)
    n = table["count"].sum()
    if n == 0:
        return 0.0
    return float((table["count"] * (table["predicted"] - table["observed"]).abs()).sum() / n)


def reliability_table(p, y, bins: int = 10, weight=None):
    """Per equal-width bin of predicted fit: rows, mean prediction, share of real links.

    Returns
    -------
    DataFrame
        Columns ``lower, upper, count, predicted, observed`` (empty bins have count 0 and
        NaN means). With ``weight``, counts and means are weighted.
    """
    import pandas as pd

    p = np.asarray(p, dtype=np.float64)
    y = (np.asarray(y) > 0).astype(np.float64)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1], right=False), 0, bins - 1)
    w = np.ones(len(p)) if weight is None else np.asarray(weight, dtype=np.float64)
    count = np.bincount(which, w, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        pred = np.bincount(which, w * p, minlength=bins) / count
        obs = np.bincount(which, w * y, minlength=bins) / count
    return pd.DataFrame({"lower": edges[:-1], "upper": edges[1:], "count": count,
                         "predicted": pred, "observed": obs})
