"""Partnership outcome events, and the partnerships they build up."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from ..access import may_record_outcome, owners_in_reach
from ..db.tables import Need, OutcomeEvent, Partnership, Program, utcnow
from ..errors import NotFound
from ..labels import grade_of_sides
from ..schemas import OutcomeIn, OutcomeOut, PartnershipOut
from .deps import Caller, Limit, Offset, SessionDep

router = APIRouter(prefix="/api/v1", tags=["outcomes"])


@router.post("/outcomes", status_code=201, response_model=OutcomeOut,
             summary="Record an outcome event of a (need, program) pair")
def record(body: OutcomeIn, who: Caller, s: SessionDep):
    # The first events of a new pair race to create its partnership; the losers' insert
    # breaks the unique (need, program) rule and they record theirs on the winner's.
    for attempt in range(3):
        try:
            return _record(body, who, s)
        except IntegrityError:
            s.rollback()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _record(body: OutcomeIn, who, s) -> dict:
    need, program = s.get(Need, body.need_id), s.get(Program, body.program_id)
    if need is None or program is None or not may_record_outcome(s, who, need, program):
        raise NotFound("no such need and program pair in your reach")
    p = s.scalar(select(Partnership).where(Partnership.need_id == need.id,
                                           Partnership.program_id == program.id)
                 .with_for_update())
    if p is None:
        p = Partnership(need_id=need.id, program_id=program.id, stage=body.event)
        s.add(p)
        s.flush()
    event = OutcomeEvent(partnership_id=p.id, event=body.event, actor_org_id=who.org_id,
                         note=body.note)
    s.add(event)
    s.flush()
    events = s.execute(select(OutcomeEvent.event, OutcomeEvent.actor_org_id)
                       .where(OutcomeEvent.partnership_id == p.id)
                       .order_by(OutcomeEvent.id)).all()
    grade = grade_of_sides(events, enterprise=need.org_id, college=program.org_id)
    p.stage, p.grade, p.updated_at = body.event, grade, utcnow()
    s.commit()
    return {"partnership_id": p.id, "need_id": need.id, "program_id": program.id,
            "stage": p.stage, "grade": p.grade, "event_id": event.id}


@router.get("/partnerships", summary="Partnerships of the caller's needs or programs")
def partnerships(who: Caller, s: SessionDep, limit: Limit = 100,
                 offset: Offset = 0) -> dict[str, list[PartnershipOut]]:
    stmt = select(Partnership).join(Need, Need.id == Partnership.need_id).join(
        Program, Program.id == Partnership.program_id)
    reach = owners_in_reach(s, who)
    if reach is not None:
        stmt = stmt.where(or_(Need.org_id.in_(reach), Program.org_id.in_(reach)))
    rows = s.scalars(stmt.order_by(Partnership.id).limit(limit).offset(offset)).all()
    return {"items": [PartnershipOut.model_validate(r) for r in rows]}
