"""Bad input: every refused request gets a clear 4xx (never a 500 or a dropped connection)
and writes nothing; text in any script comes back as it was sent; spreadsheet exports do
not run formulas; an upload's file name never becomes a path."""

from __future__ import annotations

import csv
import tempfile
import time
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from sqlalchemy import func, select

from iei_match.io import write_table
from iei_match_service.db.tables import (
    ApiKey,
    Membership,
    Need,
    Organization,
    OutcomeEvent,
    Partnership,
    Program,
    TrainingBase,
)

from .conftest import make_world

MAX_BODY = 1_000_000
MAX_UPLOAD = 300_000
TABLES = (Organization, Membership, ApiKey, Need, Program, TrainingBase, Partnership,
          OutcomeEvent)
MIXED = ("数控车工 CNC operator 🚀 مرحبا мир こんにちは 안녕 👩‍🔧 e\u0301 𝔘𝔫𝔦 "
         "“quotes” — ½ ①")


@pytest.fixture(scope="module")
def bw(tmp_path_factory, model_root):
    w = make_world(tmp_path_factory.mktemp("bad-input"), model_root,
                   max_body_bytes=MAX_BODY, max_upload_bytes=MAX_UPLOAD)
    yield w
    w.server.stop()
    w.db.dispose()


def counts(w) -> dict[str, int]:
    with w.db.session() as s:
        return {t.__tablename__: s.scalar(select(func.count()).select_from(t)) for t in TABLES}


class Unchanged:
    """``with Unchanged(w):`` asserts that no table gained or lost a row, and that the
    server still answers afterwards."""

    def __init__(self, w):
        self.w = w

    def __enter__(self):
        self.before = counts(self.w)
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            assert counts(self.w) == self.before
            with self.w.client() as c:
                assert c.get("/healthz").status_code == 200


def assert_error(r, status: int, code: str | None = None, says: str | None = None) -> dict:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert err["message"]
    if code:
        assert err["code"] == code, err
    if says:
        assert says in err["message"], err
    return err


def chunks(data: bytes, size: int = 65_536):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def multipart(name: str, content: bytes, boundary: str = "iei-boundary") -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ).encode() + content + f"\r\n--{boundary}--\r\n".encode()


# -- size limits --------------------------------------------------------------------------

def test_json_body_over_the_limit_is_413_declared_or_streamed(bw):
    body = ('{"title": "焊工", "description": "' + "x" * MAX_BODY + '"}').encode()
    with Unchanged(bw), bw.client("herbal") as c:
        assert_error(c.post("/api/v1/needs", content=body,
                            headers={"content-type": "application/json"}),
                     413, "payload_too_large", str(MAX_BODY))
        # without a Content-Length (chunked): counted as it arrives and cut off
        assert_error(c.post("/api/v1/needs", content=chunks(body),
                            headers={"content-type": "application/json"}),
                     413, "payload_too_large")


def test_upload_over_the_limit_is_413_declared_or_streamed(bw):
    rows = "title,description\n" + "焊工,焊接作业\n" * (MAX_UPLOAD // 10)
    data = rows.encode()
    assert len(data) > MAX_UPLOAD
    with Unchanged(bw), bw.client("herbal") as c:
        assert_error(c.post("/api/v1/imports/needs", files={"file": ("needs.csv", data)}),
                     413, "payload_too_large", str(MAX_UPLOAD))
        body = multipart("needs.csv", data)
        assert_error(c.post("/api/v1/imports/needs", content=chunks(body),
                            headers={"content-type":
                                     "multipart/form-data; boundary=iei-boundary"}),
                     413, "payload_too_large")


# -- JSON shapes --------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [b"[" * 10_000 + b"]" * 10_000,
                                 b'{"a":' * 10_000 + b"1" + b"}" * 10_000])
def test_json_nested_ten_thousand_levels_is_a_clear_400(bw, raw):
    with Unchanged(bw), bw.client("herbal") as c:
        assert_error(c.post("/api/v1/needs", content=raw,
                            headers={"content-type": "application/json"}),
                     400, "bad_request", "nested too deeply")


def test_nesting_inside_a_field_is_a_422(bw):
    deep = "[" * 500 + "]" * 500
    with Unchanged(bw), bw.client("herbal") as c:
        err = assert_error(c.post("/api/v1/needs",
                                  content=f'{{"title": {deep}, "skills": {deep}}}'.encode(),
                                  headers={"content-type": "application/json"}),
                           422, "invalid")
    assert {p["location"] for p in err["problems"]} >= {"body.title"}


