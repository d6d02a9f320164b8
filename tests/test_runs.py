"""Vectorising a batch through its distinct runs gives exactly the counts of analysing each
text on its own, and ``normalize_many`` is ``normalize`` of each text."""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import iei_match.runs as runs_module
from iei_match.runs import run_table
from iei_match.text import char_ngrams, normalize, normalize_many, tokenize
from iei_match.vectorize import FieldVectorizer, _count_matrix

# Compatibility characters (full-width, ligatures, Ω, Å), combining marks that compose with
# what precedes them, Hangul jamo, final sigma, control and space characters, the
# separator used to join texts, Chinese and Latin runs.
ALPHABET = (list("数控技术护理的abcxyz0129+# -,.") + list("ＧＭＰ１２，；（）：①．　")
            + ["\u0301", "\u0327", "\u0308", "\u1100", "\u1161", "\u11a8", "\u212b", "\u2126",
               "\ufb01", "\u1e9b", "\u0344", "Σ", "İ", "\x00", "\x85", "\u200b", "\ufeff",
               "\u00a0", "\u1680", "\n", "\ue000", "\U0001d400", "\U0002f800", "é", "e"])


def assert_same(a, b):
    assert a.shape == b.shape and a.dtype == b.dtype == np.float32
    assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
    assert np.array_equal(a.data, b.data)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(allow_nan=True), st.text(ALPHABET, max_size=12)),
                max_size=12))
def test_normalize_many_is_normalize_of_each_text(texts):
    assert normalize_many(texts) == [normalize(t) for t in texts]


def test_normalize_many_on_a_real_catalog_and_against_nfkc():
    from iei_match.bundled import catalog_dir
    from iei_match.io import load_programs

    programs = load_programs(catalog_dir("cn-vocational") / "programs.csv")
    texts = programs["text"].fillna("").astype(str).tolist()
    assert not all(unicodedata.is_normalized("NFKC", t) for t in texts)  # the slow path
    assert normalize_many(texts) == [normalize(t) for t in texts]
    alliance = [f"{t} 由第{i % 7}学院开设" for i, t in enumerate(texts * 3)]  # repeated pieces
    assert normalize_many(alliance) == [normalize(t) for t in alliance]
    from iei_match.runs import normalized_run_table

    assert normalized_run_table(alliance)[0] == [normalize(t) for t in alliance]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(ALPHABET, max_size=15), max_size=10))
def test_run_counts_are_the_counts_of_each_text(raw):
    texts = [normalize(t) for t in raw]
    for analyzer, analyze in (("word", tokenize), ("char", char_ngrams)):
        v = FieldVectorizer(analyzer=analyzer, max_df=1.0)
        v.fit(["数控 技术 abc", "护理 xyz c++"], ["数控机床 技术 护理", "临床 护理 abc12"])
        expected = _count_matrix([analyze(t, normalized=True) for t in texts], v._index)
        table = run_table(texts)
        got = v._counts(texts, True, table)
        assert_same(got, expected)


@pytest.mark.parametrize("analyzer", ["word", "char"])
def test_vectorising_a_real_catalog_through_its_runs(analyzer, monkeypatch):
    """Batches split between texts (one run table spans them) change nothing."""
    from iei_match.bundled import catalog_dir
    from iei_match.io import load_programs

    programs = load_programs(catalog_dir("cn-vocational") / "programs.csv")
    texts = normalize_many(programs["text"].tolist())
    v = FieldVectorizer(analyzer=analyzer).fit(programs["title"].tolist(), texts)
    analyze = tokenize if analyzer == "word" else char_ngrams
    expected = _count_matrix([analyze(t, normalized=True) for t in texts], v._index)
    assert_same(v._counts(texts, True), expected)
    monkeypatch.setattr(runs_module, "_CHUNK", 5000)
    table = run_table(texts)
    assert table.counts.shape == (len(texts), len(table.runs))
    assert_same(v._counts(texts, True, table), expected)


@pytest.mark.parametrize("texts", [
    ["数控 \ue000 技术", "护理 abc"],  # a text holds the separator as a piece
    ["", "数控 技术", "", "数控 技术 数控"],  # empty texts, repeated pieces
    [],
])
@pytest.mark.parametrize("analyzer", ["word", "char"])
def test_pieces_give_the_counts_of_each_text(texts, analyzer):
    v = FieldVectorizer(analyzer=analyzer, max_df=1.0).fit(["数控 技术"], ["护理 abc 数控"])
    analyze = tokenize if analyzer == "word" else char_ngrams
    expected = _count_matrix([analyze(t, normalized=True) for t in texts], v._index)
    for by in ("pieces", "runs"):
        table = run_table(texts, by=by)
        assert table.counts.shape[0] == len(texts)
        assert_same(v._counts(texts, True, table), expected)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(ALPHABET + ["\u00a8", "\u1fbd", "\u037a", "\u3000"], max_size=16),
                max_size=12))
def test_normalized_run_table_is_normalize_then_run_table(raw):
    """Raw texts normalised and cut in one pass: the texts of ``normalize`` and the
    counts of analysing each normalised text."""
    from iei_match.runs import normalized_run_table

    raw = raw + raw[::-1]  # repeated pieces
    normalized, table = normalized_run_table(raw)
    assert normalized == [normalize(t) for t in raw]
    for analyzer, analyze in (("word", tokenize), ("char", char_ngrams)):
        v = FieldVectorizer(analyzer=analyzer, max_df=1.0)
        v.fit(["数控 技术 abc", "护理 xyz c++"], ["数控机床 技术 护理", "临床 护理 abc12"])
        expected = _count_matrix([analyze(t, normalized=True) for t in normalized], v._index)
        assert_same(v._counts(normalized, True, table), expected)
