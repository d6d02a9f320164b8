"""Tests for iei_match.matcher.Matcher on a synthetic catalog with a known answer."""

from __future__ import annotations

import functools
import re
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from iei_match.candidates import candidate_pairs
from iei_match.errors import InputError, NotFittedError
from iei_match.features import build_features, pair_feature_columns
from iei_match.fit import FitModel
from iei_match.matcher import Match, Matcher
from iei_match.sides import Side
from iei_match.text import tokenize
from synthetic import make_catalog

# n_jobs=1: LightGBM's OpenMP threads busy-wait, which is very slow on a loaded machine.
PARAMS = {"n_folds": 3, "n_estimators": 50, "random_state": 0, "n_jobs": 1}


def fit_matcher(lang, **overrides):
    needs, programs, links, category = make_catalog(lang, seed=0)
    matcher = Matcher(**{**PARAMS, **overrides}).fit(needs, programs, links)
    return matcher, needs, programs, links, category


@functools.cache
def build_world(lang):
    """A matcher fitted on one language's checkerboard, and new needs it has never seen."""
    matcher, needs, programs, links, category = fit_matcher(lang)
    new_needs, _, _, new_category = make_catalog(lang, seed=1, needs_per_category=5,
                                                 need_prefix="new")
    # programs keep the training catalog's categories; new needs add theirs
    return {"lang": lang, "matcher": matcher, "needs": needs, "programs": programs,
            "links": links, "category": {**new_category, **category}, "new": new_needs}


@pytest.fixture(scope="module", params=["zh", "en"])
def world(request):
    return build_world(request.param)


@pytest.fixture(scope="module")
def zh_world():
    return build_world("zh")


def same_category(run: pd.DataFrame, category: dict) -> np.ndarray:
    return (run["need_id"].map(category) == run["program_id"].map(category)).to_numpy()


# --- a. known answers ------------------------------------------------------------------


def test_checkerboard_rank_puts_the_right_category_on_top(world):
    matcher, new, programs = world["matcher"], world["new"], world["programs"]
    assert matcher.mode_ == "learned"
    run = matcher.rank(new, programs, k=3)
    assert set(run["need_id"]) == set(new["need_id"])
    assert (run.groupby("need_id").size() == 3).all()
    wrong = run[~same_category(run, world["category"])]
    assert wrong.empty, f"{world['lang']}: programs of another category in the top 3:\n{wrong}"


def test_checkerboard_partners_puts_the_right_category_on_top(world):
    matcher, new, programs = world["matcher"], world["new"], world["programs"]
    run = matcher.partners(programs, new, k=3)
    assert list(run.columns[:4]) == ["program_id", "need_id", "rank", "score"]
    assert set(run["program_id"]) == set(programs["program_id"])
    assert (run.groupby("program_id").size() == 3).all()
    wrong = run[~same_category(run, world["category"])]
    assert wrong.empty, f"{world['lang']}: needs of another category in the top 3:\n{wrong}"


def test_checkerboard_known_needs_rank_their_linked_programs_high(world):
    matcher, needs, programs, links = (world["matcher"], world["needs"], world["programs"],
                                       world["links"])
    run = matcher.rank(needs, programs, k=4, explain=False)
    assert same_category(run, world["category"]).all()
    # Within the category, links are random: the memory of past links is what puts a known
    # need's own linked programs first.
    # A linked program comes first for most needs (by chance: half of them).
    top1 = run[run["rank"] == 1].merge(links, on=["need_id", "program_id"])
    assert top1["need_id"].nunique() >= 0.75 * len(needs)


# --- b. content-only mode --------------------------------------------------------------


