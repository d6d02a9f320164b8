"""What a college and an enterprise learn besides the ranking: the skill gaps of a program's
fitting partner needs, and the training bases near each recommended program."""

from __future__ import annotations

from pathlib import Path

from iei_match.skills import canonical, covers

TCM = {"code": "520415", "title": "中药制药（颗粒方向）", "level": "高职专科",
       "description": "中药配方颗粒生产：中药材提取、浓缩、喷雾干燥与制粒，"
                      "按药品生产质量管理规范组织生产，质量检验与批生产记录。",
       "graduates_per_year": 40}
NEEDS = [  # title, description, skills, headcount
    ("中药配方颗粒提取工", "负责中药配方颗粒提取、浓缩与喷雾干燥工序，按GMP要求记录。",
     ["GMP", "PLC", "区块链", "喷雾干燥"], 12),
    ("中药颗粒制粒工", "中药配方颗粒制粒、干燥与包装，按GMP做好清洁验证与批生产记录。",
     ["可编程控制器", "区块链", "中药提取"], 5),
    ("量子软件工程师", "Quantum software engineer: Qiskit circuits, error correction.",
     ["量子纠错"], 50),
]


def test_partners_report_the_skill_gaps_of_fitting_needs(world):
    with world.client("herbal") as c:
        for title, text, skills, headcount in NEEDS:
            r = c.post("/api/v1/needs", json={"title": title, "description": text,
                                              "skills": skills, "headcount": headcount,
                                              "level": "高职专科"})
            assert r.status_code == 201, r.text
    with world.client("fsvc") as c:
        r = c.post("/api/v1/programs", json=TCM)
        assert r.status_code == 201, r.text
        r = c.get(f"/api/v1/programs/{r.json()['id']}/partners", params={"k": 50})
    assert r.status_code == 200, r.text
    body = r.json()
    items, gaps = body["items"], body["skill_gaps"]
    fitting = [i for i in items if i["fit_level"] in ("high", "medium")]
    by_title = {i["need"]["title"]: i for i in items}
    # The two granule needs fit; the profile names GMP only as 药品生产质量管理规范.
    assert {"中药配方颗粒提取工", "中药颗粒制粒工"} <= {i["need"]["title"] for i in fitting}
    missing = by_title["中药配方颗粒提取工"]["explanation"]["missing_skills"]
    assert "GMP" not in missing and "喷雾干燥" not in missing
    assert {"PLC", "区块链"} <= set(missing)
    # One entry per skill, synonyms merged; the most asked first; headcounts summed.
    gap = {canonical(g["skill"]): g for g in gaps}
    assert len(gap) == len(gaps)
    assert gap[canonical("区块链")]["needs"] >= 2 and gap[canonical("PLC")]["needs"] >= 2
    assert gap[canonical("PLC")]["skill"] in {"PLC", "可编程控制器"}
    assert gap[canonical("PLC")]["headcount"] >= 17
    assert [g["needs"] for g in gaps] == sorted((g["needs"] for g in gaps), reverse=True)
    assert all(not covers(TCM["title"] + TCM["description"], g["skill"]) for g in gaps)
    # The gaps are exactly those of the fitting needs: a low-fit need adds nothing.
    expected = {}
    for i in fitting:
        for s in {canonical(s) for s in i["explanation"]["missing_skills"]}:
            expected[s] = expected.get(s, 0) + 1
    assert {k: g["needs"] for k, g in gap.items()} == expected
    quantum = by_title.get("量子软件工程师")
    if quantum is not None and quantum["fit_level"] == "low":
        assert canonical("量子纠错") not in gap


def test_nearby_bases_are_in_the_programs_city_then_province_never_elsewhere(world):
    with world.client("fsvc") as c:  # a Foshan college: one base of its own far away
        for name, province, city in (("成都远程实训点", "四川省", "成都市"),
                                     ("广州制剂实训中心", "广东省", "广州市")):
            r = c.post("/api/v1/bases", json={"name": name, "province": province,
                                              "city": city, "capacity": 10})
            assert r.status_code == 201, r.text
    with world.client("cdit") as c:  # a Chengdu college's base in Foshan
        r = c.post("/api/v1/bases", json={"name": "佛山合作实训室", "province": "广东省",
                                          "city": "佛山市", "capacity": 10})
        assert r.status_code == 201, r.text
    with world.client("herbal") as c:
        need_id = c.get("/api/v1/needs").json()["items"][0]["id"]
        items = c.get(f"/api/v1/needs/{need_id}/recommendations",
                      params={"k": 30, "level": "", "include_low": "true"}).json()["items"]
    places = {(i["program"]["province"], i["program"]["city"]) for i in items}
    assert ("广东省", "佛山市") in places and any(p != "广东省" for p, _ in places)
    listed = 0
    for item in items:
        province, city = item["program"]["province"], item["program"]["city"]
        bases = item["training_bases"]
        listed += len(bases)
        assert all(b["province"] == province for b in bases), (item["program"], bases)
        same_city = [b["city"] == city for b in bases]
        assert same_city == sorted(same_city, reverse=True), bases
        if city == "佛山市":
            names = [b["name"] for b in bases]
            assert names[0] == "南海中药配方颗粒生产性实训基地"  # its college's own, in town
            assert "成都远程实训点" not in names
            assert set(names) >= {"本草颗粒企业实践基地", "佛山合作实训室"}
        if province == "四川省":
            assert "佛山合作实训室" not in [b["name"] for b in bases]
    assert listed


def test_visibility_is_asymmetric_as_documented(world):
    """Programs of every alliance reach an enterprise's recommendations; needs reach only the
    colleges of the enterprise's alliances (SECURITY.md, "Tenant isolation", says why)."""
    with world.client("herbal") as c:  # Nanhai enterprise: a software need
        r = c.post("/api/v1/needs", json={"title": "Java后端开发工程师",
                                          "description": "Java、Spring Boot与MySQL后端开发",
                                          "level": "高职专科"})
        items = c.get(f"/api/v1/needs/{r.json()['id']}/recommendations",
                      params={"k": 20, "include_low": "true"}).json()["items"]
    assert world.orgs["cdit"] in {i["college"]["id"] for i in items}  # a Chengdu college
    with world.client("fsvc") as c:  # Nanhai college: sees Nanhai needs only
        program = c.get("/api/v1/programs").json()["items"][0]
        seen = c.get(f"/api/v1/programs/{program['id']}/partners",
                     params={"k": 100, "include_low": "true"}).json()["items"]
    assert seen and {i["enterprise"]["id"] for i in seen} == {world.orgs["herbal"]}
    root = Path(__file__).resolve().parents[2]
    assert "deliberately not the same both ways" in (root / "SECURITY.md").read_text("utf-8")
