"""Explanations a person understands: matched terms as the texts spell them, no filler, and
reasons in plain words, without the features a recruiter would have to decode."""

from __future__ import annotations

import doctest
import re
import warnings
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iei_match import explanations
from iei_match.explanations import (
    FEATURE_LABELS,
    FILLER_WORDS,
    describe_feature,
    is_filler,
    is_shown,
    surface_forms,
    surface_terms,
)
from iei_match.kernels import topk_pair_products
from iei_match.matcher import Matcher
from iei_match.spellings import spell_pairs
from iei_match.text import tokenize
from test_matcher import PARAMS, build_world

NEEDS = pd.DataFrame({
    "need_id": ["lathe", "care", "cnc"],
    "title": ["Lathe operator", "Nursing assistant", "数控车工"],
    "text": ["Operate CNC lathes daily as required; responsible for lathe setup and turning",
             "Provide nursing care for elderly patients, daily nursing records",
             "按要求负责日常数控车床操作，基于图纸完成零件车削加工，企业生产"],
})
PROGRAMS = pd.DataFrame({
    "program_id": ["machining", "nursing", "数控"],
    "title": ["CNC machining", "Nursing", "数控技术"],
    "text": ["Students learn lathe turning, CNC lathes programming and machining",
             "Clinical nursing and nursing care of elderly patients",
             "数控车床编程与车削加工，企业实践，按要求考取证书"],
})


def test_doctests():
    assert doctest.testmod(explanations).failed == 0


@pytest.fixture(scope="module")
def fitted():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Matcher(**PARAMS).fit(NEEDS, PROGRAMS, links=None)


@pytest.fixture(scope="module")
def ranked(fitted):
    return {m.need_id: m for m in fitted.rank(NEEDS, PROGRAMS, k=1, as_frame=False)}


def test_matched_terms_are_words_of_the_texts_not_stems(ranked):
    assert ranked["lathe"].program_id == "machining"
    assert {"lathe", "turning"} <= set(ranked["lathe"].matched_terms)
    assert "nursing" in ranked["care"].matched_terms
    for need_id, m in ranked.items():
        text = " ".join(NEEDS.set_index("need_id").loc[need_id, ["title", "text"]]).lower()
        for term in m.matched_terms:
            assert term in text, (term, text)
            if not re.search(r"[\u4e00-\u9fff]", term):  # a whole English word of the text
                assert re.search(rf"(?<![a-z]){re.escape(term)}(?![a-z])", text), term


def test_matched_terms_leave_out_filler(ranked):
    terms = ranked["cnc"].matched_terms
    assert ranked["cnc"].program_id == "数控" and terms
    assert not set(terms) & {"按", "要求", "日常", "基于", "企业", "操作", "负责", "daili",
                             "daily", "required", "respons", "responsible"}
    assert all(t not in FILLER_WORDS for m in ranked.values() for t in m.matched_terms)


def test_surface_terms_take_the_most_frequent_spelling():
    forms = [surface_forms("nurses and nursing, nursing"), surface_forms("nurse")]
    assert surface_terms(["nurs"], forms) == ["nursing"]
    assert surface_terms(["nurs", "要求", "按", "护理"], []) == ["nurs", "护理"]


def plain_surface_terms(terms, forms, n_terms=5):
    """surface_terms written the plain way: merge the counts, take the best spelling."""
    out = []
    for term in terms:
        if is_filler(term):
            continue
        counts = Counter()
        for f in forms:
            counts.update(f.get(term, ()))
        shown = min(counts, key=lambda w: (-counts[w], len(w), w)) if counts else term
        if shown not in out:
            out.append(shown)
            if len(out) == n_terms:
                break
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["nurse", "nurses", "nursing", "nursed", "护理"]),
                         max_size=4), max_size=3))
def test_surface_terms_equal_the_plain_merge_of_counts(texts):
    forms = [surface_forms(" ".join(words)) for words in texts]
    terms = ["nurs", "护理", "respons", "nurs"]
    assert surface_terms(terms, forms) == plain_surface_terms(terms, forms)


