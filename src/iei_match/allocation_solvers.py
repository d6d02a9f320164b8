"""The two solvers behind :func:`iei_match.allocation.allocate`.

Without a cap on partners per college the problem is a transportation problem, solved
exactly as a min-cost flow (OR-Tools ``SimpleMinCostFlow``)::

    source -> need (headcount) -> program (score) -> [training base] -> sink
                 need -> sink ("unmet", cost 0)

The "unmet" arcs let every person flow, so the minimum cost is minus the best total
score, not the best score among the largest flows. Costs must be integers: scores are
scaled so that the largest is 1e9 (relative rounding below 1e-9).

With the cap, "how many needs a college serves" needs a yes/no variable per (need,
college), and the problem becomes a mixed-integer program (:func:`solve_mip`): a Lagrangian
bound and repaired flows, then HiGHS through :func:`scipy.optimize.milp` on the links only,
within a time limit; every plan returned is an exact min-cost flow on links within the cap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

__all__ = ["Problem", "solve_flow", "solve_mip", "violations", "DEFAULT_TIME_LIMIT",
           "DEFAULT_MIP_REL_GAP", "FULL_MIP_COLUMNS"]

_COST_SCALE = 1e9
#: Seconds the solve with the cap may take when no ``time_limit`` is given.
DEFAULT_TIME_LIMIT = 120.0
#: The solve stops once its plan is proven within this fraction of the optimum (0.01% of
#: the total score: far below what the match scores themselves can tell apart), where
#: proving the last 1e-9 can take orders of magnitude longer on large instances.
DEFAULT_MIP_REL_GAP = 1e-4
#: Up to this many variables (pairs + links) the MIP also runs on the whole problem (2,000
#: needs x 50 pairs, about 200,000, took 53 s); beyond, only on the Lagrangian core.
FULL_MIP_COLUMNS = 200_000


@dataclass
class Problem:
    """An allocation problem in array form.

    Attributes
    ----------
    need, program : ndarray of int
        The eligible pairs (row of the need, row of the program).
    score : ndarray of float
        Quality of one person placed through each pair (> 0).
    headcount, graduates : ndarray of int
        Capacity of each need and each program.
    base : ndarray of int
        Training base of each program, -1 for none.
    base_capacity : ndarray of int
    college : ndarray of int
        College of each program.
    max_partners : int or None
        Needs a college may serve at most.
    """

    need: np.ndarray
    program: np.ndarray
    score: np.ndarray
    headcount: np.ndarray
    graduates: np.ndarray
    base: np.ndarray
    base_capacity: np.ndarray
    college: np.ndarray
    max_partners: int | None = None


def solve_flow(p: Problem) -> tuple[np.ndarray, str]:
    """People per pair, maximising the total score, as a min-cost flow."""
    from ortools.graph.python import min_cost_flow

    n_needs, n_progs, n_bases = len(p.headcount), len(p.graduates), len(p.base_capacity)
    source, first_need = 0, 1
    first_prog = first_need + n_needs
    first_base = first_prog + n_progs
    sink = first_base + n_bases
    total = int(p.headcount.sum())
    top = float(np.abs(p.score).max(initial=0.0)) or 1.0
    cost = -np.rint(p.score * (_COST_SCALE / top)).astype(np.int64)
    tails, heads, caps, costs = [], [], [], []

    def arcs(t, h, c, w=None):
        tails.append(np.asarray(t, np.int64))
        heads.append(np.broadcast_to(np.asarray(h, np.int64), np.shape(t)))
        caps.append(np.asarray(c, np.int64))
        costs.append(np.zeros(np.shape(t), np.int64) if w is None else w)

    needs = np.arange(n_needs)
    arcs(np.zeros(n_needs, np.int64) + source, first_need + needs, p.headcount)
    pair_start = sum(len(t) for t in tails)
    arcs(first_need + p.need, first_prog + p.program,
         np.minimum(p.headcount[p.need], p.graduates[p.program]), cost)
    arcs(first_need + needs, np.full(n_needs, sink), p.headcount)  # unmet demand
    has_base = p.base >= 0
    progs = np.arange(n_progs)
    arcs(first_prog + progs, np.where(has_base, first_base + p.base, sink), p.graduates)
    arcs(first_base + np.arange(n_bases), np.full(n_bases, sink), p.base_capacity)
    flow = min_cost_flow.SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(np.concatenate(tails), np.concatenate(heads),
                                              np.concatenate(caps), np.concatenate(costs))
    supplies = np.zeros(sink + 1, np.int64)
    supplies[source], supplies[sink] = total, -total
    flow.set_nodes_supplies(np.arange(sink + 1), supplies)
    status = flow.solve()
    if status != flow.OPTIMAL:  # cannot happen: every person can take an "unmet" arc
        raise RuntimeError(f"min-cost flow failed with status {status}")
    arc_ids = np.arange(pair_start, pair_start + len(p.need))
    return np.asarray(flow.flows(arc_ids), dtype=np.int64), "optimal (min-cost flow)"


def _subset(p: Problem, keep: np.ndarray) -> Problem:
    return Problem(p.need[keep], p.program[keep], p.score[keep], p.headcount, p.graduates,
                   p.base, p.base_capacity, p.college, p.max_partners)


def _flow_on(p: Problem, keep: np.ndarray) -> np.ndarray:
    """People per pair of the best plan that uses only the pairs ``keep`` (exact, integral)."""
    people = np.zeros(len(p.need), np.int64)
    if keep.any():
        people[keep] = solve_flow(_subset(p, keep))[0]
    return people


def violations(p: Problem, people: np.ndarray) -> list[str]:
    """The capacities (and the cap) that ``people`` (per pair) exceeds; empty if none."""
    found = []
    if (people < 0).any():
        found.append("negative people on a pair")
    if (np.bincount(p.need, people, len(p.headcount)) > p.headcount).any():
        found.append("need headcount")
    if (np.bincount(p.program, people, len(p.graduates)) > p.graduates).any():
        found.append("program graduates")
    based = p.base[p.program] >= 0
    if (np.bincount(p.base[p.program][based], people[based], len(p.base_capacity))
            > p.base_capacity).any():
        found.append("training base capacity")
    if p.max_partners is not None:
        used = people > 0
        links = np.unique(np.c_[p.need[used], p.college[p.program[used]]], axis=0)
        if len(links) and np.bincount(links[:, 1]).max() > p.max_partners:
            found.append("partners per college")
    return found


def _objective(p: Problem, people: np.ndarray) -> float:
    return float(np.sum(p.score * people))


class _Links:
    """The (need, college) links of a problem's pairs."""

    def __init__(self, p: Problem):
        self.n_colleges = int(p.college.max(initial=-1)) + 1
        key = p.need.astype(np.int64) * self.n_colleges + p.college[p.program]
        self.key, self.of_pair = np.unique(key, return_inverse=True)
        self.of_pair = np.asarray(self.of_pair).ravel()
        self.need, self.college = np.divmod(self.key, self.n_colleges)
        self.n = len(self.key)

    def pairs_of(self, p: Problem, chosen_keys: np.ndarray) -> np.ndarray:
        """The pairs of ``p`` whose link is among ``chosen_keys`` (need x n_colleges + college)."""
        return np.isin(self.key, chosen_keys)[self.of_pair]


