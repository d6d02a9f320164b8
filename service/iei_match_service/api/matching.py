"""Ranking a need that is not stored."""

from __future__ import annotations

from fastapi import APIRouter

from ..errors import Invalid
from ..limits import Admitted
from ..schemas import MatchIn, ProgramHits
from .deps import Caller, ServicesDep, in_session
from .resources import recommend

router = APIRouter(prefix="/api/v1", tags=["matching"])


@router.post("/match", response_model=ProgramHits,
             summary="Rank programs for a need given in the request (nothing is stored)")
async def match(body: MatchIn, _: Admitted, who: Caller, svc: ServicesDep):
    if not (body.title or body.description or body.skills):
        raise Invalid("give at least a title, a description or skills", code="empty_need")
    return await in_session(svc, lambda s: recommend(
        svc, s, body, k=body.k, level=None, province=None, city=None, near=body.near,
        include_low=body.include_low, org_id=who.org_id))
