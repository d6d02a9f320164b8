"""Exact path-dependent TreeSHAP values of a LightGBM model, from per-leaf tables.

LightGBM's ``pred_contrib`` runs the recursive TreeSHAP algorithm (Lundberg et al., 2020):
for each row and tree it extends and unwinds the decision path at every node, O(L·D²) per
tree. A request explains ten rows with a few hundred trees of depth up to 16, and that
took ~10 ms, a fifth of the whole ranking.

The same values follow from a closed form per leaf (the idea of Fast TreeSHAP v2, Yang
2021). A leaf ``l`` with value ``v`` depends only on the set ``F`` of the distinct features
split on along its path (``u = |F|``). For a feature ``j`` in ``F`` let ``r_j`` be the share
of the training rows that follow the path's branches on ``j`` (the product of
``count(child)/count(node)`` over its splits) and ``o_j`` whether the row follows all of
them. The leaf's value for a coalition ``S`` is ``v·Π_{j∈S∩F} o_j·Π_{j∈F∖S} r_j``, and its
Shapley value for ``i ∈ F`` is

    φ_i = v·(o_i − r_i)/r_i · G(Z ∖ {i})      with Z = {j ∈ F : o_j = 1},
    G(T) = Σ_{S⊆T} |S|!(u−|S|−1)!/u! · Π_{j∈F∖S} r_j,

(``Z ∖ {i} = Z`` when ``o_i = 0``). ``G`` is tabulated once per leaf for all ``2^u``
subsets ``T`` of ``F`` (a few hundred thousand numbers for the bundled models); a row then
costs one comparison per split and ``O(depth + u)`` per leaf, with no recursion.

:func:`shap_tables` builds the tables from a booster, :func:`contributions` evaluates them.
The values equal LightGBM's ``pred_contrib`` up to floating-point rounding (tests compare
them on random models with missing values, repeated features and deep trees).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import lightgbm as lgb
import numba
import numpy as np

# LightGBM's missing-value handling of a numerical split (``Tree::NumericalDecision``).
MISSING_NONE, MISSING_ZERO, MISSING_NAN = 0, 1, 2
_MISSING = {"None": MISSING_NONE, "Zero": MISSING_ZERO, "NaN": MISSING_NAN}
# LightGBM reads |x| <= 1e-35f (its kZeroThreshold, a float) as exactly 0 everywhere.
ZERO_THRESHOLD = float(np.float32(1e-35))
# A leaf whose path splits on more distinct features than this would need a 2^u table;
# such models are explained by LightGBM itself.
MAX_PATH_FEATURES = 20
assert MAX_PATH_FEATURES < 31  # _contrib_rows keeps a path's slots as bits of an int32
CHUNK_ROWS = 256  # rows per task when several threads share the work


@dataclass(frozen=True)
class ShapTables:
    """The flattened trees of one booster and the per-leaf ``G`` tables (see module doc).

    Nodes of all trees in preorder (a parent before its children): ``parent`` (-1 for a
    root), ``is_left``, and for a split ``feature``, ``threshold``, ``default_left``,
    ``missing`` and ``slot`` (the place of its feature among the distinct features of the
    path from the root, the same for every leaf below it); ``leaf`` numbers the leaves
    (-1 for a split). Per leaf: ``value``, the slots' features and ``(1 − r)/r`` in
    ``slot_*[slot_start[l]:slot_start[l+1]]``, and ``G`` in
    ``table[table_start[l]:table_start[l] + 2^u]``.
    """

    n_features: int
    parent: np.ndarray
    is_left: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    default_left: np.ndarray
    missing: np.ndarray
    slot: np.ndarray
    leaf: np.ndarray
    value: np.ndarray
    slot_start: np.ndarray
    slot_feature: np.ndarray
    slot_coef: np.ndarray
    table_start: np.ndarray
    table: np.ndarray


def shap_tables(booster: lgb.Booster) -> ShapTables | None:
    """The tables for ``booster``'s trees (those ``predict`` uses by default), or ``None``
    when the model has something this module does not handle (categorical splits, linear
    trees, several outputs, very long paths)."""
    model = booster.dump_model()
    if model.get("num_tree_per_iteration", 1) != 1 or model.get("linear_tree"):
        return None
    nodes = _Nodes()
    thresholds = exact_thresholds(booster)
    for tree in model["tree_info"]:
        nodes.tree_thresholds = thresholds.get(int(tree["tree_index"]), [])
        if not nodes.add(tree["tree_structure"], -1, False, {}, []):
            return None
    return nodes.tables(int(model["max_feature_idx"]) + 1)


def exact_thresholds(booster: lgb.Booster) -> dict[int, list[float]]:
    """Each tree's split thresholds, by split index, from the model's text: ``dump_model``
    writes an infinite threshold (a split that sends every number one way and only NaN the
    other) as 1e300, which a row's value above 1e300 would read differently."""
    out: dict[int, list[float]] = {}
    tree = None
    for line in booster.model_to_string().splitlines():
        if line.startswith("Tree="):
            tree = int(line[5:])
        elif line.startswith("threshold=") and tree is not None:
            out[tree] = [float(v) for v in line[len("threshold="):].split()]
    return out