@pytest.mark.parametrize("body", [
    {"title": "焊工", "skills": ["焊接"] * 80_000},
    {"title": "焊工", "skills": [1] * 150_000},
    {"title": "焊工", "certificates": [{"a": [1]}] * 40_000},
    [1] * 300_000,
])
def test_huge_arrays_are_refused_quickly_with_a_short_report(bw, body):
    with Unchanged(bw), bw.client("herbal") as c:
        t0 = time.perf_counter()
        r = c.post("/api/v1/needs", json=body)
        elapsed = time.perf_counter() - t0
    err = assert_error(r, 422, "invalid")
    assert len(err["problems"]) <= 20 and len(r.content) < 10_000
    assert elapsed < 15, elapsed


# -- encodings and scripts ----------------------------------------------------------------

def test_invalid_utf8_in_json_is_named(bw):
    with Unchanged(bw), bw.client("herbal") as c:
        assert_error(c.post("/api/v1/needs", content=b'{"title": "\xe7\x84\x8a\xff\xfe"}',
                            headers={"content-type": "application/json"}),
                     400, "bad_request", "not UTF-8")


def test_invalid_utf8_in_a_csv_upload_is_named(bw):
    data = "title,description\n焊工,焊接\n".encode() + b"\xff\xfe\xfd,x\n"
    with Unchanged(bw), bw.client("herbal") as c:
        err = assert_error(c.post("/api/v1/imports/needs",
                                  files={"file": ("needs.csv", data)}),
                           422, says="neither UTF-8 nor GB18030")
    assert "needs.csv" in err["message"]


def test_a_broken_xlsx_upload_is_named(bw):
    with Unchanged(bw), bw.client("herbal") as c:
        assert_error(c.post("/api/v1/imports/needs",
                            files={"file": ("needs.xlsx", b"PK\x03\x04 not a zip")}),
                     422, says="not a readable XLSX")


def test_mixed_scripts_round_trip_intact(bw, tmp_path):
    with bw.client("herbal") as c:
        r = c.post("/api/v1/needs", json={"title": MIXED, "description": MIXED * 3,
                                          "skills": ["焊接", "CNC 🚀", "e\u0301"],
                                          "city": "佛山市"})
        assert r.status_code == 201, r.text
        need = c.get(f"/api/v1/needs/{r.json()['id']}").json()
        assert need["title"] == MIXED and need["description"] == MIXED * 3
        assert need["skills"] == ["焊接", "CNC 🚀", "e\u0301"]
        assert c.get(f"/api/v1/needs/{need['id']}/recommendations").status_code == 200
        assert c.post("/api/v1/match", json={"title": MIXED}).status_code == 200
        # the same text through a CSV (UTF-8) and an XLSX upload
        frame = pd.DataFrame({"title": [MIXED], "description": [MIXED], "skills": ["焊接、🚀"]})
        for ext in (".csv", ".xlsx"):
            path = tmp_path / f"needs{ext}"
            write_table(frame, path)
            r = c.post("/api/v1/imports/needs",
                       files={"file": (path.name, path.read_bytes())})
            assert r.status_code == 201, r.text
            got = c.get(f"/api/v1/needs/{r.json()['ids'][0]}").json()
            assert (got["title"], got["description"], got["skills"]) == \
                (MIXED, MIXED, ["焊接", "🚀"]), ext


def test_control_characters_are_dropped_or_refused(bw):
    with bw.client("herbal") as c:
        r = c.post("/api/v1/needs", json={"title": "车工\x1b[31m\x00", "skills": ["焊\x08接"],
                                          "description": "第一行\n第二行\t制表\x7f"})
        assert r.status_code == 201, r.text
        need = r.json()
        assert need["title"] == "车工[31m" and need["skills"] == ["焊接"]
        assert need["description"] == "第一行\n第二行\t制表"  # newline and tab are kept
        with Unchanged(bw):
            assert_error(c.post("/api/v1/needs", json={"title": "\x00\x01\x02"}),
                         422, "invalid")
        data = "title,description\n电\x00工,作\x01业\n".encode()
        r = c.post("/api/v1/imports/needs", files={"file": ("needs.csv", data)})
        assert r.status_code == 201, r.text
        got = c.get(f"/api/v1/needs/{r.json()['ids'][0]}").json()
        assert (got["title"], got["description"]) == ("电工", "作业")


