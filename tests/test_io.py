"""Tests for iei_match.io: formats, encodings, aliases, validation and safe writing."""

from __future__ import annotations

import doctest
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

import iei_match.io as io_module
from iei_match.errors import DataFileError
from iei_match.io import (
    check_links,
    load_links,
    load_needs,
    load_programs,
    read_table,
    split_list,
    write_table,
)

CATALOGS = Path(__file__).resolve().parents[1] / "data" / "catalogs"

NEEDS = pd.DataFrame({
    "need_id": ["N1", "N2"],
    "title": ["数控车工", "Welder"],
    "text": ["操作数控车床，加工零件。", "Joins metal parts"],
    "level": ["中级", ""],
    "skills": ["数控编程、CAD", "welding;TIG"],
    "headcount": pd.array([5, None], dtype="Int64"),
})


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def raises(loader, path: Path) -> DataFileError:
    with pytest.raises(DataFileError) as info:
        loader(path)
    return info.value


def test_docstring_examples_run():
    assert doctest.testmod(io_module).failed == 0


@pytest.mark.parametrize("ext", [".csv", ".xlsx", ".parquet", ".pq"])
def test_round_trip_keeps_chinese_text_and_types(tmp_path, ext):
    path = tmp_path / f"needs{ext}"
    write_table(NEEDS, path)
    needs = load_needs(path)
    assert list(needs.columns) == ["need_id", "title", "text", "level", "skills", "headcount"]
    assert needs["title"].tolist() == ["数控车工", "Welder"]
    assert needs["text"].tolist() == NEEDS["text"].tolist()
    assert needs["level"].tolist() == ["中级", ""]
    assert str(needs["headcount"].dtype) == "Int64"
    assert needs.loc[2, "headcount"] == 5 and needs.loc[3, "headcount"] is pd.NA
    assert needs.index.tolist() == [2, 3]
    assert split_list(needs.loc[2, "skills"]) == ["数控编程", "CAD"]


def test_programs_and_links_round_trip(tmp_path):
    programs = pd.DataFrame({"program_id": ["460104"], "title": ["数控技术"], "text": ["x"],
                             "graduates_per_year": pd.array([120], dtype="Int64")})
    write_table(programs, tmp_path / "p.xlsx")
    loaded = load_programs(tmp_path / "p.xlsx")
    assert loaded.loc[2, "graduates_per_year"] == 120 and loaded.loc[2, "level"] == ""
    links = pd.DataFrame({"need_id": ["N1", "N2"], "program_id": ["P1", "P1"], "grade": [3, 0]})
    write_table(links, tmp_path / "l.parquet")
    assert load_links(tmp_path / "l.parquet")["grade"].tolist() == [3, 0]


def test_bom_csv_and_stripping(tmp_path):
    path = write(tmp_path / "n.csv", "need_id,title,text\n N1 ,  电工 , 接线 \n", "utf-8-sig")
    needs = load_needs(path)
    assert needs.columns[0] == "need_id"
    assert needs.loc[2].tolist()[:3] == ["N1", "电工", "接线"]


def test_gb18030_csv_saved_by_excel(tmp_path):
    text = "need_id,title,text\nN1,汽车维修工,维修汽车发动机\n"
    path = write(tmp_path / "n.csv", text, "gb18030")
    with pytest.raises(UnicodeDecodeError):
        path.read_text(encoding="utf-8")
    assert load_needs(path).loc[2, "title"] == "汽车维修工"


def test_aliases_header_normalisation_and_nfkc_ids(tmp_path):
    path = write(tmp_path / "n.csv", "ＩＤ,Name,描述,HeadCount\n１２３,焊工,,7\n")
    needs = load_needs(path)
    assert list(needs.columns) == ["need_id", "title", "text", "level", "headcount"]
    assert needs.loc[2, "need_id"] == "123" and needs.loc[2, "text"] == ""
    programs = load_programs(write(tmp_path / "p.csv", "id,名称,Description\nP1,数控,d\n"))
    assert programs.loc[2, ["program_id", "title", "text"]].tolist() == ["P1", "数控", "d"]
    links = load_links(write(tmp_path / "l.csv", "need_id,program_id,Label\n１,P1,2\n"))
    assert links.loc[2].tolist() == ["1", "P1", 2]
    assert load_links(write(tmp_path / "m.csv", "need_id,program_id,outcome\n1,P1,0\n"))[
        "grade"].tolist() == [0]


def test_unknown_columns_are_kept_and_grade_defaults_to_one(tmp_path):
    needs = load_needs(write(tmp_path / "n.csv", "note,need_id,title,text,city\nx,N1,t,d,苏州\n"))
    assert list(needs.columns) == ["need_id", "title", "text", "level", "city", "headcount",
                                   "note"]
    links = load_links(write(tmp_path / "l.csv", "need_id,program_id\nN1,P1\nN1,P2\n"))
    assert links["grade"].tolist() == [1, 1] and str(links["grade"].dtype) == "Int64"


