"""The API over real HTTP: what each role can do, what it gets back, and how errors look."""

from __future__ import annotations

import io

import httpx
import pandas as pd
import pytest

NEED = {"title": "中药配方颗粒生产技术员", "description": "负责提取、浓缩、喷雾干燥与制粒，熟悉GMP",
        "skills": ["GMP", "喷雾干燥", "区块链"], "headcount": 12, "level": "高职专科",
        "province": "广东省", "city": "佛山市"}


def error_of(r: httpx.Response) -> dict:
    body = r.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["message"]
    return body["error"]


def test_enterprise_posts_a_need_and_gets_ranked_programs_with_reasons(world):
    with world.client("herbal") as c:
        r = c.post("/api/v1/needs", json=NEED)
        assert r.status_code == 201, r.text
        need = r.json()
        assert need["id"] > 0 and need["skills"] == NEED["skills"]
        r = c.get(f"/api/v1/needs/{need['id']}/recommendations", params={"k": 5})
        assert r.status_code == 200, r.text
        body = r.json()
    items = body["items"]
    assert body["model_version"] and 1 <= len(items) <= 5
    assert [i["rank"] for i in items] == list(range(1, len(items) + 1))
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True)
    top = items[0]
    # The TCM pharmaceutical majors of the demo colleges lead, with their college.
    assert top["program"]["code"] in {"520415", "520414", "490201", "490203"}
    assert top["id"] == top["program"]["id"]
    assert top["college"]["name"].startswith("佛山南海职业技术学院")
    for item in items:
        ex, text = item["explanation"], item["program"]["description"].lower()
        assert ex["matched_terms"] and all(t.lower() in text for t in ex["matched_terms"])
        # shown as the enterprise writes it (the engine's terms are lower-cased)
        assert "gmp" not in ex["matched_terms"]
        assert "区块链" in ex["missing_skills"]
        # GMP is covered by its name or its Chinese title (药品生产质量管理规范)
        assert ("GMP" in ex["missing_skills"]) == (
            "gmp" not in text and "药品生产质量管理规范" not in text)
        assert ex["factors"] and all(f["label"] and f["label_zh"] for f in ex["factors"])
    assert any("GMP" in i["explanation"]["matched_terms"] for i in items)
    # The level is a hard rule (the need asks for 高职专科), and so is the region when asked.
    assert {i["program"]["level"] for i in items} == {"高职专科"}
    assert any(b["name"] for i in items for b in i["training_bases"])


def test_region_and_level_filters(shared_world):
    with shared_world.client("herbal") as c:
        need_id = c.get("/api/v1/needs").json()["items"][0]["id"]
        city = c.get(f"/api/v1/needs/{need_id}/recommendations",
                     params={"near": "city", "k": 50}).json()["items"]
        anywhere = c.get(f"/api/v1/needs/{need_id}/recommendations",
                         params={"near": "anywhere", "k": 50, "level": "",
                                 "include_low": True}).json()["items"]
        other = c.get(f"/api/v1/needs/{need_id}/recommendations",
                      params={"city": "上海市", "province": "上海市", "near": "city"}).json()
    assert city and {i["program"]["city"] for i in city} == {"佛山市"}
    assert {i["program"]["city"] for i in anywhere} > {"佛山市"}
    assert {i["program"]["level"] for i in anywhere} >= {"高职专科", "职教本科"}
    assert {i["program"]["city"] for i in other["items"]} <= {"上海市"}


def test_required_certificates_are_a_hard_rule(shared_world):
    with shared_world.client("herbal") as c:
        r = c.post("/api/v1/match", json={"title": "中药制剂工", "description": "中药制剂生产",
                                          "certificates": ["执业药师"], "k": 20})
        assert r.status_code == 200, r.text
        items = r.json()["items"]
    assert items
    assert all("执业药师" in i["program"]["description"] for i in items)


