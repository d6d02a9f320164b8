"""The smaller defects of a hostile review, each pinned: stored text without bidi,
zero-width, C1 or CR characters; nosniff and no-store on JSON; exports streamed, XLSX
beyond a sheet's rows refused naming CSV and Parquet; the documented upload sizes; a base
import with a name column; no file left by a request that died."""

from __future__ import annotations

import io
import socket
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from iei_match.batch import XLSX_MAX_ROWS
from iei_match_service.batch_jobs import job_dir
from iei_match_service.db.tables import Job

from .conftest import make_world

SNEAKY = "焊\u202e工\u200b技\u2066师\x85\r\n第二行\rA\u200d\u200cB"


@pytest.fixture(scope="module")
def sw(tmp_path_factory, model_root):
    w = make_world(tmp_path_factory.mktemp("small"), model_root)
    yield w
    w.server.stop()
    w.db.dispose()


def test_stored_text_keeps_no_bidi_zero_width_c1_or_cr(sw):
    with sw.client("herbal") as c:
        r = c.post("/api/v1/needs", json={"title": SNEAKY[:8], "description": SNEAKY})
        assert r.status_code == 201, r.text
        need = c.get(f"/api/v1/needs/{r.json()['id']}").json()
        data = f"title,description\n\"{SNEAKY[:8]}\",\"{SNEAKY}\"\n".encode()
        imported = c.post("/api/v1/imports/needs", files={"file": ("n.csv", data)})
        assert imported.status_code == 201, imported.text
        got = c.get(f"/api/v1/needs/{imported.json()['ids'][0]}").json()
    for item in (need, got):
        assert item["title"] == "焊工技师"
        # the joiners U+200D/U+200C stay: scripts and emoji need them
        assert item["description"] == "焊工技师\n第二行\nA\u200d\u200cB"


def test_json_answers_are_not_sniffed_or_cached(sw):
    with sw.client("herbal") as c:
        for r in (c.get("/api/v1/me"), c.get("/api/v1/needs/999999"), c.get("/healthz"),
                  sw.client().get("/api/v1/me")):
            assert r.headers["x-content-type-options"] == "nosniff", r.url
            assert r.headers["cache-control"] == "no-store", r.url
        page = c.get("/")
        assert page.headers["x-content-type-options"] == "nosniff"


def _finished_job(sw, rows: int) -> int:
    with sw.db.session() as s:
        job = Job(kind="batch", org_id=sw.orgs["nanhai"], state="succeeded",
                  params={"scope": "organisation"}, result={"results": ["scores"]})
        s.add(job)
        s.flush()
        job_id = job.id
    folder = job_dir(sw.server.settings, job_id)
    folder.mkdir(parents=True, exist_ok=True)
    n = pa.array(range(rows), pa.int64())
    pq.write_table(pa.table({"need_id": n, "program_id": n,
                             "reasons": pa.array(["=HYPERLINK(1)"] * rows)}),
                   folder / "scores.parquet")
    return job_id


def test_an_xlsx_beyond_a_sheets_rows_is_refused_naming_csv_and_parquet(sw):
    job_id = _finished_job(sw, XLSX_MAX_ROWS + 1)
    base = f"/api/v1/jobs/{job_id}/results/scores"
    with sw.client("nanhai") as c:
        r = c.get(base, params={"format": "xlsx"})
        assert r.status_code == 413, r.text[:300]
        err = r.json()["error"]
        assert err["code"] == "too_many_rows_for_xlsx"
        assert "CSV" in err["message"] and "Parquet" in err["message"]
        r = c.get(base, params={"format": "parquet"})
        assert r.status_code == 200
        assert pq.read_table(io.BytesIO(r.content)).num_rows == XLSX_MAX_ROWS + 1
        assert c.get(base).json()["total"] == XLSX_MAX_ROWS + 1


def test_csv_exports_stream_in_batches_and_neutralise_formulas(sw):
    job_id = _finished_job(sw, 45_000)  # three batches
    with sw.client("nanhai") as c:
        r = c.get(f"/api/v1/jobs/{job_id}/results/scores", params={"format": "csv"})
    assert r.status_code == 200
    lines = r.text.splitlines()
    assert lines[0] == "need_id,program_id,reasons" and len(lines) == 45_001
    assert lines[-1] == "44999,44999,'=HYPERLINK(1)"
    assert "content-length" in r.headers


def test_the_documented_upload_sizes(sw):
    # The README promises 10 MB files for /batch/upload as for imports (it was 1 MB).
    body = ("need_id,title,text,headcount\n" + "".join(
        f"N{i},焊工{i},{'焊接' * 200},1\n" for i in range(1500))).encode()
    assert 1_000_000 < len(body) < 10_000_000
    programs = b"program_id,title,text,graduates_per_year\nP1,\xe6\x95\xb0\xe6\x8e\xa7,x,5\n"
    with sw.client("nanhai") as c:
        r = c.post("/api/v1/batch/upload", files={"needs": ("n.csv", body),
                                                  "programs": ("p.csv", programs)})
        assert r.status_code == 202, r.text[:300]
        sw.client("nanhai").post(f"/api/v1/jobs/{r.json()['id']}/cancel")


def test_a_base_import_takes_a_name_column(sw):
    for header in ("name", "名称"):
        data = f"{header},description,capacity\n数控实训中心,五轴加工,40\n".encode()
        with sw.client("fsvc") as c:
            r = c.post("/api/v1/imports/bases", files={"file": ("b.csv", data)})
            assert r.status_code == 201, r.text
            base = c.get(f"/api/v1/bases/{r.json()['ids'][0]}").json()
        assert base["name"] == "数控实训中心"


def _leftovers() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("iei-*")}


def test_a_request_that_dies_leaves_no_file(sw, tmp_path, monkeypatch):
    # The server runs in this process: its request folders go to a temp dir of this test's
    # own (the shared one also holds those of the tests run by other workers).
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    before = _leftovers()
    boundary = "x1x2x3"
    rows = "need_id,title,text\n" + "".join(f"N{i},焊工,焊接\n" for i in range(3000))
    part = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"n.csv\"\r\nContent-Type: text/csv\r\n\r\n{rows}\r\n"
            f"--{boundary}--\r\n").encode()
    head = (f"POST /api/v1/imports/needs HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {sw.keys['herbal']}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(part)}\r\n\r\n").encode()
    for cut in (len(part) // 2, len(part)):  # mid-body, and while the import runs
        with socket.create_connection(("127.0.0.1", sw.server.settings.port)) as s:
            s.sendall(head + part[:cut])
            deadline = time.monotonic() + 10
            while cut == len(part) and not _leftovers() - before:
                assert time.monotonic() < deadline, "the import made no folder"
                time.sleep(0.005)
        deadline = time.monotonic() + 10
        while _leftovers() - before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _leftovers() <= before
