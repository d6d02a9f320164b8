"""Contract of iei_match.tree_predict: for every booster it supports, ``predict`` equals
LightGBM's own ``predict(x, raw_score=True)`` exactly (not up to rounding), on NaN, zeros,
values LightGBM reads as zero, rows on the split thresholds, one row and many; ``forest``
returns None for the models it does not handle; and the rankers and the fit model use it for
small batches with the same scores as LightGBM's, keep LightGBM otherwise, and do not pickle
the trees.
"""

from __future__ import annotations

import pickle
import subprocess
import sys

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
from iei_match import fit as fit_module
from iei_match import rankers
from iei_match.candidates import candidate_pairs
from iei_match.features import build_features
from iei_match.matcher import Matcher
from iei_match.sides import Side
from iei_match.tree_predict import forest, predict
from synthetic import make_catalog


def assert_equals_lightgbm(booster, x):
    trees = forest(booster)
    assert trees is not None
    got = predict(trees, x)
    assert got.dtype == np.float64 and got.shape == (len(x),)
    np.testing.assert_array_equal(got, booster.predict(x, raw_score=True, num_threads=1))





def on_thresholds(booster, n_features, rows, rng) -> np.ndarray:
    """Rows whose every value is some split's threshold on that feature (or just above)."""
    on = {f: [s["threshold"] for s in splits(booster) if s["split_feature"] == f] or [0.0]
          for f in range(n_features)}
    x = np.column_stack([rng.choice(on[f], size=rows) for f in range(n_features)])
    above = rng.random(x.shape) < 0.2
    x[above] = np.nextafter(x[above], np.inf)
    return x


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_regression_equals_lightgbm(dtype):
    x, y = random_data()
    assert_equals_lightgbm(train(x, y), random_data(500, seed=1)[0].astype(dtype))


@pytest.mark.parametrize("dtype", [np.int64, np.float16, np.int8])
def test_other_dtypes_are_read_as_lightgbm_reads_them(dtype):
    x, y = random_data()
    booster = train(x, y)
    test = (random_data(300, seed=2)[0] * 3).astype(dtype)
    assert_equals_lightgbm(booster, test)


