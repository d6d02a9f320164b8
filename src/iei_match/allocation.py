"""Capacity-aware allocation: turn match scores into a feasible partnership plan.

:func:`allocate` decides how many people each (need, program) pair carries so that the
total match quality, ``sum(score x people)``, is as large as possible, while

- a need gets at most its ``headcount`` people;
- a program gives at most its ``graduates_per_year``;
- a training base (optional table) gives at most its ``capacity`` over its programs;
- a college (the programs' ``org_id``; without that column each program is its own
  college) serves at most ``max_partners_per_college`` needs, when that cap is given;
- only pairs with a score of at least ``min_score``, and above 0, are used (a pair whose
  score is 0 or less can only lower the total, so it is never worth placing anyone);
- only pairs that fit: by default those whose ``fit_level`` is not ``low`` (a need that
  nothing fits stays unmet, with the reason ``no_fitting_program``, rather than being
  filled with a bad match), or, with ``min_fit``, those whose calibrated ``fit`` is at
  least that (``min_fit=0`` lets low pairs in).

Without the college cap the plan is exact (a min-cost flow). With it the problem is a
mixed-integer program: the plan is optimal up to a relative gap of 1e-4 when the solver
can prove it within the time limit (120 s by default), else the best plan found, and the
report's ``status`` says how far from the optimum it may be at most
(:mod:`iei_match.allocation_solvers`). Every plan keeps to every capacity and to the cap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .allocation_solvers import Problem, solve_flow, solve_mip
from .errors import InputError
from .inputs import as_table, check_known, require_columns, score_pairs, unique_ids, whole_numbers
from .io import problems_error

__all__ = ["allocate", "AllocationReport", "gini"]

_WHY = " (allocation needs every capacity)"


@dataclass
class AllocationReport:
    """How good the plan is, and who it leaves out.

    Attributes
    ----------
    objective : float
        ``sum(score x assigned)`` over the plan.
    assigned, demand, supply : int
        People placed; total headcount asked; total graduates offered.
    unmet : DataFrame
        One row per need: ``need_id, headcount, assigned, unmet, reason``; ``reason`` is
        ``no_fitting_program`` (no eligible pair), ``capacity`` (eligible pairs, but
        their programs' graduates went elsewhere or ran out) or empty when it is met.
    colleges : DataFrame
        One row per college: ``college, capacity, assigned, partners`` (needs served).
    gini : float
        Gini coefficient of ``assigned`` over the colleges: 0 when every college places
        as many people, towards 1 when a few colleges take them all.
    status : str
        The solver and whether the plan is proven optimal.
    pairs : int
        Pairs that were eligible (score above 0 and at least ``min_score``).
    """

    objective: float
    assigned: int
    demand: int
    supply: int
    unmet: pd.DataFrame
    colleges: pd.DataFrame
    gini: float
    status: str
    pairs: int

    def summary(self) -> str:
        """A few lines for people: objective, unmet demand, spread over colleges."""
        short = self.unmet[self.unmet["unmet"] > 0]
        lines = [f"objective (score x people): {self.objective:.4f}  [{self.status}]",
                 f"placed {self.assigned} of {self.demand} people asked "
                 f"({self.supply} graduates offered, {self.pairs} eligible pairs)",
                 f"unmet demand: {self.demand - self.assigned} people in {len(short)} needs"]
        if "reason" in short:
            unfit = short[short["reason"] == "no_fitting_program"]
            lines.append(f"  {int(unfit['unmet'].sum())} people in {len(unfit)} needs that no "
                         f"program fits; {int(short['unmet'].sum() - unfit['unmet'].sum())} "
                         f"short of capacity")
        for row in short.head(10).itertuples(index=False):
            why = {"no_fitting_program": " (no program fits)",
                   "capacity": " (capacity)"}.get(getattr(row, "reason", ""), "")
            lines.append(f"  {row.need_id}: {row.unmet} of {row.headcount}{why}")
        if len(short) > 10:
            lines.append(f"  ... and {len(short) - 10} more needs")
        lines.append(f"exposure across {len(self.colleges)} colleges: Gini {self.gini:.3f}")
        return "\n".join(lines)


def gini(values) -> float:
    """Gini coefficient of non-negative values (0: all equal; 0 when they sum to 0).

    Examples
    --------
    >>> gini([1, 1, 1, 1]), gini([0, 0, 0, 4])
    (0.0, 0.75)
    """
    x = np.sort(np.asarray(values, dtype=float))
    if len(x) == 0 or x.sum() <= 0:
        return 0.0
    n = len(x)
    return float(2 * np.sum(np.arange(1, n + 1) * x) / (n * x.sum()) - (n + 1) / n)


def _bases(bases, programs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Base row of each program (-1: none), capacity of each base, base ids."""
    base_of = np.full(len(programs), -1, np.int64)
    if bases is None:
        return base_of, np.zeros(0, np.int64), []
    frame, source = as_table(bases, "bases")
    require_columns(frame, ["base_id", "program_id", "capacity"], source)
    capacity = whole_numbers(frame, "capacity", source)
    prog_ids = frame["program_id"].astype(str).str.strip()
    check_known(frame.assign(program_id=prog_ids), "program_id", programs["program_id"],
                source, "program_id")
    base_ids = frame["base_id"].astype(str).str.strip()
    problems = []
    for row in frame.index[prog_ids.duplicated().to_numpy()]:
        problems.append({"row": int(row), "column": "program_id",
                         "message": f"program {prog_ids.loc[row]!r} is in more than one base"})
    ids, first = np.unique(base_ids.to_numpy(dtype=str), return_index=True)
    cap_of = dict(zip(ids, capacity[first], strict=True))
    for row, b, c in zip(frame.index, base_ids, capacity, strict=True):
        if cap_of[b] != c:
            problems.append({"row": int(row), "column": "capacity",
                             "message": f"base {b!r} has capacity {cap_of[b]} on another row"})
    if problems:
        raise problems_error(source, problems)
    index = {b: i for i, b in enumerate(ids)}
    row_of = {p: i for i, p in enumerate(programs["program_id"])}
    for p, b in zip(prog_ids, base_ids, strict=True):
        base_of[row_of[p]] = index[b]
    return base_of, np.array([cap_of[b] for b in ids], np.int64), list(ids)


def allocate(scores, needs, programs, bases=None, max_partners_per_college: int | None = None,
             min_score: float | None = None, time_limit: float | None = None,
             min_fit: float | None = None) -> tuple[pd.DataFrame, AllocationReport]:
    """The assignment of people to (need, program) pairs with the largest total score.

    Parameters
    ----------
    scores : DataFrame or path
        Columns ``need_id, program_id, score`` (e.g. the output of ``iei-match batch`` or
        ``rank``; other columns are ignored). Each pair at most once.
    needs : DataFrame or path
        ``need_id`` and ``headcount`` (people asked, a whole number >= 0).
    programs : DataFrame or path
        ``program_id`` and ``graduates_per_year``; optional ``org_id`` (the college).
    bases : DataFrame or path, optional
        Training bases: ``base_id, program_id, capacity``, one row per program a base
        serves (a program uses at most one base; a base's capacity is the same on each of
        its rows). A base gives at most ``capacity`` people over all its programs.
    max_partners_per_college : int, optional
        Needs a college may serve at most.
    min_score : float, optional
        Pairs scoring lower are not used.
    min_fit : float, optional
        Pairs whose ``fit`` (a column of ``scores``, as ``rank`` and ``batch`` write it) is
        lower are not used. By default, pairs whose ``fit_level`` is ``low`` are not used
        (when ``scores`` has that column).
    time_limit : float, optional
        Seconds the solve with ``max_partners_per_college`` may take (120 by default,
        ``math.inf`` for no limit); the best plan found by then is returned and
        ``status`` says so, with the gap to the optimum it is proven within.

    Returns
    -------
    assignment : DataFrame
        ``need_id, program_id, assigned, score``: the pairs that carry people, by need
        (in the needs' order), best score first.
    report : AllocationReport

    Raises
    ------
    DataFileError
        Missing columns, capacities that are not whole numbers, unknown ids, a pair given
        twice (with the file, row and column).

    Examples
    --------
    >>> needs = pd.DataFrame({"need_id": ["n1", "n2"], "headcount": [2, 1]})
    >>> programs = pd.DataFrame({"program_id": ["p1", "p2"], "graduates_per_year": [2, 5]})
    >>> scores = pd.DataFrame({"need_id": ["n1", "n1", "n2"], "program_id": ["p1", "p2", "p1"],
    ...                        "score": [3.0, 1.0, 2.0]})
    >>> plan, report = allocate(scores, needs, programs)
    >>> plan.values.tolist(), report.objective
    ([['n1', 'p1', 1, 3.0], ['n1', 'p2', 1, 1.0], ['n2', 'p1', 1, 2.0]], 6.0)
    """
    needs, n_src = as_table(needs, "needs")
    programs, p_src = as_table(programs, "programs")
    need_ids, prog_ids = unique_ids(needs, "need_id", n_src), unique_ids(programs, "program_id",
                                                                         p_src)
    headcount = whole_numbers(needs, "headcount", n_src, _WHY)
    graduates = whole_numbers(programs, "graduates_per_year", p_src, _WHY)
    if max_partners_per_college is not None and (
            not isinstance(max_partners_per_college, (int, np.integer))
            or max_partners_per_college < 0):
        raise InputError(f"max_partners_per_college must be a whole number >= 0, "
                         f"got {max_partners_per_college!r}")
    if time_limit is not None and not float(time_limit) >= 0:
        raise InputError(f"time_limit must be a number of seconds >= 0, got {time_limit!r}")
    programs = programs.assign(program_id=prog_ids.to_numpy())
    if min_fit is not None and (isinstance(min_fit, bool) or not isinstance(
            min_fit, (int, float, np.floating)) or not 0 <= min_fit <= 1):
        raise InputError(f"min_fit must be a number from 0 to 1, got {min_fit!r}")
    pairs = score_pairs(scores, need_ids, prog_ids, with_fit=min_fit is not None)
    base_of, base_cap, _ = _bases(bases, programs)
    org = (programs["org_id"].astype(str).str.strip() if "org_id" in programs
           else pd.Series("", index=programs.index))
    college_name = np.where(org.to_numpy(dtype=str) != "", org.to_numpy(dtype=str),
                            prog_ids.to_numpy(dtype=str))
    colleges, college = np.unique(college_name, return_inverse=True)
    n_row = pd.Series(np.arange(len(need_ids)), index=need_ids.to_numpy())
    p_row = pd.Series(np.arange(len(prog_ids)), index=prog_ids.to_numpy())
    n_idx = n_row.loc[pairs["need_id"]].to_numpy()
    p_idx = p_row.loc[pairs["program_id"]].to_numpy()
    score = pairs["score"].to_numpy(float)
    keep = (score > 0) & (headcount[n_idx] > 0) & (graduates[p_idx] > 0)
    if min_score is not None:
        keep &= score >= float(min_score)
    if min_fit is not None:
        keep &= pairs["fit"].to_numpy(float) >= float(min_fit)
    elif "fit_level" in pairs:
        keep &= pairs["fit_level"].to_numpy(dtype=str) != "low"
    problem = Problem(n_idx[keep], p_idx[keep], score[keep], headcount, graduates, base_of,
                      base_cap, np.asarray(college).ravel(), max_partners_per_college)
    if len(problem.need) == 0:
        people, status = np.zeros(0, np.int64), "no eligible pair"
    elif max_partners_per_college is None:
        people, status = solve_flow(problem)
    else:
        people, status = solve_mip(problem, time_limit)
    return _plan(problem, people, status, need_ids, prog_ids, colleges)


def _plan(p: Problem, people: np.ndarray, status: str, need_ids: pd.Series,
          prog_ids: pd.Series, colleges: np.ndarray) -> tuple[pd.DataFrame, AllocationReport]:
    used = people > 0
    order = np.lexsort((p.program[used], -p.score[used], p.need[used]))
    plan = pd.DataFrame({
        "need_id": need_ids.to_numpy(dtype=object)[p.need[used]][order],
        "program_id": prog_ids.to_numpy(dtype=object)[p.program[used]][order],
        "assigned": people[used][order].astype(np.int64),
        "score": p.score[used][order].astype(float),
    })
    per_need = np.bincount(p.need, weights=people, minlength=len(p.headcount)).astype(np.int64)
    short = p.headcount - per_need
    eligible = np.bincount(p.need, minlength=len(p.headcount)) > 0
    reason = np.where(short <= 0, "", np.where(eligible, "capacity", "no_fitting_program"))
    unmet = pd.DataFrame({"need_id": need_ids.to_numpy(dtype=object), "headcount": p.headcount,
                          "assigned": per_need, "unmet": short, "reason": reason.astype(object)})
    pair_college = p.college[p.program]
    per_college = np.bincount(pair_college, weights=people, minlength=len(colleges))
    served = pd.DataFrame({"c": pair_college[used], "n": p.need[used]}).drop_duplicates()
    college_table = pd.DataFrame({
        "college": colleges.astype(object),
        "capacity": np.bincount(p.college, weights=p.graduates, minlength=len(colleges)
                                ).astype(np.int64),
        "assigned": per_college.astype(np.int64),
        "partners": np.bincount(served["c"], minlength=len(colleges)).astype(np.int64),
    })
    report = AllocationReport(
        objective=float(np.sum(p.score * people)), assigned=int(people.sum()),
        demand=int(p.headcount.sum()), supply=int(p.graduates.sum()), unmet=unmet,
        colleges=college_table, gini=gini(per_college), status=status, pairs=len(p.need))
    return plan, report