def split_threshold(node: dict, tree_thresholds: list[float]) -> float | None:
    """The exact threshold of a dumped split node, from its tree's
    :func:`exact_thresholds`; None where the two disagree (beyond the dump's 1e300)."""
    at = int(node["split_index"])
    if at >= len(tree_thresholds):
        return None
    threshold, dumped = tree_thresholds[at], float(node["threshold"])
    if threshold != dumped and not (abs(dumped) >= 1e300 and abs(threshold) >= 1e300):
        return None
    return threshold


class _Nodes:
    """Collects the nodes of the trees in preorder, and each leaf's path features."""

    def __init__(self) -> None:
        self.tree_thresholds: list[float] = []  # the current tree's, by split index
        self.parent: list[int] = []
        self.is_left: list[bool] = []
        self.feature: list[int] = []
        self.threshold: list[float] = []
        self.default_left: list[bool] = []
        self.missing: list[int] = []
        self.slot: list[int] = []
        self.leaf: list[int] = []
        self.value: list[float] = []
        self.slot_feature: list[int] = []
        self.slot_r: list[float] = []
        self.slot_start = [0]

    def add(self, node: dict, parent: int, is_left: bool, slots: dict[int, int],
            r: list[float]) -> bool:
        """Add ``node`` and its subtree; ``slots`` maps the path's features to slots and
        ``r`` holds each slot's share of training rows so far. False if not supported."""
        i = len(self.parent)
        self.parent.append(parent)
        self.is_left.append(is_left)
        if "split_index" not in node:  # a leaf (or a tree of one leaf)
            if "leaf_coeff" in node:  # a linear tree: its leaves are not constants
                return False
            self.feature.append(0)
            self.threshold.append(0.0)
            self.default_left.append(False)
            self.missing.append(MISSING_NONE)
            self.slot.append(0)
            if len(slots) > MAX_PATH_FEATURES or (r and min(r) <= 0):
                return False
            self.leaf.append(len(self.value))
            self.value.append(float(node["leaf_value"]))
            self.slot_feature.extend(slots)
            self.slot_r.extend(r)
            self.slot_start.append(len(self.slot_feature))
            return True
        if node.get("decision_type", "<=") != "<=":
            return False
        feat = int(node["split_feature"])
        slots = dict(slots)
        if feat not in slots:
            slots[feat] = len(slots)
            r = [*r, 1.0]
        threshold = split_threshold(node, self.tree_thresholds)
        if threshold is None:
            return False
        self.feature.append(feat)
        self.threshold.append(threshold)
        self.default_left.append(bool(node["default_left"]))
        self.missing.append(_MISSING[node.get("missing_type", "None")])
        self.slot.append(slots[feat])
        self.leaf.append(-1)
        total = float(node["internal_count"])
        for child, left in ((node["left_child"], True), (node["right_child"], False)):
            share = list(r)
            share[slots[feat]] *= _count(child) / total
            if not self.add(child, i, left, slots, share):
                return False
        return True

    def tables(self, n_features: int) -> ShapTables:
        r = np.asarray(self.slot_r, dtype=np.float64)
        slot_start = np.asarray(self.slot_start, dtype=np.int64)
        sizes = 2 ** np.diff(slot_start)
        table_start = np.r_[0, np.cumsum(sizes)].astype(np.int64)
        table = np.zeros(table_start[-1], dtype=np.float64)
        _fill_tables(r, slot_start, table_start, _shapley_weights(), table)
        return ShapTables(
            n_features=n_features,
            parent=np.asarray(self.parent, dtype=np.int32),
            is_left=np.asarray(self.is_left, dtype=np.bool_),
            feature=np.asarray(self.feature, dtype=np.int32),
            threshold=np.asarray(self.threshold, dtype=np.float64),
            default_left=np.asarray(self.default_left, dtype=np.bool_),
            missing=np.asarray(self.missing, dtype=np.int8),
            slot=np.asarray(self.slot, dtype=np.int32),
            leaf=np.asarray(self.leaf, dtype=np.int32),
            value=np.asarray(self.value, dtype=np.float64),
            slot_start=slot_start,
            slot_feature=np.asarray(self.slot_feature, dtype=np.int32),
            slot_coef=(1.0 - r) / np.where(r > 0, r, 1.0),
            table_start=table_start[:-1].copy(),
            table=table,
        )


