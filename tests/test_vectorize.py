"""Tests for iei_match.vectorize: FieldVectorizer and bm25_weights."""

from __future__ import annotations

import doctest
import json
import math
from collections import Counter

import numpy as np
import pytest
import scipy.sparse as sp

import iei_match.vectorize as vectorize_module
from iei_match.errors import InputError, NotFittedError
from iei_match.text import tokenize
from iei_match.vectorize import FieldMatrices, FieldVectorizer, bm25_weights

TITLES = ["数控技术", "护理", "会计", "Software Engineering", "电工", "烹饪工艺", "数控车工"]
TEXTS = [
    "数控机床编程与零件加工，CNC 操作",
    "临床护理与病人健康照护",
    "财务报表编制与税务申报，会计核算",
    "design and build computer software applications with Python",
    "电路安装、配电与电气设备维修",
    "中式菜肴烹饪与面点制作",
    "操作数控车床加工零件",
]


@pytest.fixture(params=["word", "char"])
def fitted(request):
    return FieldVectorizer(request.param, max_df=1.0).fit(TITLES, TEXTS)


def test_docstring_examples_run():
    result = doctest.testmod(vectorize_module)
    assert result.attempted > 0
    assert result.failed == 0


def test_fit_transform_shapes(fitted):
    n_terms = len(fitted.vocabulary_)
    assert n_terms > 0
    assert fitted.idf_.shape == (n_terms,)
    assert list(fitted.get_feature_names_out()) == fitted.vocabulary_
    m = fitted.transform(TITLES[:3], TEXTS[:3])
    assert isinstance(m, FieldMatrices)
    for part in (m.title, m.body, m.full, m.counts):
        assert sp.issparse(part)
        assert part.shape == (3, n_terms)


def test_vocabulary_is_sorted_and_unique(fitted):
    assert fitted.vocabulary_ == sorted(set(fitted.vocabulary_))


def test_rows_are_l2_normalised(fitted):
    m = fitted.transform(TITLES + ["", "zzzz qqqq"], TEXTS + ["", ""])
    for part in (m.title, m.body, m.full):
        norms = np.sqrt(np.asarray(part.multiply(part).sum(axis=1)).ravel())
        nonempty = part.getnnz(axis=1) > 0
        np.testing.assert_allclose(norms[nonempty], 1.0, rtol=1e-5)
        assert (norms[~nonempty] == 0).all()
    # The last two documents have no known term at all.
    assert m.full[-2:].nnz == 0


def test_counts_are_raw_term_counts_of_title_plus_body():
    v = FieldVectorizer("word", max_df=1.0).fit(TITLES, TEXTS)
    title, body = "数控 数控 护理", "数控 零件 unknownword 量子纠缠"
    m = v.transform([title], [body])
    expected = Counter(t for t in tokenize(title) + tokenize(body) if t in v.vocabulary_)
    assert expected["数控"] == 3 and len(expected) >= 3
    row = dict(zip((v.vocabulary_[j] for j in m.counts.indices), m.counts.data, strict=True))
    assert row == dict(expected)


def test_unknown_terms_are_ignored():
    v = FieldVectorizer("word", max_df=1.0).fit(TITLES, TEXTS)
    with_noise = v.transform(["数控 量子纠缠 zyzzyva"], ["机床 加工 blorptastic"])
    clean = v.transform(["数控"], ["机床 加工"])
    for a, b in zip(
        (with_noise.title, with_noise.body, with_noise.full, with_noise.counts),
        (clean.title, clean.body, clean.full, clean.counts),
        strict=True,
    ):
        np.testing.assert_array_equal(a.toarray(), b.toarray())
    only_unknown = v.transform(["zyzzyva"], ["blorptastic"])
    assert only_unknown.full.nnz == 0 and only_unknown.counts.nnz == 0


