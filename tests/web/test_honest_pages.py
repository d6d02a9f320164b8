"""Each role's page for an alliance that can serve only some of its needs: fit badges, the
plain "nothing in the alliance fits" message with the national majors to look for, low fits
only on request, and a batch job whose gap heatmap shows the shortages.

Screenshots: ``honest-enterprise-fits``, ``honest-enterprise-nofit``, ``honest-college``,
``honest-coordinator-gap``, ``honest-english-need-bridged`` and ``honest-english-need``.
"""

from __future__ import annotations

import re

import pytest

from service.pilot import NEEDS, seed_pilot

from .browser import expect, sign_in


@pytest.fixture(scope="module")
def pilot(world):
    with world.db.session() as s:
        ids, keys = seed_pilot(s)
    return ids, keys


def open_need(page, title: str) -> None:
    page.locator("#need-list a").filter(has_text=title).click()
    expect(page.locator("#recs-title")).to_contain_text(title)


def test_enterprise_sees_fit_badges_and_what_to_look_for_when_nothing_fits(tab, world, pilot):
    ids, keys = pilot
    page = tab.page
    sign_in(tab, world.url, keys["firm"], "enterprise")
    open_need(page, NEEDS["tcm"]["title"])
    cards = page.locator("#rec-list > li.card")
    expect(cards.first.locator("h3")).to_have_text("中药制药")
    badge = cards.first.locator(".fit")
    expect(badge).to_have_text(re.compile("^(高度匹配|一般匹配)$"))
    assert page.locator("#rec-list .fit.low").count() == 0  # low fits are hidden by default
    tab.shot("honest-enterprise-fits")

    open_need(page, NEEDS["care"]["title"])
    expect(page.locator("#recs-status")).to_have_text("联盟内暂无与该需求匹配的专业。")
    expect(page.locator("#rec-list > li.card")).to_have_count(0)
    box = page.locator("#reference-majors")
    expect(box).to_be_visible()
    expect(box.locator("h3")).to_have_text("联盟内暂无匹配专业；开设以下专业的院校可满足该需求")
    # 养老护理员 is linked to 智慧健康养老服务与管理 and to 护理 by the national guide: either
    # may come first.
    expect(box.locator("li").first).to_contain_text("联盟内未开设")
    top = " ".join(box.locator("li").all_inner_texts()[:2])
    assert "智慧健康养老服务与管理" in top, top
    tab.shot("honest-enterprise-nofit")

    # On request, the alliance's programs show, every one marked as a poor fit.
    page.locator("#recs-low").check()
    expect(page.locator("#rec-list > li.card").first).to_be_visible()
    assert page.locator("#rec-list .fit").all_inner_texts() == \
        ["匹配度低"] * page.locator("#rec-list > li.card").count()
    expect(page.locator("#recs-status")).to_have_text("以下专业匹配度都较低，仅供参考。")

    # English
    page.locator("#lang").click()
    expect(page.locator("#rec-list .fit").first).to_have_text("Poor fit")
    page.locator("#recs-low").uncheck()
    expect(page.locator("#recs-status")).to_have_text("No program of the alliance fits this need.")
    expect(page.locator("#reference-majors h3")).to_have_text(
        "No program of the alliance fits; colleges offering these majors could meet this need")


def test_college_sees_only_fitting_needs(tab, world, pilot):
    ids, keys = pilot
    page = tab.page
    sign_in(tab, world.url, keys["college"], "college")
    page.locator("#program-select").select_option(str(ids["programs"]["520415"]))
    cards = page.locator("#partner-list > li.card")
    expect(cards).to_have_count(1)
    expect(cards.first.locator("h3")).to_have_text(NEEDS["tcm"]["title"])
    expect(cards.first.locator(".fit")).to_have_text(re.compile("^(高度匹配|一般匹配)$"))
    gaps = page.locator("#skill-gaps")
    expect(gaps).to_be_visible()
    expect(gaps.locator("h3")).to_contain_text("技能缺口")
    skills = gaps.locator("tbody tr td:first-child").all_inner_texts()
    assert skills and set(skills) <= set(NEEDS["tcm"]["skills"]), skills
    tab.shot("honest-college")
    page.locator("#program-select").select_option(str(ids["programs"]["460305"]))
    expect(page.locator("#partners-status")).to_contain_text("暂无与本专业匹配的企业需求")
    expect(page.locator("#partner-list > li.card")).to_have_count(0)


