"""Contract of iei_match.tree_shap: for every booster it supports, ``contributions`` equals
LightGBM's own ``predict(x, pred_contrib=True)`` without the bias column, up to rounding;
``shap_tables`` returns None for the models it does not support (and Matcher then falls
back to LightGBM); the threaded path gives the same values as the serial one; and the tables
a Matcher caches are not pickled with it.
"""

from __future__ import annotations

import pickle

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boosters import (
    BASE,
    LIGHTGBM_ZERO,
    nan_both_ways_booster,
    one_leaf_boosters,
    random_data,
    splits,
    train,
    with_missing,
    zero_as_missing_booster,
    zero_threshold_booster,
)
from iei_match import tree_shap
from iei_match.candidates import candidate_pairs
from iei_match.features import build_features
from iei_match.matcher import Matcher
from iei_match.sides import Side
from iei_match.tree_shap import CHUNK_ROWS, MAX_PATH_FEATURES, contributions, shap_tables
from synthetic import make_catalog


def lightgbm_contrib(booster, x) -> np.ndarray:
    return np.asarray(booster.predict(x, pred_contrib=True))[:, :-1]


def assert_matches_lightgbm(booster, x):
    tables = shap_tables(booster)
    assert tables is not None
    got = contributions(tables, x)
    assert got.shape == (len(x), booster.num_feature())
    np.testing.assert_allclose(got, lightgbm_contrib(booster, x), rtol=1e-9, atol=1e-12)



def leaf_paths(booster) -> list[list[int]]:
    """The split features along the path to each leaf, over all trees."""
    out = []

    def walk(node, path):
        if "split_index" not in node:
            out.append(path)
            return
        path = [*path, node["split_feature"]]
        walk(node["left_child"], path)
        walk(node["right_child"], path)

    for tree in booster.dump_model()["tree_info"]:
        walk(tree["tree_structure"], [])
    return out


def split_kinds(booster) -> set[tuple[str, bool]]:
    return {(s["missing_type"], s["default_left"]) for s in splits(booster)}



