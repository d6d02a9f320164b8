"""The hand-made title test sets (``benchmarks/data``): their format, and that every
expected major is a program of the bundled Chinese catalog."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from iei_match.bundled import catalog_dir

DATA = Path(__file__).resolve().parents[1] / "benchmarks" / "data"
ZH = ["recruitment_titles_zh.csv", "recruitment_titles_zh_2.csv",
      "recruitment_titles_zh_3.csv"]


def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA / name, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def catalog() -> pd.DataFrame:
    return pd.read_csv(catalog_dir("cn-vocational") / "programs.csv", dtype=str,
                       keep_default_na=False)


@pytest.mark.parametrize("name", ZH + ["job_titles_en.csv"])
def test_every_expected_major_is_a_catalog_program(name, catalog):
    table = _read(name)
    assert list(table.columns) == ["title", "majors"]
    assert table["title"].str.strip().ne("").all()
    assert not table["title"].duplicated().any()
    titles = set(catalog["title"])
    for title, majors in zip(table["title"], table["majors"], strict=True):
        names = majors.split(";")
        assert len(names) == len(set(names)), title
        assert [m for m in names if m not in titles] == [], title


@pytest.mark.parametrize("which", [1, 2])
def test_the_later_sets_are_new_and_market_worded(which, catalog):
    later, earlier = _read(ZH[which]), pd.concat([_read(n) for n in ZH[:which]])
    assert len(later) >= 150
    assert later["majors"].str.split(";").str.len().between(1, 3).all()
    assert set(later["title"]).isdisjoint(earlier["title"])
    # Market titles, not the occupation dictionary's: none is the title of a need of the
    # training data the models learn from.
    needs = pd.read_csv(catalog_dir("cn-vocational") / "needs.csv", dtype=str,
                        keep_default_na=False)
    assert set(later["title"]).isdisjoint(needs["title"])


def _script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("title_sets", DATA.parent / "title_sets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_script_splits_expanded_titles_and_counts_answered_ones():
    script = _script()
    needs = pd.DataFrame({"need_id": ["a", "b", "c"], "title": ["质检员", "电工", "幼师"]})
    split = script.parts(needs)
    assert list(split["all"]) == ["a", "b", "c"]
    assert list(split["expanded"]) == ["a", "c"] and list(split["untouched"]) == ["b"]
    assert list(script.parts(pd.DataFrame({"need_id": ["e"], "title": ["nurse"]}))) == ["all"]
    qrels = pd.DataFrame({"need_id": ["a", "b", "c"], "program_id": ["p", "q", "r"],
                          "grade": [1, 1, 1]})
    run = pd.DataFrame({"need_id": ["a", "a", "b", "c"], "program_id": ["x", "p", "q", "r"],
                        "rank": [1, 2, 11, 1]})
    # a: found at rank 2; b: only at rank 11; c: at rank 1.
    assert script.answered(run, qrels) == pytest.approx(2 / 3)
    assert script.answered(run, qrels, k=1) == pytest.approx(1 / 3)
