"""Small LightGBM boosters and their trees, for the tests of the modules that read trees
(``tree_shap``, ``tree_predict``)."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np

LIGHTGBM_ZERO = float(np.float32(1e-35))  # LightGBM's kZeroThreshold, a float constant
BASE = {"verbose": -1, "deterministic": True, "num_threads": 1, "seed": 0}


def train(x, y, rounds=40, group=None, **params) -> lgb.Booster:
    params = {**BASE, "objective": "regression", "num_leaves": 15, "min_data_in_leaf": 5,
              **params}
    return lgb.train(params, lgb.Dataset(x, y, group=group), num_boost_round=rounds)


def splits(booster) -> list[dict]:
    """Every split node of every tree, as ``dump_model`` gives them."""
    out = []

    def walk(node):
        if "split_index" in node:
            out.append(node)
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in booster.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    return out


def random_data(n=2000, d=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = x[:, 0] + np.sin(2 * x[:, 1]) + x[:, 2] * x[:, 3] + 0.3 * rng.normal(size=n)
    return x, y


def with_missing(x, rng, share=0.2, value=np.nan):
    x = x.copy()
    x[rng.random(x.shape) < share] = value
    return x


def nan_both_ways_booster(rng) -> lgb.Booster:
    """A booster whose NaN splits send missing values left at some nodes and right at
    others (feature 0 often missing, with its own target; the others sometimes)."""
    x, y = random_data(seed=4)
    x[:, 0] = with_missing(x[:, :1], rng, 0.3)[:, 0]
    y = np.where(np.isnan(x[:, 0]), 2.0, y)
    x[:, 1:] = with_missing(x[:, 1:], rng, 0.15)
    return train(x, y)


def zero_as_missing_booster(rng) -> lgb.Booster:
    """A booster trained with ``zero_as_missing``, on data where zeros have their own
    target."""
    x, y = random_data(seed=6)
    x = with_missing(x, rng, 0.3, 0.0)
    y = np.where(x[:, 0] == 0, 3.0, y)
    return train(x, y, zero_as_missing=True)


def zero_threshold_booster(zero_as_missing: bool) -> lgb.Booster:
    """A booster with a split at LightGBM's -kZeroThreshold (feature 0 often exactly 0)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 2))
    x[rng.random(len(x)) < 0.4, 0] = 0.0
    y = (x[:, 0] < 0) + x[:, 1] + 0.5 * (x[:, 0] == 0)
    return train(x, y, rounds=5, zero_as_missing=zero_as_missing)


def one_leaf_boosters(rng) -> tuple[lgb.Booster, lgb.Booster, np.ndarray]:
    """A booster of one-leaf trees (a constant target), the same continued with real
    trees, and 50 test rows."""
    x = rng.normal(size=(500, 4))
    constant = train(x, np.full(len(x), 1.5), rounds=5)
    params = {**BASE, "objective": "regression", "num_leaves": 7, "min_data_in_leaf": 5}
    mixed = lgb.train(params, lgb.Dataset(x, x[:, 0] - x[:, 1]), num_boost_round=10,
                      init_model=constant)
    return constant, mixed, rng.normal(size=(50, 4))