def test_matched_terms_equal_the_plain_loop_over_pairs(fitted):
    mixed = NEEDS.assign(text=NEEDS["text"] + [" 数控车床 lathes", " 护理 nurses", " CNC lathe"])
    needs = fitted._frame_side(mixed, "need")
    programs = fitted._frame_side(PROGRAMS, "program")
    n_rows, p_rows = (a.ravel() for a in np.meshgrid(np.arange(3), np.arange(3)))
    got = fitted._matched_terms(needs, programs, n_rows, p_rows)
    cols, _ = topk_pair_products(needs.word.full, programs.word.full, n_rows, p_rows, 15)
    vocab = fitted.word_.vocabulary_

    def text(side, i):
        return f"{side.titles[i]} {side.texts[i]}"

    want = [plain_surface_terms([vocab[c] for c in row if c >= 0],
                                [surface_forms(text(needs, n)), surface_forms(text(programs, p))])
            for row, n, p in zip(cols, n_rows, p_rows, strict=True)]
    assert got == want
    assert any(re.search(r"[a-z]", t) for terms in got for t in terms)  # both kinds shown
    assert any(re.search(r"[\u4e00-\u9fff]", t) for terms in got for t in terms)


SPELLINGS = ["nurse", "nurses", "nursing", "nursed", "lathe", "lathes", "operator",
             "operators", "operate", "cnc", "护理"]
TERMS = ["nurs", "lath", "oper", "cnc", "护理", "machin", "weld"]  # none is filler


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(SPELLINGS), max_size=6), min_size=1, max_size=4),
       st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3),
                          st.lists(st.integers(0, len(TERMS) - 1), max_size=6)),
                min_size=1, max_size=8),
       st.integers(1, 5))
def test_spell_pairs_equal_the_plain_merge_of_counts(words, pairs, n_terms):
    texts = [" ".join(w) for w in words]
    pairs = [(a % len(texts), b % len(texts), t) for a, b, t in pairs]
    width = max(len(t) for _, _, t in pairs) or 1
    terms = np.full((len(pairs), width), -1)
    for i, (_, _, t) in enumerate(pairs):
        terms[i, :len(t)] = t
    got = spell_pairs(terms, np.array([len(t) for _, _, t in pairs]), TERMS,
                      {t: j for j, t in enumerate(TERMS)}, texts.__getitem__,
                      np.array([a for a, _, _ in pairs]), texts.__getitem__,
                      np.array([b for _, b, _ in pairs]), n_terms)
    want = [plain_surface_terms([TERMS[j] for j in t],
                                [surface_forms(texts[a]), surface_forms(texts[b])], n_terms)
            for a, b, t in pairs]
    assert got == want


def test_labels_are_plain_and_say_which_way_the_factor_went():
    assert describe_feature("word_full", "zh", 0.8) == "岗位描述与专业培养方向高度一致"
    assert describe_feature("word_full", "en", 0.8) == (
        "The job description matches what the program trains for")
    assert describe_feature("knn_sum", "zh", 0.3) == "同类岗位曾与该专业合作"
    assert describe_feature("knn_sum", "en", 0.3) == (
        "Similar jobs have partnered with this program before")
    assert describe_feature("same_city", "zh", -0.2) == "与岗位不在同城"
    for name in ("knn_first_rank", "program_capacity", "need_headcount", "word_full_rank",
                 "knn_sum_rel", "need_level"):
        assert not is_shown(name), name


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_top_factors_are_shown_features_with_labels(lang):
    world = build_world(lang)
    matcher = world["matcher"]
    shown = [n for n in matcher.feature_names_ if is_shown(n)]
    for name in shown:  # every reason a person may see has a plain label in both languages
        assert name in FEATURE_LABELS or name.startswith("prior_"), name
    assert len(shown) < len(matcher.feature_names_)  # some stay in the model only
    ranking = matcher.rank(world["new"], world["programs"], k=5, explain=5, as_frame=False)
    for m in ranking:
        assert len(m.contributions) == 3 and all(is_shown(n) for n in m.contributions), m


def test_two_reasons_never_read_the_same():
    """Each reason a person may see reads differently from every other, in both languages
    and both directions (a model's four priors were all "此类岗位很少与该类专业合作")."""
    names = [n for n in FEATURE_LABELS if is_shown(n)]
    names += [f"prior_n{n}_p{p}" for n in (2, 3) for p in (2, 4)]
    for lang in ("zh", "en"):
        for sign in (1.0, -1.0):
            labels = [describe_feature(n, lang, sign) for n in names]
            twice = {label for label in labels if labels.count(label) > 1}
            assert not twice, (lang, sign, twice)


def _explained_rows(monkeypatch, k: int):
    """A model of the test world, the feature rows of a ranking's explained pairs, and the
    model's own ``_top_factors`` (to call on rows changed by a test)."""
    world = build_world("zh")
    matcher = world["matcher"]
    seen = {}
    explain = matcher._top_factors

    def spy(x, direction, *args):
        seen["x"] = x.copy()
        return explain(x, direction, *args)

    monkeypatch.setattr(matcher, "_top_factors", spy)
    matcher.rank(world["new"], world["programs"], k=k, explain=k, as_frame=False)
    return matcher, seen["x"], explain


