"""Language detection, the English-Chinese job-term bridge, and its warning."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from iei_match.bridge import TERMS, bridge_text, detect_language, language_note
from iei_match.bundled import catalog_dir
from iei_match.matcher import Matcher


@pytest.mark.parametrize(("text", "language"), [
    ("数控车工", "zh"), ("电工", "zh"), ("PLC编程工程师", "zh"), ("GIS工程师", "zh"),
    ("CNC machinist", "en"), ("Registered Nurse", "en"), ("ＣＮＣ　ｍａｃｈｉｎｉｓｔ", "en"),
    ("", ""), ("12345", ""), (None, ""),
])
def test_detect_language(text, language):
    assert detect_language(text) == language


@pytest.mark.parametrize(("title", "expected"), [
    ("CNC machinist", {"数控"}),
    ("registered nurse", {"护理"}),
    ("Registered Nurses", {"护理"}),
    ("electrician", {"电工"}),
    ("HVAC technician", {"暖通"}),
    ("front-end developer", {"前端", "开发"}),
    ("warehouse clerk", {"仓储"}),
])
def test_bridge_names_the_trade_in_chinese(title, expected):
    out = bridge_text(title)
    assert expected <= set(out.text.split())
    assert out.text.endswith(title)  # the original words are kept
    assert out.terms


def test_bridge_prefers_the_longest_phrase_and_leaves_chinese_alone():
    nurse = TERMS["registered nurse"]
    assert bridge_text("registered nurse").terms == (("registered nurse", nurse),)
    assert bridge_text("数控车工 CNC").text == "数控车工 CNC"
    assert bridge_text("zorblax qwerty").terms == ()
    assert bridge_text("zorblax qwerty").text == "zorblax qwerty"


def test_language_note_warns_only_where_the_bridge_has_nothing():
    assert language_note("CNC machinist", "zh") == ("en", None)
    assert language_note("数控车工", "zh") == ("zh", None)
    lang, warning = language_note("zorblax qwerty", "zh")
    assert lang == "en" and "English" in warning
    lang, warning = language_note("数控车工", "en")
    assert lang == "zh" and warning
    assert language_note("CNC machinist", "en") == ("en", None)


@pytest.fixture(scope="module")
def chinese_matcher():
    d = catalog_dir("cn-vocational")
    needs = pd.read_csv(d / "needs.csv", dtype=str, keep_default_na=False).head(60)
    programs = pd.read_csv(d / "programs.csv", dtype=str, keep_default_na=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # content-only: no links given
        matcher = Matcher(dense=False).fit(needs, programs, links=None)
    return matcher, programs


@pytest.mark.parametrize(("title", "major"), [
    ("CNC machinist", "数控技术"), ("registered nurse", "护理"),
    ("elevator mechanic", "电梯工程技术"),
])
def test_an_english_need_finds_its_chinese_major(chinese_matcher, title, major):
    matcher, programs = chinese_matcher
    assert matcher.language_ == "zh"
    need = pd.DataFrame({"need_id": ["n"], "title": [title], "text": [""]})
    top = matcher.rank(need, programs, k=5)
    titles = programs.set_index("program_id").loc[top["program_id"], "title"].tolist()
    assert major in titles
    assert any(not t.isascii() for terms in top["matched_terms"] for t in terms)


@pytest.fixture(scope="module")
def models_root(chinese_matcher, tmp_path_factory):
    """A models root whose default Chinese model is a small content-only one (so that
    ``match`` does not train the full model)."""
    from iei_match.artifacts import publish_model

    root = tmp_path_factory.mktemp("models")
    publish_model(chinese_matcher[0], root / "bundled-cn-vocational")
    return root


def _match(models_root, *args):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "iei_match.cli", "match", *args,
                          "--models-root", str(models_root), "--top-k", "5"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_match_keeps_the_chinese_catalog_for_an_english_need_and_says_so(models_root):
    out = _match(models_root, "CNC machinist")
    assert "catalog: cn-vocational" in out
    assert "the need is in English" in out
    assert "cnc → 数控" in out
    assert "数控技术" in out
    assert "warning" not in out
    assert not (models_root / "bundled-us-onet-cip").exists()  # no second model trained


def test_match_warns_when_the_bridge_has_nothing(models_root):
    out = _match(models_root, "zorblax qwerty")
    assert "catalog: cn-vocational" in out
    assert "warning: the need is in English" in out