def test_idf_is_smoothed_like_scikit_learn():
    v = FieldVectorizer("word", max_df=1.0).fit(TITLES, TEXTS)
    docs = [set(tokenize(t) + tokenize(b)) for t, b in zip(TITLES, TEXTS, strict=True)]
    n = len(docs)
    for term, idf in zip(v.vocabulary_, v.idf_, strict=True):
        df = sum(term in d for d in docs)
        assert idf == pytest.approx(math.log((1 + n) / (1 + df)) + 1, rel=1e-6)


def tfidf_reference(v, counts: Counter) -> dict[str, float]:
    """log(1 + count) x idf, L2-normalised: the documented TF-IDF of one document."""
    index = {t: j for j, t in enumerate(v.vocabulary_)}
    raw = {t: math.log1p(c) * float(v.idf_[index[t]]) for t, c in counts.items()
           if t in index and c > 0}
    norm = math.sqrt(sum(x * x for x in raw.values()))
    return {t: x / norm for t, x in raw.items()}


def as_dict(v, row) -> dict[str, float]:
    return {v.vocabulary_[j]: float(x) for j, x in zip(row.indices, row.data, strict=True)}


def test_tfidf_values_match_the_definition():
    v = FieldVectorizer("word", max_df=1.0).fit(TITLES, TEXTS)
    m = v.transform(["数控 数控 护理"], [""])
    expected = tfidf_reference(v, Counter(tokenize("数控 数控 护理")))
    got = as_dict(v, m.title)
    assert got.keys() == expected.keys() and len(got) == 2
    for t in expected:
        assert got[t] == pytest.approx(expected[t], rel=1e-5)


def test_max_df_and_min_df_filter_the_vocabulary():
    titles = ["数控", "数控", "数控", "护理"]
    texts = ["机床", "机床", "病人", "病人"]
    v = FieldVectorizer("word", max_df=0.5).fit(titles, texts)
    assert "数控" not in v.vocabulary_  # in 3 of 4 documents
    assert {"机床", "病人", "护理"} <= set(v.vocabulary_)
    v2 = FieldVectorizer("word", min_df=2, max_df=1.0).fit(titles, texts)
    assert "护理" not in v2.vocabulary_  # in one document only
    assert {"数控", "机床", "病人"} <= set(v2.vocabulary_)


def test_fit_rejects_bad_input():
    with pytest.raises(InputError):
        FieldVectorizer().fit([], [])
    with pytest.raises(InputError):
        FieldVectorizer().fit(["a title"], ["one", "two"])
    with pytest.raises(InputError):
        FieldVectorizer(analyzer="bogus").fit(TITLES, TEXTS)
    with pytest.raises(InputError, match="too small"):
        FieldVectorizer(max_df=1.0).fit(["的"], ["和"])


def test_transform_rejects_mismatched_lengths():
    v = FieldVectorizer("word", max_df=1.0).fit(TITLES, TEXTS)
    with pytest.raises(InputError):
        v.transform(["数控"], ["a", "b"])


@pytest.mark.parametrize("call", ["transform", "get_state", "get_feature_names_out"])
def test_not_fitted_error_before_fit(call):
    v = FieldVectorizer()
    args = {"transform": (["数控"], ["机床"]), "get_state": (), "get_feature_names_out": ()}[call]
    with pytest.raises(NotFittedError) as info:
        getattr(v, call)(*args)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, InputError)


def test_state_round_trip_gives_identical_matrices(fitted):
    state, idf = fitted.get_state()
    # The state is plain JSON data and the idf a plain numeric array.
    state = json.loads(json.dumps(state, ensure_ascii=False))
    assert idf.dtype.kind == "f"
    rebuilt = FieldVectorizer.from_state(state, idf.copy())
    assert rebuilt.get_params() == fitted.get_params()
    assert rebuilt.vocabulary_ == fitted.vocabulary_
    a = fitted.transform(TITLES, TEXTS)
    b = rebuilt.transform(TITLES, TEXTS)
    for x, y in zip((a.title, a.body, a.full, a.counts), (b.title, b.body, b.full, b.counts),
                    strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x.toarray(), y.toarray())


