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


def test_queries_rank_against_several_catalogs_as_their_frame(world):
    """Needs vectorised once (``Matcher.queries``) rank like their frame against any
    program side: the frame, a catalog, a restricted catalog; programs likewise."""
    m, new, programs = world["matcher"], world["new"], world["programs"]
    asked = m.queries(new)
    catalog = m.prepare(programs, "program")
    half = catalog.restrict(np.arange(len(programs)) % 2 == 0)
    for side in (programs, catalog, half):
        for min_fit in (None, 0.01):
            pd.testing.assert_frame_equal(
                m.rank(asked, side, k=6, explain=3, min_fit=min_fit),
                m.rank(new, side, k=6, explain=3, min_fit=min_fit))
    one = m.queries(new.iloc[[1]])  # one need, as the service asks
    pd.testing.assert_frame_equal(m.rank(one, half, k=5), m.rank(new.iloc[[1]], half, k=5))
    asked_programs = m.queries(programs, "program")
    needs = m.prepare(new, "need")
    pd.testing.assert_frame_equal(m.partners(asked_programs, needs, k=4, explain=2),
                                  m.partners(programs, new, k=4, explain=2))
    assert list(asked.ids) == [str(v) for v in new["need_id"]] and len(asked) == len(new)


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
    asked = m.queries(new)
    with pytest.raises(InputError, match="queries cannot be searched"):
        m.partners(programs, asked, k=3)
    with pytest.raises(InputError, match="holds needs, not programs"):
        m.partners(asked, new, k=3)
    with pytest.raises(InputError, match="another model: make it again"):
        other.rank(asked, programs, k=3)
    with pytest.raises(InputError, match="kind must be"):
        m.queries(new, "college")
    with pytest.raises(InputError, match="must be a pandas DataFrame"):
        m.queries(needs_cat)


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
    from iei_match.features import _group_max_and_rank

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



def test_group_max_and_rank_of_one_list_is_that_of_many():
    """A request's one list takes a shorter way, all its features at once: the same bests
    and ranks, bit for bit, as the general way gives that list among others (ties, NaN,
    infinities, all NaN)."""
    from iei_match.features import _group_max_and_rank
    from iei_match.kernels import list_best_and_rank

    rng = np.random.default_rng(1)
    for trial in range(300):
        n = int(rng.integers(1, 200))
        values = rng.integers(0, 5, n) / 7.0
        values[rng.random(n) < 0.15] = np.nan
        values[rng.random(n) < 0.03] = np.inf
        values[rng.random(n) < 0.03] = -np.inf
        if trial % 9 == 0:
            values[:] = np.nan
        second = rng.permutation(values)
        best, rank = list_best_and_rank(np.stack([values, second]))
        for column, one in zip((values, second), zip(best, rank, strict=True), strict=True):
            other = rng.random(5)
            many = _group_max_and_rank(np.r_[column, other],
                                       np.r_[np.full(n, 4), np.full(5, 9)])
            for got, want in zip((np.full(n, one[0]), one[1]), many, strict=True):
                assert got.dtype == want.dtype
                np.testing.assert_array_equal(got, want[:n])


def test_a_requests_capacity_is_read_as_pandas_reads_it():
    """A need's headcount is converted without pandas for a few plain numbers, with it
    otherwise: always what ``pd.to_numeric(errors="coerce")`` gives, as float64."""
    from iei_match.rows import series_numbers as _numbers

    columns = [pd.Series([17]), pd.Series([3, 2**60 + 1]), pd.Series([2.5, np.nan]),
               pd.Series([np.nan]), pd.Series(["12", "x", None]), pd.Series([None]),
               pd.Series(np.arange(100)), pd.Series([1, None], dtype="Int64"),
               pd.Series([True, False])]
    for column in columns:
        want = pd.to_numeric(column, errors="coerce").to_numpy(np.float64, na_value=np.nan)
        got = _numbers(column)
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, want)


# --- incremental preparation: prepare(frame, previous=catalog) --------------------------

PLACES = [("广东省", "广州市"), ("广东省", "深圳市"), ("江苏省", "苏州市"), ("", "")]
LEVEL_NAMES = ["中职", "高职专科", "职教本科", ""]


