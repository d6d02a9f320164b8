"""LightGBM's predictions for small batches, from the booster's trees compiled with numba.

A request scores a hundred or so candidate rows, and the fit of its top ten. There
LightGBM's ``predict`` spends ~20 µs per call on the call itself (checking and converting
the input, setting up its predictor) and ~2-6 µs per row on the trees. :func:`forest`
flattens a booster's trees into numpy arrays once, from the booster's own ``dump_model`` (a
model already loaded, never a file), and :func:`predict` walks them in compiled code, about
twice as fast per row (``benchmarks/predict_speed.py``).

The result is LightGBM's raw score, bit for bit:

- LightGBM reads the row's values as doubles (a float32 matrix is widened exactly; another
  dtype is first made float32 by its Python package), and reads ``|v| <= 1e-35f`` as 0.
- At a numerical split (``Tree::NumericalDecision``) a missing value goes the split's
  default way, anything else left when ``v <= threshold``. What is missing depends on the
  split's missing type: NaN for ``NaN``; 0 and NaN for ``Zero``; nothing for ``None``, where
  NaN reads as 0. LightGBM gives every split on a feature its feature's missing type, so
  :func:`predict` rewrites each row once (NaN to 0, or 0 to NaN) and a split only asks
  ``v <= threshold``, then ``isnan(v) and default_left``.
- The thresholds and leaf values are doubles printed with 17 significant digits, so they
  are read back exactly; the thresholds from the model's text, where an infinite one is
  ``inf`` (the dump writes it as 1e300).
- A row's score is the sum of its leaves, tree by tree in the model's order, from 0.0, in
  double (``GBDT::PredictRaw``; the objective's starting score is in the first tree's
  leaves).

Models this module does not handle (categorical splits, linear trees, several outputs,
averaged outputs, a feature whose splits disagree on the missing type) give ``None``, and
their callers keep LightGBM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numba
import numpy as np

from .tree_shap import (
    MISSING_NAN,
    MISSING_NONE,
    MISSING_ZERO,
    ZERO_THRESHOLD,
    exact_thresholds,
    split_threshold,
)

__all__ = ["Forest", "forest", "predict", "compiled_rows", "cached_forest", "warm_up",
           "IDENTITY_OBJECTIVES"]

_MISSING = {"None": MISSING_NONE, "Zero": MISSING_ZERO, "NaN": MISSING_NAN}
# The objectives whose prediction is the raw score itself (no output transform).
IDENTITY_OBJECTIVES = frozenset({"lambdarank", "rank_xendcg", "regression"})
# Columns of Forest.splits.
FEATURE, LEFT, RIGHT, NAN_LEFT = range(4)


@dataclass(frozen=True)
class Forest:
    """The trees of one booster as flat arrays.

    The splits of all trees are numbered together, and so are the leaves. A node reference
    ``c >= 0`` is the split ``c``, ``c < 0`` the leaf ``~c``; ``roots[t]`` is tree ``t``'s
    root (a leaf for a tree of one leaf). A split's feature, left child, right child and
    whether a NaN goes left are the columns of ``splits`` (one row of four int32 per split:
    a node's numbers side by side are read together), its ``threshold`` is apart.

    Attributes
    ----------
    n_features : int
        The number of columns the booster was trained on.
    identity_output : bool
        Whether the booster's ``predict`` (without ``raw_score``) is the raw score.
    feature_missing : ndarray of int8
        Each feature's missing type (0 none, 1 zero, 2 NaN; 0 for a feature no split uses).
    roots, splits, threshold, value : ndarray
    """

    n_features: int
    identity_output: bool
    feature_missing: np.ndarray
    roots: np.ndarray
    splits: np.ndarray
    threshold: np.ndarray
    value: np.ndarray


def forest(booster: lgb.Booster) -> Forest | None:
    """The flattened trees that ``booster.predict`` uses by default (up to the best
    iteration, when the booster has one), or ``None`` for a model this module does not
    handle.

    Parameters
    ----------
    booster : lightgbm.Booster
        A loaded model.

    Returns
    -------
    Forest or None
    """
    model = booster.dump_model()
    if (model.get("num_tree_per_iteration", 1) != 1 or model.get("num_class", 1) != 1
            or model.get("average_output") or model.get("linear_tree")):
        return None
    n_features = int(model["max_feature_idx"]) + 1
    nodes = _Nodes(n_features)
    thresholds = exact_thresholds(booster)
    roots = []
    for tree in model["tree_info"]:
        nodes.tree_thresholds = thresholds.get(int(tree["tree_index"]), [])
        root = nodes.add(tree["tree_structure"])
        if root is None:
            return None
        roots.append(root)
    return Forest(
        n_features=n_features,
        identity_output=str(model.get("objective", "")).strip() in IDENTITY_OBJECTIVES,
        feature_missing=np.asarray(nodes.missing_types, dtype=np.int8),
        roots=np.asarray(roots, dtype=np.int32),
        splits=np.asarray(nodes.splits, dtype=np.int32).reshape(-1, 4),
        threshold=np.asarray(nodes.threshold, dtype=np.float64),
        value=np.asarray(nodes.value, dtype=np.float64),
    )


class _Nodes:
    """Collects the splits and leaves of the trees."""

    def __init__(self, n_features: int) -> None:
        self.tree_thresholds: list[float] = []  # the current tree's, by split index
        self.feature_missing: list[int | None] = [None] * n_features
        self.splits: list[list[int]] = []
        self.threshold: list[float] = []
        self.value: list[float] = []

    def add(self, node: dict) -> int | None:
        """Add ``node`` and its subtree; its reference, or None if not supported."""
        if "split_index" not in node:
            if "leaf_coeff" in node:  # a linear tree: its leaves are not constants
                return None
            self.value.append(float(node["leaf_value"]))
            return ~(len(self.value) - 1)
        missing = _MISSING.get(node.get("missing_type", "None"))
        feature = int(node["split_feature"])
        if node.get("decision_type", "<=") != "<=" or missing is None:
            return None
        if self.feature_missing[feature] is None:
            self.feature_missing[feature] = missing
        elif self.feature_missing[feature] != missing:
            return None
        i = len(self.splits)
        # With the row rewritten, only a NaN (or Zero) split sees NaN, and sends it its
        # default way.
        nan_left = int(bool(node["default_left"]) and missing != MISSING_NONE)
        threshold = split_threshold(node, self.tree_thresholds)
        if threshold is None:
            return None
        self.splits.append([feature, 0, 0, nan_left])
        self.threshold.append(threshold)
        left = self.add(node["left_child"])
        right = self.add(node["right_child"])
        if left is None or right is None:
            return None
        self.splits[i][LEFT], self.splits[i][RIGHT] = left, right
        return i

    @property
    def missing_types(self) -> list[int]:
        return [MISSING_NONE if m is None else m for m in self.feature_missing]


@numba.njit(cache=True, nogil=True)
def _predict_rows(x, feature_missing, roots, splits, threshold, value,
                  out):  # pragma: no cover (numba)
    row = np.empty(x.shape[1], dtype=np.float64)
    for r in range(x.shape[0]):
        for j in range(x.shape[1]):  # the value each split of feature j reads
            v = np.float64(x[r, j])
            if abs(v) <= ZERO_THRESHOLD:
                v = 0.0
            kind = feature_missing[j]
            if kind == MISSING_NONE and np.isnan(v):
                v = 0.0
            elif kind == MISSING_ZERO and v == 0.0:
                v = np.nan
            row[j] = v
        total = 0.0
        for t in range(len(roots)):
            node = roots[t]
            while node >= 0:  # branches, not selects: they predict well on real rows
                v = row[splits[node, FEATURE]]
                if v <= threshold[node]:
                    node = splits[node, LEFT]
                elif np.isnan(v) and splits[node, NAN_LEFT]:
                    node = splits[node, LEFT]
                else:
                    node = splits[node, RIGHT]
            total += value[~node]
        out[r] = total


def predict(tree_forest: Forest, x: np.ndarray) -> np.ndarray:
    """The raw score of each row of ``x``, equal to ``booster.predict(x, raw_score=True)``.

    Parameters
    ----------
    tree_forest : Forest
    x : ndarray of shape (n_rows, n_features)
        float32 or float64; as LightGBM does, another dtype is read as float32.

    Returns
    -------
    ndarray of float64, shape (n_rows,)
    """
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != tree_forest.n_features:
        raise ValueError(f"expected {tree_forest.n_features} features, got shape {x.shape}")
    x = np.ascontiguousarray(x, dtype=x.dtype if x.dtype in (np.float32, np.float64)
                             else np.float32)
    out = np.empty(len(x), dtype=np.float64)
    f = tree_forest
    _predict_rows(x, f.feature_missing, f.roots, f.splits, f.threshold, f.value, out)
    return out


def compiled_rows(x: Any, booster: lgb.Booster, below: int) -> bool:
    """Whether ``x`` is a batch for the compiled trees: a matrix of the booster's width
    with 1 to ``below - 1`` rows (LightGBM keeps the rest, and its errors)."""
    return (isinstance(x, np.ndarray) and x.ndim == 2 and 0 < len(x) < below
            and x.shape[1] == booster.num_feature())


def cached_forest(owner: Any, booster: lgb.Booster) -> Forest | None:
    """``booster``'s :class:`Forest`, kept in ``owner.__dict__["_forest"]`` while the
    booster (and its best iteration) stay the same. Concurrent first calls may each build
    it; the results are equal. The owner's ``__getstate__`` should leave it out."""
    best = booster.best_iteration
    cached = owner.__dict__.get("_forest")
    if cached is None or cached[0] is not booster or cached[1] != best:
        cached = owner.__dict__["_forest"] = (booster, best, forest(booster))
    return cached[2]


def warm_up(tree_forest: Forest | None) -> None:
    """Compile :func:`predict` for float32 rows, the matcher's (or load it from numba's
    cache), now rather than in the first request: seconds on a cold machine."""
    if tree_forest is not None:
        predict(tree_forest, np.zeros((1, tree_forest.n_features), dtype=np.float32))
