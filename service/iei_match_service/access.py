"""Who may see and change what.

- An enterprise sees and changes its own needs (and bases it owns); a college its own
  programs and bases; a coordinator everything owned by its alliance's members; an admin
  everything. Anything else is answered with 404, as if it did not exist.
- Programs and training bases are public profiles *inside rankings*: any caller's
  recommendations list them with their college. Needs are an enterprise's hiring plans:
  they reach a college's partner list only when the enterprise and the college share an
  alliance. The asymmetry is deliberate (SECURITY.md says why): a program is a published
  profile, a need a commercially sensitive hiring plan.
"""

from __future__ import annotations

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from .auth import Principal
from .db.tables import Membership, Need, Organization, Program
from .errors import Forbidden, NotFound


def members(session: Session, alliance_id: int) -> set[int]:
    return set(session.scalars(select(Membership.member_id)
                               .where(Membership.alliance_id == alliance_id)))


def alliances_of(session: Session, org_id: int) -> set[int]:
    return set(session.scalars(select(Membership.alliance_id)
                               .where(Membership.member_id == org_id)))


def owners_in_reach(session: Session, who: Principal) -> set[int] | None:
    """Organisations whose objects ``who`` may read and change (None: all of them)."""
    if who.is_admin:
        return None
    if who.role == "coordinator":
        return members(session, who.org_id)
    return {who.org_id}


def scoped(session: Session, who: Principal, stmt: Select, owner_col) -> Select:
    """``stmt`` restricted to rows whose ``owner_col`` is in reach of ``who``."""
    reach = owners_in_reach(session, who)
    return stmt if reach is None else stmt.where(owner_col.in_(reach))


def get_owned(session: Session, who: Principal, model, obj_id: int, what: str):
    """The object ``obj_id`` of table ``model`` if ``who`` may see it, else :class:`NotFound`."""
    obj = session.get(model, obj_id)
    reach = owners_in_reach(session, who)
    if obj is None or (reach is not None and obj.org_id not in reach):
        raise NotFound(f"no {what} with id {obj_id}")
    return obj


_ROW_QUERIES: dict = {}


def get_owned_row(session: Session, who: Principal, model, obj_id: int, what: str):
    """:func:`get_owned` for a request that only reads the object: its columns as a row
    (attributes named as the model's), no ORM object made (the query is built once)."""
    query = _ROW_QUERIES.get(model)
    if query is None:
        query = _ROW_QUERIES[model] = select(*model.__table__.columns).where(
            model.id == bindparam("obj_id"))
    row = session.execute(query, {"obj_id": obj_id}).first()
    reach = owners_in_reach(session, who)
    if row is None or (reach is not None and row.org_id not in reach):
        raise NotFound(f"no {what} with id {obj_id}")
    return row


def owner_for_new(session: Session, who: Principal, kinds: tuple[str, ...],
                  org_id: int | None, what: str) -> int:
    """The organisation a new object belongs to: the caller's own, or (coordinator, admin)
    the member organisation named by ``org_id``."""
    if who.role in ("enterprise", "college"):
        org = session.get(Organization, who.org_id)
        if org is None or org.kind not in kinds or (org_id not in (None, who.org_id)):
            raise Forbidden(f"a {who.role} key cannot create {what}")
        return who.org_id
    if org_id is None:
        raise Forbidden(f"name the organisation ({'/'.join(kinds)}) that owns the new {what} "
                        "with org_id")
    reach = owners_in_reach(session, who)
    org = session.get(Organization, org_id)
    if org is None or (reach is not None and org_id not in reach):
        raise NotFound(f"no organisation with id {org_id}")
    if org.kind not in kinds:
        raise Forbidden(f"{what} belong to an organisation of kind {'/'.join(kinds)}, "
                        f"not {org.kind!r}")
    return org_id


def needs_visible_owners(session: Session, who: Principal, program: Program) -> set[int] | None:
    """The organisations whose needs a program's partner list may show to ``who`` (None:
    every organisation's)."""
    if who.is_admin:
        return None
    if who.role == "coordinator":
        return members(session, who.org_id)
    shared = alliances_of(session, program.org_id)
    return set(session.scalars(select(Membership.member_id)
                               .where(Membership.alliance_id.in_(shared))))


def may_record_outcome(session: Session, who: Principal, need: Need, program: Program) -> bool:
    """Whether ``who`` may record an outcome of the pair (need, program): only a pair whose
    enterprise and college share an alliance, by the enterprise (its need), the college
    (its program), a coordinator of an alliance both belong to, or an admin."""
    if not alliances_of(session, need.org_id) & alliances_of(session, program.org_id):
        return False
    reach = owners_in_reach(session, who)
    if reach is None:
        return True
    if who.role == "coordinator":
        return need.org_id in reach and program.org_id in reach
    if who.role == "enterprise":
        return need.org_id == who.org_id
    if who.role == "college":
        return program.org_id == who.org_id
    return False
