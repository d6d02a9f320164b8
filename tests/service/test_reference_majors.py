"""The service's reference majors are the engine's ``reference_majors`` (same_level), ranked
without its tables: the same codes, order, fit and groups for real needs of every level."""

from __future__ import annotations

import pandas as pd
import pytest

from iei_match.artifacts import load_model
from iei_match.bundled import catalog_dir
from iei_match.io import load_needs
from iei_match.reference import reference_majors
from iei_match_service.model_host import LiveModel
from iei_match_service.reference import ReferenceMajors, _Reference


@pytest.fixture(scope="module")
def matcher(model_root):
    return load_model(model_root)


def test_the_fast_path_gives_the_engines_majors(matcher):
    needs = load_needs(catalog_dir("cn-vocational") / "needs.csv").iloc[::15].head(40)
    levels = ["", "高职专科", "中职", "职教本科", "硕士"]  # the last is no level of the catalog
    ref = ReferenceMajors("cn-vocational")
    live = LiveModel("v", matcher)
    prepared = _Reference.of(matcher, "cn-vocational")
    compared = 0
    for i, row in enumerate(needs.itertuples()):
        need = type("Need", (), {"title": row.title, "description": row.text,
                                 "skills": [], "industry": "", "certificates": [],
                                 "code": "", "level": levels[i % len(levels)],
                                 "province": "", "city": "", "headcount": 1})()
        got = ref.best(live, need, offered={"460104"})
        frame = pd.DataFrame([{"need_id": "n", "title": row.title, "text": row.text,
                               "skills": "", "industry": "", "certificates": "", "code": "",
                               "level": need.level, "province": "", "city": "",
                               "headcount": 1}])
        want = reference_majors(matcher, frame, prepared=(prepared.catalog, prepared.frame),
                                same_level=True)
        assert [m["code"] for m in got] == want["code"].tolist()
        assert [m["fit"] for m in got] == [round(float(f), 4) for f in want["fit"]]
        for m, w in zip(got, want.itertuples(), strict=True):
            assert (m["title"], m["level"], m["fit_level"], m["group"], m["group_name"]) == (
                w.title, w.level, w.fit_level, w.group, w.group_name)
            assert m["offered_in_alliance"] == (m["code"] == "460104")
        compared += len(got)
    assert compared > 100