@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_regression_equals_pred_contrib(dtype):
    x, y = random_data()
    booster = train(x, y)
    assert_matches_lightgbm(booster, random_data(300, seed=1)[0].astype(dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lambdarank_equals_pred_contrib(dtype):
    x, y = random_data(seed=2)
    grade = np.digitize(y, np.quantile(y, [0.5, 0.8, 0.95]))
    booster = train(x, grade, group=[20] * (len(x) // 20), objective="lambdarank")
    assert_matches_lightgbm(booster, random_data(300, seed=3)[0].astype(dtype))


def test_rows_on_the_split_thresholds_equal_pred_contrib():
    x, y = random_data(seed=24)
    booster = train(x, y)
    rng = np.random.default_rng(24)
    on = {f: [s["threshold"] for s in splits(booster)
              if s["split_feature"] == f and abs(s["threshold"]) > LIGHTGBM_ZERO]
          for f in range(x.shape[1])}
    test = np.column_stack([rng.choice(on[f], size=500) for f in range(x.shape[1])])
    assert_matches_lightgbm(booster, test)



def test_nan_splits_both_default_directions_equal_pred_contrib():
    rng = np.random.default_rng(4)
    booster = nan_both_ways_booster(rng)
    assert {("NaN", True), ("NaN", False)} <= split_kinds(booster)
    test = with_missing(random_data(500, seed=5)[0], rng, 0.2)
    test = with_missing(test, rng, 0.1, 0.0)
    assert_matches_lightgbm(booster, test)


def test_zero_as_missing_equals_pred_contrib():
    rng = np.random.default_rng(6)
    booster = zero_as_missing_booster(rng)
    assert "Zero" in {kind for kind, _ in split_kinds(booster)}
    test = with_missing(random_data(500, seed=7)[0], rng, 0.2, 0.0)
    test = with_missing(test, rng, 0.1)
    test[:5, :] = 0.0
    test[5:10, :] = np.nan
    test[10:15, :] = 1e-36
    test[15:20, :] = -1e-36
    assert_matches_lightgbm(booster, test)


@pytest.mark.parametrize(("zero_as_missing", "value"), [
    (False, -LIGHTGBM_ZERO), (True, -LIGHTGBM_ZERO), (True, np.nextafter(1e-35, 1.0))])
def test_values_lightgbm_reads_as_zero_equal_pred_contrib(zero_as_missing, value):
    booster = zero_threshold_booster(zero_as_missing)
    assert -LIGHTGBM_ZERO in {s["threshold"] for s in splits(booster)}
    assert_matches_lightgbm(booster, np.array([[value, 0.3], [0.0, 0.3]]))


def test_nan_on_features_trained_without_missing_counts_as_zero():
    x, y = random_data(seed=8)
    booster = train(x, y)
    assert {kind for kind, _ in split_kinds(booster)} == {"None"}
    rng = np.random.default_rng(9)
    test = with_missing(random_data(500, seed=9)[0], rng, 0.3)
    assert_matches_lightgbm(booster, test)
    zeros = np.where(np.isnan(test), 0.0, test)
    np.testing.assert_array_equal(contributions(shap_tables(booster), test),
                                  contributions(shap_tables(booster), zeros))


def test_deep_trees_repeating_a_feature_along_a_path_equal_pred_contrib():
    rng = np.random.default_rng(10)
    x = rng.uniform(-3, 3, size=(3000, 3))
    y = np.sin(3 * x[:, 0]) + 0.1 * x[:, 1] + 0.05 * rng.normal(size=len(x))
    booster = train(x, y, rounds=30, num_leaves=63, max_depth=-1, min_data_in_leaf=3)
    assert max(len(p) - len(set(p)) for p in leaf_paths(booster)) >= 4
    assert_matches_lightgbm(booster, rng.uniform(-3.5, 3.5, size=(500, 3)))


def test_many_distinct_features_per_path_equal_pred_contrib():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(3000, 24))
    y = x.sum(axis=1) + np.prod(np.sign(x[:, :4]), axis=1)
    booster = train(x, y, rounds=20, num_leaves=63, max_depth=-1, min_data_in_leaf=3)
    assert max(len(set(p)) for p in leaf_paths(booster)) >= 12
    assert_matches_lightgbm(booster, rng.normal(size=(300, 24)))


def long_paths(n_features, num_leaves, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(4000, n_features))
    y = 10.0 * np.all(x > -1.2, axis=1) + 0.01 * x.sum(axis=1)
    booster = train(x, y, rounds=1, num_leaves=num_leaves, max_depth=-1, min_data_in_leaf=1,
                    min_sum_hessian_in_leaf=0, learning_rate=1.0)
    return booster, np.vstack([x[:100], rng.normal(size=(100, n_features))])


def test_paths_up_to_the_feature_limit_equal_pred_contrib():
    booster, test = long_paths(30, 255, seed=27)
    assert max(len(set(p)) for p in leaf_paths(booster)) == MAX_PATH_FEATURES
    assert_matches_lightgbm(booster, test)


def test_paths_beyond_the_feature_limit_are_unsupported():
    booster, _ = long_paths(30, 255, seed=31)
    assert max(len(set(p)) for p in leaf_paths(booster)) > MAX_PATH_FEATURES
    assert shap_tables(booster) is None


def test_one_leaf_trees_contribute_nothing():
    constant, mixed, test = one_leaf_boosters(np.random.default_rng(12))
    assert [len(t) for t in leaf_paths(constant)] == [0]
    tables = shap_tables(constant)
    np.testing.assert_array_equal(contributions(tables, test), np.zeros((50, 4)))
    assert_matches_lightgbm(constant, test)
    assert mixed.num_trees() == 11
    assert leaf_paths(mixed)[0] == []
    assert_matches_lightgbm(mixed, test)


def test_best_iteration_of_early_stopping_equals_pred_contrib():
    x, y = random_data(seed=13)
    y = y + 2 * np.random.default_rng(13).normal(size=len(y))
    valid = random_data(500, seed=14)
    params = {**BASE, "objective": "regression", "num_leaves": 31, "learning_rate": 0.3}
    train_set = lgb.Dataset(x, y)
    booster = lgb.train(params, train_set, num_boost_round=60,
                        valid_sets=[lgb.Dataset(*valid, reference=train_set)],
                        callbacks=[lgb.early_stopping(5, verbose=False)],
                        keep_training_booster=True)
    assert 0 < booster.best_iteration < booster.num_trees()
    test = random_data(300, seed=15)[0]
    assert_matches_lightgbm(booster, test)
    every_tree = np.asarray(booster.predict(test, pred_contrib=True, num_iteration=-1))
    assert not np.allclose(contributions(shap_tables(booster), test), every_tree[:, :-1])


def test_categorical_splits_are_unsupported():
    rng = np.random.default_rng(16)
    x = rng.normal(size=(2000, 3))
    x[:, 0] = rng.integers(0, 10, size=len(x))
    y = np.array([3, -1, 4, -1, 5, -9, 2, 6, -5, 3])[x[:, 0].astype(int)] + x[:, 1]
    booster = lgb.train({**BASE, "objective": "regression", "min_data_per_group": 5,
                         "cat_smooth": 1},
                        lgb.Dataset(x, y, categorical_feature=[0]), num_boost_round=10)
    assert "==" in {s["decision_type"] for s in splits(booster)}
    assert shap_tables(booster) is None


def test_multiclass_is_unsupported():
    x, y = random_data(600, seed=17)
    booster = train(x, np.digitize(y, [-0.5, 0.5]), rounds=5, objective="multiclass",
                    num_class=3)
    assert shap_tables(booster) is None


def test_linear_trees_are_unsupported():
    x, y = random_data(600, seed=18)
    booster = train(x, y, rounds=5, linear_tree=True)
    assert shap_tables(booster) is None


def test_threads_give_the_same_values():
    x, y = random_data(seed=19)
    tables = shap_tables(train(x, y))
    rows = 2 * CHUNK_ROWS + 77
    test = with_missing(random_data(rows, seed=20)[0], np.random.default_rng(20), 0.1)
    np.testing.assert_array_equal(contributions(tables, test, n_threads=2),
                                  contributions(tables, test, n_threads=1))


@pytest.mark.parametrize("shape", [(10, 5), (10, 7), (6,), (2, 3, 6)])
def test_wrong_feature_count_is_value_error(shape):
    x, y = random_data(500, seed=21)
    tables = shap_tables(train(x, y, rounds=3))
    with pytest.raises(ValueError, match="expected 6 features"):
        contributions(tables, np.zeros(shape))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_rows=st.integers(30, 400),
       n_features=st.integers(1, 8), num_leaves=st.integers(2, 40),
       nan_share=st.sampled_from([0.0, 0.1, 0.5]), zero_share=st.sampled_from([0.0, 0.3]),
       zero_as_missing=st.booleans())
def test_random_models_equal_pred_contrib(seed, n_rows, n_features, num_leaves, nan_share,
                                          zero_share, zero_as_missing):
    rng = np.random.default_rng(seed)
    x = with_missing(with_missing(rng.normal(size=(n_rows, n_features)), rng, zero_share,
                                  0.0), rng, nan_share)
    y = np.nan_to_num(x @ rng.normal(size=n_features)) + rng.normal(size=n_rows)
    booster = train(x, y, rounds=int(rng.integers(1, 15)), num_leaves=num_leaves,
                    min_data_in_leaf=int(rng.integers(1, 10)), zero_as_missing=zero_as_missing,
                    min_data_in_bin=1)
    test = with_missing(with_missing(rng.normal(size=(50, n_features)), rng, 0.2, 0.0),
                        rng, 0.2)
    assert_matches_lightgbm(booster, test)


# --- the Matcher's use of the tables -------------------------------------------------------


@pytest.fixture(scope="module")
def fitted():
    needs, programs, links, _ = make_catalog("en", seed=0)
    matcher = Matcher(n_folds=3, n_estimators=20, random_state=0, n_jobs=1).fit(
        needs, programs, links)
    assert matcher.mode_ == "learned"
    need_side = Side.build(needs, "need_id", matcher.word_, matcher.char_)
    prog_side = Side.build(programs, "program_id", matcher.word_, matcher.char_)
    nbrs = matcher.memory_.neighbours(need_side)
    n_rows, p_rows = candidate_pairs(matcher.memory_, need_side, prog_side, nbrs, 10, "need")
    x, names = build_features(matcher.memory_, need_side, prog_side, nbrs, n_rows, p_rows,
                              n_rows)
    return matcher, pd.DataFrame(x, columns=names)


def fresh(matcher: Matcher) -> Matcher:
    return pickle.loads(pickle.dumps(matcher))


def matcher_reference(matcher: Matcher, x: pd.DataFrame, direction: str) -> np.ndarray:
    x = x.reindex(columns=matcher.feature_names_).to_numpy(np.float32)
    return lightgbm_contrib(matcher.boosters_[direction], x)


@pytest.mark.parametrize("direction", ["need", "program"])
def test_matcher_contributions_equal_pred_contrib(fitted, direction):
    matcher, x = fitted
    matcher = fresh(matcher)
    assert matcher.rankers_[direction].shap_tables() is not None
    np.testing.assert_allclose(matcher.contributions(x, direction),
                               matcher_reference(matcher, x, direction), rtol=1e-9, atol=1e-12)


def test_matcher_falls_back_to_lightgbm_without_tables(fitted, monkeypatch):
    matcher, x = fitted
    with_tables = fresh(matcher).contributions(x, "need")
    matcher = fresh(matcher)
    monkeypatch.setattr(tree_shap, "shap_tables", lambda booster: None)
    fallback = matcher.contributions(x, "need")
    assert matcher.rankers_["need"].shap_tables() is None
    np.testing.assert_allclose(fallback, with_tables, rtol=1e-9, atol=1e-12)


def test_matcher_rebuilds_tables_for_a_new_booster(fitted):
    matcher, x = fitted
    matcher = fresh(matcher)
    matcher.contributions(x, "need")
    matcher.rankers_["need"].booster_ = matcher.boosters_["program"]
    np.testing.assert_allclose(matcher.contributions(x, "need"),
                               matcher_reference(matcher, x, "program"), rtol=1e-9, atol=1e-12)


def test_pickled_matcher_drops_the_tables_and_gives_the_same_values(fitted):
    matcher, x = fitted
    matcher = fresh(matcher)
    before = matcher.contributions(x, "need")
    assert "_shap" in matcher.rankers_["need"].__dict__
    again = pickle.loads(pickle.dumps(matcher))
    assert "_shap" not in again.rankers_["need"].__dict__
    np.testing.assert_array_equal(again.contributions(x, "need"), before)


def test_pickling_keeps_the_matchers_own_tables(fitted):
    matcher, x = fitted
    matcher = fresh(matcher)
    matcher.contributions(x, "need")
    pickle.dumps(matcher)
    assert "_shap" in matcher.rankers_["need"].__dict__


def test_prepare_explanations_builds_both_rankers_tables_up_front(fitted):
    matcher, x = fitted
    matcher = fresh(matcher)
    assert matcher.prepare_explanations() is matcher
    assert all("_shap" in r.__dict__ for r in matcher.rankers_.values())
    tables = matcher.rankers_["need"].shap_tables()
    matcher.contributions(x, "need")
    assert matcher.rankers_["need"].shap_tables() is tables  # used, not built again


def test_an_infinite_threshold_reads_values_above_1e300_as_lightgbm():
    """``dump_model`` writes an infinite threshold as 1e300: the tables read the model's
    text, so a value above 1e300 takes LightGBM's path."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2))
    nan = rng.random(400) < 0.5
    x[nan, 0] = np.nan
    booster = train(x, nan + 0.1 * x[:, 1], rounds=3)
    assert "threshold=inf" in booster.model_to_string()
    test = np.array([[1.5e300, 0.0], [np.nextafter(1e300, np.inf), 1.0], [np.inf, 0.0],
                     [np.nan, 0.0], [-1.5e300, 0.0]])
    assert_matches_lightgbm(booster, test)


def test_rows_explained_together_equal_rows_explained_alone():
    """Rows walk the trees in blocks: each row's values are those it gets alone, bit for
    bit, whatever block (or partial block) it falls in."""
    x, y = random_data(seed=30)
    booster = train(x, y)
    tables = tree_shap.shap_tables(booster)
    test = with_missing(random_data(37, seed=31)[0], np.random.default_rng(32), 0.1)
    together = tree_shap.contributions(tables, test)
    for i in range(len(test)):
        assert np.array_equal(tree_shap.contributions(tables, test[i:i + 1])[0], together[i])
