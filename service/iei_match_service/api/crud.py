"""Create, read, update, delete of an owned resource (needs, programs, training bases).

No ``from __future__ import annotations`` here: FastAPI must see the schema classes the
factory closes over, not their names.
"""


from fastapi import APIRouter, Response
from pydantic import create_model
from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select
from sqlalchemy.orm.exc import StaleDataError

from ..access import get_owned, owner_for_new, scoped
from ..db.tables import utcnow
from ..errors import Invalid, NotFound
from ..quotas import check_quota
from .deps import Caller, Limit, Offset, PathId, ServicesDep, SessionDep


def crud_router(model, schema_in, schema_patch, schema_out, *, path: str, what: str,
                owner_kinds: tuple[str, ...], tag: str) -> APIRouter:
    """Routes ``POST/GET {path}`` and ``GET/PATCH/PUT/DELETE {path}/{id}`` for ``model``.

    Reads and writes are limited to the objects in the caller's reach (:mod:`..access`);
    anything else is a 404.
    """
    router = APIRouter(prefix=path, tags=[tag])
    list_out = create_model(f"{schema_out.__name__}List", items=(list[schema_out], ...),
                            total=(int, ...))
    nullable = {c.name for c in model.__table__.columns if c.nullable}

    @router.post("", status_code=201, response_model=schema_out,
                 summary=f"Create a {what}")
    def create(body: schema_in, who: Caller, s: SessionDep, svc: ServicesDep):
        data = body.model_dump()
        owner = owner_for_new(s, who, owner_kinds, data.pop("org_id", None), what)
        check_quota(s, model, {owner: 1}, svc.settings.max_rows_per_org, what)
        obj = model(org_id=owner, **data)
        s.add(obj)
        s.commit()
        return obj

    @router.get("", response_model=list_out, summary=f"List the {what}s in reach")
    def list_(who: Caller, s: SessionDep, limit: Limit = 100, offset: Offset = 0):
        stmt = scoped(s, who, select(model), model.org_id)
        total = s.scalar(select(func.count()).select_from(stmt.subquery()))
        rows = s.scalars(stmt.order_by(model.id).limit(limit).offset(offset)).all()
        return {"items": rows, "total": total}

    @router.get("/{obj_id}", response_model=schema_out, summary=f"Read a {what}")
    def read(obj_id: PathId, who: Caller, s: SessionDep):
        return get_owned(s, who, model, obj_id, what)

    def _update(obj_id: int, values: dict, who, s):
        obj = get_owned(s, who, model, obj_id, what)
        cleared = sorted(n for n, v in values.items() if v is None and n not in nullable)
        if cleared:
            raise Invalid(f"these fields cannot be null: {cleared}", code="invalid_input")
        for name, value in values.items():
            setattr(obj, name, value)
        obj.updated_at = utcnow()
        try:
            s.commit()
        except StaleDataError:  # deleted by a request that won the race
            s.rollback()
            raise NotFound(f"no {what} with id {obj_id}") from None
        return obj

    @router.patch("/{obj_id}", response_model=schema_out, summary="Change some fields")
    def patch(obj_id: PathId, body: schema_patch, who: Caller, s: SessionDep):
        return _update(obj_id, body.model_dump(exclude_unset=True), who, s)

    @router.put("/{obj_id}", response_model=schema_out, summary=f"Replace a {what}")
    def put(obj_id: PathId, body: schema_in, who: Caller, s: SessionDep):
        values = body.model_dump()
        values.pop("org_id", None)
        return _update(obj_id, values, who, s)

    @router.delete("/{obj_id}", status_code=204, summary=f"Delete a {what}")
    def delete(obj_id: PathId, who: Caller, s: SessionDep):
        obj = get_owned(s, who, model, obj_id, what)
        # A DELETE of the row itself, so that of two racing deletes the one that finds no
        # row any more is told so (the database removes what depends on it).
        gone = s.execute(sql_delete(model).where(model.id == obj.id)).rowcount
        if gone != 1:
            s.rollback()
            raise NotFound(f"no {what} with id {obj_id}")
        s.commit()
        return Response(status_code=204)

    return router
