"""Contract of Matcher.prepare / Catalog: a prepared side ranks exactly like its frame,
a restricted catalog exactly like the filtered frame, and misuse is refused clearly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from iei_match.errors import InputError
from iei_match.retrieval import PostingIndex
from test_matcher import build_world


@pytest.fixture(scope="module", params=["zh", "en"])
def world(request):
    return build_world(request.param)


def test_rank_on_a_catalog_equals_rank_on_the_frame(world):
    m, new, programs = world["matcher"], world["new"], world["programs"]
    catalog = m.prepare(programs, "program")
    expected = m.rank(new, programs, k=7, explain=3)
    got = m.rank(new, catalog, k=7, explain=3)
    pd.testing.assert_frame_equal(got, expected)
    # one need at a time, as the service asks, against the same catalog
    for i in range(3):
        one = new.iloc[[i]]
        pd.testing.assert_frame_equal(m.rank(one, catalog, k=5), m.rank(one, programs, k=5))


def test_partners_on_a_need_catalog_equals_partners_on_the_frame(world):
    m, new, programs = world["matcher"], world["new"], world["programs"]
    catalog = m.prepare(new, "need")
    pd.testing.assert_frame_equal(m.partners(programs, catalog, k=4, explain=2),
                                  m.partners(programs, new, k=4, explain=2))


def test_restricted_catalog_equals_the_filtered_frame(world):
    m, new, programs = world["matcher"], world["new"], world["programs"]
    rng = np.random.default_rng(3)
    allowed = rng.random(len(programs)) < 0.4
    catalog = m.prepare(programs, "program").restrict(allowed)
    got = m.rank(new, catalog, k=6, explain=2)
    expected = m.rank(new, programs[allowed], k=6, explain=2)
    pd.testing.assert_frame_equal(got, expected)
    assert set(got["program_id"]) <= set(programs.loc[allowed, "program_id"])
    needs = m.prepare(new, "need")
    keep = rng.random(len(new)) < 0.5
    pd.testing.assert_frame_equal(m.partners(programs, needs.restrict(keep), k=3),
                                  m.partners(programs, new[keep], k=3))


def test_restrictions_combine_and_an_empty_one_returns_nothing(zh_world):
    m, new, programs = zh_world["matcher"], zh_world["new"], zh_world["programs"]
    catalog = m.prepare(programs, "program")
    a = np.arange(len(programs)) % 2 == 0
    b = np.arange(len(programs)) % 3 == 0
    both = catalog.restrict(a).restrict(b)
    assert both.n_allowed == int((a & b).sum())
    assert set(m.rank(new, both, k=50)["program_id"]) <= set(programs.loc[a & b, "program_id"])
    none = catalog.restrict(np.zeros(len(programs), bool))
    assert len(m.rank(new, none, k=5)) == 0
    assert catalog.blocked is None  # restrict returns a new catalog; the original is whole


@pytest.fixture(scope="module")
def zh_world():
    return build_world("zh")


def test_misuse_is_refused_with_a_clear_error(zh_world):
    m, new, programs = zh_world["matcher"], zh_world["new"], zh_world["programs"]
    programs_cat = m.prepare(programs, "program")
    needs_cat = m.prepare(new, "need")
    with pytest.raises(InputError, match="side being searched"):
        m.rank(needs_cat, programs, k=3)
    with pytest.raises(InputError, match="holds needs, not programs"):
        m.rank(new, needs_cat, k=3)
    with pytest.raises(InputError, match="one per program"):
        programs_cat.restrict([True, False])
    with pytest.raises(InputError, match="one per program"):
        programs_cat.restrict(np.ones(len(programs)))  # numbers, not booleans
    with pytest.raises(InputError, match="kind must be"):
        m.prepare(programs, "college")
    other = build_world("en")["matcher"]
    with pytest.raises(InputError, match="another model"):
        other.rank(new, programs_cat, k=3)


def test_blocked_search_equals_a_search_of_the_allowed_documents():
    rng = np.random.default_rng(0)
    docs = sp.random(300, 80, density=0.08, random_state=1, format="csr", dtype=np.float32)
    queries = sp.random(40, 80, density=0.1, random_state=2, format="csr", dtype=np.float32)
    blocked = rng.random(300) < 0.7
    idx, score = PostingIndex(docs).search(queries, 10, blocked)
    keep = np.flatnonzero(~blocked)
    sub_idx, sub_score = PostingIndex(docs[keep]).search(queries, 10)
    np.testing.assert_array_equal(idx, np.where(sub_idx >= 0, keep[np.maximum(sub_idx, 0)], -1))
    np.testing.assert_array_equal(score, sub_score)
    # the blocked documents' accumulators are never reset: later queries are unaffected
    twice = sp.vstack([queries, queries]).tocsr()
    idx2, _ = PostingIndex(docs).search(twice, 10, blocked)
    np.testing.assert_array_equal(idx2[40:], idx)
    with pytest.raises(InputError, match="one entry per document"):
        PostingIndex(docs).search(queries, 3, blocked[:10])


def test_group_max_and_rank_agree_with_pandas():
    from iei_match.matcher import _group_max_and_rank

    rng = np.random.default_rng(0)
    for trial in range(200):
        n = int(rng.integers(1, 300))
        groups = rng.integers(0, int(rng.integers(1, 20)), n)
        values = (rng.integers(0, 6, n) / 3).astype(np.float32)  # many ties
        values[rng.random(n) < 0.1] = np.nan
        if trial % 7 == 0:
            values[groups == groups[0]] = np.nan  # a group of NaN only
        s = pd.Series(values)
        best, rank = _group_max_and_rank(values.astype(np.float64), groups)
        np.testing.assert_array_equal(best.astype(np.float32),
                                      s.groupby(groups).transform("max").to_numpy())
        np.testing.assert_array_equal(
            rank, s.groupby(groups).rank(ascending=False, method="min").to_numpy())