def _cap(p: Problem) -> int:
    """The cap on partners per college (the capped solvers are only called with one)."""
    if p.max_partners is None:
        raise ValueError("this step needs a cap on partners per college")
    return int(p.max_partners)


def _repair(p: Problem, links: _Links, people: np.ndarray) -> np.ndarray:
    """A plan within the cap from one that may exceed it: for every college over the cap,
    keep only its ``max_partners`` links carrying the most score, re-solve the flow on the
    links still allowed (the needs cut off go elsewhere), and repeat until no college is
    over the cap; then the exact flow on the links used. Each round closes at least one
    college, so it ends."""
    allowed = np.ones(links.n, bool)
    cap = _cap(p)
    while True:
        value = np.bincount(links.of_pair, p.score * people, links.n)
        used = value > 0
        over = np.flatnonzero(np.bincount(links.college[used], minlength=links.n_colleges)
                              > cap)
        if not len(over):
            return _flow_on(p, used[links.of_pair])
        at = np.flatnonzero(np.isin(links.college, over))
        order = at[np.lexsort((-value[at], links.college[at]))]
        college = links.college[order]
        allowed[order[np.arange(len(order)) - np.searchsorted(college, college) >= cap]] = False
        people = _flow_on(p, allowed[links.of_pair])


def _top_pairs(p: Problem, k: int) -> np.ndarray:
    """The ``k`` best-scoring pairs of every need."""
    order = np.lexsort((-p.score, p.need))
    need = p.need[order]
    rank = np.arange(len(order)) - np.searchsorted(need, need)
    keep = np.zeros(len(p.need), bool)
    keep[order[rank < k]] = True
    return keep


