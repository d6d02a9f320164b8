"""The enterprise page in Chromium: its needs, ranked programs with the reasons, posting and
editing a need, recording an outcome, the English switch."""

from __future__ import annotations

import re

from .browser import expect


def test_enterprise_sees_its_needs_and_ranked_programs_with_reasons(tab, world):
    page = tab.page
    page.goto(world.url + "/")
    expect(page.locator("#signin h2")).to_have_text("登录")
    tab.shot("signin")
    world.sign_in(tab, "herbal")
    expect(page.locator("#who")).to_contain_text("企业")
    expect(page.locator("#who")).to_contain_text("南海本草颗粒制药有限公司")

    # Its two needs, and nobody else's.
    needs = page.locator("#need-list a")
    expect(needs).to_have_count(2)
    expect(page.locator("#need-list")).to_contain_text("中药配方颗粒生产技术员")
    expect(page.locator("#need-list")).to_contain_text("中药饮片质量检验员")
    expect(page.locator("#need-list")).not_to_contain_text("Java")

    needs.filter(has_text="中药配方颗粒生产技术员").click()
    expect(page).to_have_url(re.compile(r"#need/\d+$"))
    expect(page.locator("#need-title")).to_have_value("中药配方颗粒生产技术员")
    expect(page.locator("#need-form-title")).to_have_text("编辑人才需求")
    expect(page.locator("#recs-title")).to_have_text("为「中药配方颗粒生产技术员」推荐的专业")
    cards = page.locator("#rec-list > li.card")
    expect(cards.first).to_be_visible()
    assert 3 <= cards.count() <= 10
    # The college's own pharmacy majors rank among the first.
    top = " ".join(cards.locator("h3").all_inner_texts()[:5])
    assert "中药制药" in top or "药品生产技术" in top, top

    first = cards.first
    expect(first.locator(".meta").first).to_contain_text("院校")
    expect(first.locator(".meta").first).to_contain_text("（演示）")
    expect(first.locator(".bases")).to_contain_text("附近实训基地")
    expect(first.locator(".why h4")).to_have_text("匹配原因")
    expect(first.locator(".why")).to_contain_text("匹配词")
    expect(first.locator(".why")).to_contain_text("未覆盖的技能")
    assert first.locator(".chip.hit").count() >= 1
    assert first.locator(".why .text mark").count() >= 1  # matched terms highlighted
    bars = first.locator(".factors .fbar")
    assert bars.count() >= 1
    labels = first.locator(".factors .flabel").all_inner_texts()
    assert any(re.search(r"[\u4e00-\u9fff]", x) for x in labels), labels
    width = bars.first.evaluate("b => b.getBoundingClientRect().width")
    assert width > 0
    # The fsvc base (南海中药配方颗粒生产性实训基地) is next to the Nanhai need.
    expect(page.locator("#rec-list .bases").filter(has_text="南海中药配方颗粒生产性实训基地")
           .first).to_be_visible()
    tab.shot("enterprise-recommendations")

    # Record an outcome on the first program; the stage shows, and the API has it.
    program_id = int(first.get_attribute("data-program"))
    need_id = int(page.url.rsplit("/", 1)[1])
    first.locator(".outcome select").select_option("visited")
    first.locator(".outcome button").click()
    expect(first.locator(".outcome .status")).to_have_text("已记录：已走访")
    expect(first.locator(".outcome .badge")).to_have_text("当前进展：已走访")
    with world.client("herbal") as c:
        stages = {(p["need_id"], p["program_id"]): p["stage"]
                  for p in c.get("/api/v1/partnerships").json()["items"]}
    assert stages[(need_id, program_id)] == "visited"