def _count(node: dict) -> float:
    return float(node["leaf_count"] if "split_index" not in node else node["internal_count"])


def _shapley_weights() -> np.ndarray:
    """``w[u, s] = s!(u−s−1)!/u!`` for ``0 ≤ s < u ≤ MAX_PATH_FEATURES``."""
    n = MAX_PATH_FEATURES + 1
    w = np.zeros((n, n))
    for u in range(1, n):
        for s in range(u):
            w[u, s] = math.factorial(s) * math.factorial(u - s - 1) / math.factorial(u)
    return w


@numba.njit(cache=True, nogil=True)
def _fill_tables(r, slot_start, table_start, weights, table):  # pragma: no cover (numba)
    for leaf in range(len(slot_start) - 1):
        a, u = slot_start[leaf], slot_start[leaf + 1] - slot_start[leaf]
        n = 1 << u
        # poly[T, s] = Σ over S ⊆ T with |S| = s of Π_{j ∈ T∖S} r_j, built by adding T's
        # lowest slot to a set without it; rest[T] = Π_{j ∈ F∖T} r_j.
        poly = np.zeros((n, u + 1))
        poly[0, 0] = 1.0
        rest = np.empty(n)
        full = 1.0
        for j in range(u):
            full *= r[a + j]
        rest[0] = full
        for t in range(1, n):
            j = 0
            while not (t >> j) & 1:
                j += 1
            prev = t & ~(1 << j)
            rj = r[a + j]
            poly[t, 0] = rj * poly[prev, 0]
            for s in range(1, u + 1):
                poly[t, s] = rj * poly[prev, s] + poly[prev, s - 1]
            rest[t] = rest[prev] / rj
        base = table_start[leaf]
        for t in range(n):
            h = 0.0
            for s in range(u):
                h += weights[u, s] * poly[t, s]
            table[base + t] = h * rest[t]


ROW_BLOCK = 16  # rows that walk the trees together (their node tables read once)