def _lagrangian(p: Problem, links: _Links, lower: float, deadline: float, tolerance: float,
                max_rounds: int = 200, recent: int = 10, top: int = 10, every: int = 5
                ) -> tuple[float, np.ndarray, np.ndarray]:
    """An upper bound on the best total within the cap, by Lagrangian relaxation of the cap.

    A link (need, college) carries at most ``U = min(headcount, sum of its pairs' upper
    bounds)`` people, so ``y >= (people on the link) / U``; pricing each college's partner
    slots at ``lam[c] >= 0`` therefore costs each person on a pair ``lam[c] / U``, and for
    every ``lam >= 0``::

        best within the cap <= max over flows of sum((score - lam[c] / U) x) + cap sum(lam)

    which is one min-cost flow. ``lam`` follows projected subgradient steps (Polyak's step
    towards ``lower``, the best plan known). To go faster, most rounds solve the flow on
    an active set of pairs only (at first each need's ``top`` best); every ``every``-th
    round, and the last, solves it on all pairs: that gives the bound, and the pairs it
    uses join the active set (pricing, as in column generation).

    Returns the lowest bound, the flow at the last prices (near the cap, a good start for
    :func:`_repair`), and the pairs that carried people in any of the last ``recent``
    rounds (the "core" of the problem: where the prices have settled).
    """
    cap = _cap(p)
    upper = np.minimum(p.headcount[p.need], p.graduates[p.program]).astype(float)
    per_person = 1.0 / np.minimum(p.headcount[links.need],
                                  np.bincount(links.of_pair, upper, links.n))[links.of_pair]
    college = p.college[p.program]
    people = float(p.headcount.sum())
    active = _top_pairs(p, top)
    lam = np.zeros(links.n_colleges)
    bound, best_value, step, stalled = np.inf, np.inf, 1.0, 0
    last_used = np.full(len(p.need), -1)
    x = np.zeros(len(p.need), np.int64)
    rounds = 0
    for rounds in range(1, max_rounds + 1):
        last = (time.perf_counter() >= deadline or step < 1e-3
                or best_value - lower <= tolerance * abs(lower))
        full = last or rounds % every == 1 or active.all()
        priced = p.score - lam[college] * per_person
        keep = np.ones(len(p.need), bool) if full else active
        x = _flow_on(Problem(p.need, p.program, priced, p.headcount, p.graduates, p.base,
                             p.base_capacity, p.college), keep)
        last_used[x > 0] = rounds
        value = float(np.sum(priced * x)) + cap * float(lam.sum())
        if full:
            # The flow's costs are rounded to 1e-9 of the largest |price|: allow for it.
            slack = 2.0 * people * float(np.abs(priced).max(initial=0.0)) / _COST_SCALE
            bound = min(bound, value + slack)
            active |= x > 0
        if last or bound - lower <= tolerance * abs(bound):
            break
        if value < best_value * (1 - 1e-6):
            best_value, stalled = value, 0
        else:
            stalled += 1
            if stalled >= 3:
                step, stalled = step / 2, 0
        slope = np.bincount(college, x * per_person, links.n_colleges) - cap
        slope[(lam <= 0) & (slope < 0)] = 0.0
        norm = float(slope @ slope)
        if norm == 0:  # no direction lowers the bound
            break
        # (A round on the active pairs may fall below ``lower``: still step forward.)
        target = max(value - lower, tolerance * abs(lower), 1e-12)
        lam = np.maximum(0.0, lam + step * target / norm * slope)
    return bound, x, last_used > max(0, rounds - recent)