@pytest.mark.parametrize("links", ["none", "empty"])
def test_content_only_mode(links):
    needs, programs, _, category = make_catalog("zh", seed=0)
    new, _, _, new_category = make_catalog("zh", seed=1, needs_per_category=5,
                                           need_prefix="new")
    given = None if links == "none" else pd.DataFrame(columns=["need_id", "program_id", "grade"])
    with pytest.warns(UserWarning, match="content"):
        matcher = Matcher(**PARAMS).fit(needs, programs, given)
    assert matcher.mode_ == "content-only"
    assert matcher.boosters_ == {}
    category = {**new_category, **category}  # programs: the training catalog's
    run = matcher.rank(new, programs, k=3)
    assert list(run.columns[:4]) == ["need_id", "program_id", "rank", "score"]
    assert same_category(run[run["rank"] == 1], category).all()
    assert same_category(run, category).mean() >= 0.9
    back = matcher.partners(programs, new, k=3)
    assert same_category(back[back["rank"] == 1], category).all()
    # contributions of the content ranker: its three weighted similarities
    first = back.loc[0, "top_factors"].split("; ")
    assert {f.rpartition(":")[0] for f in first} == {"word_full", "char_full", "word_title"}
    assert back["fit"].between(0, 1).all()


def test_links_with_only_negative_grades_is_content_only():
    needs, programs, links, _ = make_catalog("zh", seed=0)
    with pytest.warns(UserWarning):
        matcher = Matcher(**PARAMS).fit(needs, programs, links.assign(grade=0))
    assert matcher.mode_ == "content-only"


# --- c. one query at a time equals the batch -------------------------------------------


def assert_same_rows(single: pd.DataFrame, batch: pd.DataFrame, query_col: str, other: str):
    assert len(single) > 0
    query = single[query_col].iloc[0]
    expected = batch[batch[query_col] == query].reset_index(drop=True)
    assert single[other].tolist() == expected[other].tolist()
    assert single["rank"].tolist() == expected["rank"].tolist()
    np.testing.assert_allclose(single["score"], expected["score"], rtol=0, atol=1e-9)




def test_single_need_equals_batch(zh_world):
    matcher, new, programs = zh_world["matcher"], zh_world["new"], zh_world["programs"]
    batch = matcher.rank(new, programs, k=5, explain=False)
    for i in range(0, len(new), 4):
        single = matcher.rank(new.iloc[[i]], programs, k=5, explain=False)
        assert_same_rows(single, batch, "need_id", "program_id")


def test_a_lists_fit_floor_gives_the_lists_of_the_fit_of_every_row(zh_world):
    """One need's ranking with ``min_fit`` computes the fit of its best rows only, until
    ``k`` reach the floor; a batch computes every row's. The lists are the same, and they
    are the full ranking's rows above the floor, in order."""
    matcher, new, programs = zh_world["matcher"], zh_world["new"], zh_world["programs"]
    everything = matcher.rank(new, programs, k=len(programs), explain=False)
    values = np.unique(everything["fit"])
    assert len(values) > 8
    for at in np.linspace(0, len(values) - 2, 5).astype(int):
        floor = float(values[at] + values[at + 1]) / 2  # no pair sits on the floor
        batch = matcher.rank(new, programs, k=4, explain=False, min_fit=floor)
        assert len(batch) > 0
        for i in range(0, len(new), 3):
            single = matcher.rank(new.iloc[[i]], programs, k=4, explain=False, min_fit=floor)
            above = everything[(everything["need_id"] == new["need_id"].iloc[i])
                               & (everything["fit"] >= floor)].head(4)
            assert single["program_id"].tolist() == above["program_id"].tolist()
            assert single["fit"].tolist() == above["fit"].tolist()
            if len(single):
                assert_same_rows(single, batch, "need_id", "program_id")


def test_single_program_equals_batch(zh_world):
    matcher, new, programs = zh_world["matcher"], zh_world["new"], zh_world["programs"]
    batch = matcher.partners(programs, new, k=5, explain=False)
    for j in range(0, len(programs), 4):
        single = matcher.partners(programs.iloc[[j]], new, k=5, explain=False)
        assert_same_rows(single, batch, "program_id", "need_id")