def test_blank_rows_are_skipped_but_row_numbers_stay_true(tmp_path):
    path = write(tmp_path / "n.csv", "need_id,title,text\nN1,a,b\n,,\nN2,,c\n")
    err = raises(load_needs, path)
    assert (err.row, err.column) == (4, "title")


def test_csv_quoted_newlines_trailing_commas_and_extra_cells(tmp_path):
    path = write(tmp_path / "n.csv", 'need_id,title,text,\nN1,"two\nlines",x,\nN2,,y\n')
    err = raises(load_needs, path)
    assert (err.row, err.column) == (3, "title")  # the quoted newline does not shift rows
    needs = load_needs(write(tmp_path / "ok.csv", 'need_id,title,text,\nN1,"a\nb",x,\n'))
    assert list(needs.columns) == ["need_id", "title", "text", "level", "headcount"]
    assert needs.loc[2, "title"] == "a\nb"
    err = raises(load_needs, write(tmp_path / "x.csv", "need_id,title,text\nN1,a,b\nN2,a,b,c\n"))
    assert (err.row, err.column) == (3, None) and "4 cells" in err.message


def test_missing_required_column_lists_found_columns(tmp_path):
    err = raises(load_needs, write(tmp_path / "n.csv", "need_id,Title\nN1,a\n"))
    assert (err.row, err.column) == (None, "text")
    assert "columns found: need_id, Title" in str(err)
    err = raises(load_links, write(tmp_path / "l.csv", "need,grade\nN1,1\n"))
    assert [p["column"] for p in err.problems] == ["need_id", "program_id"]


def test_header_only_file_is_an_error(tmp_path):
    err = raises(load_programs, write(tmp_path / "p.csv", "program_id,title,text\n"))
    assert "no rows" in str(err) and err.row is None
    assert "empty" in str(raises(load_needs, write(tmp_path / "e.csv", "")))


def test_every_row_problem_is_reported_in_one_error(tmp_path):
    rows = ["need_id,title,text,headcount", "N1,a,,3", ",b,c,", "N3,,c,-1", "N1,d,e,2.5",
            "N5,e,f,lots", "N6,f,g,4.0"]
    err = raises(load_needs, write(tmp_path / "n.csv", "\n".join(rows) + "\n"))
    got = [(p["row"], p["column"], p["message"]) for p in err.problems]
    assert got == [
        (3, "need_id", "empty need_id"),
        (4, "title", "empty title"),
        (4, "headcount", "expected a whole number >= 0, got '-1'"),
        (5, "need_id", "duplicate need_id 'N1', first seen in row 2"),
        (5, "headcount", "expected a whole number >= 0, got '2.5'"),
        (6, "headcount", "expected a whole number >= 0, got 'lots'"),
    ]
    assert (err.row, err.column) == (3, "need_id")
    assert "6 problems" in err.message and "row 3, column need_id: empty need_id" in str(err)
    assert "and 1 more" in err.message


def test_problem_column_uses_the_header_in_the_file(tmp_path):
    err = raises(load_programs, write(tmp_path / "p.csv", "ID,名称,text\nP1,,x\n"))
    assert (err.row, err.column) == (2, "名称")


def test_programs_graduates_per_year_validation(tmp_path):
    path = write(tmp_path / "p.csv", "program_id,title,text,graduates_per_year\nP1,a,,x\n")
    err = raises(load_programs, path)
    assert (err.row, err.column) == (2, "graduates_per_year")


def test_links_grade_range_empty_ids_and_duplicate_pairs(tmp_path):
    rows = ["need_id,program_id,grade", "N1,P1,1", "N1,P2,4", ",P3,2", "N1,P1,0", "N2,P1,",
            "N3,,1"]
    err = raises(load_links, write(tmp_path / "l.csv", "\n".join(rows) + "\n"))
    got = [(p["row"], p["column"], p["message"]) for p in err.problems]
    assert got == [
        (3, "grade", "expected a whole number 0..3, got '4'"),
        (4, "need_id", "empty need_id"),
        (5, None, "duplicate (need_id, program_id) pair ('N1', 'P1'), first seen in row 2"),
        (6, "grade", "expected a whole number 0..3, got ''"),
        (7, "program_id", "empty program_id"),
    ]
    assert (err.row, err.column) == (3, "grade")


