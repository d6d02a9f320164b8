"""The coordinator's batch job API over real HTTP: submit from the database or from two
uploaded files, follow progress, cancel, fetch results as JSON / CSV / XLSX / Parquet."""

from __future__ import annotations

import io
import time

import openpyxl
import pandas as pd
import pytest

from iei_match.allocation import allocate

from .batch_fakes import job_processes


def wait(c, job_id: int, timeout: float = 240) -> dict:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = c.get(f"/api/v1/jobs/{job_id}").json()
        seen.append(job["progress"])
        if job["state"] in ("succeeded", "failed", "cancelled"):
            job["seen_progress"] = seen
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {job}")


@pytest.fixture(scope="module")
def finished(shared_world):
    """One batch job over the Nanhai alliance's stored needs and programs."""
    with shared_world.client("nanhai") as c:
        r = c.post("/api/v1/batch", json={"top_k": 5, "allocate": True})
        assert r.status_code == 202, r.text
        job = r.json()
        assert job["kind"] == "batch" and job["state"] in ("queued", "running")
        return wait(c, job["id"])


def test_a_batch_job_scores_allocates_and_reports_gaps(shared_world, finished):
    job = finished
    assert job["state"] == "succeeded", job["message"]
    res = job["result"]
    assert res["source"] == "database" and res["needs"] >= 1 and res["programs"] >= 1
    assert set(res["results"]) == {"scores", "partners", "allocation", "unmet", "gap"}
    assert job["progress"] == 1.0
    assert job["seen_progress"] == sorted(job["seen_progress"])  # progress never goes back
    with shared_world.client("nanhai") as c:
        scores = c.get(f"/api/v1/jobs/{job['id']}/results/scores",
                       params={"limit": 1000}).json()
        assert scores["total"] == res["rows"]["scores"] == len(scores["items"])
        first = scores["items"][0]
        assert list(first)[:4] == ["need_id", "program_id", "rank", "score"]
        assert first["need_title"] and first["program_title"] and first["college"]
        per_need = pd.DataFrame(scores["items"]).groupby("need_id")["rank"].apply(list)
        assert all(r == list(range(1, len(r) + 1)) and len(r) <= 5 for r in per_need)
        plan = c.get(f"/api/v1/jobs/{job['id']}/results/allocation",
                     params={"limit": 1000}).json()["items"]
        unmet = c.get(f"/api/v1/jobs/{job['id']}/results/unmet",
                      params={"limit": 1000}).json()["items"]
        gap = c.get(f"/api/v1/jobs/{job['id']}/results/gap", params={"limit": 1000}).json()
        partners = c.get(f"/api/v1/jobs/{job['id']}/results/partners",
                         params={"limit": 1000}).json()["items"]
        png = c.get(f"/api/v1/jobs/{job['id']}/plots/gap.png")
    # The plan is the solver's optimum on the job's own scores, within every capacity.
    alloc = res["allocation"]
    assert alloc["assigned"] == sum(p["assigned"] for p in plan)
    assert alloc["unmet"] == sum(u["unmet"] for u in unmet) == alloc["demand"] - alloc["assigned"]
    assert all(u["need_title"] for u in unmet)
    # Ids are the API's, in their own columns, beside the titles and organisations' names.
    with shared_world.client("nanhai") as c:
        needs = {n["id"]: n for n in c.get("/api/v1/needs").json()["items"]}
        programs = {p["id"]: p for p in c.get("/api/v1/programs").json()["items"]}
    orgs = {v: k for k, v in shared_world.orgs.items()}
    assert plan, "the Nanhai alliance's TCM needs fit its TCM programs"
    assert partners
    for row in [*plan, *unmet, *scores["items"], *partners]:
        assert not any(str(v).startswith(("db-need-", "db-program-")) for v in row.values())
        need = needs[row["need_id"]]
        assert row["need_title"] == need["title"] and row["enterprise"]
        assert orgs[row["enterprise_id"]] in ("herbal", "care")  # Nanhai's enterprises
        if "program_id" in row:
            assert row["program_title"] == programs[row["program_id"]]["title"]
            assert orgs[row["college_id"]] == "fsvc" and row["college"]
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert gap["total"] >= 1 and sum(g["demand"] for g in gap["items"]) == alloc["demand"]
    assert not job_processes()  # the job's process has exited