def features_of(matcher, needs, programs, direction):
    """The pair features the matcher computes for a batch, keyed by (need_id, program_id)."""
    need_side = Side.build(needs.reset_index(drop=True), "need_id", matcher.word_,
                           matcher.char_)
    prog_side = Side.build(programs.reset_index(drop=True), "program_id", matcher.word_,
                           matcher.char_)
    nbrs = matcher.memory_.neighbours(need_side)
    n_rows, p_rows = candidate_pairs(matcher.memory_, need_side, prog_side, nbrs,
                                     matcher.n_candidates, direction)
    x = pd.DataFrame(pair_feature_columns(matcher.memory_, need_side, prog_side, nbrs, n_rows,
                                          p_rows))
    x.index = pd.MultiIndex.from_arrays([need_side.ids[n_rows], prog_side.ids[p_rows]])
    return x


@pytest.fixture(scope="module")
def uneven(zh_world):
    """The zh matcher, with new needs and programs whose texts differ a lot in length."""
    new, programs, _, _ = make_catalog("zh", seed=3, needs_per_category=3, need_prefix="new",
                                       long_texts=True)
    return zh_world["matcher"], new, programs


def test_pair_features_of_one_need_do_not_depend_on_the_batch(uneven):
    matcher, new, programs = uneven
    batch = features_of(matcher, new, programs, "need")
    for i in range(len(new)):
        single = features_of(matcher, new.iloc[[i]], programs, "need")
        pd.testing.assert_frame_equal(single, batch.loc[single.index], check_exact=True)


def test_pair_features_of_one_program_do_not_depend_on_the_batch(uneven):
    matcher, new, programs = uneven
    batch = features_of(matcher, new, programs, "program")
    for j in range(len(programs)):
        single = features_of(matcher, new, programs.iloc[[j]], "program")
        pd.testing.assert_frame_equal(single, batch.loc[single.index], check_exact=True)


# --- d. output contract ----------------------------------------------------------------


def check_contract(run: pd.DataFrame, query_col: str, other_col: str, k: int, queries):
    assert list(run.columns[:4]) == [query_col, other_col, "rank", "score"]
    assert set(run[query_col]) == set(queries)
    assert run["rank"].dtype.kind == "i" and run["score"].dtype.kind == "f"
    assert np.isfinite(run["score"]).all()
    assert run["fit"].between(0, 1).all()
    assert set(run["fit_level"]) <= {"high", "medium", "low"}
    assert run.index.equals(pd.RangeIndex(len(run)))
    for _, group in run.groupby(query_col, sort=False):
        n = len(group)
        assert 1 <= n <= k
        assert group["rank"].tolist() == list(range(1, n + 1))
        assert (np.diff(group["score"].to_numpy()) <= 0).all()
        assert not group[other_col].duplicated().any()
    # each query's rows are together, in rank order
    assert (run.groupby(query_col, sort=False).ngroup().diff().fillna(0) >= 0).all()


@pytest.mark.parametrize("k", [1, 5, 100])
def test_rank_output_contract(zh_world, k):
    matcher, new, programs = zh_world["matcher"], zh_world["new"], zh_world["programs"]
    run = matcher.rank(new, programs, k=k)
    assert list(run.columns) == ["need_id", "program_id", "rank", "score", "fit", "fit_level",
                                 "matched_terms", "top_factors"]
    check_contract(run, "need_id", "program_id", k, new["need_id"])
    if k <= 5:  # every need shares words with more than 5 programs
        assert (run.groupby("need_id").size() == k).all()
    plain = matcher.rank(new, programs, k=k, explain=False)
    assert list(plain.columns) == ["need_id", "program_id", "rank", "score", "fit", "fit_level"]
    pd.testing.assert_frame_equal(plain, run[plain.columns])


