"""Organisations, alliance membership, API keys, and the caller's own identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy import select

from ..access import alliances_of, owners_in_reach
from ..auth import Principal, create_key
from ..db.tables import Membership, Organization
from ..errors import Invalid, NotFound
from ..schemas import KeyIn, KeyOut, MeOut, OrgIn, OrgOut
from .deps import Caller, Limit, Offset, PathId, SessionDep, roles

router = APIRouter(prefix="/api/v1", tags=["organisations"])
Admin = Annotated[Principal, Depends(roles("admin"))]


@router.get("/me", response_model=MeOut, summary="The caller's role and organisation")
def me(who: Caller, s: SessionDep):
    org = s.get(Organization, who.org_id)
    ids = alliances_of(s, who.org_id)
    alliances = s.scalars(select(Organization).where(Organization.id.in_(ids))).all()
    return {"role": who.role, "org": org, "alliances": alliances}


@router.get("/organizations", summary="Organisations in reach (a coordinator: its members)")
def organizations(who: Caller, s: SessionDep, limit: Limit = 100,
                  offset: Offset = 0) -> dict[str, list[OrgOut]]:
    stmt = select(Organization)
    reach = owners_in_reach(s, who)
    if reach is not None:
        stmt = stmt.where(Organization.id.in_(reach | {who.org_id}))
    rows = s.scalars(stmt.order_by(Organization.id).limit(limit).offset(offset)).all()
    return {"items": [OrgOut.model_validate(r) for r in rows]}


@router.get("/organizations/{org_id}", response_model=OrgOut, summary="One organisation")
def organization(org_id: PathId, who: Caller, s: SessionDep):
    reach = owners_in_reach(s, who)
    org = s.get(Organization, org_id)
    if org is None or (reach is not None and org_id not in reach | {who.org_id}):
        raise NotFound(f"no organisation with id {org_id}")
    return org


def add_organization(s, body: OrgIn) -> Organization:
    """Create an organisation (and its alliance membership); the caller commits."""
    if body.kind != "college" and body.college_type:
        raise Invalid("college_type is for colleges only", code="invalid_input")
    alliance = None
    if body.alliance_id is not None:
        alliance = s.get(Organization, body.alliance_id)
        if alliance is None or alliance.kind != "alliance":
            raise NotFound(f"no alliance with id {body.alliance_id}")
        if body.kind == "alliance":
            raise Invalid("an alliance does not join another alliance", code="invalid_input")
    org = Organization(**body.model_dump(exclude={"alliance_id"}))
    s.add(org)
    s.flush()
    if alliance is not None:
        s.add(Membership(alliance_id=alliance.id, member_id=org.id))
    return org


@router.post("/organizations", status_code=201, response_model=OrgOut,
             summary="Create an organisation (admin)")
def create_organization(body: OrgIn, who: Admin, s: SessionDep):
    org = add_organization(s, body)
    s.commit()
    return org


@router.post("/keys", status_code=201, response_model=KeyOut,
             summary="Create an API key for an organisation (admin; shown once)")
def create_api_key(body: KeyIn, who: Admin, s: SessionDep):
    key = create_key(s, body.org_id, body.role)
    s.commit()
    return {"key": key, "role": body.role, "org_id": body.org_id}
