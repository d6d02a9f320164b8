"""The API's documentation pages, ``/docs`` (Swagger UI) and ``/redoc``, with their scripts
and styles served by the service itself.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so they are blank on a machine
without internet, which is where an alliance's service often runs. The assets come from the
``fastapi-offline`` package (MIT; it ships Swagger UI 5, which reads the OpenAPI 3.1 document
FastAPI writes, and ReDoc); each is a route of its own, as the web page's are: nothing else
of the package is served.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse

ASSETS_URL = "/docs/assets"
ASSETS = {"swagger-ui-bundle.js": "text/javascript; charset=utf-8",
          "swagger-ui.css": "text/css; charset=utf-8",
          "redoc.standalone.js": "text/javascript; charset=utf-8",
          "favicon.png": "image/png"}
CACHE = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}


def _asset_dir():
    return files("fastapi_offline") / "static"


def install(app: FastAPI, title: str) -> None:
    """Serve ``/docs``, ``/docs/oauth2-redirect``, ``/redoc`` and their assets under
    ``/docs/assets/`` on ``app`` (made with ``docs_url=None, redoc_url=None``)."""
    router = APIRouter(include_in_schema=False)
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"
    favicon = f"{ASSETS_URL}/favicon.png"

    @router.get("/docs")
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{title} - Swagger UI",
            oauth2_redirect_url=redirect_url,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css", swagger_favicon_url=favicon,
            swagger_ui_parameters=app.swagger_ui_parameters)

    @router.get(redirect_url)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @router.get("/redoc")
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=openapi_url, title=f"{title} - ReDoc",
                              redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
                              redoc_favicon_url=favicon, with_google_fonts=False)

    directory = _asset_dir()
    for name, media_type in ASSETS.items():
        path = directory / name

        def asset(path=path, media_type=media_type) -> FileResponse:
            return FileResponse(str(path), media_type=media_type, headers=CACHE)

        router.add_api_route(f"{ASSETS_URL}/{name}", asset, methods=["GET"],
                             name=f"docs-asset:{name}")
    app.include_router(router)
