"""The API documentation renders without internet: Swagger UI and ReDoc come from the
service, not a CDN."""

from __future__ import annotations

from urllib.parse import urlparse

import httpx

from .browser import expect


def offline(tab, world) -> list[str]:
    """Refuse every request of ``tab`` to another host than the service; returns them."""
    own = urlparse(world.url).netloc
    refused: list[str] = []

    def route(r):
        if urlparse(r.request.url).netloc == own:
            r.continue_()
        else:
            refused.append(r.request.url)
            r.abort("internetdisconnected")

    tab.page.context.route("**/*", route)
    return refused


def test_swagger_ui_renders_with_no_network(tab, world):
    refused = offline(tab, world)
    page = tab.page
    page.goto(world.url + "/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("iei-match")
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/needs/{obj_id}/"
                        "recommendations").first).to_be_visible()
    assert page.locator(".opblock").count() > 20
    assert refused == []
    assert all(urlparse(u).netloc == urlparse(world.url).netloc for u in tab.urls), tab.urls
    tab.shot("docs-offline")


def test_redoc_renders_with_no_network(tab, world):
    refused = offline(tab, world)
    page = tab.page
    page.goto(world.url + "/redoc")
    # ReDoc lays out the whole document before it shows anything: slow on a busy machine
    expect(page.locator("h1", has_text="iei-match")).to_be_visible(timeout=90_000)
    assert refused == []


def test_docs_assets_are_served_and_nothing_else_of_the_package(world):
    for name, kind in (("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "css"),
                       ("redoc.standalone.js", "javascript"), ("favicon.png", "image/png")):
        r = httpx.get(f"{world.url}/docs/assets/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"], name
        assert len(r.content) > 1000
    for path in ("/docs/assets/", "/docs/assets/../core.py", "/docs/assets/core.py"):
        assert httpx.get(world.url + path).status_code == 404, path
    html = httpx.get(world.url + "/docs").text
    assert "cdn." not in html and "/docs/assets/swagger-ui-bundle.js" in html