def _made_a_top_reason(matcher, x: np.ndarray, features: list[str], value: float,
                       raising: bool) -> tuple[np.ndarray, int, np.ndarray]:
    """``x`` with the first of ``features`` set to ``value`` where that makes it, for some
    rows, as large a contribution as one of their three largest shown ones (``raising``:
    and a positive one): the changed rows, the feature's column and those rows."""
    names = matcher.feature_names_
    shown = [i for i, n in enumerate(names) if is_shown(n)]
    for j in (names.index(f) for f in features):
        changed = x.copy()
        changed[:, j] = value
        contrib = matcher.contributions(changed, "need")
        third = np.sort(np.abs(contrib[:, shown]), axis=1)[:, -3]
        moved = contrib[:, j] if raising else np.abs(contrib[:, j])
        rows = np.flatnonzero((moved > 0) & (moved >= third))
        if len(rows):
            return changed, j, rows
    pytest.fail(f"no feature set to {value} moves a score enough to test this")


def test_a_feature_the_pair_lacks_is_no_reason(monkeypatch):
    """A feature that is NaN for a pair (a prior of a need without a code, the level match
    of a need without a level) moves the score by where its missing value goes, which says
    nothing about the pair: it still counts in the score but is never shown as a reason."""
    matcher, x, explain = _explained_rows(monkeypatch, k=3)
    names = matcher.feature_names_
    # A shown feature whose missing value moves some pair's score as much as one of the
    # pair's three largest shown contributions: shown by magnitude alone, it would be a
    # reason.
    lacking, j, rows = _made_a_top_reason(matcher, x, [n for n in names if is_shown(n)],
                                          np.nan, raising=False)
    factors = explain(lacking, "need")
    assert all(names[j] not in factors[i] for i in rows)
    assert all(len(f) == 3 for f in factors)  # the next shown features take its place


def test_nothing_in_common_is_no_reason_to_match(monkeypatch):
    """A feature whose wording says the sides have something in common ("the program
    profile covers the job's key words") is not shown where its value is 0 and it raised
    the score: a bare title's BM25 at 0 pushed some scores up, and the card claimed words
    that were not there."""
    matcher, x, explain = _explained_rows(monkeypatch, k=5)
    names = matcher.feature_names_
    nothing, j, rows = _made_a_top_reason(
        matcher, x, [n for n in names if is_shown(n) and explanations.says_in_common(n)],
        0.0, raising=True)
    factors = explain(nothing, "need")
    assert all(names[j] not in factors[i] for i in rows)
    assert all(len(f) == 3 for f in factors)  # the next shown features take its place


@pytest.mark.parametrize(("title", "text", "bridge", "want"), [
    ("叉车司机", "", False, {"驾驶员": "司机"}),
    ("空乘", "", False, {"空中": "空乘", "乘务": "空乘"}),
    ("叉车司机，持驾驶员证", "", False, {}),  # it writes 驾驶员 itself
    ("汽车维修工", "负责汽车保养", True, {}),  # nothing read into it
    ("CNC machinist", "", True, {"数控": "CNC", "机械加工": "machinist", "车工": "machinist"}),
    ("Welder", "", False, {}),  # a model of English texts bridges nothing
])
def test_read_from_gives_what_the_need_wrote_for_each_word_read_into_it(
        title, text, bridge, want):
    got = explanations.read_from(title, text, bridge=bridge)
    assert {w: got[w] for w in want if w in got} == want
    written = set(tokenize(title)) | set(tokenize(text))
    assert not set(got) & written  # never a word the need writes
    if not want:
        assert got == {}
    assert "机械加工" not in explanations.read_from("CNC machinist")  # not bridged


def test_read_from_names_the_words_the_engine_adds_to_a_need():
    """Every word that :func:`read_from` names is a word of the title the engine ranks
    (expanded, and bridged for a Chinese model), and every added word is named."""
    from iei_match.bridge import bridge_text
    from iei_match.skills import expand_title

    for title in ("叉车司机", "幼师", "汽修工", "CNC machinist", "registered nurse", "数控车工"):
        got = explanations.read_from(title, bridge=True)
        engine = expand_title(bridge_text(title).text if title.isascii() else title)
        added = set(tokenize(engine)) - set(tokenize(title))
        assert set(got) == added, title
