"""Bulk import of organisations, needs, programs and training bases from CSV/XLSX/Parquet.

Every row is validated (the same rules as the API) before anything is written; one bad row
anywhere refuses the whole file with a report of every problem (row, column, message), and
a good file is written in one transaction: all or nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.orm import Session

from iei_match.errors import DataFileError
from iei_match.io import problems_error, read_table, split_list

from .access import owner_for_new
from .auth import Principal
from .db.tables import Membership, Need, Organization, Program, TrainingBase
from .errors import Forbidden, ServiceError
from .schemas import BaseIn, NeedIn, OrgIn, ProgramIn

ALIASES = {
    "name": "title", "名称": "title", "标题": "title", "岗位": "title", "专业名称": "title",
    "text": "description", "描述": "description", "说明": "description",
    "技能": "skills", "证书": "certificates", "行业": "industry", "代码": "code",
    "专业代码": "code", "职业代码": "code", "人数": "headcount", "需求人数": "headcount",
    "层次": "level", "省份": "province", "省": "province", "城市": "city", "市": "city",
    "毕业生人数": "graduates_per_year", "容量": "capacity", "设备": "equipment",
    "类型": "kind", "院校类型": "college_type", "联盟": "alliance_id", "机构": "org_id",
}
KINDS = {
    "needs": (NeedIn, Need, ("enterprise",), ("skills", "certificates")),
    "programs": (ProgramIn, Program, ("college",), ("certificates",)),
    "bases": (BaseIn, TrainingBase, ("college", "enterprise"), ("equipment",)),
    "organizations": (OrgIn, Organization, (), ()),
}
MAX_ROWS = 50_000


def _row_values(row: dict, schema, list_cols) -> dict:
    values = {}
    for name, value in row.items():
        if name not in schema.model_fields or value == "":
            continue
        values[name] = split_list(value) if name in list_cols else value
    if schema is ProgramIn and "title" not in values and "name" in row:
        values["title"] = row["name"]
    return values


def import_file(session: Session, who: Principal, kind: str, path: str | os.PathLike,
                display_name: str | None = None, default_org: int | None = None) -> list[int]:
    """Validate every row of ``path`` as ``kind`` and insert them all, or raise
    :class:`DataFileError` listing every bad row and insert nothing.

    ``default_org`` owns rows without an ``org_id`` cell (coordinator and admin keys).

    Returns the new objects' ids, in file order.
    """
    if kind not in KINDS:
        raise ServiceError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    schema, model, owner_kinds, list_cols = KINDS[kind]
    if kind == "organizations" and not who.is_admin:
        raise Forbidden("only an admin key imports organisations")
    name = display_name or Path(path).name
    try:
        df = read_table(path, ALIASES)
    except DataFileError as exc:
        raise DataFileError(name, exc.message, row=exc.row, column=exc.column,
                            problems=exc.problems) from None
    if len(df) > MAX_ROWS:
        raise DataFileError(name, f"{len(df)} rows; at most {MAX_ROWS} are imported at once")
    source = df.attrs["source_columns"]
    problems: list[dict] = []
    objects = []
    for row_no, row in zip(df.index, df.to_dict("records"), strict=True):
        try:
            body = schema.model_validate(_row_values(row, schema, list_cols), strict=False)
        except ValidationError as exc:
            for err in exc.errors(include_input=False, include_url=False):
                col = str(err["loc"][0]) if err["loc"] else None
                problems.append({"row": int(row_no), "column": source.get(col, col),
                                 "message": err["msg"]})
            continue
        data = body.model_dump()
        if kind == "organizations":
            alliance = data.pop("alliance_id")
            objects.append((Organization(**data), alliance, row_no))
            continue
        org_id = data.pop("org_id", None)
        try:
            owner = owner_for_new(session, who, owner_kinds,
                                  default_org if org_id is None else org_id, kind)
        except ServiceError as exc:
            problems.append({"row": int(row_no), "column": source.get("org_id", "org_id"),
                             "message": exc.message})
            continue
        objects.append((model(org_id=owner, **data), None, row_no))
    if kind == "organizations":
        for _, alliance, row_no in objects:
            target = session.get(Organization, alliance) if alliance is not None else None
            if alliance is not None and (target is None or target.kind != "alliance"):
                problems.append({"row": int(row_no), "column": source.get("alliance_id"),
                                 "message": f"no alliance with id {alliance}"})
    if not len(df):
        problems.append({"row": None, "column": None, "message": "the file has no rows"})
    if problems:
        raise problems_error(name, problems)
    for obj, _, _ in objects:
        session.add(obj)
    session.flush()
    for obj, alliance, _ in objects:
        if alliance is not None:
            session.add(Membership(alliance_id=alliance, member_id=obj.id))
    return [obj.id for obj, _, _ in objects]
