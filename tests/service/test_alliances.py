"""One service, several alliances: what one alliance's keys cannot reach of another's
(jobs, outcomes, the shared model) and how much one organisation may store or label."""

from __future__ import annotations

import io
import time

import pytest
from sqlalchemy import select

from iei_match_service.auth import create_key
from iei_match_service.db.tables import Job, Need, Partnership
from iei_match_service.retrain import training_tables

from .conftest import make_world


@pytest.fixture(scope="module")
def aw(tmp_path_factory, model_root):
    w = make_world(tmp_path_factory.mktemp("alliances"), model_root, max_rows_per_org=12,
                   max_labels_per_org=2)
    with w.db.session() as s:  # the admin key belongs to the Shanghai alliance's organisation
        w.keys["shanghai-coordinator"] = create_key(s, w.orgs["shanghai"], "coordinator")
    yield w
    w.server.stop()
    w.db.dispose()


def test_a_platform_job_is_not_an_alliance_coordinators(aw):
    with aw.client("admin") as admin:
        r = admin.post("/api/v1/batch", json={"top_k": 3, "allocate": False})
        assert r.status_code == 202, r.text
        job = r.json()
    with aw.db.session() as s:  # every alliance's needs are in it
        params = s.get(Job, job["id"]).params
    assert params["scope"] == "platform" and params["needs"] >= 7
    with aw.client("shanghai-coordinator") as c:
        assert job["id"] not in [j["id"] for j in c.get("/api/v1/jobs").json()["items"]]
        for method, path in (("GET", f"/api/v1/jobs/{job['id']}"),
                             ("GET", f"/api/v1/jobs/{job['id']}/results/scores"),
                             ("GET", f"/api/v1/jobs/{job['id']}/plots/gap.png"),
                             ("POST", f"/api/v1/jobs/{job['id']}/cancel")):
            r = c.request(method, path)
            assert r.status_code == 404, (method, path, r.text)
            assert r.json()["error"]["message"] == f"no job with id {job['id']}"
        own = c.post("/api/v1/batch", json={"top_k": 3, "allocate": False})
        assert own.status_code == 202
        assert own.json()["id"] in [j["id"] for j in c.get("/api/v1/jobs").json()["items"]]
    with aw.client("admin") as admin:
        assert admin.get(f"/api/v1/jobs/{job['id']}").status_code == 200
        for j in (job["id"], own.json()["id"]):
            admin.post(f"/api/v1/jobs/{j}/cancel")


def test_outcomes_only_within_an_alliance(aw):
    with aw.client("soft") as c:  # Chengdu-Chongqing enterprise
        need = c.get("/api/v1/needs").json()["items"][0]["id"]
    with aw.client("fsvc") as c:  # Nanhai college
        program = c.get("/api/v1/programs").json()["items"][0]["id"]
    with aw.client("admin") as c:
        before = c.get("/api/v1/partnerships", params={"limit": 1000}).json()
    for who in ("soft", "admin"):
        with aw.client(who) as c:
            r = c.post("/api/v1/outcomes", json={"need_id": need, "program_id": program,
                                                 "event": "hired"})
        assert r.status_code == 404, (who, r.text)
    with aw.client("admin") as c:
        assert c.get("/api/v1/partnerships", params={"limit": 1000}).json() == before
    with aw.client("fsvc") as c:  # the college never sees the other alliance's need
        partners = c.get(f"/api/v1/programs/{program}/partners").json()
    assert need not in [p.get("need_id", p.get("id")) for p in partners.get("items", [])]


def test_a_college_cannot_undo_an_enterprises_agreement(aw):
    with aw.client("herbal") as c:
        need = c.get("/api/v1/needs").json()["items"][0]["id"]
    with aw.client("fsvc") as c:
        program = c.get("/api/v1/programs").json()["items"][-1]["id"]
    with aw.client("herbal") as c:
        r = c.post("/api/v1/outcomes", json={"need_id": need, "program_id": program,
                                             "event": "agreement_signed"})
        assert r.json()["grade"] == 2
    with aw.client("fsvc") as c:
        r = c.post("/api/v1/outcomes", json={"need_id": need, "program_id": program,
                                             "event": "rejected"})
    assert r.status_code == 201 and r.json()["grade"] == 2


def test_only_admins_change_the_shared_model(aw):
    with aw.client("admin") as c:
        live = c.get("/readyz").json()["model_version"]
    for who in ("nanhai", "chengyu", "shanghai-coordinator"):
        with aw.client(who) as c:
            assert c.post(f"/api/v1/models/{live}/activate").status_code == 403
            assert c.post("/api/v1/models/retrain", json={"force": True}).status_code == 403
            assert c.post("/api/v1/models/retrain", json={}).status_code == 403
    with aw.client("admin") as c:
        assert c.post(f"/api/v1/models/{live}/activate").status_code == 200


def test_quotas_per_organisation(aw):
    with aw.db.session() as s:
        held = len(s.scalars(select(Need).where(Need.org_id == aw.orgs["cq"])).all())
    rows = "\n".join(f"CQ-{i},岗位{i},描述" for i in range(13 - held))
    data = ("need_id,title,text\n" + rows + "\n").encode()
    with aw.client("chengyu") as c:
        r = c.post("/api/v1/imports/needs", data={"org_id": str(aw.orgs["cq"])},
                   files={"file": ("n.csv", io.BytesIO(data))})
        assert r.status_code == 422 and r.json()["error"]["code"] == "quota_exceeded", r.text
        ok = "\n".join(f"CQ-{i},岗位{i},描述" for i in range(12 - held))
        r = c.post("/api/v1/imports/needs", data={"org_id": str(aw.orgs["cq"])},
                   files={"file": ("n.csv", io.BytesIO(f"need_id,title,text\n{ok}\n".encode()))})
        assert r.status_code == 201, r.text
        r = c.post("/api/v1/needs", json={"title": "再多一个", "org_id": aw.orgs["cq"]})
        assert r.status_code == 422 and r.json()["error"]["code"] == "quota_exceeded"


def test_one_organisations_labels_are_capped_in_training(aw):
    with aw.client("herbal") as c:
        needs = [n["id"] for n in c.get("/api/v1/needs").json()["items"]]
    with aw.client("fsvc") as c:
        programs = [p["id"] for p in c.get("/api/v1/programs").json()["items"]]
    with aw.client("herbal") as c:
        for need in needs[:2]:
            for program in programs:
                assert c.post("/api/v1/outcomes", json={
                    "need_id": need, "program_id": program, "event": "hired"}
                ).status_code == 201
                time.sleep(0.002)
    with aw.db.session() as s:
        recorded = s.scalars(select(Partnership).join(Need, Need.id == Partnership.need_id)
                             .where(Need.org_id == aw.orgs["herbal"],
                                    Partnership.grade.is_not(None))).all()
    assert len(recorded) > 2
    _, _, links = training_tables(aw.server.settings, aw.db)
    herbal = {f"db-need-{n}" for n in needs}
    assert links["need_id"].isin(herbal).sum() == 2  # max_labels_per_org
