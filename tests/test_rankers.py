"""The contract every ranker keeps, and the fit's independence of the candidate list.

Each ranker implementation (:class:`LambdaRanker`, :class:`ContentRanker`) runs the same
suite (as implicit's recommenders share one test mixin): it is a :class:`Ranker`, scoring
one row equals scoring it in a batch, fitting twice gives the same scores, contributions
add up to the score, and a save/load round trip changes nothing. At the matcher's level,
in both modes (learned, content-only): a pair's fit is the same in the full catalog, in a
small alliance and alone, and the rows the ranker scores when serving are the rows the
training code path builds for the same pairs.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from iei_match.candidates import candidate_pairs
from iei_match.errors import InputError
from iei_match.features import build_features, is_relative
from iei_match.matcher import Matcher, _expanded
from iei_match.rankers import ContentRanker, LambdaRanker, Ranker, ranker_from_state
from iei_match.sides import Side
from synthetic import make_catalog

PARAMS = {"n_folds": 3, "n_estimators": 40, "random_state": 0, "n_jobs": 1}


@pytest.fixture(scope="module")
def data():
    """Training lists of a checkerboard catalog (as the matcher builds them) and a fitted
    matcher in each mode."""
    needs, programs, links, _ = make_catalog("zh", seed=0)
    new, _, _, _ = make_catalog("zh", seed=1, needs_per_category=3, need_prefix="new")
    learned = Matcher(**PARAMS).fit(needs, programs, links)
    with pytest.warns(UserWarning, match="content similarity only"):
        content = Matcher(**PARAMS).fit(needs, programs, None)
    tables, _ = learned._out_of_fold_tables(learned.memory_.needs, learned.memory_.programs,
                                            learned.memory_.links, progress=False)
    x, y, groups = tables["need"]
    return {"x": x, "y": y, "groups": groups, "names": learned.feature_names_,
            "matchers": {"learned": learned, "content-only": content},
            "new": new, "programs": programs}


RANKERS = {
    "lambdarank": lambda: LambdaRanker(n_estimators=30, random_state=0, n_jobs=1),
    "content": lambda: ContentRanker(),
}


@pytest.fixture(params=list(RANKERS))
def fitted(request, data):
    ranker = RANKERS[request.param]().fit(data["x"], data["y"], data["groups"],
                                          data["names"])
    return request.param, ranker


class TestRankerContract:
    def test_is_a_ranker(self, fitted):
        _, ranker = fitted
        assert isinstance(ranker, Ranker)
        assert ranker.kind in ("learned", "content-only")

    def test_single_row_equals_batch(self, fitted, data):
        _, ranker = fitted
        x = data["x"][:40]
        batch = ranker.score(x)
        single = np.array([ranker.score(x[i:i + 1])[0] for i in range(len(x))])
        np.testing.assert_array_equal(single, batch)

    def test_fitting_twice_gives_the_same_scores(self, fitted, data):
        name, ranker = fitted
        again = RANKERS[name]().fit(data["x"], data["y"], data["groups"], data["names"])
        np.testing.assert_array_equal(again.score(data["x"]), ranker.score(data["x"]))

    def test_contributions_add_up_to_the_score(self, fitted, data):
        _, ranker = fitted
        x = data["x"][:200]
        contrib = ranker.contributions(x)
        assert contrib.shape == x.shape
        np.testing.assert_allclose(contrib.sum(axis=1) + ranker.expected_value_,
                                   ranker.score(x), rtol=1e-6, atol=1e-6)

    def test_save_and_load_change_nothing(self, fitted, data):
        _, ranker = fitted
        state, texts = ranker.get_state()
        state = json.loads(json.dumps(state))  # what a model file holds: plain JSON
        back = ranker_from_state(state, texts)
        assert type(back) is type(ranker)
        np.testing.assert_array_equal(back.score(data["x"]), ranker.score(data["x"]))
        np.testing.assert_array_equal(back.contributions(data["x"][:50]),
                                      ranker.contributions(data["x"][:50]))

    def test_scores_do_not_depend_on_the_other_rows(self, fitted, data):
        _, ranker = fitted
        x = data["x"]
        full = ranker.score(x)
        part = np.random.default_rng(0).permutation(len(x))[:50]
        np.testing.assert_array_equal(ranker.score(x[part]), full[part])


MODES = ["learned", "content-only"]


@pytest.mark.parametrize("mode", MODES)
def test_fit_is_the_same_in_the_catalog_an_alliance_and_alone(data, mode):
    matcher, new, programs = data["matchers"][mode], data["new"], data["programs"]
    full = matcher.rank(new, programs, k=len(programs), explain=False)
    assert full["fit"].between(0, 1).all()
    rng = np.random.default_rng(1)
    for need_id in new["need_id"].iloc[::4]:
        need = new[new["need_id"] == need_id]
        mine = full[full["need_id"] == need_id].set_index("program_id")
        alliance = programs.iloc[rng.choice(len(programs), 8, replace=False)]
        small = matcher.rank(need, alliance, k=8, explain=False).set_index("program_id")
        for pid, row in small.iterrows():
            assert row["fit"] == pytest.approx(mine.loc[pid, "fit"], abs=1e-9)
            assert row["fit_level"] == mine.loc[pid, "fit_level"]
        top = mine.index[0]
        alone = matcher.rank(need, programs[programs["program_id"] == top], k=1,
                             explain=False)
        assert alone["fit"].iloc[0] == pytest.approx(mine.loc[top, "fit"], abs=1e-9)
        catalog = matcher.prepare(programs, "program")
        keep = programs["program_id"].isin(alliance["program_id"]).to_numpy()
        via = matcher.rank(need, catalog.restrict(keep), k=8, explain=False)
        via = via.set_index("program_id").loc[small.index]
        np.testing.assert_allclose(via["fit"], small["fit"], atol=1e-9)
        np.testing.assert_allclose(via["score"], small["score"], atol=1e-9)


@pytest.mark.parametrize("mode", MODES)
def test_fit_is_the_same_in_both_directions(data, mode):
    matcher, new, programs = data["matchers"][mode], data["new"], data["programs"]
    run = matcher.rank(new, programs, k=5, explain=False).set_index(["need_id", "program_id"])
    back = matcher.partners(programs, new, k=len(new), explain=False).set_index(
        ["need_id", "program_id"])
    shared = run.index.intersection(back.index)
    assert len(shared) > 10
    np.testing.assert_allclose(run.loc[shared, "fit"], back.loc[shared, "fit"], atol=1e-9)


@pytest.mark.parametrize("mode", MODES)
def test_serving_scores_the_rows_the_training_path_builds(data, mode, monkeypatch):
    """Training builds its rows with build_features on Sides made from the frames; a
    request goes through a prepared catalog, a restriction and the ranker. Same pairs, same
    rows, to the bit."""
    matcher, new, programs = data["matchers"][mode], data["new"], data["programs"]
    seen = []
    ranker_cls = type(matcher.rankers_["need"])
    original = ranker_cls.score
    monkeypatch.setattr(ranker_cls, "score", lambda self, x: seen.append(x.copy()) or
                        original(self, x))
    catalog = matcher.prepare(programs, "program")
    matcher.rank(new, catalog.restrict(np.ones(len(programs), bool)), k=5, explain=False)
    served = seen[-1]
    memory = matcher.memory_
    needs = Side.build(_expanded(new), "need_id", matcher.word_, matcher.char_)  # as fit does
    progs = Side.build(programs, "program_id", matcher.word_, matcher.char_)
    nbrs = memory.neighbours(needs)
    n_rows, p_rows = candidate_pairs(memory, needs, progs, nbrs, matcher.n_candidates, "need")
    built, names = build_features(memory, needs, progs, nbrs, n_rows, p_rows, n_rows)
    assert names == matcher.feature_names_
    np.testing.assert_array_equal(served, built)


def test_fit_uses_no_feature_relative_to_the_list(data):
    matcher = data["matchers"]["learned"]
    names = matcher.fit_model_.feature_names_
    assert names and not any(is_relative(n) for n in names)
    assert any(is_relative(n) for n in matcher.feature_names_)  # the ranker does use them


def test_min_fit_leaves_out_the_pairs_below_it(data):
    matcher, new, programs = data["matchers"]["learned"], data["new"], data["programs"]
    everything = matcher.rank(new, programs, k=10, explain=False)
    cut = float(everything["fit"][everything["fit"] > 0].min())
    kept = matcher.rank(new, programs, k=10, explain=False, min_fit=cut)
    assert (kept["fit"] >= cut).all() and len(kept) < len(everything)
    for _, group in kept.groupby("need_id"):
        assert group["rank"].tolist() == list(range(1, len(group) + 1))
    with pytest.raises(InputError, match="min_fit"):
        matcher.rank(new, programs, min_fit=1.5)


@pytest.mark.parametrize("param, value", [("knn", 0), ("title_weight", "x"),
                                          ("n_candidates", -5), ("max_df", 0),
                                          ("dense", "sometimes"), ("validation_fraction", 1.0),
                                          ("n_folds", 2.5), ("learning_rate", True)])
def test_a_bad_parameter_is_an_input_error_naming_it(data, param, value):
    needs, programs = data["new"], data["programs"]
    with pytest.raises(InputError, match=f"parameter {param} of Matcher"):
        Matcher(**{param: value}).fit(needs, programs, None)


def test_headcounts_and_regions_known_only_for_some_needs_move_nothing():
    # As in the service: the catalog's needs carry no headcount or region, the database's
    # do and mostly have no recorded outcome. A model must not learn "a need with a
    # headcount is seldom a link" and carry it into every request.
    needs, programs, links, _ = make_catalog("zh", seed=0)
    stored, _, _, _ = make_catalog("zh", seed=2, needs_per_category=2, need_prefix="db")
    local = pd.concat([needs.assign(headcount=np.nan, province=""),
                       stored.assign(headcount=12, province="广东省")], ignore_index=True)
    programs = programs.assign(graduates_per_year=40, province="广东省")
    matcher = Matcher(**PARAMS).fit(local, programs, links)
    new, _, _, _ = make_catalog("zh", seed=1, needs_per_category=3, need_prefix="new")
    plain = matcher.rank(new, programs, k=10, explain=False)
    stated = matcher.rank(new.assign(headcount=30, province="广东省", city="佛山市"), programs,
                          k=10, explain=False)
    np.testing.assert_allclose(stated["fit"], plain["fit"], atol=1e-12)
    np.testing.assert_allclose(stated["score"], plain["score"], atol=1e-12)
    assert not any(n in matcher.feature_names_ for n in
                   ("need_headcount", "program_capacity", "same_province", "same_city"))
