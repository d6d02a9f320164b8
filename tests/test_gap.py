"""Gap report: every need and program counted once, totals equal the inputs, plots drawn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from iei_match import gap_plot
from iei_match.errors import DataFileError, InputError
from iei_match.gap import GAP_COLUMNS, NO_PROGRAM, UNKNOWN, gap_report
from iei_match.gap_plot import write_gap_plot


@pytest.fixture
def tables():
    rng = np.random.default_rng(3)
    n_needs, n_progs = 60, 40
    needs = pd.DataFrame({
        "need_id": [f"n{i}" for i in range(n_needs)],
        "headcount": rng.integers(0, 20, n_needs),
        "province": rng.choice(["广东", "江苏", "浙江", ""], n_needs),
        "level": rng.choice(["高职专科", "本科"], n_needs)})
    programs = pd.DataFrame({
        "program_id": [f"{c}{i:04d}" for i, c in
                       enumerate(rng.choice(["46", "51", "52", "53"], n_progs))],
        "graduates_per_year": rng.integers(0, 50, n_progs),
        "province": rng.choice(["广东", "江苏", "浙江"], n_progs),
        "level": rng.choice(["高职专科", "本科", ""], n_progs)})
    pairs = [(f"n{i}", programs["program_id"].iloc[j], float(rng.normal()))
             for i in range(n_needs - 5) for j in rng.choice(n_progs, 3, replace=False)]
    scores = pd.DataFrame(pairs, columns=["need_id", "program_id", "score"])
    return needs, programs, scores


def test_totals_equal_the_inputs(tables):
    needs, programs, scores = tables
    table = gap_report(needs, programs, scores)
    assert list(table.columns) == GAP_COLUMNS
    assert table["demand"].sum() == needs["headcount"].sum()
    assert table["supply"].sum() == programs["graduates_per_year"].sum()
    assert table["needs"].sum() == len(needs) and table["programs"].sum() == len(programs)
    assert (table["shortfall"] == table["demand"] - table["supply"]).all()
    assert not table.duplicated(["category", "province", "level"]).any()
    assert table["shortfall"].is_monotonic_decreasing


def test_a_need_takes_the_category_of_its_best_program(tables):
    needs, programs, scores = tables
    table = gap_report(needs, programs, scores).set_index(["category", "province", "level"])
    best = scores.sort_values("score", ascending=False).drop_duplicates("need_id")
    need = needs.set_index("need_id").loc[best["need_id"].iloc[0]]
    category = best["program_id"].iloc[0][:2]
    province = need["province"] or UNKNOWN
    assert table.loc[(category, province, need["level"]), "needs"] >= 1
    # The five needs without any score are demand no program serves.
    unserved = needs.iloc[-5:]
    rows = table.loc[NO_PROGRAM]
    assert rows["needs"].sum() == 5 and rows["demand"].sum() == unserved["headcount"].sum()
    assert rows["supply"].sum() == 0


def test_categories_from_columns_and_code_prefixes():
    needs = pd.DataFrame({"need_id": ["a", "b"], "headcount": [4, 6],
                          "category": ["46", ""]})
    programs = pd.DataFrame({"program_id": ["p1", "p2"], "code": ["46-01-04", "510201"],
                             "graduates_per_year": [3, 1]})
    table = gap_report(needs, programs, prefix_length=2)
    cells = table.set_index("category")[["demand", "supply"]].to_dict("index")
    assert cells == {"46": {"demand": 4, "supply": 3}, "51": {"demand": 0, "supply": 1},
                     UNKNOWN: {"demand": 6, "supply": 0}}
    assert gap_report(needs, programs.assign(category=["制造", "电子"]))["category"].isin(
        ["制造", "电子", "46", UNKNOWN]).all()


def test_min_score_sends_weak_matches_to_no_program(tables):
    needs, programs, scores = tables
    strict = gap_report(needs, programs, scores, min_score=10.0)
    assert set(strict.loc[strict["needs"] > 0, "category"]) == {NO_PROGRAM}
    assert strict["demand"].sum() == needs["headcount"].sum()


def test_bad_input_is_refused(tables, tmp_path):
    needs, programs, scores = tables
    with pytest.raises(InputError, match="category"):
        gap_report(needs, programs)
    bad = needs.astype({"headcount": object})
    bad.loc[3, "headcount"] = "many"
    with pytest.raises(DataFileError, match="row 5, column headcount"):
        gap_report(bad, programs, scores)
    path = tmp_path / "needs.csv"
    path.write_text("need_id,title,text,province\nn1,a,b,广东\n", encoding="utf-8")
    with pytest.raises(DataFileError) as err:
        gap_report(path, programs, scores)
    assert str(path) in str(err.value) and "headcount" in str(err.value)
    with pytest.raises(InputError, match="prefix_length"):
        gap_report(needs, programs, scores, prefix_length=0)


def test_png_and_html_are_written(tables, tmp_path):
    table = gap_report(*tables)
    write_gap_plot(table, tmp_path / "gap.png")
    assert (tmp_path / "gap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    write_gap_plot(table, tmp_path / "gap.html")
    page = (tmp_path / "gap.html").read_text(encoding="utf-8")
    assert "广东" in page and "<script" not in page and "http" not in page
    assert f"demand {table['demand'].sum()}" in page
    assert not list(tmp_path.glob(".gap*"))
    with pytest.raises(DataFileError, match="unsupported plot type"):
        write_gap_plot(table, tmp_path / "gap.svg")


def test_the_png_is_drawn_without_any_chinese_font(tables, tmp_path, monkeypatch):
    monkeypatch.setattr(gap_plot, "cjk_font", lambda: None)
    write_gap_plot(gap_report(*tables), tmp_path / "plain.png")
    assert (tmp_path / "plain.png").stat().st_size > 1000


def _ink(text: str, family: list[str]) -> np.ndarray:
    """The pixels of ``text`` drawn in ``family`` (grey levels, 0 = black)."""
    import io

    from matplotlib import rc_context
    from matplotlib.figure import Figure

    with rc_context({"font.family": "sans-serif", "font.sans-serif": family}):
        fig = Figure(figsize=(3, 0.6), dpi=60)
        fig.text(0.02, 0.2, text, fontsize=20)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    import matplotlib.image as mpimg

    buf.seek(0)
    return mpimg.imread(buf)[..., :3].mean(axis=2)


def test_chinese_labels_render_as_glyphs_not_boxes():
    # The package ships its own font, so this holds on a machine with no CJK font at all.
    font = gap_plot.cjk_font()
    assert font is not None
    chinese = _ink("汽车制造类", [font])
    other = _ink("公共服务类", [font])
    assert (chinese < 0.5).sum() > 200  # something was drawn
    # Different characters give different pictures: missing glyphs would all be the same box.
    assert np.abs(chinese - other).sum() > 50
    a, b = _ink("汽", [font]), _ink("车", [font])
    assert np.abs(a - b).sum() > 20
