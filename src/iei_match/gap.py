"""Supply-demand gap report: people asked vs graduates offered, by category, province, level.

Demand is the needs' ``headcount``; supply is the programs' ``graduates_per_year``. Both
are counted in cells of *program category* and *group* x ``province`` x ``level``:

- a program's category and group are its ``category`` column when there is one, else the
  first ``prefix_length`` (and ``prefix_length + 2``) digits of its taxonomy code (``code``,
  or the id when there is no ``code`` column, as in official catalogs: ``460702`` ->
  ``46`` 装备制造大类, ``4607`` 汽车制造类; with ``catalog="cn-vocational"`` the three
  levels' codes are put in one numbering and named, :func:`~iei_match.taxonomy.major_groups`);
- a need's is, in this order: the major of its ``reference_code`` column (the national
  catalog's major that fits it best, whatever the alliance offers: what the service's
  batch jobs give, so that demand nobody in the alliance trains for shows as a shortage
  in its own group); its own ``category`` column; the program of its best pair in
  ``scores`` that fits (``fit_level`` not ``low``, score at least ``min_score``); else
  ``(no program)``: demand that no program can serve.

Every need and every program is counted in exactly one cell, so the table's totals equal
the inputs' totals. :func:`write_gap_plot` draws it (PNG) or renders it (HTML).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import InputError
from .inputs import as_table, score_pairs, unique_ids, whole_numbers
from .taxonomy import major_groups

__all__ = ["gap_report", "NO_PROGRAM", "UNKNOWN", "GAP_COLUMNS"]

NO_PROGRAM = "(no program)"
UNKNOWN = "(unknown)"
GAP_COLUMNS = ["category", "category_name", "group", "group_name", "province", "level",
               "demand", "supply", "shortfall", "needs", "programs"]
_CELL = ["category", "category_name", "group", "group_name"]


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(UNKNOWN, index=frame.index, dtype=object)
    values = frame[column].fillna("").astype(str).str.strip()
    return values.where(values != "", UNKNOWN).astype(object)


def _groups(codes: pd.Series, catalog: str | None, prefix_length: int) -> pd.DataFrame:
    """Category and group (codes and names) of each code; ``(unknown)`` for empty ones."""
    table = major_groups(codes.fillna("").astype(str).tolist(), catalog, prefix_length)
    table.index = codes.index
    for col in _CELL:
        table[col] = table[col].where(table[col] != "", UNKNOWN).astype(object)
    return table


def _named(values: pd.Series) -> pd.DataFrame:
    """A one-level cell (a ``category`` column): the category is its own group and name."""
    return pd.DataFrame({c: values for c in _CELL}, index=values.index)


def _program_cells(programs: pd.DataFrame, catalog: str | None,
                   prefix_length: int) -> pd.DataFrame:
    if "category" in programs:
        return _named(_text(programs, "category"))
    codes = programs["code"] if "code" in programs else programs["program_id"]
    return _groups(codes.astype(str), catalog, prefix_length)


def _need_cells(needs: pd.DataFrame, need_ids: pd.Series, prog_ids: pd.Series,
                prog_cells: pd.DataFrame, scores, min_score: float | None,
                catalog: str | None, prefix_length: int) -> pd.DataFrame:
    cells = pd.DataFrame({c: pd.Series(NO_PROGRAM, index=needs.index, dtype=object)
                          for c in _CELL})
    todo = pd.Series(True, index=needs.index)
    if "reference_code" in needs:
        ref = needs["reference_code"].fillna("").astype(str).str.strip()
        has = ref != ""
        cells.loc[has] = _groups(ref[has], catalog, prefix_length)
        todo &= ~has
    if "category" in needs and todo.any():
        cells.loc[todo] = _named(_text(needs, "category"))[todo]
        todo[:] = False
    if not todo.any():
        return cells
    if scores is None:
        if "reference_code" in needs:
            return cells  # needs with no reference major: no program can serve them
        raise InputError("the needs have no 'category' or 'reference_code' column: give the "
                         "scores (a batch or rank output) so that each need takes the "
                         "category of its best program")
    pairs = score_pairs(scores, need_ids, prog_ids)
    if min_score is not None:
        pairs = pairs[pairs["score"] >= float(min_score)]
    if "fit_level" in pairs:
        pairs = pairs[pairs["fit_level"] != "low"]
    # The best pair of each need; equal scores go to the smaller program id.
    best = pairs.sort_values(["need_id", "score", "program_id"], ascending=[True, False, True],
                             kind="stable").drop_duplicates("need_id")
    prog_row = pd.Series(np.arange(len(prog_ids)), index=prog_ids.to_numpy())
    need_row = pd.Series(np.arange(len(need_ids)), index=need_ids.to_numpy())
    found = np.full(len(needs), -1)
    found[need_row.loc[best["need_id"]].to_numpy()] = prog_row.loc[best["program_id"]].to_numpy()
    take = todo.to_numpy() & (found >= 0)
    cells.loc[take] = prog_cells.iloc[found[take]].to_numpy()
    return cells


def gap_report(needs, programs, scores=None, prefix_length: int = 2,
               min_score: float | None = None, catalog: str | None = None) -> pd.DataFrame:
    """Demand, supply and shortfall by program category x province x level.

    Parameters
    ----------
    needs : DataFrame or path
        ``need_id``, ``headcount`` (whole numbers >= 0); optional ``province``, ``level``,
        ``reference_code``, ``category``.
    programs : DataFrame or path
        ``program_id``, ``graduates_per_year``; optional ``province``, ``level``,
        ``category``, ``code``.
    scores : DataFrame or path, optional
        ``need_id, program_id, score``; needed when the needs have no ``category``.
    prefix_length : int, default=2
        Letters or digits of a program code that make its category.
    min_score : float, optional
        Pairs scoring lower do not give a need its category.
    catalog : str, optional
        The catalog the codes come from: ``cn-vocational`` names the categories and groups
        and puts its three levels' codes in one numbering.

    Returns
    -------
    DataFrame
        Columns :data:`GAP_COLUMNS`: ``category, category_name, group, group_name,
        province, level, demand, supply, shortfall, needs, programs`` (``shortfall =
        demand - supply``; positive: too few graduates), one row per cell that has a need
        or a program, largest shortfall first. Empty province or level is ``(unknown)``;
        without names, a name is its code.

    Examples
    --------
    >>> needs = pd.DataFrame({"need_id": ["n1", "n2"], "headcount": [5, 2],
    ...                       "province": ["广东", "广东"], "category": ["46", "51"]})
    >>> programs = pd.DataFrame({"program_id": ["460104", "510201"],
    ...                          "graduates_per_year": [3, 4], "province": ["广东", "广东"]})
    >>> gap_report(needs, programs)[["category", "demand", "supply", "shortfall"]].values.tolist()
    [['46', 5, 3, 2], ['51', 2, 4, -2]]
    >>> needs = needs.drop(columns="category").assign(reference_code=["460702", "590302"])
    >>> gap_report(needs, programs, catalog="cn-vocational")[
    ...     ["group_name", "demand", "supply", "shortfall"]].values.tolist()
    ... # doctest: +NORMALIZE_WHITESPACE
    [['汽车制造类', 5, 0, 5], ['公共服务类', 2, 0, 2],
     ['机械设计制造类', 0, 3, -3], ['计算机类', 0, 4, -4]]
    """
    if not isinstance(prefix_length, (int, np.integer)) or prefix_length < 1:
        raise InputError(f"prefix_length must be a whole number of at least 1, "
                         f"got {prefix_length!r}")
    needs, n_src = as_table(needs, "needs")
    programs, p_src = as_table(programs, "programs")
    need_ids = unique_ids(needs, "need_id", n_src)
    prog_ids = unique_ids(programs, "program_id", p_src)
    headcount = whole_numbers(needs, "headcount", n_src, " (the gap report counts people)")
    graduates = whole_numbers(programs, "graduates_per_year", p_src,
                              " (the gap report counts graduates)")
    prog_cells = _program_cells(programs, catalog, prefix_length)
    need_cells = _need_cells(needs, need_ids, prog_ids, prog_cells, scores, min_score,
                             catalog, prefix_length)
    if "category" in needs or "category" in programs:
        # A side given as categories only: the report has one level (groups are categories).
        for cells in (prog_cells, need_cells):
            cells["group"], cells["group_name"] = cells["category"], cells["category_name"]
    key = [*_CELL, "province", "level"]
    demand = need_cells.assign(province=_text(needs, "province"), level=_text(needs, "level"),
                               demand=np.asarray(headcount), needs=1)
    supply = prog_cells.assign(province=_text(programs, "province"),
                               level=_text(programs, "level"),
                               supply=np.asarray(graduates), programs=1)
    table = pd.merge(demand.groupby(key, sort=True)[["demand", "needs"]].sum(),
                     supply.groupby(key, sort=True)[["supply", "programs"]].sum(),
                     how="outer", left_index=True, right_index=True).fillna(0).reset_index()
    for col in ("demand", "supply", "needs", "programs"):
        table[col] = table[col].astype(np.int64)
    table["shortfall"] = table["demand"] - table["supply"]
    order = ["category", "group", "province", "level"]
    table = table.sort_values(["shortfall", *order], ascending=[False, True, True, True, True],
                              kind="stable")
    return table[GAP_COLUMNS].reset_index(drop=True)
