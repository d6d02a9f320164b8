"""Short job titles: head words of official titles, whole-word features, and the fit of a
generic title."""

from __future__ import annotations

import doctest

import pandas as pd
import pytest

from iei_match import short_titles
from iei_match.bundled import catalog_dir
from iei_match.candidates import candidate_pairs
from iei_match.features import pair_feature_columns
from iei_match.matcher import Matcher
from iei_match.short_titles import head_title
from iei_match.sides import Side


def test_doctests():
    assert doctest.testmod(short_titles).failed == 0


@pytest.mark.parametrize("title, head", [
    ("数控车工", "车工"),
    ("汽车维修工", "维修工"),
    ("中药炮制工", "炮制工"),  # a one-character role ending keeps the word before it
    ("工业废气治理工L", "治理工"),  # the catalog's mark is not part of the head
    ("电工", None),  # one word: nothing shorter to ask
    ("小学教师", None),
    ("证券交易专业人员", None),  # a head that names no trade
    ("Registered nurses", None),
])
def test_head_title(title, head):
    assert head_title(title) == head


def _content_model():
    needs = pd.DataFrame({"need_id": ["n1", "n2", "n3"], "title": ["护工", "电工", "文员"],
                          "text": ["照护病人", "电气线路安装", "办公室文书"]})
    programs = pd.DataFrame({
        "program_id": ["road", "care", "office"],
        "title": ["道路养护与管理", "护理", "现代文秘"],
        "text": ["道路养护工程的检测与维修", "培养护工和护理员，照护病人", "文员 秘书 办公事务"]})
    with pytest.warns(UserWarning):
        matcher = Matcher().fit(needs, programs, links=None)
    return matcher, needs, programs


def test_whole_word_features_tell_a_word_from_a_piece_of_one():
    # "护工" is in both profiles as characters, but a word only in the care program's.
    matcher, needs, programs = _content_model()
    asked = pd.DataFrame({"need_id": ["q"], "title": ["护工"], "text": [""]})
    n_side = Side.build(asked, "need_id", matcher.word_, matcher.char_)
    p_side = Side.build(programs, "program_id", matcher.word_, matcher.char_)
    nbrs = matcher.memory_.neighbours(n_side)
    n_rows, p_rows = candidate_pairs(matcher.memory_, n_side, p_side, nbrs, 3, "need")
    f = pd.DataFrame(pair_feature_columns(matcher.memory_, n_side, p_side, nbrs, n_rows,
                                          p_rows), index=p_side.ids[p_rows])
    assert f.loc["road", "need_title_in_prog_text"] == 1  # as characters: both
    assert f.loc["care", "need_title_in_prog_text"] == 1
    assert f.loc["road", "need_title_words_in_program"] == 0  # as a word: one
    assert f.loc["care", "need_title_words_in_program"] == 1
    assert f.loc["care", "need_title_idf"] > 0
    assert f.loc["care", "need_title_unknown_words"] == 0


def test_title_in_text_is_the_same_for_one_text_and_for_many():
    """A request's pairs share one need: its text is searched once per distinct title."""
    import numpy as np

    from iei_match.features import _contains

    titles = np.array(["护工", "电工", "护工", "工", "", "道路养护"], dtype=object)
    texts = np.array(["道路养护工程", "照护病人的护工", "电工"], dtype=object)
    rows = np.array([0, 1, 2, 3, 4, 5, 0, 5])
    for cols in (np.full(8, 1), np.full(8, 0), np.array([0, 1, 2, 0, 1, 2, 2, 0])):
        want = [float(len(titles[r]) > 1 and titles[r] in texts[c])
                for r, c in zip(rows, cols, strict=True)]
        assert _contains(titles, texts, rows, cols).tolist() == want
    assert np.isnan(_contains(None, texts, rows[:2], rows[:2])).all()


@pytest.fixture(scope="module")
def national():
    """A model of the bundled Chinese catalog (its links), and its programs."""
    d = catalog_dir("cn-vocational")
    read = {"dtype": str, "keep_default_na": False}
    needs, programs = (pd.read_csv(d / f, **read) for f in ("needs.csv", "programs.csv"))
    links = pd.read_csv(d / "links.csv", dtype={"need_id": str, "program_id": str})
    return Matcher(random_state=0).fit(needs, programs, links), programs


@pytest.mark.slow
def test_a_generic_title_is_not_high_for_a_program_sharing_its_characters(national):
    """"护工" is in the profiles of 道路养护与管理 ("养护工程") and of many other programs
    ("保护工作") only as two characters of other words; none of them is ``high``, and a
    program of care comes first."""
    matcher, programs = national
    asked = pd.DataFrame({"need_id": ["q"], "title": ["护工"], "text": [""]})
    run = matcher.rank(asked, programs, k=len(programs), explain=False)
    shown = run.merge(programs[["program_id", "title", "text"]], on="program_id")
    pieces = shown[shown["text"].str.contains("护工") & ~shown["text"].str.contains("护理")]
    assert "道路养护与管理" in set(pieces["title"])
    assert (pieces["fit_level"] != "high").all(), pieces[["title", "fit", "fit_level"]]
    assert (pieces["rank"] > 10).all()
    assert shown.iloc[0]["title"] in {"护理", "智慧健康养老服务与管理", "中医护理"}