def test_results_download_as_csv_xlsx_and_parquet(shared_world, finished):
    job_id = finished["id"]
    with shared_world.client("nanhai") as c:
        whole = c.get(f"/api/v1/jobs/{job_id}/results/allocation",
                      params={"limit": 1000}).json()["items"]
        files = {fmt: c.get(f"/api/v1/jobs/{job_id}/results/allocation",
                            params={"format": fmt}) for fmt in ("csv", "xlsx", "parquet")}
    for fmt, r in files.items():
        assert r.status_code == 200, r.text
        assert f"job-{job_id}-allocation.{fmt}" in r.headers["content-disposition"]
    csv = pd.read_csv(io.BytesIO(files["csv"].content))
    pq = pd.read_parquet(io.BytesIO(files["parquet"].content))
    sheet = openpyxl.load_workbook(io.BytesIO(files["xlsx"].content)).active
    rows = list(sheet.iter_rows(values_only=True))
    for table in (csv, pq):
        assert table["need_id"].tolist() == [w["need_id"] for w in whole]
        assert table["assigned"].tolist() == [w["assigned"] for w in whole]
    assert list(rows[0])[:4] == ["need_id", "program_id", "assigned", "score"]
    assert len(rows) == len(whole) + 1


def test_batch_jobs_belong_to_coordinators_of_their_alliance(shared_world, finished):
    job_id = finished["id"]
    with shared_world.client("chengyu") as other:  # the other alliance's coordinator
        assert other.get(f"/api/v1/jobs/{job_id}").status_code == 404
        assert other.get(f"/api/v1/jobs/{job_id}/results/scores").status_code == 404
        assert other.get(f"/api/v1/jobs/{job_id}/plots/gap.png").status_code == 404
    for who in ("herbal", "fsvc"):  # enterprises and colleges run no batch jobs
        with shared_world.client(who) as c:
            assert c.post("/api/v1/batch", json={}).status_code == 403
            assert c.get(f"/api/v1/jobs/{job_id}/results/scores").status_code == 403
    with shared_world.client() as anonymous:
        assert anonymous.post("/api/v1/batch", json={}).status_code == 401
    with shared_world.client("admin") as admin:
        assert admin.get(f"/api/v1/jobs/{job_id}/results/gap").status_code == 200


def test_bad_requests_are_refused_clearly(shared_world, finished):
    with shared_world.client("nanhai") as c:
        for body in ({"top_k": 0}, {"top_k": 101}, {"top_k": "5"}, {"allocate": 1},
                     {"max_partners_per_college": 0}, {"surprise": True}):
            r = c.post("/api/v1/batch", json=body)
            assert r.status_code == 422, (body, r.text)
        r = c.get(f"/api/v1/jobs/{finished['id']}/results/scores", params={"format": "exe"})
        assert r.status_code == 422
        r = c.get(f"/api/v1/jobs/{finished['id']}/results/secrets")
        assert r.status_code == 422
        assert c.get("/api/v1/jobs/999999/results/scores").status_code == 404


NEEDS_CSV = """need_id,title,text,headcount,province,level
N1,中药配方颗粒生产技术员,提取 浓缩 喷雾干燥 制粒 GMP,6,广东省,高职专科
N2,数控车工,数控机床 编程 零件加工,3,广东省,高职专科
N3,Java后端开发工程师,Spring 微服务 数据库,4,四川省,高职专科
"""


