"""Contract of records input (:class:`iei_match.rows.Rows`): a list of dicts is read as a
DataFrame of them would be, to the last value, and ranks identically; misuse is refused.

Records keep each value as it was given: a frame of the same records with object columns
(pandas would otherwise read a text column of 3 and NaN as the floats 3.0 and NaN)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from iei_match.errors import InputError
from iei_match.rows import Rows
from iei_match.sides import Side, column_strings
from test_matcher import build_world

CELLS = ["", "电工", "护理 nurses", None, np.nan, 3, 2.5, "广东省", " 佛山市 ", True,
         ["GMP", "制粒"], "ＣＮＣ lathe"]
CAPACITY = [2, 0, None, np.nan, 2.5, "12", "x", True, 2 ** 60 + 1, -1]


def random_records(rng, n: int, id_col: str, capacity: str) -> list[dict]:
    """Records as a service or a script might send them: columns missing from some rows,
    None, NaN, numbers where text is expected and text where numbers are."""
    out = []
    for i in range(n):
        record = {id_col: f"r{i}" if rng.random() < 0.8 else i, "title": "数控车工",
                  "text": "操作数控机床"}
        for column in ("title", "text", "skills", "industry", "certificates", "code",
                       "level", "province", "city"):
            if rng.random() < 0.7:
                record[column] = CELLS[rng.integers(len(CELLS))]
        if rng.random() < 0.3:
            record["level"] = ["中职", "高职专科", "职教本科"][rng.integers(3)]
        if rng.random() < 0.7:
            record[capacity] = CAPACITY[rng.integers(len(CAPACITY))]
        out.append(record)
    return out


def assert_same_side(a: Side, b: Side) -> None:
    for name in ("ids", "level", "codes", "titles", "texts"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in ("province", "city", "capacity"):
        np.testing.assert_array_equal(a.attrs[name], b.attrs[name], err_msg=name)
    for kind in ("word", "char"):
        for part in ("title", "body", "full", "counts"):
            x, y = getattr(getattr(a, kind), part), getattr(getattr(b, kind), part)
            assert x.dtype == y.dtype and (x != y).nnz == 0, (kind, part)
            assert isinstance(x, sp.csr_matrix)


@pytest.fixture(scope="module")
def zh_world():
    return build_world("zh")


@pytest.mark.parametrize("n", [1, 3, 70])  # 70: past the few rows read without pandas
def test_records_make_the_side_of_their_frame(zh_world, n):
    m = zh_world["matcher"]
    rng = np.random.default_rng(n)
    for kind, capacity in (("need", "headcount"), ("program", "graduates_per_year")):
        for _ in range(5):
            records = random_records(rng, n, f"{kind}_id", capacity)
            if len({str(r[f"{kind}_id"]) for r in records}) < n:
                continue
            assert_same_side(m._frame_side(records, kind),
                             m._frame_side(pd.DataFrame(records, dtype=object), kind))


def test_records_rank_as_their_frame_both_ways(zh_world):
    m, new, programs = zh_world["matcher"], zh_world["new"], zh_world["programs"]
    needs = new.to_dict("records")
    catalog = m.prepare(programs, "program")
    pd.testing.assert_frame_equal(m.rank(needs, catalog, k=5, explain=3),
                                  m.rank(new, catalog, k=5, explain=3))
    pd.testing.assert_frame_equal(m.rank(needs[:1], programs, k=5),
                                  m.rank(new.iloc[:1], programs, k=5))
    pd.testing.assert_frame_equal(m.rank(m.queries(needs[1:2]), catalog, k=4),
                                  m.rank(new.iloc[1:2], catalog, k=4))
    pd.testing.assert_frame_equal(
        m.partners(programs.to_dict("records"), m.prepare(new, "need"), k=4, explain=2),
        m.partners(programs, new, k=4, explain=2))


def test_bad_records_are_refused_with_a_clear_error(zh_world):
    m, programs = zh_world["matcher"], zh_world["programs"]
    with pytest.raises(InputError, match="DataFrame or a list of records"):
        m.rank("电工", programs)
    with pytest.raises(InputError, match="DataFrame or a list of records"):
        m.rank([{"need_id": "a", "title": "电工", "text": ""}, "电工"], programs)
    with pytest.raises(InputError, match=r"lack the column\(s\) \['text'\]"):
        m.rank([{"need_id": "a", "title": "电工"}], programs)
    with pytest.raises(InputError, match="are empty"):
        m.rank([], programs)
    with pytest.raises(InputError, match="duplicate need_id: '1'"):
        m.rank([{"need_id": 1, "title": "a", "text": ""},
                {"need_id": "1", "title": "b", "text": ""}], programs)


def test_rows_read_columns_as_pandas_reads_them():
    frame = pd.DataFrame({"a": ["x", None, "z"], "n": [1, None, 3]})
    rows = Rows.of(frame)
    assert rows["a"] == frame["a"].tolist() and rows["a"] is rows["a"]  # read once
    np.testing.assert_array_equal(rows.numbers("n"), [1.0, np.nan, 3.0])
    records = Rows.of([{"a": "x", "n": 1}, {"n": "2"}, {"a": 3}])
    assert records.names == ["a", "n"] and records["a"] == ["x", None, 3]
    np.testing.assert_array_equal(records.numbers("n"), [1.0, 2.0, np.nan])
    assert column_strings(records["a"]) == ["x", "", "3"]
    assert column_strings([["GMP"], np.nan, pd.NA]) == ["['GMP']", "", ""]
    with pytest.raises(KeyError):
        records["missing"]