def test_from_state_rejects_inconsistent_idf(fitted):
    state, idf = fitted.get_state()
    with pytest.raises(InputError):
        FieldVectorizer.from_state(state, idf[:-1])


def test_title_weight_changes_full_only():
    light = FieldVectorizer("word", title_weight=1.0, max_df=1.0).fit(TITLES, TEXTS)
    heavy = FieldVectorizer("word", title_weight=5.0, max_df=1.0).fit(TITLES, TEXTS)
    a, b = light.transform(TITLES, TEXTS), heavy.transform(TITLES, TEXTS)
    np.testing.assert_array_equal(a.title.toarray(), b.title.toarray())
    np.testing.assert_array_equal(a.body.toarray(), b.body.toarray())
    np.testing.assert_array_equal(a.counts.toarray(), b.counts.toarray())
    assert not np.allclose(a.full.toarray(), b.full.toarray())
    # A heavier title moves the whole-document vector towards the title.
    cos_light = np.asarray(a.full.multiply(a.title).sum(axis=1)).ravel()
    cos_heavy = np.asarray(b.full.multiply(b.title).sum(axis=1)).ravel()
    has_title = a.title.getnnz(axis=1) > 0
    assert (cos_heavy[has_title] >= cos_light[has_title] - 1e-6).all()
    assert (cos_heavy[has_title] > cos_light[has_title] + 1e-3).any()


@pytest.mark.parametrize("weight", [1.0, 3.0])
def test_full_is_the_tfidf_of_weighted_title_counts_plus_body_counts(weight):
    # As documented on FieldMatrices.full: TF-IDF of title_weight x title counts + body counts.
    v = FieldVectorizer("word", title_weight=weight, max_df=1.0).fit(TITLES, TEXTS)
    m = v.transform(TITLES, TEXTS)
    for i, (title, body) in enumerate(zip(TITLES, TEXTS, strict=True)):
        counts = Counter()
        for t in tokenize(title):
            counts[t] += weight
        for t in tokenize(body):
            counts[t] += 1
        expected = tfidf_reference(v, counts)
        got = as_dict(v, m.full[i])
        assert got.keys() == expected.keys()
        for t in expected:
            assert got[t] == pytest.approx(expected[t], rel=1e-5)


# --- BM25 ------------------------------------------------------------------------------


def slow_bm25(counts: np.ndarray, idf: np.ndarray, k1: float, b: float) -> np.ndarray:
    """The textbook per-document BM25 term weight, one cell at a time."""
    n_docs, n_terms = counts.shape
    lengths = [sum(counts[d]) for d in range(n_docs)]
    avgdl = sum(lengths) / n_docs if sum(lengths) > 0 else 1.0
    out = np.zeros((n_docs, n_terms))
    for d in range(n_docs):
        for t in range(n_terms):
            tf = counts[d, t]
            if tf:
                out[d, t] = idf[t] * tf * (k1 + 1) / (tf + k1 * (1 - b + b * lengths[d] / avgdl))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("k1", "b"), [(1.2, 0.75), (2.0, 0.0), (0.5, 1.0)])
def test_bm25_weights_match_the_slow_formula(seed, k1, b):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 4, size=(12, 9)) * (rng.random((12, 9)) < 0.4)
    counts[3] = 0  # an empty document
    idf = rng.uniform(0.5, 3.0, 9).astype(np.float32)
    got = bm25_weights(sp.csr_matrix(counts.astype(np.float32)), idf, k1=k1, b=b)
    assert sp.issparse(got)
    assert got.shape == counts.shape
    np.testing.assert_allclose(got.toarray(), slow_bm25(counts, idf, k1, b), rtol=1e-5)