def test_match_without_storing(shared_world):
    with shared_world.client("soft") as c:
        before = c.get("/api/v1/needs").json()["items"]
        zh = c.post("/api/v1/match", json={"description": "Java后端开发，Spring Boot，MySQL数据库",
                                           "k": 3})
        empty = c.post("/api/v1/match", json={"k": 3})
        after = c.get("/api/v1/needs").json()["items"]
    assert zh.status_code == 200
    assert "510203" in [i["program"]["code"] for i in zh.json()["items"]]  # 软件技术
    assert error_of(empty)["code"] == "empty_need" and empty.status_code == 422
    assert before == after


def test_an_english_need_in_a_chinese_alliance_is_bridged_or_warned_about(shared_world):
    with shared_world.client("soft") as c:
        en = c.post("/api/v1/match", json={"title": "Java developer", "k": 5,
                                           "include_low": True}).json()
        unknown = c.post("/api/v1/match", json={"title": "zorblax qwerty", "k": 5,
                                                "include_low": True}).json()
        zh = c.post("/api/v1/match", json={"title": "Java开发工程师", "k": 5}).json()
    assert en["language"] == "en" and en["warnings"] == []
    assert "510203" in [i["program"]["code"] for i in en["items"]]  # 软件技术
    assert any(not t.isascii() for i in en["items"] for t in i["explanation"]["matched_terms"])
    # each Chinese term matched for it says which of its words it was read from
    for item in en["items"]:
        exp = item["explanation"]
        assert set(exp["matched_via"]) <= set(exp["matched_terms"])
        for term in exp["matched_terms"]:
            if not term.isascii():
                assert exp["matched_via"][term].lower() in "java developer", term
    assert any(i["explanation"]["matched_via"] for i in en["items"])
    assert all(not i["explanation"]["matched_via"] for i in zh["items"])
    assert unknown["language"] == "en"
    assert len(unknown["warnings"]) == 1 and "English" in unknown["warnings"][0]
    assert zh["language"] == "zh" and zh["warnings"] == []


def test_college_sees_partner_needs_of_its_alliance_only(shared_world):
    with shared_world.client("fsvc") as c:
        programs = c.get("/api/v1/programs").json()["items"]
        tcm = next(p for p in programs if p["code"] == "520415")
        r = c.get(f"/api/v1/programs/{tcm['id']}/partners", params={"k": 10})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert {i["need"]["title"] for i in items} == {"中药配方颗粒生产技术员", "中药饮片质量检验员"}
    assert {i["enterprise"]["id"] for i in items} == {shared_world.orgs["herbal"]}
    assert items[0]["explanation"]["matched_terms"]


def test_a_partner_lists_terms_read_from_a_needs_short_forms(world):
    """A need that writes the market's short form (质检) is matched by the catalog's words
    (质量检验); the college's partner list says what the need wrote."""
    with world.client("herbal") as c:
        need = c.post("/api/v1/needs", json={"title": "中药质检员", "headcount": 2}).json()
    with world.client("fsvc") as c:
        programs = c.get("/api/v1/programs").json()["items"]
        tcm = next(p for p in programs if p["code"] == "520415")
        items = c.get(f"/api/v1/programs/{tcm['id']}/partners",
                      params={"k": 20, "include_low": True}).json()["items"]
    exp = next(i["explanation"] for i in items if i["need"]["id"] == need["id"])
    assert exp["matched_via"].get("质量检验") == "质检", exp
    assert set(exp["matched_via"]) <= set(exp["matched_terms"])


def test_outcomes_build_a_graded_partnership(world):
    with world.client("herbal") as c:
        need_id = c.get("/api/v1/needs").json()["items"][1]["id"]
    with world.client("fsvc") as c:
        program_id = c.get("/api/v1/programs").json()["items"][0]["id"]
    grades = []
    for who, event in (("herbal", "viewed"), ("herbal", "contacted"), ("fsvc", "visited"),
                       ("nanhai", "agreement_signed"), ("herbal", "rejected")):
        with world.client(who) as c:
            r = c.post("/api/v1/outcomes", json={"need_id": need_id, "program_id": program_id,
                                                 "event": event, "note": "记录"})
        assert r.status_code == 201, r.text
        grades.append(r.json()["grade"])
    # The enterprise's rejection undoes its own stages and the coordinator's, not the
    # visit the college recorded itself (each party records its own side).
    assert grades == [None, 1, 1, 2, 1]
    with world.client("herbal") as c:
        mine = c.get("/api/v1/partnerships").json()["items"]
    assert any(p["need_id"] == need_id and p["stage"] == "rejected" for p in mine)
    with world.client("fsvc") as c:  # and a college's rejection undoes only its own side
        r = c.post("/api/v1/outcomes", json={"need_id": need_id, "program_id": program_id,
                                             "event": "rejected"})
    assert r.status_code == 201 and r.json()["grade"] == 0
    with world.client("cdit") as c:  # another alliance's college cannot record on the pair
        r = c.post("/api/v1/outcomes", json={"need_id": need_id, "program_id": program_id,
                                             "event": "contacted"})
    assert r.status_code == 404


