"""API keys: creation, hashing, and finding the caller of a request.

A key is ``iem_<prefix>_<secret>``; the database keeps the prefix (to find the row) and the
SHA-256 of the whole key, compared in constant time. Keys are 256-bit random, so a plain
SHA-256 (no slow KDF) is the appropriate hash: there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from .db.tables import ROLES, ApiKey, Organization, utcnow
from .errors import Invalid, NotFound, Unauthorized

# Which organisation kind each role must belong to (admin: any).
ROLE_ORG_KIND = {"enterprise": "enterprise", "college": "college", "coordinator": "alliance"}


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, role and organisation."""

    key_id: int
    role: str
    org_id: int

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(session: Session, org_id: int, role: str) -> str:
    """Store a new key for ``org_id`` with ``role`` and return it (it is shown only once)."""
    if role not in ROLES:
        raise Invalid(f"role must be one of {list(ROLES)}, got {role!r}", code="invalid_role")
    org = session.get(Organization, org_id)
    if org is None:
        raise NotFound(f"no organisation with id {org_id}")
    expected = ROLE_ORG_KIND.get(role)
    if expected and org.kind != expected:
        raise Invalid(f"a {role} key belongs to an organisation of kind {expected!r}; "
                      f"organisation {org_id} is a {org.kind!r}", code="invalid_role")
    prefix = secrets.token_hex(6)
    key = f"iem_{prefix}_{secrets.token_urlsafe(32)}"
    session.add(ApiKey(prefix=prefix, key_hash=hash_key(key), role=role, org_id=org_id))
    session.flush()
    return key


def revoke_key(session: Session, prefix: str) -> tuple[ApiKey, bool]:
    """Revoke the key with ``prefix`` (``iem_<prefix>`` and a whole key are accepted too, and
    only their prefix is used); returns the key and whether it was revoked already. A revoked
    key is refused from the next request on: nothing caches keys."""
    parts = prefix.strip().split("_")
    if len(parts) >= 2 and parts[0] == "iem":
        prefix = parts[1]
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix.strip()))
    if row is None:
        raise NotFound(f"no API key with prefix {prefix.strip()[:20]!r}")
    if row.revoked_at is not None:
        return row, True
    row.revoked_at = utcnow()
    session.flush()
    return row, False


# The columns a request's key check reads (no ORM object is made for them), built once.
_BY_PREFIX = select(ApiKey.id, ApiKey.key_hash, ApiKey.role, ApiKey.org_id,
                    ApiKey.revoked_at).where(ApiKey.prefix == bindparam("prefix"))


def authenticate(session: Session | Connection, header: str | None) -> Principal:
    """The principal of an ``Authorization: Bearer <key>`` header, or :class:`Unauthorized`
    (``session``: a session or a connection, read once)."""
    if not header:
        raise Unauthorized("an API key is required: send 'Authorization: Bearer <key>'")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized("the Authorization header must be 'Bearer <key>'")
    parts = key.split("_")
    row = None
    if len(parts) >= 3 and parts[0] == "iem" and len(parts[1]) <= 16:
        row = session.execute(_BY_PREFIX, {"prefix": parts[1]}).first()
    # Compare a hash even when no row matched, so timing does not tell which prefixes exist.
    stored = row.key_hash if row is not None else hash_key("iem_none_none")
    if not hmac.compare_digest(stored, hash_key(key)) or row is None or row.revoked_at:
        raise Unauthorized("the API key is not valid")
    return Principal(key_id=row.id, role=row.role, org_id=row.org_id)
