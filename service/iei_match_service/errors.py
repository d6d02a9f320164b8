"""The service's errors and their one mapping to HTTP responses.

Every error body is ``{"error": {"code": "...", "message": "..."}}`` (plus ``problems``
for row-level import reports). Codes are stable; messages are for people.
"""

from __future__ import annotations

import re

from iei_match.errors import (
    DataFileError,
    DataLimitError,
    IeiMatchError,
    ModelCompatibilityError,
    ModelIntegrityError,
    ModelNotFoundError,
    NotFittedError,
)


class ServiceError(Exception):
    """Base of the errors the API turns into a response."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.extra = extra or {}


class Unauthorized(ServiceError):
    status, code = 401, "unauthorized"


class Forbidden(ServiceError):
    status, code = 403, "forbidden"


class NotFound(ServiceError):
    status, code = 404, "not_found"


class Conflict(ServiceError):
    status, code = 409, "conflict"


class PayloadTooLarge(ServiceError):
    status, code = 413, "payload_too_large"


class Invalid(ServiceError):
    status, code = 422, "invalid"


class RateLimited(ServiceError):
    status, code = 429, "rate_limited"


class Unavailable(ServiceError):
    status, code = 503, "unavailable"


# An absolute path (POSIX or Windows) in a library's message: only its last part is shown.
_PATH = re.compile(r"(?<![\w.:/\\])(?:[A-Za-z]:)?[\\/](?:[^\s'\"\\/,;:]+[\\/])+")


def no_paths(message: str) -> str:
    """``message`` without the directories of any absolute path in it.

    Examples
    --------
    >>> no_paths("cannot open '/tmp/iei-import-x1/upload.parquet': empty")
    "cannot open 'upload.parquet': empty"
    >>> no_paths("CSV/XLSX/Parquet, 3/4")
    'CSV/XLSX/Parquet, 3/4'
    """
    return _PATH.sub("", message)


def from_engine(exc: IeiMatchError) -> ServiceError:
    """The service error an engine error becomes (the engine's ``code`` is kept)."""
    if isinstance(exc, (ModelNotFoundError, NotFittedError)):
        return Unavailable(f"no model is live: {exc}", code=exc.code)
    if isinstance(exc, (ModelIntegrityError, ModelCompatibilityError)):
        return Conflict(str(exc), code=exc.code)
    if isinstance(exc, DataFileError):
        kind = PayloadTooLarge if isinstance(exc, DataLimitError) else Invalid
        problems = [{**p, "message": no_paths(str(p["message"]))} for p in exc.problems]
        return kind(no_paths(str(exc).splitlines()[0])[:500], code=exc.code,
                    extra={"problems": problems[:200]})
    return Invalid(no_paths(str(exc))[:500], code=exc.code)


def unreadable_body(exc: Exception) -> str | None:
    """What was wrong with a request body the framework could not parse (its 400 says only
    "There was an error parsing the body"), or None."""
    if getattr(exc, "status_code", None) != 400:
        return None
    cause = exc.__cause__
    if isinstance(cause, UnicodeDecodeError):
        return (f"the request body is not UTF-8 text (byte {cause.start}); send JSON "
                "encoded as UTF-8")
    if isinstance(cause, RecursionError):
        return "the JSON body is nested too deeply"
    return None


def body(code: str, message: str, **extra) -> dict:
    return {"error": {"code": code, "message": message, **extra}}
