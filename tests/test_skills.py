"""Skill coverage with the synonym table: phrase, all words, or any synonym, both ways."""

from __future__ import annotations

import doctest

import pytest

from iei_match import skills
from iei_match.skills import SYNONYMS, canonical, covers, merge_counts, missing_skills
from iei_match.text import normalize


def test_doctests():
    assert doctest.testmod(skills).failed == 0


@pytest.mark.parametrize("skill, text", [
    ("PLC", "掌握可编程控制器编程与调试"),
    ("PLC", "熟悉可编程逻辑控制器"),
    ("可编程控制器", "PLC programming"),
    ("PLC编程", "可编程控制器编程"),
    ("CAD", "能用计算机辅助设计软件绘图"),
    ("计算机辅助设计", "uses CAD daily"),
    ("GMP", "符合药品生产质量管理规范的生产"),
    ("药品生产质量管理规范", "GMP workshop"),
    ("good manufacturing practice", "GMP 车间"),
    ("CNC", "数控机床操作与编程"),
    ("数控", "CNC machining"),
    ("Nursing", "老年护理与康复"),
    ("elderly care", "养老护理员"),
    ("BMS", "动力电池与电池管理系统"),
    ("无损检测", "NDT level 2"),
    ("ＧＭＰ", "gmp"),                        # full-width is normalised
    ("patient care", "care for each patient"),  # all words, not the phrase
    ("", "anything"),
])
def test_covered(skill, text):
    assert covers(text, skill)


@pytest.mark.parametrize("skill, text", [
    ("AI", "maintain the line"),          # Latin terms match whole words only
    ("CAN总线", "staff can weld"),
    ("PLC", "plcx 控制"),
    ("GMP", "GSP 药品经营质量管理规范"),  # a neighbouring standard is not the same
    ("区块链", "软件开发与测试"),
    ("CAD", "计算机辅助制造"),
])
def test_not_covered(skill, text):
    assert not covers(text, skill)


def test_missing_skills_keeps_order_and_spelling():
    text = "课程：可编程控制器编程、计算机辅助设计、电工基础"
    assert missing_skills(["区块链", "PLC", "CAD", "GMP", "电工"], text) == ["区块链", "GMP"]


def test_table_groups_are_disjoint_and_named_by_their_first_term():
    seen = set()
    for group in SYNONYMS:
        terms = {normalize(t) for t in group}
        assert len(group) >= 2 and not terms & seen, group
        seen |= terms
        assert {canonical(t) for t in group} == {normalize(group[0])}, group
    assert len(SYNONYMS) >= 40


def test_merge_counts_merges_synonyms_most_asked_first():
    got = merge_counts([("GMP", 10), ("药品生产质量管理规范", 5), ("区块链", 30),
                        ("Good Manufacturing Practice", 1), ("区块链", 2), ("护理", 4)])
    assert got == [{"skill": "GMP", "needs": 3, "headcount": 16},
                   {"skill": "区块链", "needs": 2, "headcount": 32},
                   {"skill": "护理", "needs": 1, "headcount": 4}]


@pytest.mark.parametrize("title, terms", [
    ("质检员", ["质检"]),  # a trade word with a role ending
    ("电焊工", ["电焊"]),
    ("外贸跟单员", ["外贸"]),
    ("护工", ["护工"]),
    ("GIS工程师", ["gis"]),
    ("道路养护工", []),  # 护工 is only a piece of 养护工 there
    ("汽车养护工程", []),
    ("社工站长", ["社工"]),
])
def test_title_terms_are_whole_words(title, terms):
    assert skills.title_terms(title) == terms


@pytest.mark.parametrize("title, added", [
    ("幼师", ["幼儿教师", "幼儿园教师"]),
    ("社工", ["社会工作"]),
    ("空乘", ["空中乘务"]),
    ("汽修工", ["汽车维修"]),
    ("暖通工程师", ["供热通风与空调", "供暖通风与空调"]),
    ("护工", ["护理员"]),
])
def test_expand_title_adds_the_catalogs_forms(title, added):
    assert skills.expand_title(title).split(" ") == [title, *added]


@pytest.mark.parametrize("title", [
    "道路养护工",  # a term inside a longer word is not expanded
    "汽车维修工",  # a title that spells the term out is not abbreviated
    "幼儿园教师",
    "文员",  # nothing in the table
    "registered nurse",
])
def test_expand_title_leaves_other_titles_alone(title):
    assert skills.expand_title(title) == title


def test_market_short_forms_cover_their_long_forms():
    assert covers("培养社会工作专业人才", "社工")
    assert covers("面向幼儿园教师岗位", "幼师")
    assert not covers("道路养护工程", "护理员")  # a short form is not searched for
    assert not covers("农民合作社工作", "社会工作")
    assert not covers("公司机构设置", "驾驶员")


def test_short_forms_are_terms_of_the_table():
    terms = {normalize(t) for group in SYNONYMS for t in group}
    assert skills.SHORT_FORMS <= terms
