"""The records a ranking hands the engine (a need's or a program's, as a list of one dict)
are read as ``pd.DataFrame([record])`` was: the same texts, ids, codes, levels, places and
capacities, whatever the need or program holds; and a stored need read as a row (no ORM
object) gives the engine the same need."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from iei_match.sides import _row_fields, document_texts
from iei_match_service.access import get_owned, get_owned_row
from iei_match_service.auth import Principal
from iei_match_service.db.engine import Database, upgrade
from iei_match_service.db.tables import Need, Organization
from iei_match_service.errors import NotFound
from iei_match_service.frames import need_key, need_record, program_record, programs_frame
from iei_match_service.schemas import MatchIn

NEED_FIELDS = dict(id=7, title="数控车工", description="操作数控车床，熟悉 PLC 与 CAD。",
                   skills=["PLC", "CAD 制图"], industry="制造业", certificates=["电工证"],
                   code="460103", level="高职专科", province="广东省", city="广州市",
                   headcount=12)

NEEDS = [
    MatchIn(title="数控车工"),
    MatchIn(description="Operates CNC lathes; reads drawings", skills=["CNC", "GD&T"]),
    MatchIn(**{k: v for k, v in NEED_FIELDS.items() if k != "id"}),
    SimpleNamespace(**NEED_FIELDS),
    # a stored need with nothing optional filled in
    SimpleNamespace(id=3, title="护工", description=None, skills=None, industry=None,
                    certificates=None, code=None, level=None, province=None, city=None,
                    headcount=None),
    SimpleNamespace(**{**NEED_FIELDS, "headcount": 1, "title": "", "skills": []}),
]


def assert_read_alike(records: list[dict], frame: pd.DataFrame, id_col: str) -> None:
    """The engine reads ``records`` as it reads ``frame`` (all it reads of a table)."""
    assert document_texts(records) == document_texts(frame)
    got, want = _row_fields(records, id_col), _row_fields(frame, id_col)
    for name in ("ids", "level", "codes"):
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    for name in ("province", "city", "capacity"):
        np.testing.assert_array_equal(got["attrs"][name], want["attrs"][name], err_msg=name)
        assert got["attrs"][name].dtype == want["attrs"][name].dtype


@pytest.mark.parametrize("need", NEEDS, ids=range(len(NEEDS)))
def test_a_needs_record_is_read_as_its_frame(need):
    record = need_record(need, need_key(getattr(need, "id", 0) or 0))
    assert_read_alike([record], pd.DataFrame([record]), "need_id")


@pytest.mark.parametrize("graduates", [None, 0, 240])
def test_a_programs_record_is_read_as_the_frame_programs_frame_builds(graduates):
    program = SimpleNamespace(id=11, title="工业机器人技术", description=None,
                              certificates=["电工证", "1+X 工业机器人"], code="460305",
                              level="高职专科", province="江苏省", city="",
                              graduates_per_year=graduates)
    assert_read_alike([program_record(program)], programs_frame([program]), "program_id")


def test_a_stored_need_read_as_a_row_is_the_need_the_engine_gets(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'rows.db'}")
    try:
        upgrade(db.engine)
        with db.session() as s:
            firm, other = (Organization(kind="enterprise", name=n) for n in ("甲", "乙"))
            s.add_all([firm, other])
            s.flush()
            full = Need(org_id=firm.id, **{k: v for k, v in NEED_FIELDS.items() if k != "id"})
            bare = Need(org_id=firm.id, title="护工")
            s.add_all([full, bare])
            s.flush()
            ids, owner, stranger = (full.id, bare.id), firm.id, other.id
        for need_id in ids:
            with db.session() as s:
                who = Principal(key_id=1, role="enterprise", org_id=owner)
                orm = get_owned(s, who, Need, need_id, "need")
                row = get_owned_row(s, who, Need, need_id, "need")
                key = need_key(need_id)
                assert need_record(row, key) == need_record(orm, key)
                assert (row.id, row.org_id) == (orm.id, orm.org_id)
                with pytest.raises(NotFound):
                    get_owned_row(s, Principal(2, "enterprise", stranger), Need, need_id, "need")
        with db.session() as s, pytest.raises(NotFound):
            get_owned_row(s, who, Need, 999, "need")
    finally:
        db.dispose()