def test_crud_round_trip_and_validation(world):
    with world.client("fsvc") as c:
        r = c.post("/api/v1/programs", json={"code": "520415", "title": "中药制药（订单班）",
                                             "description": "与本草颗粒合作的订单班",
                                             "level": "高职专科", "graduates_per_year": 45})
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        assert c.patch(f"/api/v1/programs/{pid}", json={"graduates_per_year": 50}).json()[
            "graduates_per_year"] == 50
        assert c.patch(f"/api/v1/programs/{pid}", json={"title": None}).status_code == 422
        bad = c.post("/api/v1/programs", json={"title": "x", "level": "博士"})
        assert bad.status_code == 422 and error_of(bad)["code"] == "invalid"
        extra = c.post("/api/v1/programs", json={"title": "x", "unknown_field": 1})
        assert extra.status_code == 422
        r = c.post("/api/v1/bases", json={"name": "制剂实训室", "capacity": 30,
                                          "equipment": ["压片机"]})
        assert r.status_code == 201 and r.json()["equipment"] == ["压片机"]
        assert c.delete(f"/api/v1/programs/{pid}").status_code == 204
        assert c.get(f"/api/v1/programs/{pid}").status_code == 404
    with world.client("herbal") as c:  # an enterprise cannot create programs
        r = c.post("/api/v1/programs", json={"title": "x"})
        assert r.status_code == 403 and error_of(r)["code"] == "forbidden"


def test_coordinator_creates_for_members_only(world):
    with world.client("nanhai") as c:
        ok = c.post("/api/v1/needs", json={**NEED, "org_id": world.orgs["herbal"]})
        outside = c.post("/api/v1/needs", json={**NEED, "org_id": world.orgs["soft"]})
        unnamed = c.post("/api/v1/needs", json=NEED)
    assert ok.status_code == 201 and ok.json()["org_id"] == world.orgs["herbal"]
    assert outside.status_code == 404
    assert unnamed.status_code == 403


def test_errors_are_json_with_stable_codes_and_never_echo_input(shared_world):
    with shared_world.client() as anon:
        r = anon.post("/api/v1/needs", json=NEED)
        assert r.status_code == 401 and error_of(r)["code"] == "unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"
        assert error_of(anon.get("/no/such/route"))["code"] == "not_found"
    with shared_world.client("herbal") as c:
        secret = "秘密" * 5000
        r = c.post("/api/v1/needs", json={**NEED, "title": secret})
        assert r.status_code == 422 and "秘密" not in r.text and len(r.text) < 2000
        r = c.post("/api/v1/needs", content=b"{not json", headers={
            "content-type": "application/json"})
        assert r.status_code == 422 and error_of(r)["code"] == "invalid"
        r = c.post("/api/v1/needs", content=b"x" * 2_000_000,
                   headers={"content-type": "application/json"})
        assert r.status_code == 413 and error_of(r)["code"] == "payload_too_large"
        r = c.post("/api/v1/needs", json={**NEED, "skills": ["s"] * 51})
        assert r.status_code == 422
        r = c.get("/api/v1/needs/1/recommendations", params={"k": 101})
        assert r.status_code == 422
        r = c.get("/api/v1/needs/99999999")
        assert r.status_code == 404 and error_of(r)["code"] == "not_found"
        r = c.post("/api/v1/models/retrain", json={})
        assert r.status_code == 403
        r = c.put("/api/v1/needs/abc", json=NEED)
        assert r.status_code == 422