def enriched(frame: pd.DataFrame, id_col: str, rng, n_extra: int) -> pd.DataFrame:
    """The frame with level, place, code, capacity and body-text columns, and ``n_extra``
    more rows whose texts mix those of two others."""
    words = " ".join(frame["text"]).replace("，", " ").split()
    rows = frame.to_dict("records")
    for i in range(n_extra):
        a, b = rng.choice(len(frame), 2, replace=False)
        rows.append({id_col: f"extra-{i}", "title": rows[a]["title"],
                     "text": rows[a]["text"] + "，" + rows[b]["text"]})
    out = pd.DataFrame(rows)
    place = rng.integers(0, len(PLACES), len(out))
    out["level"] = [LEVEL_NAMES[i] for i in rng.integers(0, len(LEVEL_NAMES), len(out))]
    out["province"] = [PLACES[i][0] for i in place]
    out["city"] = [PLACES[i][1] for i in place]
    # some rows offer a known program (its history), others have a code of their own
    known = frame[id_col].tolist()
    out["code"] = [rng.choice(known) if rng.random() < 0.5 else f"c{i}" for i in range(len(out))]
    out["headcount" if id_col == "need_id" else "graduates_per_year"] = rng.integers(
        1, 300, len(out))
    out["certificates"] = [" ".join(rng.choice(words, 2)) for _ in range(len(out))]
    return out


def edit(frame: pd.DataFrame, id_col: str, rng, step: int) -> tuple[pd.DataFrame, set]:
    """A random edit of the table: rows deleted, added, texts and attributes changed, rows
    reordered. Returns it and the ids whose texts changed or are new."""
    f = frame.copy()
    n = len(f)
    changed: set = set()
    f = f.drop(index=f.index[rng.choice(n, int(rng.integers(0, 4)), replace=False)])
    for i in rng.choice(len(f), int(rng.integers(1, 4)), replace=False):  # a text changes
        col = ["title", "text", "certificates"][int(rng.integers(0, 3))]
        f.iloc[i, f.columns.get_loc(col)] = f[col].iloc[int(rng.integers(0, len(f)))] + " 新增"
        changed.add(f[id_col].iloc[i])
    for i in rng.choice(len(f), int(rng.integers(1, 5)), replace=False):  # not its text
        p = PLACES[int(rng.integers(0, len(PLACES)))]
        f.iloc[i, f.columns.get_loc("level")] = LEVEL_NAMES[int(rng.integers(0, 4))]
        f.iloc[i, f.columns.get_loc("province")], f.iloc[i, f.columns.get_loc("city")] = p
        f.iloc[i, f.columns.get_loc("code")] = frame[id_col].iloc[int(rng.integers(0, n))]
    added = f.iloc[rng.choice(len(f), int(rng.integers(1, 4)), replace=False)].copy()
    added[id_col] = [f"added-{step}-{j}" for j in range(len(added))]  # same texts, new ids
    changed |= set(added[id_col])
    f = pd.concat([f, added], ignore_index=True)
    if step % 2:
        f = f.iloc[rng.permutation(len(f))]
    return f.reset_index(drop=True), changed


def assert_same_matrix(a, b) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype
    for part in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(a, part), getattr(b, part))


def assert_same_catalog(got, expected) -> None:
    """Every array a ranking reads: vectors, row attributes, indexes, history."""
    g, e = got.side, expected.side
    assert got.kind == expected.kind and got.vectorizers == expected.vectorizers
    for name in ("ids", "level", "titles", "texts"):
        np.testing.assert_array_equal(getattr(g, name), getattr(e, name))
    np.testing.assert_array_equal(g.codes, e.codes)
    assert g.codes.dtype == e.codes.dtype == object
    assert g.attrs.keys() == e.attrs.keys()
    for name in e.attrs:
        np.testing.assert_array_equal(g.attrs[name], e.attrs[name])
        assert g.attrs[name].dtype == e.attrs[name].dtype
    assert (g.dense is None) == (e.dense is None)
    if e.dense is not None:
        np.testing.assert_array_equal(g.dense, e.dense)
    for fm in ("word", "char"):
        for part in ("title", "body", "full", "counts"):
            assert_same_matrix(getattr(getattr(g, fm), part), getattr(getattr(e, fm), part))
    for index in ("word_index", "char_index"):
        for part in ("_ptr", "_ind", "_val"):
            np.testing.assert_array_equal(getattr(getattr(got, index), part),
                                          getattr(getattr(expected, index), part))
    assert_same_matrix(got.history, expected.history)
    np.testing.assert_array_equal(got.fingerprints, expected.fingerprints)


