"""The API's documentation pages, ``/docs`` (Swagger UI) and ``/redoc``, with their scripts
and styles served by the service itself.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so they are blank on a machine
without internet, which is where an alliance's service often runs. The assets come from the
``fastapi-offline`` package (MIT; it ships Swagger UI 5, which reads the OpenAPI 3.1 document
FastAPI writes, and ReDoc); each is a route of its own, as the web page's are: nothing else
of the package is served.
"""

from __future__ import annotations

import logging
from importlib.resources import files
from importlib.util import find_spec

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


log = logging.getLogger("iei_match_service")


def _asset_dir():
    return files("fastapi_offline") / "static"


def install(app: FastAPI, title: str) -> None:
    """Serve ``/docs``, ``/docs/oauth2-redirect``, ``/redoc`` and their assets under
    ``/docs/assets/`` on ``app`` (made with ``docs_url=None, redoc_url=None``)."""
    router = APIRouter(include_in_schema=False)
    local = find_spec("fastapi_offline") is not None
    if not local:  # an install that skipped the dependency: FastAPI's pages, from a CDN
        log.warning("fastapi-offline is not installed: /docs and /redoc load Swagger UI and "
                    "ReDoc from a CDN (pip install fastapi-offline to serve them here)")
    assets = {"swagger_js_url": f"{ASSETS_URL}/swagger-ui-bundle.js",
              "swagger_css_url": f"{ASSETS_URL}/swagger-ui.css",
              "swagger_favicon_url": f"{ASSETS_URL}/favicon.png"} if local else {}
    redoc_assets = {"redoc_js_url": f"{ASSETS_URL}/redoc.standalone.js",
                    "redoc_favicon_url": f"{ASSETS_URL}/favicon.png"} if local else {}
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @router.get("/docs")
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{title} - Swagger UI",
            oauth2_redirect_url=redirect_url, swagger_ui_parameters=app.swagger_ui_parameters,
            **assets)

    @router.get(redirect_url)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @router.get("/redoc")
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=openapi_url, title=f"{title} - ReDoc",
                              with_google_fonts=False, **redoc_assets)

    for name, media_type in ASSETS.items() if local else ():
        path = _asset_dir() / name

        def asset(path=path, media_type=media_type) -> FileResponse:
            return FileResponse(str(path), media_type=media_type, headers=CACHE)

        router.add_api_route(f"{ASSETS_URL}/{name}", asset, methods=["GET"],
                             name=f"docs-asset:{name}")
    app.include_router(router)