@pytest.mark.parametrize("k", [1, 5, 100])
def test_partners_output_contract(zh_world, k):
    matcher, new, programs = zh_world["matcher"], zh_world["new"], zh_world["programs"]
    run = matcher.partners(programs, new, k=k)
    assert list(run.columns[:4]) == ["program_id", "need_id", "rank", "score"]
    check_contract(run, "program_id", "need_id", k, programs["program_id"])
    plain = matcher.partners(programs, new, k=k, explain=False)
    assert list(plain.columns) == ["program_id", "need_id", "rank", "score", "fit", "fit_level"]
    pd.testing.assert_frame_equal(plain, run[plain.columns])


def test_rank_accepts_any_index_and_numeric_ids(zh_world):
    matcher, new, programs = zh_world["matcher"], zh_world["new"], zh_world["programs"]
    shifted = new.set_index(pd.Index(range(100, 100 + len(new))))
    pd.testing.assert_frame_equal(matcher.rank(shifted, programs, k=3),
                                  matcher.rank(new, programs, k=3))
    numeric = new.assign(need_id=range(len(new)))
    run = matcher.rank(numeric, programs, k=3)
    assert set(run["need_id"]) == {str(i) for i in range(len(new))}


def test_fits_are_deterministic(zh_world):
    again = Matcher(**PARAMS).fit(zh_world["needs"], zh_world["programs"], zh_world["links"])
    first = zh_world["matcher"]
    assert again.feature_names_ == first.feature_names_
    assert again.best_iterations_ == first.best_iterations_
    for direction in ("need", "program"):
        assert (again.boosters_[direction].model_to_string()
                == first.boosters_[direction].model_to_string())
    new, programs = zh_world["new"], zh_world["programs"]
    pd.testing.assert_frame_equal(again.rank(new, programs, k=5),
                                  first.rank(new, programs, k=5), check_exact=True)
    pd.testing.assert_frame_equal(again.partners(programs, new, k=5),
                                  first.partners(programs, new, k=5), check_exact=True)


# --- e. errors -------------------------------------------------------------------------


def test_rank_before_fit_is_not_fitted_error(zh_world):
    new, programs = zh_world["new"], zh_world["programs"]
    for call in (lambda m: m.rank(new, programs), lambda m: m.partners(programs, new)):
        with pytest.raises(NotFittedError) as info:
            call(Matcher())
        assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("k", [0, -3, 2.5, "5", None])
def test_bad_k_is_input_error(zh_world, k):
    matcher, new, programs = zh_world["matcher"], zh_world["new"], zh_world["programs"]
    with pytest.raises(InputError):
        matcher.rank(new, programs, k=k)
    with pytest.raises(InputError):
        matcher.partners(programs, new, k=k)


@pytest.mark.parametrize("column", ["need_id", "title", "text"])
def test_missing_need_column_is_input_error(zh_world, column):
    matcher, needs, programs, links = (zh_world["matcher"], zh_world["needs"],
                                       zh_world["programs"], zh_world["links"])
    with pytest.raises(InputError, match=column):
        matcher.rank(zh_world["new"].drop(columns=column), programs)
    with pytest.raises(InputError, match=column):
        Matcher(**PARAMS).fit(needs.drop(columns=column), programs, links)


@pytest.mark.parametrize("column", ["program_id", "title", "text"])
def test_missing_program_column_is_input_error(zh_world, column):
    matcher, new = zh_world["matcher"], zh_world["new"]
    with pytest.raises(InputError, match=column):
        matcher.partners(zh_world["programs"].drop(columns=column), new)


def test_other_bad_frames_are_input_errors(zh_world):
    matcher, new, programs = zh_world["matcher"], zh_world["new"], zh_world["programs"]
    with pytest.raises(InputError):
        matcher.rank(new.iloc[:0], programs)
    with pytest.raises(InputError, match="duplicate"):
        matcher.rank(pd.concat([new.iloc[:2], new.iloc[:1]]), programs)
    with pytest.raises(InputError):
        matcher.rank(new.to_dict("list"), programs)


