"""The hard rules of a ranking (level, province, city) keep exactly the rows whose value is
the one asked for, as comparing the strings does."""

from __future__ import annotations

import itertools
from dataclasses import fields

import numpy as np

from iei_match_service import catalogs

LEVELS = ["高职专科", "中职", "职教本科", ""]
PLACES = [("广东省", "广州市"), ("广东省", "深圳市"), ("江苏省", "苏州市"), ("", ""),
          ("重庆市", "重庆市")]


def test_a_rule_keeps_the_rows_with_the_value_asked_for():
    rng = np.random.default_rng(0)
    n = 500
    level = np.array([LEVELS[i] for i in rng.integers(0, len(LEVELS), n)], dtype=object)
    where = [PLACES[i] for i in rng.integers(0, len(PLACES), n)]
    province = np.array([catalogs.normalize(p) for p, _ in where], dtype=object)
    city = np.array([catalogs.normalize(c) for _, c in where], dtype=object)
    init = {f.name: None for f in fields(catalogs.Prepared) if f.init and f.name[0] != "_"}
    prepared = catalogs.Prepared(**{**init, "rows": list(range(n)), "level": level,
                                    "province": province, "city": city})
    for lv, (p, c), near in itertools.product(LEVELS + ["本科"], PLACES + [("浙江省", "杭州市")],
                                               ("anywhere", "province", "city")):
        expected = np.ones(n, dtype=bool)
        if lv:
            expected &= level == lv
        if near == "city" and c:
            expected &= city == catalogs.normalize(c)
        elif near in ("city", "province") and p:
            expected &= province == catalogs.normalize(p)
        got = prepared.mask(level=lv, province=p, city=c, near=near)
        assert got.dtype == bool and np.array_equal(got, expected), (lv, p, c, near)