def test_coordinator_batch_shows_unmet_needs_and_their_shortage(tab, world, pilot):
    ids, keys = pilot
    page = tab.page
    sign_in(tab, world.url, keys["coordinator"], "coordinator")
    page.locator("#view-coordinator [data-tab=batch]").click()
    page.locator("#batch-start").click()
    expect(page.locator("#batch-results")).to_be_visible(timeout=240_000)
    expect(page.locator("#alloc-summary")).to_contain_text("50")
    unmet = page.locator("#unmet-table")
    expect(unmet).to_contain_text(NEEDS["care"]["title"])
    expect(unmet).to_contain_text("联盟内无匹配专业")
    expect(unmet).to_contain_text(re.compile("智慧健康养老服务与管理|护理"))
    heat = page.locator("#gap-heatmap table")
    rows = heat.locator("tbody th").all_inner_texts()
    groups = {r.split(" ")[0] for r in rows[:2]}
    # the battery need's group: either NEV major of its level (the same calibrated fit)
    assert len(rows) > 2 and groups & {"4607", "5002"} and groups & {"5903", "5202"}, rows
    assert any("汽车制造类" in r or "道路运输类" in r for r in rows[:2])
    expect(page.locator("#batch-job-message")).to_have_text("")  # done: no step left over
    expect(page.locator("#gap-heatmap th.corner")).to_have_text("专业类 \\ 省份")
    tab.shot("honest-coordinator-gap")


def test_form_errors_name_the_field_in_the_pages_language_and_clear(tab, world, pilot):
    ids, keys = pilot
    page = tab.page
    sign_in(tab, world.url, keys["firm"], "enterprise")
    page.locator("#need-new").click()
    page.locator("#need-form button[type=submit]").click()  # no title
    title_error = page.locator("#need-form .field-error")
    expect(title_error).to_have_text("岗位名称：请填写此项")
    expect(page.locator("#need-form-status")).to_have_text("请修改标出的字段后再保存。")
    page.locator("#need-title").fill("数控车工")
    expect(title_error).to_have_count(0)  # cleared as soon as the field is edited
    # The server's refusal (headcount above its limit) lands on the field, in Chinese.
    page.locator("#need-headcount").fill("2000000")
    page.locator("#need-form button[type=submit]").click()
    expect(page.locator("#need-form .field-error")).to_have_text("需求人数：不能大于 1000000")
    assert "request is not valid" not in page.locator("#need-form").inner_text()
    page.locator("#lang").click()
    page.locator("#need-headcount").fill("3000000")
    page.locator("#need-form button[type=submit]").click()
    expect(page.locator("#need-form .field-error")).to_have_text(
        "Headcount: must be at most 1000000")
    tab.shot("honest-form-errors")


def test_an_english_need_says_how_it_was_matched(tab, world, pilot):
    ids, keys = pilot
    with world.client() as c:
        c.headers["Authorization"] = f"Bearer {keys['firm']}"
        bridged = c.post("/api/v1/needs", json={
            "title": "CNC machinist", "description": "Operate CNC lathes and milling machines",
            "level": "高职专科", "headcount": 3}).json()["id"]
        unknown = c.post("/api/v1/needs", json={
            "title": "Zorbling flange wrangler", "description": "qwerty uiop asdf",
            "headcount": 1}).json()["id"]
    page = tab.page
    sign_in(tab, world.url, keys["firm"], "enterprise")
    page.goto(f"{world.url}/#need/{bridged}")
    expect(page.locator("#recs-status")).to_have_text("需求为英文：已对照中文职业用语匹配。")
    # a Chinese term matched for it shows the English words it was read from
    via = page.locator(".chip.hit .via").first
    expect(via).to_have_text(re.compile(r"^ ← (CNC|machinist|lathes|milling|machines?)$"))
    assert re.fullmatch(r"需求中写的是「.+」，目录的说法是「.+」",
                        via.locator("..").get_attribute("title") or "")
    tab.shot("honest-english-need-bridged")
    page.goto(f"{world.url}/#need/{unknown}")
    expect(page.locator("#recs-status")).to_contain_text("需求为英文，未能识别其中的职业用语")
    tab.shot("honest-english-need")