@pytest.mark.parametrize("line, column", [
    ('"未闭合引号,负责,x,1', "title"),                # the quote swallows the rest of the file
    ('焊工,"焊接作业,x,1', "description"),
    ('焊工,"焊接"作业,x,1', "description"),           # text after the closing quote
])
def test_a_csv_with_a_broken_quote_is_refused_with_row_and_column(bw, line, column):
    data = "\n".join(["title,description,skills,headcount", "车工,车削加工,车床,2", line,
                      "钳工,装配,锉削,3", ""]).encode()
    with Unchanged(bw), bw.client("herbal") as c:
        err = assert_error(c.post("/api/v1/imports/needs",
                                  files={"file": ("needs.csv", data)}), 422,
                           "bad_data_file", says="quot")
    assert "needs.csv" in err["message"] and "row 3" in err["message"]
    assert err["problems"] == [{"row": 3, "column": column, "message": err["problems"][0][
        "message"]}]


def test_a_bad_row_at_the_end_of_a_big_file_writes_nothing(bw):
    rows = ["title,description,headcount"] + [f"岗位{i},描述{i},2" for i in range(2000)]
    rows.append("最后一行,描述,-5")
    with Unchanged(bw), bw.client("herbal") as c:
        err = assert_error(c.post("/api/v1/imports/needs",
                                  files={"file": ("needs.csv", "\n".join(rows).encode())}),
                           422)
    assert err["problems"][0]["row"] == 2002


# -- spreadsheet formulas -----------------------------------------------------------------

FORMULAS = ["=cmd|' /C calc'!A0", "=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3",
            "@SUM(A1:A2)", "\t=1+1", "\r=1+1"]


@pytest.mark.parametrize("ext", [".csv", ".xlsx"])
def test_formula_cells_are_neutralised_in_exports(tmp_path, ext):
    frame = pd.DataFrame({"need_id": [f"n{i}" for i in range(len(FORMULAS) + 2)],
                          "text": FORMULAS + ["-3.5", "普通文本"]})
    path = tmp_path / f"export{ext}"
    write_table(frame, path)
    if ext == ".csv":
        with open(path, newline="", encoding="utf-8") as fh:
            cells = [row[1] for row in list(csv.reader(fh))[1:]]
    else:
        sheet = openpyxl.load_workbook(path).active
        column = list(sheet.iter_rows(min_row=2, min_col=2, max_col=2))
        assert all(row[0].data_type == "s" for row in column)  # no formula cell
        cells = [row[0].value for row in column]
    # a line break inside a cell is written as \n in both formats (in CSV a bare \r would
    # end the row: the cell after it became a row of its own)
    assert cells[:len(FORMULAS)] == ["'" + f.replace("\r", "\n") for f in FORMULAS]
    assert cells[len(FORMULAS):] == ["-3.5", "普通文本"]  # numbers and text untouched


# -- file names ---------------------------------------------------------------------------

NAMES = ["../../etc/passwd.csv", "..\\..\\windows\\evil.csv", "C:\\x\\y.xlsx",
         "/tmp/iei-absolute.csv", "needs.csv/../../../iei-up.csv", "%2e%2e%2fiei-enc.csv",
         "~/.bashrc.csv", "CON.csv"]


@pytest.mark.parametrize("name", NAMES)
def test_upload_file_names_never_become_paths(bw, name, tmp_path, monkeypatch):
    """The name is used for its extension (and, reduced to its last part, in messages);
    the upload goes to a fresh temporary directory that is removed afterwards."""
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    frame = pd.DataFrame({"title": ["焊工"], "description": ["焊接"]})
    ext = "." + base.rsplit(".", 1)[-1]
    good = tmp_path / f"good{ext}"
    write_table(frame, good)
    data_dir = bw.server.settings.data_dir
    before = {p for p in data_dir.rglob("*")}
    with bw.client("herbal") as c:
        r = c.post("/api/v1/imports/needs", files={"file": (name, good.read_bytes())})
        assert r.status_code == 201, r.text
        bad = c.post("/api/v1/imports/needs", files={"file": (name, b"\xff\xfe\x00garbage")})
    err = assert_error(bad, 422)
    assert ".." not in err["message"] and "C:" not in err["message"]
    assert list(spool.iterdir()) == []  # the temporary upload directory is gone
    written = {p for p in data_dir.rglob("*")} - before
    assert all(p.name.startswith("iei-match.db") for p in written), written
    for root in (tmp_path, data_dir, data_dir.parent):
        assert not any(p.name == base for p in root.rglob(base))
    assert not any(Path(p).exists() for p in ("/etc/passwd.csv", "/tmp/iei-absolute.csv",
                                              "/iei-up.csv", "/windows/evil.csv"))


@pytest.mark.parametrize("name", ["evil.sh", "needs", "needs.csv.exe", "needs.CSV "])
def test_unsupported_file_types_are_refused(bw, name):
    with Unchanged(bw), bw.client("herbal") as c:
        assert_error(c.post("/api/v1/imports/needs",
                            files={"file": (name, "title\n焊工\n".encode())}),
                     422, "unsupported_file_type")
