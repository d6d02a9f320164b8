"""Bilingual text normalisation and tokenisation.

Chinese runs are segmented with jieba's precise mode (the Rust port ``rjieba``: same
dictionary, ~16x faster; parts of long words are matched by the character n-grams);
English words are lower-cased and Snowball-stemmed; everything is NFKC-normalised
first, so full-width letters and digits (``ＧＭＰ``, ``１２``) read like their ASCII forms.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import rjieba
import snowballstemmer
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

__all__ = ["normalize", "normalize_many", "tokenize", "char_ngrams", "has_cjk", "all_cjk"]

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"
_RUN = re.compile(rf"[{_CJK}]+|[a-z0-9][a-z0-9+#]*")
_HAS_CJK = re.compile(rf"[{_CJK}]")
_CJK_RUN = re.compile(rf"[{_CJK}]+")
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\ufeff]")

# Function words and catalogue boilerplate that carry no matching signal.
CHINESE_STOP_WORDS = frozenset(
    "的 了 和 与 及 或 等 在 是 为 对 从 以 于 并 其 中 上 下 个 之 而 将 由 把 被 能 可 "
    "有 具有 进行 相关 工作 能力 具备 掌握 熟悉 了解 一定 以及 包括 方面 主要 各种 各类 "
    "本 该 专业 职业 岗位 人员 从事 培养 面向".split()
)
_STOP = frozenset(ENGLISH_STOP_WORDS) | CHINESE_STOP_WORDS
_stemmer = snowballstemmer.stemmer("english")


# Joins texts handled together: not changed by NFKC, ``_CONTROL`` or lower(), not a
# space, neither cased nor case-ignorable (so lower() treats it as the end of a text),
# never part of a run.
SEPARATOR = "\ue000"
RUN_OR_SEPARATOR = re.compile(rf"{_RUN.pattern}|{SEPARATOR}")


def normalize_many(texts: Sequence[object]) -> list[str]:
    """``[normalize(t) for t in texts]``, faster on many texts.

    CPython's NFKC takes a slow path (~0.4 µs a character) on any text with a
    compatibility character, and Chinese full-width punctuation (，；（）) is one. Here
    the characters NFKC changes on their own are found once for the whole batch and each
    is replaced by its NFKC form. That keeps every text's NFKD (canonical reordering is a
    stable sort within runs of combining marks), so its NFKC is unchanged, and the result
    is usually in NFKC already (checked; normalised again where it is not). Control
    characters and case are handled on the joined texts too.

    Examples
    --------
    >>> normalize_many(["ＧＭＰ　认证", None, "护理，康复"])
    ['gmp 认证', '', '护理,康复']
    """
    strings = ["" if t is None or (isinstance(t, float) and t != t) else str(t)
               for t in texts]
    joined = SEPARATOR.join(strings)
    if not strings or joined.count(SEPARATOR) != len(strings) - 1:  # a text holds the separator
        return [normalize(t) for t in strings]
    if not unicodedata.is_normalized("NFKC", joined):
        cp = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), np.uint32)
        # ASCII and the common Chinese characters are in NFKC on their own: skip them.
        cp = cp[(cp >= 0x80) & ((cp < 0x4E00) | (cp > 0x9FFF))]
        for code in np.unique(cp):
            ch = chr(code)
            if not unicodedata.is_normalized("NFKC", ch):  # NFKC changes it on its own
                joined = joined.replace(ch, unicodedata.normalize("NFKC", ch))
        strings = [s if unicodedata.is_normalized("NFKC", s) else unicodedata.normalize("NFKC", s)
                   for s in joined.split(SEPARATOR)]
        joined = SEPARATOR.join(strings)
        if joined.count(SEPARATOR) != len(strings) - 1:  # NFKC of a text made the separator
            return [normalize(t) for t in texts]
    return [" ".join(s.split()) for s in _CONTROL.sub(" ", joined).lower().split(SEPARATOR)]


def normalize(text: object) -> str:
    """Return ``text`` NFKC-normalised, lower-cased, without control characters.

    Parameters
    ----------
    text : object
        Any value; ``None`` and NaN become ``""``.

    Returns
    -------
    str

    Examples
    --------
    >>> normalize("ＧＭＰ　认证\\x00 Python")
    'gmp 认证 python'
    """
    if text is None or (isinstance(text, float) and text != text):
        return ""
    s = str(text)
    if not unicodedata.is_normalized("NFKC", s):  # the check is ~100x cheaper
        s = unicodedata.normalize("NFKC", s)
    return _clean(s)


def _clean(s: str) -> str:
    """Control characters and runs of spaces as one space, stripped, lower-cased."""
    return " ".join(_CONTROL.sub(" ", s).split()).lower()  # split(): the whitespace \s matches


def all_cjk(word: str) -> bool:
    """Whether ``word`` is made of Chinese characters only (and is not empty)."""
    return _CJK_RUN.fullmatch(word) is not None


def has_cjk(text: str) -> bool:
    """Whether ``text`` contains any Chinese character."""
    return _HAS_CJK.search(text) is not None


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return _stemmer.stemWord(word)


@lru_cache(maxsize=65_536)
def _cut(run: str) -> tuple[str, ...]:
    # Catalogs repeat their phrases: a run seen before is not segmented again.
    return tuple(t for t in rjieba.cut(run) if t not in _STOP)


def tokenize(text: object, *, normalized: bool = False) -> list[str]:
    """Split mixed Chinese-English text into word tokens.

    Chinese runs are segmented in jieba's precise mode; English words are stemmed;
    stop words and one-character Latin tokens are dropped.

    Parameters
    ----------
    text : object
    normalized : bool, default=False
        ``text`` is already the output of :func:`normalize` (it is not normalised again).

    Examples
    --------
    >>> tokenize("中药配方颗粒生产技术人员，熟悉GMP")
    ['中药', '配方', '颗粒', '生产', '技术人员', 'gmp']
    >>> tokenize("Registered Nurses managing patient care")
    ['regist', 'nurs', 'manag', 'patient', 'care']
    """
    out: list[str] = []
    for run in _RUN.findall(str(text) if normalized else normalize(text)):
        if _HAS_CJK.match(run):
            out += _cut(run)
        elif run not in _STOP and len(run) > 1:
            out.append(_stem(run))
    return out


def char_ngrams(text: object, ngram_range: tuple[int, int] = (2, 3), *,
                normalized: bool = False) -> list[str]:
    """Character n-grams of each word or Chinese run (no n-gram spans two runs).

    ``normalized=True`` says ``text`` is already the output of :func:`normalize`. For many
    texts, :func:`iei_match.ngram_counts.char_ngram_counts` counts the same n-grams faster.

    Examples
    --------
    >>> char_ngrams("数控 CNC", (2, 2))
    ['数控', 'cn', 'nc']
    """
    lo, hi = ngram_range
    out: list[str] = []
    for run in _RUN.findall(str(text) if normalized else normalize(text)):
        n_chars = len(run)
        for n in range(lo, hi + 1):
            out.extend(run[i : i + n] for i in range(n_chars - n + 1))
        if n_chars < lo:
            out.append(run)
    return out
