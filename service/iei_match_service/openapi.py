"""The OpenAPI document says what the API really answers, errors included.

FastAPI documents only the success response and a 422 whose body (``HTTPValidationError``)
is not the one this service sends. Here every operation that needs a key also lists the
error statuses it can answer, each with the service's one error body
(``{"error": {"code": ..., "message": ...}}``, :mod:`.errors`), so a client generated from
the document, or a fuzzer checking responses against it, sees the real contract.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {"error": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "string", "description": "stable, machine-readable"},
            "message": {"type": "string", "description": "for people"},
            "problems": {"type": "array", "items": {"type": "object"},
                         "description": "each invalid field, or row and column of a file"},
            "retry_after": {"type": "number", "description": "seconds (429)"},
        },
    }},
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}
DESCRIPTIONS = {
    400: "The body could not be read (not UTF-8, or JSON nested too deeply)",
    401: "No valid API key", 403: "The key's role or organisation may not do this",
    404: "Not found, or not in the caller's reach", 409: "Conflicts with the stored data",
    413: "The request body is too large", 422: "The request is not valid",
    429: "Too many requests for this key (see Retry-After)",
    503: "The database, the model or the ranking capacity is not available; retry",
}
WRITES = {"post", "put", "patch", "delete"}


def _error_statuses(method: str, op: dict) -> list[int]:
    params = op.get("parameters", [])
    if not any(p.get("in") == "header" and p.get("name", "").lower() == "authorization"
               for p in params):
        return []  # a public route (health, metrics)
    codes = [401, 403, 422, 429, 503]
    if method in WRITES:
        codes.append(409)
    if "requestBody" in op:
        codes += [400, 413]
    if "requestBody" in op or any(p.get("in") == "path" for p in params):
        codes.append(404)
    return sorted(set(codes))


def document(doc: dict) -> dict:
    """``doc`` (FastAPI's document) with the service's error responses."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Error"] = ERROR_SCHEMA
    for ops in doc.get("paths", {}).values():
        for method, op in ops.items():
            responses = op.setdefault("responses", {})
            responses.pop("422", None)
            for status in _error_statuses(method, op):
                responses[str(status)] = {
                    "description": DESCRIPTIONS[status],
                    "content": {"application/json": {"schema": ERROR_REF}}}
    return doc


def install(app: FastAPI) -> None:
    """Make ``app`` serve the documented-errors version of its OpenAPI document."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = document(get_openapi(
                title=app.title, version=app.version, openapi_version=app.openapi_version,
                summary=app.summary, description=app.description, routes=app.routes,
                tags=app.openapi_tags, servers=app.servers))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
