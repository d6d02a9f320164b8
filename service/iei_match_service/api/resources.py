"""Needs, programs and training bases, and the two ranked views on them."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query

from iei_match.bridge import language_note
from iei_match.taxonomy import LEVELS

from .. import table_state
from ..access import get_owned, get_owned_row, needs_visible_owners
from ..db.tables import Need, Program, TrainingBase
from ..limits import Admitted
from ..ranking import need_queries, rank_needs, rank_programs, skill_gaps
from ..schemas import (
    BaseIn,
    BaseOut,
    BasePatch,
    NeedHits,
    NeedIn,
    NeedOut,
    NeedPatch,
    ProgramHits,
    ProgramIn,
    ProgramOut,
    ProgramPatch,
)
from .crud import crud_router
from .deps import Caller, PathId, ServicesDep, in_session

needs = crud_router(Need, NeedIn, NeedPatch, NeedOut, path="/api/v1/needs", what="need",
                    owner_kinds=("enterprise",), tag="needs")
programs = crud_router(Program, ProgramIn, ProgramPatch, ProgramOut, path="/api/v1/programs",
                       what="program", owner_kinds=("college",), tag="programs")
bases = crud_router(TrainingBase, BaseIn, BasePatch, BaseOut, path="/api/v1/bases",
                    what="training base", owner_kinds=("college", "enterprise"),
                    tag="training bases")

K = Annotated[int, Query(ge=1, le=100, description="how many results")]
LevelQ = Annotated[Literal[LEVELS + ("",)] | None,  # type: ignore[valid-type]
                   Query(description="only this level (default: the need's own)")]
Near = Annotated[Literal["anywhere", "province", "city"],
                 Query(description="region rule relative to the need's (or the given) place")]
PlaceQ = Annotated[str | None, Query(max_length=50)]
IncludeLow = Annotated[bool, Query(description="also list pairs whose fit is low (left out "
                                               "by default)")]


def recommend(svc, s, need, *, k: int, level: str | None, province: str | None,
              city: str | None, near: str, include_low: bool, org_id: int | None) -> dict:
    """Ranked programs for ``need`` (a stored need or a request body), and the reference
    majors of the national catalog (``offered_in_alliance`` among the programs of the
    alliances of ``org_id``)."""
    live = svc.models.live()
    province = need.province if province is None else province
    city = need.city if city is None else city
    level = need.level if level is None else level
    hits, programs = [], None
    asked = need_queries(live.matcher, need)  # vectorised once, for both rankings
    state = table_state.read(s, "program", "directory")
    with svc.gate.slot():
        programs = svc.catalogs.programs(s, live, state["program"])
        if programs is not None:
            allowed = programs.mask(level=level, province=province, city=city, near=near,
                                    certificates=need.certificates or [])
            hits = rank_programs(live.matcher, need, programs, allowed, k, include_low,
                                 asked)
    # Outside the ranking slots: after the first model is loaded (a swapped-in model is
    # warmed before it is live) the first call prepares the national catalog (a second or
    # two), which must not hold a slot that other requests wait for.
    known = svc.directory.snapshot(s, state["directory"])
    majors = svc.reference.best(live, need, known.offered_codes(org_id, programs),
                                asked=asked)
    bases = known.nearby_bases([h["row"] for h in hits])
    items = [{"id": h["row"].id, "rank": h["rank"], "score": h["score"],
              "fit": h["fit"], "fit_level": h["fit_level"],
              "explanation": h["explanation"], "program": h["row"].out,
              "college": known.brief(h["row"].org_id),
              "training_bases": bases[h["row"].id]} for h in hits]
    language, warning = language_note(f"{need.title or ''} {need.description or ''}",
                                      live.matcher.language_)
    return {"model_version": live.version, "include_low": include_low, "items": items,
            "reference_majors": majors, "language": language,
            "warnings": [warning] if warning else []}


@needs.get("/{obj_id}/recommendations", response_model=ProgramHits,
           summary="Ranked programs for a need, with college, training bases and reasons")
async def recommendations(obj_id: PathId, _: Admitted, who: Caller, svc: ServicesDep,
                          k: K = 10, level: LevelQ = None, province: PlaceQ = None,
                          city: PlaceQ = None, near: Near = "anywhere",
                          include_low: IncludeLow = False):
    def work(s):
        need = get_owned_row(s, who, Need, obj_id, "need")
        return recommend(svc, s, need, k=k, level=level, province=province, city=city,
                         near=near, include_low=include_low, org_id=need.org_id)

    return await in_session(svc, work)


@programs.get("/{obj_id}/partners", response_model=NeedHits,
              summary="Ranked enterprise needs for a program (needs shared in its alliances)")
async def partners(obj_id: PathId, _: Admitted, who: Caller, svc: ServicesDep, k: K = 10,
                   level: LevelQ = None, include_low: IncludeLow = False):
    return await in_session(svc, lambda s: partner_list(svc, s, who, obj_id, k=k, level=level,
                                                        include_low=include_low))


def partner_list(svc, s, who, program_id: int, *, k: int, level: str | None,
                 include_low: bool) -> dict:
    """Ranked needs for the program ``program_id`` that ``who`` may see, shared in its
    alliances."""
    program = get_owned(s, who, Program, program_id, "program")
    live = svc.models.live()
    visible = needs_visible_owners(s, who, program)
    hits = []
    state = table_state.read(s, "need", "directory")
    with svc.gate.slot():
        needs_ = svc.catalogs.needs(s, live, state["need"])
        if needs_ is not None:
            allowed = needs_.mask(level=level or "", orgs=visible)
            hits = rank_needs(live.matcher, program, needs_, allowed, k, include_low)
    known = svc.directory.snapshot(s, state["directory"])
    items = [{"id": h["row"].id, "rank": h["rank"], "score": h["score"],
              "fit": h["fit"], "fit_level": h["fit_level"],
              "explanation": h["explanation"], "need": h["row"].out,
              "enterprise": known.brief(h["row"].org_id)} for h in hits]
    return {"model_version": live.version, "include_low": include_low, "items": items,
            "skill_gaps": skill_gaps(hits)}
