"""Tests for iei_match.text: normalisation, bilingual tokenisation and character n-grams."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

import iei_match.text as text_module
from iei_match.text import CHINESE_STOP_WORDS, char_ngrams, has_cjk, normalize, tokenize


def test_docstring_examples_run():
    result = doctest.testmod(text_module)
    assert result.attempted > 0
    assert result.failed == 0


# --- normalize -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＧＭＰ", "gmp"),  # full-width Latin letters
        ("１２３", "123"),  # full-width digits
        ("Ｃ＋＋　编程", "c++ 编程"),  # full-width symbols and the ideographic space
        ("数控（ＣＮＣ）", "数控(cnc)"),  # full-width brackets
        ("ﬁle", "file"),  # compatibility ligature
        ("Python", "python"),
    ],
)
def test_normalize_applies_nfkc_and_lower_case(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize("control", ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\u200b", "\ufeff"])
def test_normalize_replaces_control_and_zero_width_characters(control):
    assert normalize(f"焊接{control}技术") == "焊接 技术"
    assert normalize(f"{control}weld{control}") == "weld"


def test_normalize_collapses_whitespace_and_strips():
    assert normalize("  数控\t\t车工 \n\r  CNC  ") == "数控 车工 cnc"


@pytest.mark.parametrize("missing", [None, float("nan"), np.float64("nan")])
def test_normalize_missing_values_are_empty(missing):
    assert normalize(missing) == ""


def test_normalize_other_values_are_stringified():
    assert normalize(12) == "12"
    assert normalize(1.5) == "1.5"
    assert normalize("") == ""


def test_normalize_is_idempotent():
    for raw in ["ＧＭＰ　认证\x00 Python", "Ｃ＋＋", "  a\tB  ", "护理 NURSING"]:
        once = normalize(raw)
        assert normalize(once) == once


# --- tokenize --------------------------------------------------------------------------


def test_tokenize_chinese_is_a_precise_segmentation():
    # Precise mode: the tokens of a Chinese run without stop words are a partition of it.
    for text in ("数控机床操作工", "临床护理病人健康照护", "财务报表编制税务申报"):
        tokens = tokenize(text)
        assert len(tokens) >= 2
        assert "".join(tokens) == text
    assert tokenize("数控机床操作工") == ["数控机床", "操作工"]


def test_tokenize_english_is_lower_cased_and_stemmed():
    tokens = tokenize("Nurses NURSING nursed")
    assert tokens == ["nurs", "nurs", "nurs"]
    assert tokenize("Managing managers") == ["manag", "manag"]


def test_tokenize_english_stop_words_and_single_letters_are_dropped():
    assert tokenize("the and of a b c to for") == []
    assert tokenize("a welder") == ["welder"]


def test_tokenize_chinese_stop_words_are_dropped():
    assert tokenize("的 和 专业 岗位") == []
    assert tokenize("会计和审计") == ["会计", "审计"]
    tokens = tokenize("从事护理工作的护士")
    assert "护理" in tokens and "护士" in tokens
    assert not set(tokens) & CHINESE_STOP_WORDS


def test_tokenize_mixed_text_keeps_both_scripts_in_order():
    tokens = tokenize("熟悉FANUC系统与CNC编程, managing Python scripts")
    assert "fanuc" in tokens and "cnc" in tokens
    assert "系统" in tokens and "编程" in tokens
    assert "manag" in tokens and "python" in tokens and "script" in tokens
    assert tokens.index("fanuc") < tokens.index("系统") < tokens.index("cnc") < tokens.index("编程")
    assert tokens.index("编程") < tokens.index("manag")


def test_tokenize_full_width_reads_like_ascii():
    assert tokenize("ＧＭＰ认证") == tokenize("GMP认证")
    assert "gmp" in tokenize("ＧＭＰ认证")


def test_tokenize_keeps_programming_language_symbols():
    tokens = tokenize("C++ and C# developer")
    assert "c++" in tokens and "c#" in tokens


def test_tokenize_empty_and_missing():
    assert tokenize("") == []
    assert tokenize(None) == []
    assert tokenize(math.nan) == []
    assert tokenize("，。！？ ... ---") == []


def test_has_cjk():
    assert has_cjk("数控")
    assert has_cjk("CNC 数控")
    assert not has_cjk("CNC machining")
    assert not has_cjk("")


# --- char_ngrams -----------------------------------------------------------------------


def test_char_ngrams_default_range_2_to_3():
    assert char_ngrams("护理学") == ["护理", "理学", "护理学"]


def test_char_ngrams_do_not_span_runs():
    grams = char_ngrams("数控 CNC", (2, 3))
    assert grams == ["数控", "cn", "nc", "cnc"]
    assert "控c" not in grams and "控 c" not in grams
    # Chinese and Latin written together are still separate runs.
    assert char_ngrams("数控CNC", (2, 2)) == ["数控", "cn", "nc"]


def test_char_ngrams_short_runs_are_kept_whole():
    assert char_ngrams("a 数", (2, 3)) == ["a", "数"]
    assert char_ngrams("ab", (3, 4)) == ["ab"]


def test_char_ngrams_normalises_first():
    assert char_ngrams("ＣＮＣ", (2, 2)) == char_ngrams("cnc", (2, 2)) == ["cn", "nc"]
    assert char_ngrams(None) == []
    assert char_ngrams("") == []


@pytest.mark.parametrize("ngram_range", [(1, 1), (2, 2), (1, 3), (3, 5)])
def test_char_ngrams_count_matches_formula(ngram_range):
    lo, hi = ngram_range
    word = "industry"
    grams = char_ngrams(word, ngram_range)
    expected = sum(max(len(word) - n + 1, 0) for n in range(lo, hi + 1))
    assert len(grams) == expected
    assert all(lo <= len(g) <= hi for g in grams)
    assert all(g in word for g in grams)
