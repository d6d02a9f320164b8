"""Route inventory: every route of the app, in the OpenAPI document or hidden from it, refuses
a request without a valid API key with 401 and a JSON error body, except an exact, short
list of public routes. A new route that forgets authentication fails this test."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from iei_match_service.auth import create_key
from iei_match_service.db.tables import ApiKey

# The only routes answered without a key. Adding one is a decision: add it here.
PUBLIC = {"/healthz", "/readyz", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc",
          "/openapi.json",
          # the documentation pages' assets, served by the service (no CDN)
          "/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css",
          "/docs/assets/redoc.standalone.js", "/docs/assets/favicon.png",
          # the web page and its assets
          "/", "/static/app.js", "/static/i18n.js", "/static/style.css", "/static/favicon.svg"}
HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}
# Sample values for path parameters; anything else gets "1".
PARAM_VALUES = {"version": "v1", "kind": "needs"}


def walk_routes(routes, prefix: str = ""):
    """(path template, methods, in schema) of every HTTP route under ``routes``.

    Handles plain Starlette/FastAPI routes, mounts and sub-routers (``.routes``), and the
    lazily resolved included routers of newer FastAPI versions (``_IncludedRouter`` with
    ``effective_candidates()`` and ``effective_low_priority_routes()``).
    """
    for route in routes:
        candidates = getattr(route, "effective_candidates", None)
        if callable(candidates):
            yield from walk_routes(candidates(), prefix)
            low = getattr(route, "effective_low_priority_routes", None)
            if callable(low):
                yield from walk_routes(low(), prefix)
            continue
        methods = getattr(route, "methods", None)
        path = getattr(route, "path_format", None) or getattr(route, "path", None)
        if methods is None and hasattr(route, "routes"):  # a mount or a sub-router
            sub = list(route.routes or [])
            if sub:
                yield from walk_routes(sub, prefix + (path or ""))
            else:  # a mounted app without routes (static files, another ASGI app)
                yield prefix + (path or "") + "/", frozenset({"GET"}), False
            continue
        if path is None or methods is None:  # websockets and unknown kinds
            continue
        yield (prefix + path, frozenset(m.upper() for m in methods) & HTTP_METHODS,
               bool(getattr(route, "include_in_schema", True)))


def concrete(template: str) -> str:
    return re.sub(r"\{([^}:]+)(:[^}]*)?\}", lambda m: PARAM_VALUES.get(m.group(1), "1"),
                  template)


@pytest.fixture(scope="module")
def inventory(shared_world):
    """{(method, path template)} of the app: the OpenAPI document and the route table."""
    with shared_world.client() as c:
        r = c.get("/openapi.json")
    assert r.status_code == 200
    spec_ops = {(m.upper(), p) for p, ops in r.json()["paths"].items() for m in ops
                if m.upper() in HTTP_METHODS}
    walked = list(walk_routes(shared_world.server.app.routes))
    table_ops = {(m, p) for p, methods, _ in walked for m in methods}
    hidden = {p for p, _, in_schema in walked if not in_schema}
    return spec_ops, table_ops, hidden


@pytest.fixture(scope="module")
def bad_credentials(shared_world):
    """Authorization headers that must all be refused (None: no header at all)."""
    with shared_world.db.session() as s:
        good = create_key(s, shared_world.orgs["herbal"], "enterprise")
        revoked = create_key(s, shared_world.orgs["herbal"], "enterprise")
        s.execute(update(ApiKey).where(ApiKey.prefix == revoked.split("_")[1])
                  .values(revoked_at=datetime.now(UTC)))
    return {
        "no header": None,
        "unknown key": "Bearer iem_0123456789ab_" + "x" * 43,
        "right prefix, wrong secret": "Bearer " + good[:-4] + "AAAA",
        "revoked key": "Bearer " + revoked,
        "not bearer": "Basic " + good,
        "bearer without a key": "Bearer",
        "garbage": "Bearer iem__" + "%" * 20,
    }


def test_route_table_walk_sees_the_whole_spec(inventory):
    """The introspection must find every documented operation and the hidden doc routes,
    or the inventory below would silently check too little."""
    spec_ops, table_ops, hidden = inventory
    assert spec_ops, "the OpenAPI document lists no operations"
    assert spec_ops <= table_ops, f"routes in the spec but not found in app.routes: " \
                                  f"{sorted(spec_ops - table_ops)}"
    assert {"/openapi.json", "/docs", "/redoc"} <= hidden


def test_every_route_but_the_public_ones_needs_a_key(shared_world, inventory,
                                                     bad_credentials):
    spec_ops, table_ops, _ = inventory
    answered_without_key: set[str] = set()
    failures = []
    with shared_world.client() as c:
        for method, template in sorted(spec_ops | table_ops):
            url = concrete(template)
            for label, header in bad_credentials.items():
                headers = {"Authorization": header} if header is not None else {}
                body = {} if method in ("POST", "PUT", "PATCH") else None
                r = c.request(method, url, headers=headers, json=body)
                if r.status_code != 401:
                    answered_without_key.add(template)
                    if template not in PUBLIC:
                        failures.append(f"{method} {url} with {label}: {r.status_code} "
                                        f"{r.text[:120]}")
                    continue
                assert r.headers["content-type"].startswith("application/json"), (method, url)
                err = r.json()["error"]
                assert err["code"] == "unauthorized" and err["message"], (method, url, label)
                assert r.headers.get("www-authenticate", "").lower().startswith("bearer")
    assert not failures, "routes that answer without a valid key:\n" + "\n".join(failures)
    # The public set is exact: a public route that starts asking for a key (or disappears)
    # is a change to this list too.
    assert answered_without_key == PUBLIC


def test_public_routes_answer_without_a_key(shared_world, inventory):
    spec_ops, table_ops, _ = inventory
    public_ops = {(m, p) for m, p in spec_ops | table_ops if p in PUBLIC}
    assert {p for _, p in public_ops} == PUBLIC
    with shared_world.client() as c:
        for method, path in sorted(public_ops):
            r = c.request(method, path)
            assert r.status_code == 200, (method, path, r.status_code, r.text[:200])