def test_enterprise_posts_and_edits_a_need(tab, world):
    page = tab.page
    world.sign_in(tab, "herbal")
    page.locator("#need-new").click()
    expect(page.locator("#need-form-title")).to_have_text("发布人才需求")
    expect(page.locator("#need-province")).to_have_value("广东省")  # the enterprise's place
    page.locator("#need-title").fill("中药提取车间班组长")
    page.locator("#need-description").fill("带领提取浓缩班组完成中药配方颗粒生产，执行GMP规范。")
    page.locator("#need-skills").fill("GMP，提取浓缩、班组管理")
    page.locator("#need-headcount").fill("3")
    page.locator("#need-level").select_option("高职专科")
    page.locator("#need-form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"#need/\d+$"))
    need_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("#need-list a")).to_have_count(3)
    expect(page.locator("#need-list a.active")).to_contain_text("中药提取车间班组长")
    expect(page.locator("#rec-list > li.card").first).to_be_visible()
    with world.client("herbal") as c:
        need = c.get(f"/api/v1/needs/{need_id}").json()
    assert need["skills"] == ["GMP", "提取浓缩", "班组管理"]
    assert (need["headcount"], need["level"], need["city"]) == (3, "高职专科", "佛山市")

    page.locator("#need-headcount").fill("4")
    page.locator("#need-form button[type=submit]").click()
    expect(page.locator("#need-form-status")).to_have_text("已保存。")
    expect(page.locator("#need-list a.active")).to_contain_text("4 人")
    with world.client("herbal") as c:
        assert c.get(f"/api/v1/needs/{need_id}").json()["headcount"] == 4

    # A need without a title is refused, naming the field; nothing is stored.
    page.locator("#need-new").click()
    page.locator("#need-form button[type=submit]").click()
    expect(page.locator("#need-form-status")).to_contain_text("请修改标出的字段")
    expect(page.locator("#need-form .field-error")).to_have_text("岗位名称：请填写此项")
    expect(page.locator("#need-list a")).to_have_count(3)


def test_english_switch(tab, world):
    page = tab.page
    world.sign_in(tab, "herbal")
    page.locator("#need-list a").first.click()
    expect(page.locator("#rec-list > li.card").first).to_be_visible()
    zh_labels = page.locator("#rec-list .factors .flabel").first.inner_text()
    page.locator("#lang").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text("Industry–education talent matching")
    expect(page.locator("#who")).to_contain_text("Enterprise")
    expect(page.locator("#recs-title")).to_contain_text("Programs recommended for")
    expect(page.locator("#rec-list .why h4").first).to_have_text("Why it matched")
    expect(page.locator("#need-form label").first).to_contain_text("Job title")
    en_labels = page.locator("#rec-list .factors .flabel").first.inner_text()
    assert en_labels != zh_labels and re.search(r"[A-Za-z]", en_labels)
    tab.shot("enterprise-english")
    # The choice is kept on reload (the key too, for this tab only).
    page.reload()
    expect(page.locator("#view-enterprise")).to_be_visible()
    expect(page.locator("#signout")).to_have_text("Sign out")
    page.locator("#lang").click()
    expect(page.locator("#signout")).to_have_text("退出登录")


def test_what_is_typed_into_a_new_need_survives_the_list_arriving(tab, world):
    """A slow list of needs, arriving after the user began a new one, leaves the form as
    typed (it used to blank it: a flaky run of the test above lost its title so)."""
    page = tab.page
    held = []
    pattern = re.compile(r"/api/v1/needs\?limit=1000$")

    def hold(route):
        held.append(route)

    page.route(pattern, hold)
    world.sign_in(tab, "herbal")
    page.locator("#need-new").click()
    page.locator("#need-title").fill("中药提取车间班组长")
    page.locator("#need-description").fill("带领提取浓缩班组。")
    page.wait_for_timeout(200)  # the request is held, not yet answered
    assert len(held) == 1
    held[0].continue_()
    expect(page.locator("#need-list")).to_contain_text("中药配方颗粒生产技术员")
    expect(page.locator("#need-title")).to_have_value("中药提取车间班组长")
    expect(page.locator("#need-description")).to_have_value("带领提取浓缩班组。")
    expect(page.locator("#need-form-title")).to_have_text("发布人才需求")
