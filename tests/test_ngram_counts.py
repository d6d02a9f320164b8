"""The numpy n-gram counter gives exactly the counts of ``text.char_ngrams``."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import iei_match.ngram_counts as ngram_counts
from iei_match.ngram_counts import NgramKeys, char_ngram_counts
from iei_match.text import char_ngrams, normalize
from iei_match.vectorize import FieldVectorizer, _count_matrix

# Characters that exercise every rule of a run: Chinese (BMP, compatibility, extension B),
# ASCII letters and digits, "+" and "#" (inside a word only), separators, other scripts.
ALPHABET = list("数控技术中药颗粒护理的") + ["\u3400", "\uf900", "\U00020001", "\U0002ebef"] + \
    list("abcxyz0129+#") + list(" -_.,，。/") + list("éαЖ🙂") + ["\U00010000"]

TRICKY = ["", " ", "a", "+", "#", "c++ 和 c#", "+#a+b", "++c", "a+", "数", "数控", "数控cnc机床",
          "ＧＭＰ认证", "x 数 y", "12306", "a1+#b2", "中文 english 混合 text", "🙂数🙂",
          "\U00020001\U00020002", "é数é", "#数#", "a" * 50, "数" * 50, "a b c d"]


def reference(texts, index, ngram_range=(2, 3)):
    return _count_matrix([char_ngrams(t, ngram_range) for t in texts], index)


def vocabulary_of(texts, ngram_range=(2, 3)):
    terms = sorted({g for t in texts for g in char_ngrams(t, ngram_range)})
    return {t: j for j, t in enumerate(terms)}


def assert_same(a, b):
    assert a.shape == b.shape
    assert (a != b).nnz == 0
    assert a.dtype == np.float32


@pytest.mark.parametrize("ngram_range", [(2, 3), (1, 3), (2, 2), (3, 3), (1, 1)])
def test_tricky_texts_count_like_char_ngrams(ngram_range):
    texts = [normalize(t) for t in TRICKY]
    index = vocabulary_of(texts, ngram_range)
    got = char_ngram_counts(texts, NgramKeys(index), ngram_range)
    assert_same(got, reference(texts, index, ngram_range))
    assert got.nnz > 0


def test_terms_outside_the_vocabulary_are_not_counted():
    index = vocabulary_of(["数控技术"])
    got = char_ngram_counts(["数控机床 数控技术"], NgramKeys(index))
    assert {t: got[0, j] for t, j in index.items() if got[0, j]} == \
        {"数控": 2, "控技": 1, "技术": 1, "数控技": 1, "控技术": 1}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=ALPHABET, max_size=40), min_size=1, max_size=8),
       st.lists(st.text(alphabet=ALPHABET, max_size=40), max_size=4))
def test_random_texts_count_like_char_ngrams(texts, vocabulary_texts):
    texts = [normalize(t) for t in texts]
    # The vocabulary: part of the texts' own n-grams plus unrelated ones.
    index = vocabulary_of(texts[::2] + [normalize(t) for t in vocabulary_texts])
    assert_same(char_ngram_counts(texts, NgramKeys(index)), reference(texts, index))


def test_batches_split_between_texts_give_the_same_counts(monkeypatch):
    texts = [normalize(t) for t in TRICKY * 5]
    index = vocabulary_of(texts)
    whole = char_ngram_counts(texts, NgramKeys(index))
    monkeypatch.setattr(ngram_counts, "_CHUNK", 7)
    assert_same(char_ngram_counts(texts, NgramKeys(index)), whole)
    assert_same(whole, reference(texts, index))


def test_empty_input_and_empty_vocabulary():
    assert char_ngram_counts([], NgramKeys({"数控": 0})).shape == (0, 1)
    got = char_ngram_counts(["数控"], NgramKeys({}))
    assert got.shape == (1, 0) and got.nnz == 0


def test_a_vocabulary_with_long_terms_is_not_keyed_and_the_vectorizer_counts_in_python():
    assert not NgramKeys({"数控技术": 0}).usable
    v = FieldVectorizer(analyzer="char", max_df=1.0).fit(["数控"], ["数控机床"])
    v.vocabulary_ = v.vocabulary_ + ["数控机床"]  # not an n-gram of 2-3 characters
    v._index = {t: j for j, t in enumerate(v.vocabulary_)}
    v.idf_ = np.ones(len(v.vocabulary_), np.float32)
    v.__dict__.pop("_keys", None)
    m = v.transform(["数控"], ["数控机床"])
    assert m.counts.shape[1] == len(v.vocabulary_)


def test_char_vectorizer_matches_the_python_counts_on_a_real_catalog():
    from iei_match.bundled import catalog_dir
    from iei_match.io import load_programs

    programs = load_programs(catalog_dir("cn-vocational") / "programs.csv")
    texts = [normalize(t) for t in programs["text"].fillna("").astype(str)]
    v = FieldVectorizer(analyzer="char").fit(programs["title"].tolist(), texts)
    assert_same(char_ngram_counts(texts, NgramKeys(v._index)), reference(texts, v._index))