def test_english_needs_of_a_chinese_model_are_bridged_once_and_copied_after(zh_world):
    # A Chinese model bridges English needs to Chinese terms and expands short titles; a
    # copied row is not bridged again, and the result equals a fresh preparation.
    m, new, programs = zh_world["matcher"], zh_world["new"], zh_world["programs"]
    english = pd.DataFrame({"need_id": ["e1", "e2", "e3"],
                            "title": ["CNC machinist", "Registered nurse", "幼师"],
                            "text": ["Turning and milling parts on CNC lathes",
                                     "Ward care of patients", ""]})
    frame = pd.concat([new, english], ignore_index=True)
    first = m.prepare(frame, "need")
    edited = frame.copy()
    edited.loc[edited.need_id == "e1", "text"] = "Programming CNC lathes"
    edited = pd.concat([edited, english.iloc[[1]].assign(need_id="e4")], ignore_index=True)
    again = m.prepare(edited, "need", previous=first)
    assert again.reused == len(frame) - 1
    assert_same_catalog(again, m.prepare(edited, "need"))
    pd.testing.assert_frame_equal(m.partners(programs, again, k=5, explain=2),
                                  m.partners(programs, edited, k=5, explain=2))
    # the bridged rows read as bridged: the Chinese terms of their trades come first
    texts = dict(zip(again.side.ids, again.side.titles, strict=True))
    assert "数控" in texts["e1"] and "cnc machinist" in texts["e1"], texts["e1"]


@pytest.mark.parametrize("kind", ["program", "need"])
def test_incremental_prepare_equals_a_fresh_prepare_after_random_edits(world, kind):
    m, new, programs = world["matcher"], world["new"], world["programs"]
    rng = np.random.default_rng(7)
    id_col = f"{kind}_id"
    frame = enriched(programs if kind == "program" else new, id_col, rng, n_extra=30)
    others = enriched(new if kind == "program" else programs, "need_id" if kind == "program"
                      else "program_id", rng, n_extra=0)
    catalog = m.prepare(frame, kind)
    assert catalog.reused == 0
    for step in range(6):
        before = dict(zip(frame[id_col], catalog.fingerprints, strict=True))
        frame, changed = edit(frame, id_col, rng, step)
        catalog = m.prepare(frame, kind, previous=catalog)  # a chain of incremental ones
        fresh = m.prepare(frame, kind)
        assert_same_catalog(catalog, fresh)
        kept = [i for i in frame[id_col] if before.get(i) is not None and i not in changed]
        assert catalog.reused == len(kept) and len(frame) - catalog.reused >= len(changed)
        if kind == "program":
            pd.testing.assert_frame_equal(m.rank(others, catalog, k=6, explain=3),
                                          m.rank(others, fresh, k=6, explain=3))
            pd.testing.assert_frame_equal(m.rank(others, catalog, k=6, explain=3),
                                          m.rank(others, frame, k=6, explain=3))
            level = (frame["level"] == "高职专科").to_numpy()
            pd.testing.assert_frame_equal(m.rank(others, catalog.restrict(level), k=4),
                                          m.rank(others, frame[level], k=4))
        else:
            pd.testing.assert_frame_equal(m.partners(others, catalog, k=5, explain=2),
                                          m.partners(others, frame, k=5, explain=2))


def test_incremental_prepare_reuses_only_rows_with_the_same_id_and_texts(zh_world):
    m, programs = zh_world["matcher"], zh_world["programs"]
    frame = enriched(programs, "program_id", np.random.default_rng(1), n_extra=0)
    first = m.prepare(frame, "program")
    same = m.prepare(frame, "program", previous=first)
    assert same.reused == len(frame)
    assert same.side.word.full is first.side.word.full  # nothing changed: nothing copied
    moved = frame.assign(level="本科", city="", code="")  # attributes only: all reused
    moved_catalog = m.prepare(moved, "program", previous=first)
    assert moved_catalog.reused == len(frame) and moved_catalog.char_index is first.char_index
    assert_same_catalog(moved_catalog, m.prepare(moved, "program"))
    renamed = frame.assign(program_id="x-" + frame["program_id"])  # new ids: none reused
    assert m.prepare(renamed, "program", previous=first).reused == 0
    # a body-text column that appears (even empty) changes every row's texts
    assert m.prepare(frame.drop(columns="certificates"), "program", previous=first).reused == 0
    texts = frame.copy()
    texts.loc[3, "title"] = texts.loc[3, "title"] + " 订单班"
    texts.loc[5, "certificates"] = ""
    assert m.prepare(texts, "program", previous=first).reused == len(frame) - 2


def test_a_previous_catalog_of_another_kind_or_model_is_refused(zh_world):
    m, new, programs = zh_world["matcher"], zh_world["new"], zh_world["programs"]
    programs_cat, needs_cat = m.prepare(programs, "program"), m.prepare(new, "need")
    with pytest.raises(InputError, match="previous holds needs, not programs"):
        m.prepare(programs, "program", previous=needs_cat)
    with pytest.raises(InputError, match="previous holds programs, not needs"):
        m.prepare(new, "need", previous=programs_cat)
    with pytest.raises(InputError, match="previous must be a Catalog"):
        m.prepare(programs, "program", previous=programs)
    other = build_world("en")["matcher"]
    with pytest.raises(InputError, match="previous was prepared by another model"):
        other.prepare(programs, "program", previous=programs_cat)
    # a restricted catalog is still the whole table: its rows are reused, unrestricted
    again = m.prepare(programs, "program", previous=programs_cat.restrict(
        np.arange(len(programs)) % 2 == 0))
    assert again.reused == len(programs) and again.blocked is None