def test_bm25_query_dot_weights_is_the_bm25_score():
    v = FieldVectorizer("word", max_df=1.0).fit(TITLES, TEXTS)
    docs = v.transform(TITLES, TEXTS).counts
    weights = bm25_weights(docs, v.idf_)
    query = v.transform(["数控 零件"], ["加工 加工"]).counts
    binary = query.copy()
    binary.data[:] = 1.0
    scores = (binary @ weights.T).toarray().ravel()
    dense = docs.toarray()
    lengths = dense.sum(axis=1)
    avgdl = lengths.mean()
    q_terms = set(query.indices)
    for d in range(len(TITLES)):
        expected = sum(
            v.idf_[t] * dense[d, t] * 2.2 / (dense[d, t] + 1.2 * (0.25 + 0.75 * lengths[d] / avgdl))
            for t in q_terms
        )
        assert scores[d] == pytest.approx(expected, rel=1e-5, abs=1e-7)
    assert scores.argmax() in (0, 6)  # the two CNC documents


def test_bm25_weights_of_all_empty_documents():
    counts = sp.csr_matrix((3, 4), dtype=np.float32)
    out = bm25_weights(counts, np.ones(4, np.float32))
    assert out.shape == (3, 4) and out.nnz == 0


def test_take_rows_equals_scipy_indexing():
    from iei_match.vectorize import take_rows

    rng = np.random.default_rng(0)
    n, nnz = 300, 4000
    m = sp.csr_matrix((rng.random(nnz).astype(np.float32),
                       (rng.integers(0, n, nnz), rng.integers(0, 90, nnz))), shape=(n, 90))
    for rows in (rng.integers(-n, n, 1000), np.zeros(0, np.int64), np.array([n - 1, -n])):
        got, expected = take_rows(m, rows), m[rows]
        assert got.shape == expected.shape and got.has_sorted_indices
        assert np.array_equal(got.indptr, expected.indptr)
        assert np.array_equal(got.indices, expected.indices)
        assert np.array_equal(got.data, expected.data)
    with pytest.raises(IndexError):
        take_rows(m, np.array([n]))


@pytest.mark.parametrize("analyzer", ["word", "char"])
def test_a_few_texts_are_vectorised_as_in_a_batch(analyzer):
    """A request's need is counted term by term, a catalog through run tables and n-gram
    arrays: each row's four matrices are the same to the last bit either way."""
    from iei_match.bundled import catalog_dir
    from iei_match.io import load_needs
    from iei_match.runs import run_table
    from iei_match.sides import document_texts
    from iei_match.text import normalize_many

    needs = load_needs(catalog_dir("cn-vocational") / "needs.csv").iloc[:200]
    titles, texts = (normalize_many(c) for c in document_texts(needs))
    v = FieldVectorizer(analyzer, title_weight=3.0).fit(titles, texts)
    batch = v.transform(titles, texts, normalized=True,
                        runs=(run_table(titles), run_table(texts)))
    assert vectorize_module.small_texts(titles[:3], texts[:3])
    assert not vectorize_module.small_texts(titles, texts)
    for rows in ([0], [5, 17, 3]):
        few = v.transform([titles[i] for i in rows], [texts[i] for i in rows], normalized=True)
        for name in ("title", "body", "full", "counts"):
            want, got = getattr(batch, name)[rows], getattr(few, name)
            assert got.dtype == want.dtype
            for part in ("indptr", "indices", "data"):
                assert np.array_equal(getattr(got, part), getattr(want, part)), (name, part)


