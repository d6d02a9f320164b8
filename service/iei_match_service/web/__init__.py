"""The web page: one page for the three roles, over the JSON API.

Static HTML, CSS and plain JavaScript shipped in the package (no build step, nothing from
another host): ``GET /`` serves the page, ``/static/<name>`` its four assets. The page keeps
the API key in the tab's sessionStorage and sends it only as an ``Authorization`` header, so
it never appears in a URL or an access log. Every response here carries a strict
Content-Security-Policy (scripts from this origin only, no inline scripts or styles).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).parent / "static"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; font-src 'self'; form-action 'none'; base-uri 'none'; "
       "frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}

# The page's assets, each a route of its own: nothing else under /static answers.
ASSETS = {"app.js": "text/javascript; charset=utf-8",
          "i18n.js": "text/javascript; charset=utf-8",
          "style.css": "text/css; charset=utf-8",
          "favicon.svg": "image/svg+xml"}

router = APIRouter(include_in_schema=False)


@router.get("/", summary="The web page")
def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8",
                        headers=HEADERS)


def _asset_route(name: str, media_type: str) -> None:
    path = STATIC_DIR / name

    def asset() -> FileResponse:
        return FileResponse(path, media_type=media_type, headers=HEADERS)

    router.add_api_route(f"/static/{name}", asset, methods=["GET"], name=f"static:{name}")


for _name, _media_type in ASSETS.items():
    _asset_route(_name, _media_type)


def install(app: FastAPI) -> None:
    """Add the page (``/``) and its assets (``/static/<name>``) to ``app``."""
    app.include_router(router)
