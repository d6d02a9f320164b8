"""What the page must never do: accept a wrong key silently, put a key in a URL or a log,
show one enterprise another's need, or run markup that came in as data."""

from __future__ import annotations

import re

import httpx

from .browser import expect


def test_page_and_assets_are_public_with_a_strict_policy(world):
    for path in ("/", "/static/app.js", "/static/i18n.js", "/static/style.css",
                 "/static/favicon.svg"):
        r = httpx.get(world.url + path)
        assert r.status_code == 200, path
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
    page = httpx.get(world.url + "/")
    assert page.headers["content-type"].startswith("text/html")
    assert not re.search(r"<script(?![^>]*\ssrc=)", page.text)  # no inline script
    assert not re.search(r"\son[a-z]+\s*=", page.text)  # nor an inline handler
    assert not re.search(r"\sstyle\s*=", page.text)
    assert httpx.get(world.url + "/static/app.js").headers["content-type"].startswith(
        ("application/javascript", "text/javascript"))
    for path in ("/static/", "/static/index.html", "/static/nothing.js",
                 "/static/%2e%2e/__init__.py", "/static/../web/__init__.py"):
        assert httpx.get(world.url + path).status_code == 404, path


def test_a_wrong_key_shows_a_clear_sign_in_error(tab, world):
    page = tab.page
    page.goto(world.url + "/")
    page.locator("#key").fill("iem_0123456789ab_" + "x" * 43)
    page.locator("#signin-form button[type=submit]").click()
    error = page.locator("#signin-error")
    expect(error).to_be_visible()
    expect(error).to_have_text("密钥无效或已被撤销，请检查后重试。")
    for view in ("enterprise", "college", "coordinator"):
        expect(page.locator(f"#view-{view}")).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 0
    tab.shot("signin-wrong-key")
    # Nothing typed: a hint, and no request.
    page.locator("#key").fill("")
    page.locator("#signin-form button[type=submit]").click()
    expect(error).to_have_text("请输入密钥。")
    page.locator("#lang").click()
    page.locator("#key").fill("not-a-key")
    page.locator("#signin-form button[type=submit]").click()
    expect(error).to_have_text("This key is not valid or has been revoked. Check it and try again.")


def test_the_key_is_in_no_url_and_no_log(tab, world):
    page = tab.page
    key = world.keys["herbal"]
    world.sign_in(tab, "herbal")
    page.locator("#need-list a").first.click()
    expect(page.locator("#rec-list > li.card").first).to_be_visible()
    card = page.locator("#rec-list > li.card").first
    card.locator(".outcome button").click()
    expect(card.locator(".outcome .status")).to_contain_text("已记录")
    page.reload()  # the tab keeps the key in sessionStorage, not in the address
    expect(page.locator("#view-enterprise")).to_be_visible()
    page.locator("#signout").click()
    expect(page.locator("#signin")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0

    api_calls = [u for u in tab.urls if "/api/v1/" in u]
    assert len(api_calls) >= 5, tab.urls
    assert all(key not in u and key.split("_")[-1] not in u for u in tab.urls), tab.urls
    assert tab.auth_headers and set(tab.auth_headers) == {f"Bearer {key}"}
    log = "\n".join(world.server.log)
    assert "/api/v1/me" in log and "/recommendations" in log  # the access log is on
    assert key not in log and key.split("_")[-1] not in log


def test_an_enterprise_never_sees_another_enterprises_need(tab, world):
    with world.client("soft") as c:
        r = c.post("/api/v1/needs", json={"title": "天府云数机密岗位", "skills": ["Go"],
                                          "description": "只属于天府云数的需求"})
        other = r.json()["id"]
    page = tab.page
    world.sign_in(tab, "herbal")
    expect(page.locator("#need-list a").first).to_be_visible()
    assert "天府云数机密岗位" not in page.locator("#need-list").inner_text()
    page.goto(f"{world.url}/#need/{other}")
    expect(page.locator("#notice span")).to_have_text("未找到该需求：它不存在，或属于其他企业。")
    expect(page.locator("#need-title")).to_have_value("")
    expect(page.locator("#rec-list > li")).to_have_count(0)
    assert "天府云数机密岗位" not in page.locator("body").inner_text()
    assert "只属于天府云数的需求" not in page.locator("body").inner_text()
    tab.shot("enterprise-other-need-not-found")
    # Neither the recommendations of that need nor an outcome on it.
    with world.client("herbal") as c:
        assert c.get(f"/api/v1/needs/{other}/recommendations").status_code == 404


def test_markup_in_data_is_shown_as_text(tab, world):
    page = tab.page
    world.sign_in(tab, "herbal")
    title = '<img src=x onerror="window.__xss=1">'
    page.locator("#need-new").click()
    page.locator("#need-title").fill(title)
    page.locator("#need-description").fill('<script>window.__xss=2</script> GMP 中药提取')
    page.locator("#need-skills").fill('<b onmouseover="window.__xss=3">GMP</b>')
    page.locator("#need-form button[type=submit]").click()
    expect(page.locator("#need-list a.active .title")).to_have_text(title)
    expect(page.locator("#recs-title")).to_contain_text(title)
    expect(page.locator("#rec-list > li.card").first).to_be_visible()
    assert page.locator("main img, main script, main b").count() == 0
    missing = page.locator("#rec-list .chip.miss").all_inner_texts()
    assert '<b onmouseover="window.__xss=3">GMP</b>' in missing
    assert page.evaluate("window.__xss") is None
    page.reload()
    expect(page.locator("#need-list a.active .title")).to_have_text(title)
    assert page.evaluate("window.__xss") is None
    tab.shot("enterprise-markup-as-text")


def test_signing_out_leaves_nothing_for_the_next_enterprise(tab, world):
    page = tab.page
    world.sign_in(tab, "herbal")
    page.locator("#need-list a").first.click()
    expect(page.locator("#rec-list > li.card").first).to_be_visible()
    page.locator("#signout").click()
    expect(page.locator("#signin")).to_be_visible()
    assert "中药配方颗粒" not in page.locator("body").inner_text()
    page.locator("#key").fill(world.keys["soft"])
    page.locator("#signin-form button[type=submit]").click()
    expect(page.locator("#who")).to_contain_text("天府云数科技有限公司")
    expect(page.locator("#need-list")).to_contain_text("Java后端开发工程师")
    body = page.locator("body").inner_text()
    assert "中药" not in body and "南海本草" not in body
    assert page.locator("#need-title").input_value() == ""
