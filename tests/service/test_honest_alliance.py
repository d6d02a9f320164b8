"""An alliance that can serve only some of its needs, walked through the real server.

One college in Foshan offers 中药制药, 工业机器人技术 and 软件技术; enterprises ask for
TCM-granule technicians, elderly-care staff and NEV-battery technicians. The service must
say that the TCM need fits, that the other two fit nothing in the alliance (and which
national majors would), allocate nobody to them, and show their shortfall in the gap report.
"""

from __future__ import annotations

import time

import pytest

from .conftest import make_world
from .pilot import NEEDS, seed_pilot


@pytest.fixture(scope="module")
def foshan(tmp_path_factory, model_root):
    world = make_world(tmp_path_factory.mktemp("foshan"), model_root)
    with world.db.session() as s:
        world.ids, keys = seed_pilot(s)
    world.keys.update(keys)
    yield world
    world.server.stop()
    world.db.dispose()


def recommendations(world, need: str, **params) -> dict:
    with world.client("firm") as c:
        r = c.get(f"/api/v1/needs/{world.ids['needs'][need]}/recommendations",
                  params={"k": 10, **params})
    assert r.status_code == 200, r.text
    return r.json()


def test_the_tcm_need_gets_the_tcm_program_at_a_fitting_level(foshan):
    body = recommendations(foshan, "tcm")
    assert body["items"], "the TCM need fits 中药制药; the list must not be empty"
    top = body["items"][0]
    assert top["program"]["title"] == "中药制药"
    assert top["fit_level"] in ("high", "medium")
    assert all(i["fit_level"] != "low" for i in body["items"])
    majors = body["reference_majors"]
    assert majors and any(m["title"] == "中药制药" and m["offered_in_alliance"] for m in majors)


@pytest.mark.parametrize("need, expected, group", [
    ("care", "智慧健康养老服务与管理", "5903"),
    ("battery", "新能源汽车技术", "4607"),
])
def test_unserved_needs_get_no_fitting_program_and_the_right_national_majors(
        foshan, need, expected, group):
    body = recommendations(foshan, need)
    assert body["items"] == [], [(i["program"]["title"], i["fit"]) for i in body["items"]]
    majors = body["reference_majors"]
    # The expected major is among the first two (养老护理员 is linked to 护理 as well as to
    # 智慧健康养老服务与管理 in the national guide: either may come first).
    first = [m for m in majors[:2] if m["title"] == expected]
    assert first, [m["title"] for m in majors]
    assert first[0]["group"] == group and not first[0]["offered_in_alliance"]
    assert all(0 <= m["fit"] <= 1 and m["fit_level"] in ("high", "medium", "low")
               for m in majors)
    # On request, the alliance's programs are listed, every one marked low.
    low = recommendations(foshan, need, include_low=True)
    assert low["include_low"] is True and low["items"]
    assert {i["fit_level"] for i in low["items"]} == {"low"}


def test_a_need_given_in_the_request_gets_reference_majors_too(foshan):
    with foshan.client("firm") as c:
        r = c.post("/api/v1/match", json={"title": "养老护理员", "description":
                                          NEEDS["care"]["description"], "level": "高职专科"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["items"] == []
    assert "智慧健康养老服务与管理" in [m["title"] for m in body["reference_majors"][:2]]


def test_the_college_partner_list_hides_needs_that_do_not_fit(foshan):
    with foshan.client("college") as c:
        robot = c.get(f"/api/v1/programs/{foshan.ids['programs']['460305']}/partners").json()
        tcm = c.get(f"/api/v1/programs/{foshan.ids['programs']['520415']}/partners").json()
    assert robot["items"] == [] and robot["skill_gaps"] == []
    assert [i["need"]["title"] for i in tcm["items"]] == [NEEDS["tcm"]["title"]]
    # The TCM need's skills that the 中药制药 profile does not cover, with its headcount.
    missing = tcm["items"][0]["explanation"]["missing_skills"]
    assert missing, "the need asks for skills the profile does not name"
    assert [(g["skill"], g["needs"], g["headcount"]) for g in tcm["skill_gaps"]] == \
        [(skill, 1, NEEDS["tcm"]["headcount"]) for skill in missing]


def wait_for(client, job_id: int, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish")


def test_the_batch_job_allocates_nobody_to_unserved_needs_and_shows_their_shortfall(foshan):
    with foshan.client("coordinator") as c:
        r = c.post("/api/v1/batch", json={"top_k": 10, "allocate": True})
        assert r.status_code == 202, r.text
        job = wait_for(c, r.json()["id"])
        assert job["state"] == "succeeded", job
        plan = c.get(f"/api/v1/jobs/{job['id']}/results/allocation").json()["items"]
        unmet = c.get(f"/api/v1/jobs/{job['id']}/results/unmet").json()["items"]
        gap = c.get(f"/api/v1/jobs/{job['id']}/results/gap").json()["items"]
    assert {row["need_title"] for row in plan} == {NEEDS["tcm"]["title"]}
    reasons = {row["need_title"]: (row["reason"], row["unmet"]) for row in unmet}
    assert reasons[NEEDS["care"]["title"]] == ("no_fitting_program", 20)
    assert reasons[NEEDS["battery"]["title"]] == ("no_fitting_program", 30)
    assert job["result"]["allocation"]["unmet_no_fitting_program"] == 50
    cells = {row["group"]: row for row in gap}
    # The care need's shortage sits under the group of its best national major: 公共服务类
    # (智慧健康养老服务与管理) or 护理类 (护理), both linked to 养老护理员 by the national guide.
    care = [cells[g] for g in ("5903", "5202") if g in cells]
    assert care and care[0]["shortfall"] == 20
    assert care[0]["group_name"] in ("公共服务类", "护理类")
    # The battery need's shortfall sits under the group of its best national major of its
    # level: 新能源汽车技术 (汽车制造类) or 新能源汽车检测与维修技术 (道路运输类), which get the
    # same calibrated fit (the ranker's order breaks the tie).
    battery = [cells[g] for g in ("4607", "5002") if g in cells]
    assert len(battery) == 1 and battery[0]["shortfall"] == 30
    assert (battery[0]["group_name"], battery[0]["category_name"]) in (
        ("汽车制造类", "装备制造大类"), ("道路运输类", "交通运输大类"))