def solve_mip(p: Problem, time_limit: float | None = None,
              mip_rel_gap: float = DEFAULT_MIP_REL_GAP) -> tuple[np.ndarray, str]:
    """People per pair, maximising the total score with at most ``max_partners`` needs per
    college.

    1. The min-cost flow without the cap: its total is an upper bound, and if it keeps to
       the cap it is the answer.
    2. :func:`_repair` of it: a first plan within the cap.
    3. :func:`_lagrangian` (a quarter of the time at most): a much tighter upper bound,
       about the MIP's LP relaxation; its last flow, repaired, is a second plan.
    4. The MIP (HiGHS, :func:`_mip`): a binary ``y`` per (need, college) link, the people
       per pair ``x`` continuous. For fixed integral ``y`` the rest is a transportation
       problem with integer capacities, so only the ``y`` need branching. First on the
       "core" pairs, those that carried people in the Lagrangian's last rounds or in the
       best plan (a few percent of the pairs, solved in seconds to a minute); then, if
       there is time left and the problem has at most :data:`FULL_MIP_COLUMNS` variables,
       on all pairs (exact up to ``mip_rel_gap``; HiGHS's root LP alone takes longer than
       the default time limit at 500,000 pairs). Each stops at the time limit or once
       proven within ``mip_rel_gap``.
    5. For each MIP plan the chosen links are fixed and the people placed by the exact
       min-cost flow on all their pairs: integral, within every capacity, at least as good
       as the MIP's ``x``. The best plan found is returned.

    Steps 3-5 are skipped once the best plan is within ``mip_rel_gap`` of the bound.
    ``time_limit`` counts from the start (:data:`DEFAULT_TIME_LIMIT` when None,
    ``math.inf`` for none); the last flow may overrun it by about one flow's time. The
    status says "optimal" when the plan is proven optimal (to 1e-6), else at most how far
    below the optimum it is (against the lowest bound found) and why it stopped.
    """
    start = time.perf_counter()
    time_limit = DEFAULT_TIME_LIMIT if time_limit is None else float(time_limit)
    deadline = start + time_limit
    free = solve_flow(p)[0]
    flow_seconds = time.perf_counter() - start
    if not violations(p, free):
        return free, "optimal (min-cost flow: the college cap does not bind, no MIP needed)"
    links = _Links(p)
    best = _repair(p, links, free)
    bound = _objective(p, free)

    def gap() -> float:
        return max(0.0, bound - _objective(p, best)) / max(abs(bound), 1e-12)

    def time_left() -> float:  # keeping one flow's time for the plan after the MIP
        return deadline - time.perf_counter() - flow_seconds

    how, core, timed_out = ["repaired min-cost flows"], np.zeros(len(p.need), bool), False
    if gap() > mip_rel_gap and time_left() > 0:
        lagrangian, priced, core = _lagrangian(
            p, links, _objective(p, best), min(deadline, time.perf_counter() + time_limit / 4),
            mip_rel_gap)
        bound = min(bound, lagrangian)
        plan = _repair(p, links, priced)
        if _objective(p, plan) > _objective(p, best):
            best = plan
        how.append("Lagrangian bound")
    whole = len(p.need) + links.n <= FULL_MIP_COLUMNS
    for on_core in (True, False):
        if gap() <= mip_rel_gap or (not on_core and not whole):
            break
        if time_left() <= 0:
            how.append("no time left for the MIP" if on_core else "no time left for the MIP "
                       "on all pairs")
            timed_out = True
            break
        sub = _subset(p, core | (best > 0)) if on_core else p
        sub_links = _Links(sub) if on_core else links
        res = _mip(sub, sub_links, deadline - flow_seconds, mip_rel_gap)
        timed_out = res.status == 1
        if not on_core and res.status in (0, 1) and res.mip_dual_bound is not None \
                and np.isfinite(res.mip_dual_bound):
            bound = min(bound, -float(res.mip_dual_bound))
        how.append(f"MIP (HiGHS) on the {len(sub.need)} pairs of the Lagrangian core"
                   if on_core else "MIP (HiGHS) on all pairs")
        if res.x is None:
            how[-1] += ", which found no plan in time"
            continue
        chosen = sub_links.key[res.x[len(sub.need):] > 0.5]
        plan = _flow_on(p, links.pairs_of(p, chosen))
        if _objective(p, plan) > _objective(p, best) and not violations(p, plan):
            best = plan
    found = violations(p, best)
    if found:  # cannot happen: every plan here is an exact flow on links within the cap
        raise RuntimeError(f"the allocation exceeds: {', '.join(found)}")
    if gap() <= mip_rel_gap and not any("MIP" in step for step in how):
        how.append("no MIP needed")
    steps = "; ".join(how)
    if gap() <= 1e-6:
        return best, f"optimal ({steps})"
    if gap() <= mip_rel_gap:
        why = f"proven within the relative gap tolerance {mip_rel_gap:g}"
    elif timed_out or time.perf_counter() >= deadline:
        why = f"best found within the time limit of {time_limit:g} s"
    else:
        why = "best found"
    return best, f"{why}, gap {100 * gap():.2g}% at most ({steps})"