def test_text_fingerprints_tell_texts_and_columns_apart():
    from iei_match.sides import _hash_strings, text_fingerprints

    base = pd.DataFrame({"title": ["a", "a", "a b", "a\\ud800"], "text": ["b c", "b", "c", "x"]})
    h = text_fingerprints(base)
    assert len(set(h.tolist())) == 4  # "a"+"b c" and "a b"+"c" are different texts
    np.testing.assert_array_equal(text_fingerprints(base.iloc[::-1]), h[::-1])
    assert not np.isin(text_fingerprints(base.assign(skills="")), h).any()
    split = pd.DataFrame({"title": ["a", "a"], "text": ["b c", "b"], "skills": ["", "c"]})
    assert len(set(text_fingerprints(split).tolist())) == 2  # the columns are kept apart
    missing = pd.DataFrame({"title": ["a"], "text": ["b"], "skills": [None]})
    np.testing.assert_array_equal(text_fingerprints(missing),  # as document_texts reads it
                                  text_fingerprints(missing.assign(skills="")))
    # a lone surrogate (which Python strings, not pandas', may hold) is hashed too
    odd = _hash_strings(np.array(["a\ud800", "a\\ud800", "a"], dtype=object))
    assert len(set(odd.tolist())) == 3


def test_catalog_and_features_doctests():
    import doctest
    import warnings

    from iei_match import catalog, features

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the examples' matchers have no links
        for module in (catalog, features):
            assert doctest.testmod(module).failed == 0


def test_incremental_prepare_embeds_only_the_new_rows(zh_world, monkeypatch):
    """With sentence embeddings (here a stand-in that hashes the text: the extra may not be
    installed), only new and changed rows are embedded, and each row keeps its vector."""
    import hashlib

    m, programs = zh_world["matcher"], zh_world["programs"]
    embedded: list[int] = []

    def embed(frame, remember=False):
        embedded.append(len(frame))
        docs = (frame["title"].astype(str) + ". " + frame["text"].astype(str)).tolist()
        vecs = np.array([np.frombuffer(hashlib.sha256(d.encode()).digest(), np.uint8)
                         for d in docs], dtype=np.float32)
        return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)

    monkeypatch.setattr(m, "dense_", True)
    monkeypatch.setattr(m, "_embed", embed)
    first = m.prepare(programs, "program")
    edited = programs.copy()
    edited.loc[[2, 7], "text"] = edited.loc[[2, 7], "text"] + "，订单班"
    edited = pd.concat([edited.iloc[::-1], edited.iloc[:1].assign(program_id="new")])
    again = m.prepare(edited, "program", previous=first)
    assert embedded == [len(programs), 3] and again.reused == len(programs) - 2
    fresh = m.prepare(edited, "program")
    assert_same_catalog(again, fresh)


def test_a_catalog_written_and_mapped_back_by_a_copy_of_the_model_ranks_the_same(
        world, tmp_path):
    """What batch workers do: the catalog's arrays written once, mapped by each worker
    with its own copy of the model (loaded from the same files)."""
    from iei_match.artifacts import load_model, save_model
    from iei_match.catalog_files import load_catalog, save_catalog

    m, new, programs = world["matcher"], world["new"], world["programs"]
    copy = load_model(save_model(m, tmp_path / "model"))
    for kind, frame in (("program", programs), ("need", new)):
        catalog = m.prepare(frame, kind)
        save_catalog(catalog, tmp_path / kind, m.memory_.reach(catalog.side, kind))
        mapped = load_catalog(tmp_path / kind, copy)
        assert mapped.kind == kind and list(mapped.ids) == list(catalog.ids)
        if kind == "program":
            pd.testing.assert_frame_equal(copy.rank(new, mapped, k=6, explain=3),
                                          m.rank(new, catalog, k=6, explain=3))
            allowed = np.arange(len(programs)) % 3 > 0
            pd.testing.assert_frame_equal(
                copy.rank(new, mapped.restrict(allowed), k=4),
                m.rank(new, programs[allowed], k=4))
        else:
            pd.testing.assert_frame_equal(copy.partners(programs, mapped, k=4, explain=2),
                                          m.partners(programs, catalog, k=4, explain=2))
        with pytest.raises(InputError, match="another model"):
            m.rank(new, mapped, k=3) if kind == "program" else m.partners(programs, mapped)
