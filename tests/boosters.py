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
