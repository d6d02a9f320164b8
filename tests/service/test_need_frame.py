"""The one-row tables a ranking hands the engine are the ones ``pd.DataFrame([record])``
made: same columns, dtypes and values, whatever the need or program holds; and a stored
need read as a row (no ORM object) gives the engine the same need."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from iei_match_service.access import get_owned, get_owned_row
from iei_match_service.auth import Principal
from iei_match_service.db.engine import Database, upgrade
from iei_match_service.db.tables import Need, Organization
from iei_match_service.errors import NotFound
from iei_match_service.frames import (
    need_frame,
    need_key,
    need_record,
    one_row_frame,
    program_record,
    programs_frame,
)
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


@pytest.mark.parametrize("need", NEEDS, ids=range(len(NEEDS)))
def test_the_need_frame_is_the_one_built_from_the_record(need):
    key = need_key(getattr(need, "id", 0) or 0)
    old = pd.DataFrame([need_record(need, key)])
    new = need_frame(need, key)
    pd.testing.assert_frame_equal(new, old, check_exact=True)
    assert list(new.dtypes) == list(old.dtypes)
    assert new.to_dict("records") == old.to_dict("records")


@pytest.mark.parametrize("graduates", [None, 0, 240])
def test_a_program_row_is_the_one_programs_frame_builds(graduates):
    program = SimpleNamespace(id=11, title="工业机器人技术", description=None,
                              certificates=["电工证", "1+X 工业机器人"], code="460305",
                              level="高职专科", province="江苏省", city="",
                              graduates_per_year=graduates)
    old = programs_frame([program])
    new = one_row_frame(program_record(program))
    pd.testing.assert_frame_equal(new, old, check_exact=True)
    assert list(new.dtypes) == list(old.dtypes)


def test_a_frame_of_other_values_keeps_their_types():
    record = {"a": "文字", "b": 1.5, "c": None, "d": True, "e": ""}
    pd.testing.assert_frame_equal(one_row_frame(record), pd.DataFrame([record]),
                                  check_exact=True)


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
                pd.testing.assert_frame_equal(need_frame(row, key), need_frame(orm, key))
                assert (row.id, row.org_id) == (orm.id, orm.org_id)
                with pytest.raises(NotFound):
                    get_owned_row(s, Principal(2, "enterprise", stranger), Need, need_id, "need")
        with db.session() as s, pytest.raises(NotFound):
            get_owned_row(s, who, Need, 999, "need")
    finally:
        db.dispose()