@pytest.mark.parametrize("analyzer", ["word", "char"])
def test_a_requests_matrices_are_those_of_scipys_arithmetic(analyzer):
    """The few texts of a request get their matrices made directly from the counts: they
    are those of the straightforward computation with scipy's sums and slices (Chinese and
    English needs, empty bodies and terms only in one field included), to the last bit."""
    from iei_match.bundled import catalog_dir
    from iei_match.io import load_needs
    from iei_match.sides import document_texts
    from iei_match.text import normalize_many
    from iei_match.vectorize import _count_matrix

    titles, texts = [], []
    for name in ("cn-vocational", "us-onet-cip"):
        needs = load_needs(catalog_dir(name) / "needs.csv").iloc[:150]
        t, x = (normalize_many(c) for c in document_texts(needs))
        titles += t
        texts += x
    v = FieldVectorizer(analyzer, title_weight=3.0).fit(titles, texts)

    def straightforward(t, x):
        both = _count_matrix(v._analyze([*t, *x], True), v._index)
        tc, bc = both[:len(t)], both[len(t):]
        return {"title": v._tfidf(tc), "body": v._tfidf(bc),
                "full": v._tfidf((v.title_weight * tc + bc).tocsr()),
                "counts": (tc + bc).tocsr()}

    cases = [[0], [3, 160], [299], [10, 11, 12]]
    for rows in cases + [[i] for i in range(0, 300, 7)]:
        t, x = [titles[i] for i in rows], [texts[i] for i in rows]
        for body in (x, [""] * len(rows)):
            got, want = v.transform(t, body, normalized=True), straightforward(t, body)
            for name, w in want.items():
                g = getattr(got, name)
                assert g.dtype == w.dtype and g.shape == w.shape
                for part in ("indptr", "indices", "data"):
                    a, b = getattr(g, part), getattr(w, part)
                    assert a.dtype == b.dtype and np.array_equal(a, b), (rows, name, part)


def _words(v: FieldVectorizer, m: FieldMatrices) -> list[list[str]]:
    return [sorted(v.vocabulary_[j] for j in m.counts[i].indices) for i in range(m.counts.shape[0])]


def test_unseen_chinese_words_of_a_bare_title_count_as_their_known_pieces():
    """jieba keeps many market titles whole (化验员, 数据库管理员); a model that never saw
    them counts the known words a bare title's are made of (a title whose body holds no
    known word), in a request and in a batch alike. A body's words, and a title with a
    body, are counted as they are."""
    v = FieldVectorizer("word", max_df=1.0).fit(["化验", "数据库 管理员", "护理"],
                                                ["化学 检验", "软件 开发", "临床"])
    titles = ["化验员", "数据库管理员", "量子纠缠", "护理", "化验员", "化验员"]
    texts = ["", "", "", "", "量子纠缠", "软件 数据库管理员"]
    want = [["化验"], ["数据库", "管理员"], [], ["护理"], ["化验"], ["软件"]]
    few = v.transform(titles, texts)
    assert _words(v, few) == want
    many = v.transform(titles * 10, texts * 10)  # not a request's few texts
    assert not vectorize_module.small_texts(titles * 10, texts * 10)
    assert _words(v, many) == want * 10
    for name in ("title", "body", "full", "counts"):
        assert (getattr(many, name)[:6] != getattr(few, name)).nnz == 0


def test_the_corpus_is_counted_as_without_splitting():
    """Every word of the corpus is in the vocabulary or a stop word, so splitting unseen
    words never changes the training matrices; a stop word is not split into its pieces;
    a model saved without its stop words splits nothing."""
    titles = ["技术人员 化验", "技术人员 护理", "技术人员 会计", "技术 烹饪", "数控"]
    texts = ["化学检验员", "", "", "", ""]
    v = FieldVectorizer("word", max_df=0.5).fit(titles, texts)
    assert "技术人员" in v.stop_words_ and "技术" in v.vocabulary_
    state, idf = v.get_state()
    state.pop("stop_words")
    plain = FieldVectorizer.from_state(state, idf)  # as a model saved before
    a, b = v.transform(titles, texts), plain.transform(titles, texts)
    for name in ("title", "body", "full", "counts"):
        assert (getattr(a, name) != getattr(b, name)).nnz == 0
    assert _words(v, v.transform(["技术人员"], [""])) == [[]]
    assert _words(v, v.transform(["化验员"], [""])) == [["化验"]]
    assert _words(plain, plain.transform(["化验员"], [""])) == [[]]
    assert FieldVectorizer.from_state(*v.get_state()).stop_words_ == v.stop_words_