def _xlsx(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_excel(buf, index=False)
    return buf.getvalue()


def test_bulk_import_is_all_or_nothing_with_a_row_report(world):
    good = pd.DataFrame({"名称": ["焊接工", "电工"], "描述": ["焊接钢结构", "低压电工作业"],
                         "技能": ["焊接、识图", "电工证"], "人数": ["3", "2"]})
    bad = good.copy()
    bad.loc[1, "人数"] = "很多"
    bad.loc[0, "名称"] = ""
    with world.client("herbal") as c:
        before = c.get("/api/v1/needs").json()["total"]
        r = c.post("/api/v1/imports/needs", files={"file": ("../../etc/需求.xlsx", _xlsx(bad))})
        assert r.status_code == 422, r.text
        err = error_of(r)
        assert {(p["row"], p["column"]) for p in err["problems"]} == {(2, "名称"), (3, "人数")}
        assert "需求.xlsx" in err["message"] and "etc" not in err["message"]
        assert c.get("/api/v1/needs").json()["total"] == before
        r = c.post("/api/v1/imports/needs", files={"file": ("needs.xlsx", _xlsx(good))})
        assert r.status_code == 201, r.text
        assert r.json()["created"] == 2
        assert c.get("/api/v1/needs").json()["total"] == before + 2
        got = c.get(f"/api/v1/needs/{r.json()['ids'][0]}").json()
        assert got["skills"] == ["焊接", "识图"] and got["headcount"] == 3
        r = c.post("/api/v1/imports/needs", files={"file": ("needs.exe", b"MZ")})
        assert r.status_code == 422 and error_of(r)["code"] == "unsupported_file_type"
        r = c.post("/api/v1/imports/programs", files={"file": ("p.csv", b"title\nx\n")})
        assert r.status_code == 422  # an enterprise's rows cannot be programs


def test_health_readiness_metrics_and_models(shared_world):
    with shared_world.client() as anon:
        assert anon.get("/healthz").json() == {"status": "ok"}
        ready = anon.get("/readyz").json()
        assert ready["status"] == "ready" and ready["model_version"]
        assert anon.get("/metrics").status_code == 401  # IEI_MATCH_METRICS_PUBLIC makes it public
        assert anon.get("/api/v1/models").status_code == 401
    with shared_world.client("nanhai") as c:
        assert c.get("/metrics").status_code == 403  # an admin's
    with shared_world.client("admin") as c:
        metrics = c.get("/metrics").text
        assert "iei_match_requests_total" in metrics and "iei_match_model_ready 1.0" in metrics
    with shared_world.client("nanhai") as c:
        versions = c.get("/api/v1/models").json()["items"]
        assert len(versions) == 1 and versions[0]["live"]
        assert c.post(f"/api/v1/models/{versions[0]['version']}/activate").status_code == 403
    with shared_world.client("admin") as c:
        r = c.post("/api/v1/models/no-such-version/activate")
        assert r.status_code == 503 or r.status_code == 404
        r = c.post("/api/v1/models/..%2F..%2Fetc/activate")
        assert r.status_code in (404, 422)


@pytest.mark.parametrize("who", ["herbal", "fsvc", "nanhai", "admin"])
def test_me(shared_world, who):
    with shared_world.client(who) as c:
        me = c.get("/api/v1/me").json()
    assert me["org"]["id"] == shared_world.orgs[dict(herbal="herbal", fsvc="fsvc",
                                                    nanhai="nanhai", admin="shanghai")[who]]


def test_control_characters_are_dropped_and_mixed_scripts_kept(world):
    text = "数控\x00车工 مرحبا ☃ 𝔘𝔫𝔦 naïve\x07"
    with world.client("herbal") as c:
        r = c.post("/api/v1/needs", json={"title": text, "skills": ["焊\x00接"]})
        assert r.status_code == 201, r.text
        assert r.json()["title"] == "数控车工 مرحبا ☃ 𝔘𝔫𝔦 naïve"
        assert r.json()["skills"] == ["焊接"]
        assert c.post("/api/v1/needs", json={"title": "\x00\x01"}).status_code == 422
        r = c.post("/api/v1/match", json={"description": text})
        assert r.status_code == 200