def test_lambdarank_and_binary_equal_lightgbm():
    x, y = random_data(seed=2)
    grade = np.digitize(y, np.quantile(y, [0.5, 0.8, 0.95]))
    ranker = train(x, grade, group=[20] * (len(x) // 20), objective="lambdarank")
    classifier = train(x, grade > 1, objective="binary")
    test = random_data(300, seed=3)[0]
    assert_equals_lightgbm(ranker, test)
    assert_equals_lightgbm(classifier, test)
    assert forest(ranker).identity_output and not forest(classifier).identity_output


def test_rows_on_the_split_thresholds_equal_lightgbm():
    x, y = random_data(seed=24)
    booster = train(x, y)
    test = on_thresholds(booster, x.shape[1], 2000, np.random.default_rng(24))
    assert_equals_lightgbm(booster, test)
    # the thresholds are not all round numbers: their last digits matter
    assert any(len(repr(s["threshold"])) > 15 for s in splits(booster))


def test_one_row_and_many_rows_equal_lightgbm():
    x, y = random_data(seed=25)
    booster = train(x, y)
    test = with_missing(random_data(20000, seed=26)[0], np.random.default_rng(26), 0.05)
    assert_equals_lightgbm(booster, test)
    for i in range(0, 20000, 997):
        assert_equals_lightgbm(booster, test[i:i + 1])


def test_nan_splits_both_default_directions_equal_lightgbm():
    rng = np.random.default_rng(4)
    booster = nan_both_ways_booster(rng)
    kinds = {(s["missing_type"], s["default_left"]) for s in splits(booster)}
    assert {("NaN", True), ("NaN", False)} <= kinds
    test = with_missing(random_data(1000, seed=5)[0], rng, 0.2)
    test = with_missing(test, rng, 0.1, 0.0)
    test = np.vstack([test, with_missing(on_thresholds(booster, 6, 500, rng), rng, 0.2)])
    assert_equals_lightgbm(booster, test)


def test_zero_as_missing_equals_lightgbm():
    rng = np.random.default_rng(6)
    booster = zero_as_missing_booster(rng)
    assert "Zero" in {s["missing_type"] for s in splits(booster)}
    test = with_missing(random_data(500, seed=7)[0], rng, 0.2, 0.0)
    test = with_missing(test, rng, 0.1)
    test[:5, :] = 0.0
    test[5:10, :] = np.nan
    test[10:15, :] = 1e-36
    test[15:20, :] = -1e-36
    test[20:25, :] = -0.0
    assert_equals_lightgbm(booster, test)


@pytest.mark.parametrize(("zero_as_missing", "value"), [
    (False, -LIGHTGBM_ZERO), (False, LIGHTGBM_ZERO), (True, -LIGHTGBM_ZERO),
    (True, np.nextafter(LIGHTGBM_ZERO, 1.0)), (False, np.nextafter(-LIGHTGBM_ZERO, -1.0))])
def test_values_lightgbm_reads_as_zero_equal_lightgbm(zero_as_missing, value):
    booster = zero_threshold_booster(zero_as_missing)
    assert -LIGHTGBM_ZERO in {s["threshold"] for s in splits(booster)}
    assert_equals_lightgbm(booster, np.array([[value, 0.3], [0.0, 0.3], [np.nan, 0.3]]))


def test_nan_on_features_trained_without_missing_counts_as_zero():
    x, y = random_data(seed=8)
    booster = train(x, y)
    assert {s["missing_type"] for s in splits(booster)} == {"None"}
    test = with_missing(random_data(500, seed=9)[0], np.random.default_rng(9), 0.3)
    assert_equals_lightgbm(booster, test)
    zeros = np.where(np.isnan(test), 0.0, test)
    np.testing.assert_array_equal(predict(forest(booster), test),
                                  predict(forest(booster), zeros))


def test_infinities_equal_lightgbm():
    x, y = random_data(seed=28)
    booster = train(x, y)
    test = random_data(200, seed=29)[0]
    rng = np.random.default_rng(29)
    test = with_missing(with_missing(test, rng, 0.1, np.inf), rng, 0.1, -np.inf)
    assert_equals_lightgbm(booster, test)


def test_one_leaf_trees_and_best_iteration_equal_lightgbm():
    rng = np.random.default_rng(12)
    constant, mixed, test = one_leaf_boosters(rng)
    assert_equals_lightgbm(constant, test)
    assert_equals_lightgbm(mixed, test)
    params = {**BASE, "objective": "regression", "num_leaves": 7, "min_data_in_leaf": 5}

    x, y = random_data(seed=13)
    y = y + 2 * rng.normal(size=len(y))
    train_set = lgb.Dataset(x, y)
    booster = lgb.train({**params, "num_leaves": 31, "learning_rate": 0.3}, train_set,
                        num_boost_round=60,
                        valid_sets=[lgb.Dataset(*random_data(500, seed=14),
                                                reference=train_set)],
                        callbacks=[lgb.early_stopping(5, verbose=False)],
                        keep_training_booster=True)
    assert 0 < booster.best_iteration < booster.num_trees()
    test = random_data(300, seed=15)[0]
    got = predict(forest(booster), test)
    np.testing.assert_array_equal(got, booster.predict(test, raw_score=True))
    assert not np.array_equal(got, booster.predict(test, raw_score=True, num_iteration=-1))


def categorical_booster() -> lgb.Booster:
    rng = np.random.default_rng(16)
    x = rng.normal(size=(2000, 3))
    x[:, 0] = rng.integers(0, 10, size=len(x))
    y = np.array([3, -1, 4, -1, 5, -9, 2, 6, -5, 3])[x[:, 0].astype(int)] + x[:, 1]
    booster = lgb.train({**BASE, "objective": "regression", "min_data_per_group": 5,
                         "cat_smooth": 1},
                        lgb.Dataset(x, y, categorical_feature=[0]), num_boost_round=10)
    assert "==" in {s["decision_type"] for s in splits(booster)}
    return booster


def test_unsupported_models_give_none():
    x, y = random_data(600, seed=17)
    multiclass = train(x, np.digitize(y, [-0.5, 0.5]), rounds=5, objective="multiclass",
                       num_class=3)
    linear = train(x, y, rounds=5, linear_tree=True)
    averaged = train(x, y, rounds=5, boosting="rf", bagging_freq=1, bagging_fraction=0.5)
    for booster in (categorical_booster(), multiclass, linear, averaged):
        assert forest(booster) is None


@pytest.mark.parametrize("shape", [(10, 5), (10, 7), (6,), (2, 3, 6)])
def test_wrong_feature_count_is_value_error(shape):
    x, y = random_data(500, seed=21)
    with pytest.raises(ValueError, match="expected 6 features"):
        predict(forest(train(x, y, rounds=3)), np.zeros(shape))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_rows=st.integers(30, 400),
       n_features=st.integers(1, 8), num_leaves=st.integers(2, 40),
       nan_share=st.sampled_from([0.0, 0.1, 0.5]), zero_share=st.sampled_from([0.0, 0.3]),
       zero_as_missing=st.booleans(), objective=st.sampled_from(["regression", "binary"]))
def test_random_models_equal_lightgbm(seed, n_rows, n_features, num_leaves, nan_share,
                                      zero_share, zero_as_missing, objective):
    rng = np.random.default_rng(seed)
    x = with_missing(with_missing(rng.normal(size=(n_rows, n_features)), rng, zero_share,
                                  0.0), rng, nan_share)
    y = np.nan_to_num(x @ rng.normal(size=n_features)) + rng.normal(size=n_rows)
    booster = train(x, y if objective == "regression" else y > 0,
                    rounds=int(rng.integers(1, 15)), num_leaves=num_leaves,
                    min_data_in_leaf=int(rng.integers(1, 10)), zero_as_missing=zero_as_missing,
                    min_data_in_bin=1, objective=objective)
    test = with_missing(with_missing(rng.normal(size=(50, n_features)), rng, 0.2, 0.0),
                        rng, 0.2)
    test = np.vstack([test, with_missing(on_thresholds(booster, n_features, 50, rng), rng,
                                         0.1)])
    assert_equals_lightgbm(booster, test)


def test_warm_up_compiles_the_predictor_for_float32_rows():
    code = """
import numpy as np, lightgbm as lgb
from iei_match import tree_predict
x = np.random.default_rng(0).normal(size=(200, 3))
b = lgb.train({"verbose": -1, "num_threads": 1}, lgb.Dataset(x, x[:, 0]), num_boost_round=3)
assert not tree_predict._predict_rows.signatures
tree_predict.warm_up(None)
tree_predict.warm_up(tree_predict.forest(b))
print([str(s[0]) for s in tree_predict._predict_rows.signatures])
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "float32" in done.stdout


# --- the project's models ------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted():
    """A matcher trained on the synthetic catalog, and its feature rows for the needs'
    candidates (as the matcher ranks them), with NaN and zeros as the features have them."""
    needs, programs, links, _ = make_catalog("en", seed=0)
    matcher = Matcher(n_folds=3, n_estimators=40, random_state=0, n_jobs=1).fit(
        needs, programs, links)
    assert matcher.mode_ == "learned" and matcher.calibrated_
    need_side = Side.build(needs, "need_id", matcher.word_, matcher.char_)
    prog_side = Side.build(programs, "program_id", matcher.word_, matcher.char_)
    nbrs = matcher.memory_.neighbours(need_side)
    n_rows, p_rows = candidate_pairs(matcher.memory_, need_side, prog_side, nbrs, 50, "need")
    x, names = build_features(matcher.memory_, need_side, prog_side, nbrs, n_rows, p_rows,
                              n_rows)
    x = pd.DataFrame(x, columns=names).reindex(columns=matcher.feature_names_)
    return matcher, x.to_numpy(np.float32), needs, programs


def fresh(matcher: Matcher) -> Matcher:
    return pickle.loads(pickle.dumps(matcher))


def boosters(matcher: Matcher) -> dict[str, tuple[lgb.Booster, np.ndarray]]:
    """Each booster of the matcher, with the columns it reads."""
    absolute = matcher._absolute_columns()
    return {"need": (matcher.rankers_["need"].booster_, slice(None)),
            "program": (matcher.rankers_["program"].booster_, slice(None)),
            "fit": (matcher.fit_model_.booster_, absolute)}


@pytest.mark.parametrize("model", ["need", "program", "fit"])
def test_project_models_equal_lightgbm(fitted, model):
    matcher, x, _, _ = fitted
    booster, columns = boosters(matcher)[model]
    rows = np.ascontiguousarray(x[:, columns])
    assert len(rows) > 1000 and np.isnan(rows).any() and (rows == 0).any()
    rng = np.random.default_rng(30)
    edge = with_missing(with_missing(rows[:1000], rng, 0.1), rng, 0.1, 0.0)
    on = on_thresholds(booster, rows.shape[1], 1000, rng).astype(np.float32)
    for test in (rows, rows[:1], rows[-1:], edge, on):
        assert_equals_lightgbm(booster, test)


@pytest.mark.parametrize("direction", ["need", "program"])
def test_ranker_scores_small_batches_with_the_compiled_trees(fitted, direction):
    matcher, x, _, _ = fitted
    ranker = fresh(matcher).rankers_[direction]
    assert "_forest" not in ranker.__dict__
    lightgbm = np.asarray(ranker.booster_.predict(x[:150], num_threads=1))
    np.testing.assert_array_equal(ranker.score(x[:150]), lightgbm)
    assert ranker.forest() is not None and "_forest" in ranker.__dict__
    np.testing.assert_array_equal(ranker.score(x[:1]), lightgbm[:1])


def test_ranker_keeps_lightgbm_for_large_batches(fitted, monkeypatch):
    matcher, x, _, _ = fitted
    monkeypatch.setattr(rankers, "COMPILED_BELOW", 100)
    ranker = fresh(matcher).rankers_["need"]
    np.testing.assert_array_equal(ranker.score(x[:200]), ranker.booster_.predict(x[:200]))
    assert "_forest" not in ranker.__dict__
    ranker.score(x[:99])
    assert "_forest" in ranker.__dict__


def test_ranker_falls_back_to_lightgbm_for_models_the_trees_do_not_handle(fitted):
    matcher, x, _, _ = fitted
    ranker = fresh(matcher).rankers_["need"]
    ranker.booster_ = categorical_booster()
    rows = np.random.default_rng(31).normal(size=(20, 3))
    np.testing.assert_array_equal(ranker.score(rows), ranker.booster_.predict(rows))
    assert ranker.forest() is None
    # a model whose prediction is not its raw score (here a probability)
    ranker.booster_ = train(*random_data(seed=32), objective="binary")
    rows = random_data(20, seed=33)[0]
    np.testing.assert_array_equal(ranker.score(rows), ranker.booster_.predict(rows))
    assert ranker.forest() is not None and not ranker.forest().identity_output
    with pytest.raises(lgb.basic.LightGBMError, match="number of features"):
        ranker.score(rows[:, :5])


def test_fit_model_predicts_small_batches_with_the_compiled_trees(fitted, monkeypatch):
    matcher, x, _, _ = fitted
    fit_model = fresh(matcher).fit_model_
    rows = x[:10, matcher._absolute_columns()]
    compiled = fit_model.predict(rows)
    assert fit_model.forest() is not None and "_forest" in fit_model.__dict__
    monkeypatch.setattr(fit_module, "COMPILED_BELOW", 0)
    lightgbm = fresh(matcher).fit_model_
    np.testing.assert_array_equal(compiled, lightgbm.predict(rows))
    assert "_forest" not in lightgbm.__dict__


def test_ranker_rebuilds_the_trees_for_a_new_booster(fitted):
    matcher, x, _, _ = fitted
    ranker = fresh(matcher).rankers_["need"]
    ranker.score(x[:10])
    ranker.booster_ = matcher.rankers_["program"].booster_
    np.testing.assert_array_equal(ranker.score(x[:10]), ranker.booster_.predict(x[:10]))


def test_pickling_drops_the_trees_and_keeps_the_scores(fitted):
    matcher, x, _, _ = fitted
    matcher = fresh(matcher).prepare_explanations()
    assert "_forest" in matcher.rankers_["need"].__dict__
    assert "_forest" in matcher.fit_model_.__dict__
    before = matcher.rankers_["need"].score(x[:50])
    again = pickle.loads(pickle.dumps(matcher))
    assert "_forest" in matcher.rankers_["need"].__dict__  # the original keeps its trees
    assert "_forest" not in again.rankers_["need"].__dict__
    assert "_forest" not in again.fit_model_.__dict__
    np.testing.assert_array_equal(again.rankers_["need"].score(x[:50]), before)


def test_rankings_are_the_same_with_lightgbm(fitted, monkeypatch):
    matcher, _, needs, programs = fitted
    fast = fresh(matcher)
    compiled = fast.rank(needs.head(30), programs, k=10, min_fit=0.0)
    assert fast.rankers_["need"].__dict__["_forest"][-1] is not None
    assert fast.fit_model_.__dict__["_forest"][-1] is not None
    monkeypatch.setattr(rankers, "COMPILED_BELOW", 0)
    monkeypatch.setattr(fit_module, "COMPILED_BELOW", 0)
    lightgbm = fresh(matcher).rank(needs.head(30), programs, k=10, min_fit=0.0)
    pd.testing.assert_frame_equal(compiled, lightgbm)


def test_an_infinite_threshold_reads_values_above_1e300_as_lightgbm():
    """A split sending every number left and NaN right has the threshold inf, which
    ``dump_model`` writes as 1e300: the thresholds come from the model's text."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2))
    nan = rng.random(400) < 0.5
    x[nan, 0] = np.nan
    booster = train(x, nan + 0.1 * x[:, 1], rounds=3)
    assert "threshold=inf" in booster.model_to_string()
    test = np.array([[1.5e300, 0.0], [1e300, 0.0], [np.nextafter(1e300, np.inf), 1.0],
                     [np.inf, 0.0], [np.nan, 0.0], [-1.5e300, 0.0]])
    assert_equals_lightgbm(booster, test)
