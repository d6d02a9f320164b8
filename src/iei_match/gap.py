"""Supply-demand gap report: people asked vs graduates offered, by category, province, level.

Demand is the needs' ``headcount``; supply is the programs' ``graduates_per_year``. Both
are counted in cells of *program category* x ``province`` x ``level``:

- a program's category is its ``category`` column when there is one, else the first
  ``prefix_length`` letters or digits of its taxonomy code (``code``, or the id when there
  is no ``code`` column, as in official catalogs: ``460104`` -> ``46``);
- a need's category is its own ``category`` column when there is one, else the category
  of its best-scoring program in ``scores`` (the output of ``iei-match batch`` or
  ``rank``); a need no program scores for (at least ``min_score``) is counted under
  ``(no program)``: demand that no program in the catalog can serve.

Every need and every program is counted in exactly one cell, so the table's totals equal
the inputs' totals. :func:`write_gap_plot` draws it (PNG) or renders it (HTML).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import InputError
from .inputs import as_table, score_pairs, unique_ids, whole_numbers
from .taxonomy import code_prefix

__all__ = ["gap_report", "NO_PROGRAM", "UNKNOWN", "GAP_COLUMNS"]

NO_PROGRAM = "(no program)"
UNKNOWN = "(unknown)"
GAP_COLUMNS = ["category", "province", "level", "demand", "supply", "shortfall", "needs",
               "programs"]


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(UNKNOWN, index=frame.index, dtype=object)
    values = frame[column].fillna("").astype(str).str.strip()
    return values.where(values != "", UNKNOWN).astype(object)


def _program_category(programs: pd.DataFrame, prefix_length: int) -> pd.Series:
    if "category" in programs:
        return _text(programs, "category")
    codes = programs["code"] if "code" in programs else programs["program_id"]
    prefix = pd.Series(code_prefix(codes.fillna("").astype(str), prefix_length),
                       index=programs.index).str.upper()
    return prefix.where(prefix != "", UNKNOWN).astype(object)


def _need_category(needs: pd.DataFrame, need_ids: pd.Series, prog_ids: pd.Series,
                   prog_category: pd.Series, scores, min_score: float | None) -> pd.Series:
    if "category" in needs:
        return _text(needs, "category")
    if scores is None:
        raise InputError("the needs have no 'category' column: give the scores (a batch or "
                         "rank output) so that each need takes the category of its best "
                         "program")
    pairs = score_pairs(scores, need_ids, prog_ids)
    if min_score is not None:
        pairs = pairs[pairs["score"] >= float(min_score)]
    category_of = pd.Series(prog_category.to_numpy(), index=prog_ids.to_numpy())
    pairs = pairs.assign(category=category_of.loc[pairs["program_id"]].to_numpy())
    # The best pair of each need; equal scores go to the smaller program id.
    best = pairs.sort_values(["need_id", "score", "program_id"], ascending=[True, False, True],
                             kind="stable").drop_duplicates("need_id")
    found = pd.Series(best["category"].to_numpy(), index=best["need_id"].to_numpy())
    return pd.Series(found.reindex(need_ids.to_numpy()).fillna(NO_PROGRAM).to_numpy(),
                     index=needs.index, dtype=object)


def gap_report(needs, programs, scores=None, prefix_length: int = 2,
               min_score: float | None = None) -> pd.DataFrame:
    """Demand, supply and shortfall by program category x province x level.

    Parameters
    ----------
    needs : DataFrame or path
        ``need_id``, ``headcount`` (whole numbers >= 0); optional ``province``, ``level``,
        ``category``.
    programs : DataFrame or path
        ``program_id``, ``graduates_per_year``; optional ``province``, ``level``,
        ``category``, ``code``.
    scores : DataFrame or path, optional
        ``need_id, program_id, score``; needed when the needs have no ``category``.
    prefix_length : int, default=2
        Letters or digits of a program code that make its category.
    min_score : float, optional
        Pairs scoring lower do not give a need its category.

    Returns
    -------
    DataFrame
        Columns ``category, province, level, demand, supply, shortfall, needs,
        programs`` (``shortfall = demand - supply``; positive: too few graduates), one row
        per cell that has a need or a program, largest shortfall first. Empty province or
        level is ``(unknown)``.

    Examples
    --------
    >>> needs = pd.DataFrame({"need_id": ["n1", "n2"], "headcount": [5, 2],
    ...                       "province": ["广东", "广东"], "category": ["46", "51"]})
    >>> programs = pd.DataFrame({"program_id": ["460104", "510201"],
    ...                          "graduates_per_year": [3, 4], "province": ["广东", "广东"]})
    >>> gap_report(needs, programs)[["category", "demand", "supply", "shortfall"]].values.tolist()
    [['46', 5, 3, 2], ['51', 2, 4, -2]]
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
    prog_category = _program_category(programs, prefix_length)
    need_category = _need_category(needs, need_ids, prog_ids, prog_category, scores, min_score)
    key = ["category", "province", "level"]
    demand = pd.DataFrame({"category": need_category, "province": _text(needs, "province"),
                           "level": _text(needs, "level"), "demand": headcount, "needs": 1})
    supply = pd.DataFrame({"category": prog_category, "province": _text(programs, "province"),
                           "level": _text(programs, "level"), "supply": graduates,
                           "programs": 1})
    table = pd.merge(demand.groupby(key, sort=True).sum(), supply.groupby(key, sort=True).sum(),
                     how="outer", left_index=True, right_index=True).fillna(0).reset_index()
    for col in ("demand", "supply", "needs", "programs"):
        table[col] = table[col].astype(np.int64)
    table["shortfall"] = table["demand"] - table["supply"]
    table = table.sort_values(["shortfall", *key], ascending=[False, True, True, True],
                              kind="stable")
    return table[GAP_COLUMNS].reset_index(drop=True)