def test_xlsx_validation_rows_match_the_sheet(tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    for row in (["need_id", "title", "text"], ["N1", "a", "b"], [None, None, None],
                ["N1", "c", "d"]):
        sheet.append(row)
    book.create_sheet("ignored").append(["x"])
    book.save(tmp_path / "n.xlsx")
    err = raises(load_needs, tmp_path / "n.xlsx")
    assert (err.row, err.column) == (4, "need_id")


def test_parquet_validation_rows_use_spreadsheet_numbering(tmp_path):
    pd.DataFrame({"need_id": ["N1", "N2"], "title": ["a", ""], "text": ["", ""]}).to_parquet(
        tmp_path / "n.parquet")
    err = raises(load_needs, tmp_path / "n.parquet")
    assert (err.row, err.column) == (3, "title")


def test_check_links_lists_unknown_ids_with_link_rows(tmp_path):
    needs = load_needs(write(tmp_path / "n.csv", "need_id,title,text\nN1,a,\n"))
    programs = load_programs(write(tmp_path / "p.csv", "program_id,title,text\nP1,a,\n"))
    path = write(tmp_path / "l.csv", "need_id,program_id\nN1,P1\nN9,P1\nN1,P9\nN8,P8\n")
    links = load_links(path)
    with pytest.raises(DataFileError) as info:
        check_links(links, needs, programs, path)
    got = [(p["row"], p["column"]) for p in info.value.problems]
    assert got == [(3, "need_id"), (4, "program_id"), (5, "need_id"), (5, "program_id")]
    assert info.value.path == str(path) and info.value.row == 3
    check_links(links.loc[[2]], needs, programs, path)


def test_unsupported_extension_and_missing_file(tmp_path):
    err = raises(load_needs, write(tmp_path / "n.txt", "need_id,title,text\n"))
    assert "n.txt" in str(err) and ".csv, .xlsx, .parquet" in str(err)
    with pytest.raises(DataFileError, match="accepted extensions"):
        write_table(NEEDS, tmp_path / "out.json")
    err = raises(read_table, tmp_path / "absent.csv")
    assert "absent.csv" in str(err) and "not found" in str(err)


def test_corrupt_xlsx_and_duplicate_headers(tmp_path):
    assert "XLSX" in str(raises(load_needs, write(tmp_path / "n.xlsx", "not a zip")))
    err = raises(load_needs, write(tmp_path / "d.csv", "need_id,Title,TITLE,text\nN1,a,b,c\n"))
    assert "duplicate column" in str(err)


@pytest.mark.parametrize("ext", [".csv", ".xlsx"])
def test_write_table_neutralises_formulas(tmp_path, ext):
    df = pd.DataFrame({"v": ["=SUM(A1)", "+cmd", "-2.5", "@x", "-", "ok", "+86"],
                       "n": [-1, 2, 3, 4, 5, 6, 7]})
    write_table(df, tmp_path / f"out{ext}")
    back = read_table(tmp_path / f"out{ext}")
    assert back["v"].tolist() == ["'=SUM(A1)", "'+cmd", "-2.5", "'@x", "'-", "ok", "+86"]
    assert back["n"].tolist() == ["-1", "2", "3", "4", "5", "6", "7"]


def test_write_table_is_atomic_and_replaces(tmp_path):
    path = tmp_path / "needs.csv"
    write_table(NEEDS, path)
    write_table(NEEDS.head(1), path)
    assert [p.name for p in tmp_path.iterdir()] == ["needs.csv"]
    assert len(load_needs(path)) == 1
    assert "\ufeff" not in path.read_text(encoding="utf-8")
    with pytest.raises((ValueError, TypeError)):  # pyarrow cannot store a bare object
        write_table(pd.DataFrame({"a": [object()]}), tmp_path / "bad.parquet")
    assert [p.name for p in tmp_path.iterdir()] == ["needs.csv"]


def test_split_list():
    assert split_list("a, b；c、d，e;f|g") == list("abcdefg")
    assert split_list("") == [] and split_list(None) == []


@pytest.mark.parametrize("name,counts", [("cn-vocational", (770, 1313, 3658)),
                                         ("us-onet-cip", (449, 1878, 2643))])
def test_benchmark_catalogs_load(name, counts):
    folder = CATALOGS / name
    needs = load_needs(folder / "needs.csv")
    programs = load_programs(folder / "programs.csv")
    links = load_links(folder / "links.csv")
    check_links(links, needs, programs, folder / "links.csv")
    assert (len(needs), len(programs), len(links)) == counts
    assert needs["need_id"].is_unique and programs["program_id"].is_unique


def test_csv_with_an_unclosed_quote_names_the_row_and_column(tmp_path):
    path = tmp_path / "needs.csv"
    path.write_text('need_id,title,text\nn1,焊工,焊接\nn2,"未闭合引号,负责\nn3,钳工,装配\n',
                    encoding="utf-8")
    with pytest.raises(DataFileError, match="never closed") as info:
        load_needs(path)
    assert (info.value.row, info.value.column) == (3, "title")
