"""The college page in Chromium: one of its programs, the enterprise needs that fit it best
(only from its alliances), with the same explanations."""

from __future__ import annotations

import re

from .browser import expect


def test_college_sees_fitting_needs_for_a_program(tab, world):
    page = tab.page
    world.sign_in(tab, "fsvc")
    expect(page.locator("#who")).to_contain_text("院校")
    expect(page.locator("#who")).to_contain_text("佛山南海职业技术学院")
    options = page.locator("#program-select option")
    expect(options).to_have_count(5)
    titles = options.all_inner_texts()
    assert "中药制药 (520415)" in titles and "工业机器人技术 (460305)" in titles

    page.locator("#program-select").select_option(label="中药制药 (520415)")
    expect(page).to_have_url(re.compile(r"#program/\d+$"))
    expect(page.locator("#partners-title")).to_have_text("与「中药制药」最匹配的企业需求")
    cards = page.locator("#partner-list > li.card")
    expect(cards.first).to_be_visible()
    expect(cards.first.locator("h3")).to_contain_text("中药")
    # (the list is drawn again when the address changes: wait for the one that stays)
    expect(page.locator("#partner-list")).to_contain_text("南海本草颗粒制药有限公司（演示）")
    text = page.locator("#partner-list").inner_text()
    # Needs of enterprises outside the college's alliance are never listed.
    for other in ("天府云数", "Java后端开发工程师", "沪东商用飞机", "Chongqing Smart"):
        assert other not in text
    first = cards.first
    expect(first.locator(".why h4")).to_have_text("匹配原因")
    assert first.locator(".chip.hit").count() >= 1
    assert first.locator(".why .text mark").count() >= 1
    assert first.locator(".factors .fbar").count() >= 1
    expect(first.locator(".meta").first).to_contain_text("人")
    tab.shot("college-partners")

    # The college records an outcome too.
    need_id = int(first.get_attribute("data-need"))
    first.locator(".outcome select").select_option("contacted")
    first.locator(".outcome button").click()
    expect(first.locator(".outcome .status")).to_have_text("已记录：已联系")
    with world.client("fsvc") as c:
        pairs = {p["need_id"]: p["stage"] for p in c.get("/api/v1/partnerships").json()["items"]}
    assert pairs[need_id] == "contacted"

    # Another program, and the same page in English.
    page.locator("#program-select").select_option(label="工业机器人技术 (460305)")
    expect(page.locator("#partners-title")).to_have_text("与「工业机器人技术」最匹配的企业需求")
    page.locator("#lang").click()
    expect(page.locator("#partners-title")).to_have_text(
        "Enterprise needs that fit “工业机器人技术” best")
    expect(page.locator("#who")).to_contain_text("College")
    if page.locator("#partner-list > li.card").count():
        expect(page.locator("#partner-list .why h4").first).to_have_text("Why it matched")
    tab.shot("college-partners-english")


def test_college_cannot_open_another_colleges_program(tab, world):
    with world.client("cdit") as c:
        other = c.get("/api/v1/programs").json()["items"][0]["id"]
    page = tab.page
    world.sign_in(tab, "fsvc")
    expect(page.locator("#partner-list > li.card").first).to_be_visible()
    page.goto(f"{world.url}/#program/{other}")
    expect(page.locator("#notice span")).to_contain_text("未找到")
    expect(page.locator("#partner-list > li")).to_have_count(0)