@pytest.mark.parametrize("which", ["need_id", "program_id"])
def test_links_naming_an_unknown_id_are_input_error(zh_world, which):
    needs, programs, links = zh_world["needs"], zh_world["programs"], zh_world["links"]
    bad = links.copy()
    bad.loc[len(bad) // 2, which] = "no-such-id"
    with pytest.raises(InputError, match="no-such-id"):
        Matcher(**PARAMS).fit(needs, programs, bad)


# --- f. explanations -------------------------------------------------------------------


def test_explain_returns_matches_with_shared_terms(zh_world):
    matcher, new, programs = zh_world["matcher"], zh_world["new"], zh_world["programs"]
    run = matcher.rank(new, programs, k=3)
    matches = list(matcher.rank(new, programs, k=3, as_frame=False))
    assert len(matches) == len(run)
    assert all(isinstance(m, Match) for m in matches)
    need_tokens = {r.need_id: set(tokenize(r.title)) | set(tokenize(r.text))
                   for r in new.itertuples()}
    prog_tokens = {r.program_id: set(tokenize(r.title)) | set(tokenize(r.text))
                   for r in programs.itertuples()}
    with_terms = 0
    for m, row in zip(matches, run.itertuples(), strict=True):
        assert (m.need_id, m.program_id, m.rank) == (row.need_id, row.program_id, row.rank)
        assert m.score == pytest.approx(row.score)
        shared = need_tokens[m.need_id] & prog_tokens[m.program_id]
        assert set(m.matched_terms) <= shared, (m, shared)
        assert len(m.matched_terms) == len(set(m.matched_terms)) <= 5
        with_terms += bool(m.matched_terms)
        assert set(m.contributions) <= set(matcher.feature_names_)
        assert 0 < len(m.contributions) <= 3
    assert with_terms >= 0.9 * len(matches)


def test_explain_works_on_partners_output(zh_world):
    matcher, new, programs = zh_world["matcher"], zh_world["new"], zh_world["programs"]
    run = matcher.partners(programs, new, k=2)
    matches = list(matcher.partners(programs, new, k=2, as_frame=False))
    assert [(m.program_id, m.need_id) for m in matches] == list(
        zip(run["program_id"], run["need_id"], strict=True))


def test_contributions_add_up_to_the_score(zh_world):
    # SHAP contributions plus the booster's bias give the raw score.
    matcher, new, programs = zh_world["matcher"], zh_world["new"], zh_world["programs"]
    need_side = Side.build(new, "need_id", matcher.word_, matcher.char_)
    prog_side = Side.build(programs, "program_id", matcher.word_, matcher.char_)
    nbrs = matcher.memory_.neighbours(need_side)
    n_rows, p_rows = candidate_pairs(matcher.memory_, need_side, prog_side, nbrs, 10, "need")
    x, names = build_features(matcher.memory_, need_side, prog_side, nbrs, n_rows, p_rows,
                              n_rows)
    assert names == matcher.feature_names_
    booster = matcher.boosters_["need"]
    full = booster.predict(x, pred_contrib=True)
    contrib = matcher.contributions(x, "need")
    np.testing.assert_allclose(contrib, full[:, :-1])
    np.testing.assert_allclose(full.sum(axis=1), booster.predict(x), rtol=1e-6, atol=1e-9)


def test_fit_does_not_warn_with_links(recwarn):
    needs, programs, links, _ = make_catalog("en", seed=2, needs_per_category=6)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        Matcher(**PARAMS).fit(needs, programs, links)


def test_feature_contributions_go_to_the_top_rows_of_each_list(zh_world):
    matcher, new, programs = zh_world["matcher"], zh_world["new"], zh_world["programs"]
    run = matcher.rank(new, programs, k=5, explain=2)
    assert (run["top_factors"] != "").to_numpy().tolist() == (run["rank"] <= 2).tolist()
    names = set(matcher.feature_names_)
    for factors in run.loc[run["rank"] <= 2, "top_factors"]:
        parts = [p.rpartition(":") for p in factors.split("; ")]
        assert len(parts) == 3 and all(name in names for name, _, _ in parts)
    contrib = next(iter(matcher.rank(new, programs, k=5, explain=2, as_frame=False))
                   ).contributions
    assert len(contrib) == 3 and all(isinstance(v, float) for v in contrib.values())


def test_skills_column_counts_as_text_of_the_need():
    needs = pd.DataFrame({"need_id": ["n1", "n2"], "title": ["数控车工", "护士"],
                          "text": ["操作机床", "照顾病人"], "skills": ["FANUC；西门子", ""]})
    programs = pd.DataFrame({"program_id": ["p1", "p2"], "title": ["数控技术", "护理"],
                             "text": ["FANUC 系统编程", "临床护理"]})
    with pytest.warns(UserWarning, match="content similarity only"):
        matcher = Matcher(**PARAMS).fit(needs, programs, links=None)
    run = matcher.rank(needs.iloc[[0]], programs, k=1)
    assert run.loc[0, "program_id"] == "p1"
    assert "fanuc" in run.loc[0, "matched_terms"].split("|")


@pytest.mark.parametrize("grade", ["no", 1.5, 4, -1])
def test_links_with_a_bad_grade_are_input_error(zh_world, grade):
    needs, programs, links = zh_world["needs"], zh_world["programs"], zh_world["links"]
    bad = links.astype({"grade": object}).copy()
    bad.loc[3, "grade"] = grade
    with pytest.raises(InputError, match="grade"):
        Matcher(**PARAMS).fit(needs, programs, bad)


def test_duplicate_links_are_input_error(zh_world):
    needs, programs, links = zh_world["needs"], zh_world["programs"], zh_world["links"]
    with pytest.raises(InputError, match="more than once"):
        Matcher(**PARAMS).fit(needs, programs, pd.concat([links, links.iloc[:1]]))


def test_too_few_links_fall_back_to_content_only(zh_world):
    needs, programs, links = zh_world["needs"], zh_world["programs"], zh_world["links"]
    one_need = links[links["need_id"] == links["need_id"].iloc[0]]
    with pytest.warns(UserWarning, match="content similarity only"):
        matcher = Matcher(**PARAMS).fit(needs, programs, one_need)
    assert matcher.mode_ == "content-only"
    assert len(matcher.rank(needs.iloc[:2], programs, k=2)) > 0


def test_explain_must_be_a_flag_or_a_count(zh_world):
    matcher, new, programs = zh_world["matcher"], zh_world["new"], zh_world["programs"]
    with pytest.raises(InputError, match="explain"):
        matcher.rank(new, programs, k=2, explain="yes")


def test_neighbours_are_the_straightforward_matrix(zh_world):
    """Memory.neighbours builds its CSR arrays directly: the same matrix (dtypes, sorted
    columns, values to the last bit) as the pairs' scipy matrix, its top k by row and the
    scipy matrix of those, for one need as a request asks and for many real needs."""
    import scipy.sparse as sp

    from iei_match.bundled import catalog_dir
    from iei_match.io import load_needs
    from iei_match.kernels import pair_dots, topk_rows

    matcher = zh_world["matcher"]
    memory = matcher.memory_
    real = load_needs(catalog_dir("cn-vocational") / "needs.csv").iloc[::9]

    def straightforward(queries):
        k = min(memory.knn, len(memory.needs))
        n_q, n_k = len(queries), len(memory.needs)
        found = [memory.need_index_word.search(queries.word.full, k)[0],
                 memory.need_index_char.search(queries.char.full, k)[0]]
        rows = np.repeat(np.arange(n_q), len(found) * k)
        cols = np.concatenate(found, axis=1).ravel()
        rows, cols = rows[cols >= 0], cols[cols >= 0]
        pairs = np.unique(rows * n_k + cols)
        rows, cols = pairs // n_k, pairs % n_k
        sim = (pair_dots(queries.word.full, memory.needs.word.full, rows, cols)
               + pair_dots(queries.char.full, memory.needs.char.full, rows, cols)) / 2
        top_cols, top_sim = topk_rows(sp.csr_matrix((sim, (rows, cols)), shape=(n_q, n_k)), k)
        r = np.repeat(np.arange(n_q), k)
        ok = top_cols.ravel() >= 0
        return sp.csr_matrix((top_sim.ravel()[ok], (r[ok], top_cols.ravel()[ok])),
                             shape=(n_q, n_k))

    sides = [Side.build(real.iloc[i:i + 1], "need_id", matcher.word_, matcher.char_)
             for i in range(0, len(real), 4)]
    sides += [Side.build(real, "need_id", matcher.word_, matcher.char_),
              Side.build(zh_world["new"], "need_id", matcher.word_, matcher.char_)]
    for side in sides:
        got, want = memory.neighbours(side), straightforward(side)
        assert got.shape == want.shape and got.dtype == want.dtype
        for part in ("indptr", "indices", "data"):
            a, b = getattr(got, part), getattr(want, part)
            assert a.dtype == b.dtype and np.array_equal(a, b), part
    assert sides[-2].word.full.shape[0] > 50 and want.nnz > 0


def test_code_priors_are_the_plain_shares_of_past_links(zh_world):
    """The prior features (share of the past links of needs with a code prefix that went to
    a program category) equal a plain count over the links, pair by pair: NaN for a need
    prefix no linked need had, 0 for a category its links never reached. A need without a
    code has no kind: its links count in no prior, and the priors of a need asked without a
    code are NaN (not the shares of the past needs without one)."""
    from iei_match.bundled import catalog_dir
    from iei_match.features import _prior, _side_arrays
    from iei_match.io import load_links, load_needs, load_programs
    from iei_match.memory import Memory

    matcher = zh_world["matcher"]
    d = catalog_dir("cn-vocational")
    needs, programs = load_needs(d / "needs.csv").iloc[:400], load_programs(d / "programs.csv")
    ids = needs["need_id"].astype(str)
    needs = needs.assign(code=np.where(np.arange(len(needs)) % 5 == 0, "", ids))
    links = load_links(d / "links.csv")
    links = links[links["need_id"].isin(set(needs["need_id"]))]
    build = functools.partial(Side.build, word=matcher.word_, char=matcher.char_)
    n_side, p_side = build(needs, "need_id"), build(programs, "program_id")
    index = {v: i for i, v in enumerate(p_side.ids)}
    rows = links["need_id"].map({v: i for i, v in enumerate(n_side.ids)}).to_numpy()
    matrix = np.zeros((len(needs), len(programs)), np.float32)
    matrix[rows, links["program_id"].map(index).to_numpy()] = links["grade"].to_numpy()
    memory = Memory(n_side, p_side, matrix, matcher.word_.idf_)
    rng = np.random.default_rng(0)
    asked = load_needs(d / "needs.csv").iloc[400:700]
    codes = asked["need_id"].astype(str).tolist()  # an official need's code is its id
    asked = asked.assign(code=[c if rng.random() < 0.7 else ("" if rng.random() < 0.5
                                                              else "9" + c) for c in codes])
    queries = build(asked, "need_id")
    n_rows = rng.integers(0, len(asked), 3000)
    p_rows = rng.integers(0, len(programs), 3000)
    got = _prior(memory, _side_arrays(memory, queries, "need"),
                 _side_arrays(memory, p_side, "program"), n_rows, p_rows)
    for ln in memory.need_prefix_len:
        past = n_side.code_prefixes(ln)
        for lp in memory.program_prefix_len:
            cat = p_side.code_prefixes(lp)
            share: dict = {}
            total: dict = {}
            for i, j in zip(*np.nonzero(matrix), strict=True):
                if past[i] == "":
                    continue
                share[past[i], cat[j]] = share.get((past[i], cat[j]), 0.0) + matrix[i, j]
                total[past[i]] = total.get(past[i], 0.0) + matrix[i, j]
            want = [share.get((a, b), 0.0) / total[a] if a in total else np.nan for a, b in
                    zip(queries.code_prefixes(ln)[n_rows], cat[p_rows], strict=True)]
            np.testing.assert_allclose(got[f"prior_n{ln}_p{lp}"], want, rtol=1e-6)
            values = got[f"prior_n{ln}_p{lp}"]
            assert np.isnan(values).any() and (values == 0).any() and (values > 0).sum() > 10
            assert np.isnan(values[queries.code_prefixes(ln)[n_rows] == ""]).all()


def test_collaborative_candidates_without_blocked_columns_as_scipy_leaves_them():
    """The collaborative candidates of a restricted catalog are taken from the product's
    arrays: the top k of scipy's matrix with the blocked columns' entries zeroed and
    eliminated, for unsorted rows with stored zeros and ties."""
    import scipy.sparse as sp

    from iei_match.candidates import _collab_topk
    from iei_match.kernels import topk_rows

    rng = np.random.default_rng(0)
    for trial in range(50):
        n_rows, n_cols = int(rng.integers(1, 4)), 300
        m = sp.random(n_rows, n_cols, density=0.2, random_state=trial, format="csr",
                      dtype=np.float32)
        m.data = np.round(m.data * 3).astype(np.float32)  # ties and stored zeros
        for r in range(n_rows):  # rows in no column order, as a product leaves them
            lo, hi = m.indptr[r], m.indptr[r + 1]
            perm = lo + rng.permutation(hi - lo)
            m.indices[lo:hi], m.data[lo:hi] = m.indices[perm], m.data[perm]
        m.has_sorted_indices = False
        blocked = rng.random(n_cols) < 0.4
        want = m.copy()
        want.data[blocked[want.indices]] = 0
        want.eliminate_zeros()
        for k in (1, 5, 40):
            assert np.array_equal(_collab_topk(m, blocked, k), topk_rows(want, k)[0])
            assert np.array_equal(_collab_topk(m, None, k), topk_rows(m, k)[0])


def _model_text(booster) -> str:
    return re.sub(r"\[num_threads: \d+\]\n", "", booster.model_to_string())


def test_trainings_side_by_side_give_the_models_of_one_thread():
    needs, programs, links, _ = make_catalog("zh", seed=0)
    one = Matcher(**PARAMS).fit(needs, programs, links)
    two = Matcher(**{**PARAMS, "n_jobs": 2}).fit(needs, programs, links)
    assert one.calibrated_ and two.calibrated_
    for direction in ("need", "program"):
        assert _model_text(one.rankers_[direction].booster_) == _model_text(
            two.rankers_[direction].booster_)
        assert two.rankers_[direction].n_jobs == 2  # predictions use the matcher's threads
    assert _model_text(one.fit_model_.booster_) == _model_text(two.fit_model_.booster_)
    assert all(np.array_equal(a, b) for a, b in zip(one.fit_model_.calibration_,
                                                    two.fit_model_.calibration_, strict=True))
    assert one.fit_model_.thresholds_ == two.fit_model_.thresholds_
    assert two.fit_model_.n_jobs == 2


def test_the_fits_trainings_in_an_executor_give_the_same_model():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 4)).astype(np.float32)
    y = (x[:, 0] + 0.5 * rng.normal(size=3000) > 1.0).astype(float)
    folds = rng.integers(0, 5, size=3000)
    names = ["a", "b", "c", "d"]
    plain = FitModel(n_estimators=30, n_jobs=1).fit(x, y, folds, names)
    with ThreadPoolExecutor(3) as pool:
        pooled = FitModel(n_estimators=30, n_jobs=1).fit(x, y, folds, names, executor=pool)
    assert _model_text(plain.booster_) == _model_text(pooled.booster_)
    assert np.array_equal(plain.predict(x[:100]), pooled.predict(x[:100]))
    assert plain.report_ == pooled.report_