@numba.njit(cache=True, nogil=True)
def _contrib_rows(x, parent, is_left, feature, threshold, default_left, missing, slot, leaf,
                  value, slot_start, slot_feature, slot_coef, table_start, table,
                  out):  # pragma: no cover (numba)
    # Branch-free where the branch depends on the row: a mispredicted branch per node
    # cost more than all the arithmetic. Rows go through the nodes a block at a time, each
    # node's split or leaf read once for the block; each row still adds its leaves' terms
    # in node order, so its sums are those of one row at a time, to the bit.
    n_nodes = len(parent)
    goes_left = np.zeros((n_nodes, ROW_BLOCK), dtype=np.int32)
    follows = np.empty((n_nodes, ROW_BLOCK), dtype=np.int32)  # bit s: follows slot s
    for lo in range(0, x.shape[0], ROW_BLOCK):
        n = min(ROW_BLOCK, x.shape[0] - lo)
        for node in range(n_nodes):
            p = parent[node]
            if p < 0:
                for r in range(n):
                    follows[node, r] = -1
            else:
                left, shift = is_left[node], slot[p]
                for r in range(n):
                    off = goes_left[p, r] ^ left
                    follows[node, r] = follows[p, r] & ~(off << shift)
            lf = leaf[node]
            if lf < 0:
                feat, miss = feature[node], missing[node]
                cut, default = threshold[node], default_left[node]
                for r in range(n):
                    f = x[lo + r, feat]
                    nan = np.isnan(f)
                    if (nan and miss != MISSING_NAN) or abs(f) <= ZERO_THRESHOLD:
                        f = 0.0
                    is_missing = (miss == MISSING_ZERO and f == 0.0) or (
                        miss == MISSING_NAN and nan)
                    goes_left[node, r] = default if is_missing else f <= cut
                continue
            a, u = slot_start[lf], slot_start[lf + 1] - slot_start[lf]
            v = value[lf]
            base = table_start[lf]
            mask = (1 << u) - 1
            for r in range(n):
                z = follows[node, r] & mask
                for s in range(u):
                    on = (z >> s) & 1
                    # on: v·(1 − r)/r·G(Z ∖ {s}); off: −v·G(Z)
                    factor = v * (on * (slot_coef[a + s] + 1.0) - 1.0)
                    out[lo + r, slot_feature[a + s]] += factor * table[base + (z ^ (on << s))]


@numba.njit(parallel=True, cache=True)
def _contrib_chunks(x, bounds, parent, is_left, feature, threshold, default_left, missing,
                    slot, leaf, value, slot_start, slot_feature, slot_coef, table_start, table,
                    out):  # pragma: no cover (numba)
    for c in numba.prange(len(bounds) - 1):
        a, b = bounds[c], bounds[c + 1]
        _contrib_rows(x[a:b], parent, is_left, feature, threshold, default_left, missing,
                      slot, leaf, value, slot_start, slot_feature, slot_coef, table_start,
                      table, out[a:b])


def contributions(tables: ShapTables, x: np.ndarray, n_threads: int = 1) -> np.ndarray:
    """SHAP values of each row of ``x`` for each feature (``n_rows × n_features``), without
    the expected-value column LightGBM's ``pred_contrib`` appends.

    With ``n_threads > 1`` the rows are split in chunks shared by numba's threads (the
    values do not depend on it).
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != tables.n_features:
        raise ValueError(f"expected {tables.n_features} features, got shape {x.shape}")
    out = np.zeros((x.shape[0], tables.n_features))
    t = tables
    arrays = (t.parent, t.is_left, t.feature, t.threshold, t.default_left, t.missing, t.slot,
              t.leaf, t.value, t.slot_start, t.slot_feature, t.slot_coef, t.table_start,
              t.table)
    if n_threads > 1 and len(x) >= 2 * CHUNK_ROWS:
        bounds = np.r_[np.arange(0, len(x), CHUNK_ROWS), len(x)].astype(np.int64)
        _contrib_chunks(x, bounds, *arrays, out)
    else:
        _contrib_rows(x, *arrays, out)
    return out