def programs_csv() -> str:
    from iei_match.bundled import catalog_dir
    from iei_match.io import load_programs

    catalog = load_programs(catalog_dir("cn-vocational") / "programs.csv")
    keep = catalog[catalog["title"].isin(["中药制药", "数控技术", "软件技术", "护理"])
                   & (catalog["level"] == "高职专科")].drop_duplicates("title")
    assert len(keep) == 4
    table = keep[["program_id", "title", "text", "level"]].assign(
        graduates_per_year=[2, 5, 3, 4], org_id=["c1", "c1", "c2", "c2"])
    return table.to_csv(index=False)


def test_uploaded_files_are_scored_and_bad_rows_reported(shared_world):
    programs = programs_csv()
    with shared_world.client("nanhai") as c:
        bad = NEEDS_CSV.replace(",6,", ",six,")
        r = c.post("/api/v1/batch/upload", files={
            "needs": ("../../needs.csv", bad.encode(), "text/csv"),
            "programs": ("programs.csv", programs.encode(), "text/csv")})
        assert r.status_code == 422, r.text
        err = r.json()["error"]
        assert err["code"] == "bad_data_file" and "needs.csv" in err["message"]
        assert "/" not in err["message"].split(",")[0]  # the client's name, never a path
        assert err["problems"][0]["row"] == 2 and err["problems"][0]["column"] == "headcount"
        r = c.post("/api/v1/batch/upload", files={
            "needs": ("needs.exe", NEEDS_CSV.encode(), "text/csv"),
            "programs": ("programs.csv", programs.encode(), "text/csv")})
        assert r.status_code == 422 and r.json()["error"]["code"] == "unsupported_file_type"
        r = c.post("/api/v1/batch/upload", data={"top_k": "3"}, files={
            "needs": ("需求.csv", NEEDS_CSV.encode(), "text/csv"),
            "programs": ("programs.csv", programs.encode(), "text/csv")})
        assert r.status_code == 202, r.text
        job = wait(c, r.json()["id"])
        assert job["state"] == "succeeded", job["message"]
        scores = pd.DataFrame(c.get(f"/api/v1/jobs/{job['id']}/results/scores").json()["items"])
        plan = pd.DataFrame(c.get(f"/api/v1/jobs/{job['id']}/results/allocation").json()["items"])
    assert set(scores["need_id"]) == {"N1", "N2", "N3"} and scores["rank"].max() <= 3
    top = scores[scores["rank"] == 1].set_index("need_id")["program_title"]
    assert top["N1"] == "中药制药" and top["N2"] == "数控技术"
    # The same allocation as the engine's on the job's scores: nothing over capacity.
    needs = pd.read_csv(io.StringIO(NEEDS_CSV))
    progs = pd.read_csv(io.StringIO(programs), dtype={"program_id": str})
    expected, report = allocate(scores, needs, progs)
    assert plan["assigned"].sum() == report.assigned
    used = plan.groupby("program_id")["assigned"].sum()
    cap = progs.set_index("program_id")["graduates_per_year"]
    assert (used <= cap.reindex(used.index)).all()


def test_a_running_job_can_be_cancelled(world, monkeypatch):
    import iei_match_service.batch_jobs as batch_jobs

    from . import batch_fakes

    # The job's process runs a stand-in that works until it is told to stop.
    monkeypatch.setattr(batch_jobs, "WORK", f"{batch_fakes.__name__}:slow")
    with world.client("nanhai") as c:
        job = c.post("/api/v1/batch", json={}).json()
        deadline = time.monotonic() + 30
        while c.get(f"/api/v1/jobs/{job['id']}").json()["message"] != "working":
            assert time.monotonic() < deadline, "the job never started working"
            time.sleep(0.05)
        r = c.post(f"/api/v1/jobs/{job['id']}/cancel")
        assert r.status_code == 200, r.text
        done = wait(c, job["id"], timeout=30)
        assert done["state"] == "cancelled"
        assert c.post(f"/api/v1/jobs/{job['id']}/cancel").status_code == 409
        r = c.get(f"/api/v1/jobs/{job['id']}/results/scores")
        assert r.status_code == 409 and r.json()["error"]["code"] == "job_not_finished"
    assert not job_processes()  # the job's process has exited