def _mip(p: Problem, links: _Links, deadline: float, mip_rel_gap: float):
    """HiGHS on the MIP, x per pair (continuous) then y per link (binary), until
    ``deadline`` (a :func:`time.perf_counter` time)."""
    n_pairs = len(p.need)
    n_needs, n_progs = len(p.headcount), len(p.graduates)
    upper = np.minimum(p.headcount[p.need], p.graduates[p.program]).astype(float)
    x = np.arange(n_pairs)
    width = n_pairs + links.n
    blocks, upper_b = [], []

    def rows(rows_, cols, vals, n_rows, hi):
        blocks.append(sp.csr_matrix((vals, (rows_, cols)), shape=(n_rows, width)))
        upper_b.append(np.broadcast_to(np.asarray(hi, float), n_rows))

    ones = np.ones(n_pairs)
    rows(p.need, x, ones, n_needs, p.headcount)
    rows(p.program, x, ones, n_progs, p.graduates)
    based = p.base[p.program] >= 0
    if based.any():
        rows(p.base[p.program][based], x[based], ones[based], len(p.base_capacity),
             p.base_capacity)
    # x <= upper * y: a pair carries people only if its (need, college) link is chosen.
    rows(np.r_[x, x], np.r_[x, n_pairs + links.of_pair], np.r_[ones, -upper], n_pairs, 0.0)
    # Per link with several pairs, also their sum <= min(headcount, sum of upper) * y:
    # tighter when the need's headcount binds (two programs of a college share its people).
    size = np.bincount(links.of_pair, minlength=links.n)
    multi = np.flatnonzero(size > 1)
    if len(multi):
        link_upper = np.minimum(p.headcount[links.need[multi]],
                                np.bincount(links.of_pair, upper, links.n)[multi])
        row_of_link = np.full(links.n, -1)
        row_of_link[multi] = np.arange(len(multi))
        inside = row_of_link[links.of_pair] >= 0
        rows(np.r_[row_of_link[links.of_pair][inside], np.arange(len(multi))],
             np.r_[x[inside], n_pairs + multi], np.r_[ones[inside], -link_upper],
             len(multi), 0.0)
    cap = _cap(p)
    rows(links.college, n_pairs + np.arange(links.n), np.ones(links.n), links.n_colleges, cap)
    # A college with no more candidate links than the cap may keep them all.
    y_lower = (np.bincount(links.college, minlength=links.n_colleges) <= cap
               )[links.college].astype(float)
    matrix = sp.vstack(blocks, format="csr")
    # No presolve: HiGHS's presolve does not watch the time limit (on 500,000 pairs it ran
    # for 418 s and removed nothing). No memory option either (scipy passes other HiGHS
    # options on with a warning): the MIP only sees the core or <= FULL_MIP_COLUMNS
    # variables, and at a 1e-4 gap it closed at the root node in every run measured.
    options = {"mip_rel_gap": float(mip_rel_gap), "presolve": False,
               "time_limit": max(0.0, deadline - time.perf_counter())}
    return milp(np.r_[-p.score, np.zeros(links.n)],
                constraints=LinearConstraint(matrix, -np.inf, np.concatenate(upper_b)),
                integrality=np.r_[np.zeros(n_pairs), np.ones(links.n)],
                bounds=Bounds(np.r_[np.zeros(n_pairs), y_lower],
                              np.r_[upper, np.ones(links.n)]),
                options=options)
