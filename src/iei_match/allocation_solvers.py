"""The two solvers behind :func:`iei_match.allocation.allocate`.

Without a cap on partners per college the problem is a transportation problem, solved
exactly as a min-cost flow (OR-Tools ``SimpleMinCostFlow``)::

    source -> need (headcount) -> program (score) -> [training base] -> sink
                 need -> sink ("unmet", cost 0)

The "unmet" arcs let every person flow, so the minimum cost is minus the best total
score, not the best score among the largest flows. Costs must be integers: scores are
scaled so that the largest is 1e9 (relative rounding below 1e-9).

With the cap, "how many needs a college serves" needs a yes/no variable per (need,
college), and the problem becomes a mixed-integer program, solved with HiGHS through
:func:`scipy.optimize.milp`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

__all__ = ["Problem", "solve_flow", "solve_mip"]

_COST_SCALE = 1e9


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


def solve_mip(p: Problem, time_limit: float | None = None) -> tuple[np.ndarray, str]:
    """People per pair, maximising the total score with at most ``max_partners`` needs per
    college, as a mixed-integer program (HiGHS)."""
    n_pairs = len(p.need)
    n_needs, n_progs = len(p.headcount), len(p.graduates)
    links, link_of_pair = np.unique(np.c_[p.need, p.college[p.program]], axis=0,
                                    return_inverse=True)
    link_of_pair = np.asarray(link_of_pair).ravel()
    n_links = len(links)
    upper = np.minimum(p.headcount[p.need], p.graduates[p.program]).astype(float)
    x = np.arange(n_pairs)
    blocks, lower_b, upper_b = [], [], []

    def rows(matrix, lo, hi):
        blocks.append(sp.csr_matrix(matrix))
        lower_b.append(np.broadcast_to(lo, matrix.shape[0]).astype(float))
        upper_b.append(np.broadcast_to(hi, matrix.shape[0]).astype(float))

    width = n_pairs + n_links

    def select(row_of_pair, n_rows):
        return sp.csr_matrix((np.ones(n_pairs), (row_of_pair, x)), shape=(n_rows, width))

    rows(select(p.need, n_needs), -np.inf, p.headcount)
    rows(select(p.program, n_progs), -np.inf, p.graduates)
    based = p.base[p.program] >= 0
    if based.any():
        rows(sp.csr_matrix((np.ones(based.sum()), (p.base[p.program][based], x[based])),
                           shape=(len(p.base_capacity), width)), -np.inf, p.base_capacity)
    # x <= upper * y: a pair carries people only if its (need, college) link is chosen.
    rows(sp.csr_matrix((np.r_[np.ones(n_pairs), -upper], (np.r_[x, x],
                        np.r_[x, n_pairs + link_of_pair])), shape=(n_pairs, width)), -np.inf, 0)
    n_colleges = int(p.college.max(initial=-1)) + 1
    rows(sp.csr_matrix((np.ones(n_links), (links[:, 1], n_pairs + np.arange(n_links))),
                       shape=(n_colleges, width)), -np.inf, p.max_partners)
    constraints = LinearConstraint(sp.vstack(blocks).tocsr(), np.concatenate(lower_b),
                                   np.concatenate(upper_b))
    options = {"mip_rel_gap": 1e-9}
    if time_limit is not None:
        options["time_limit"] = float(time_limit)
    res = milp(np.r_[-p.score, np.zeros(n_links)], constraints=constraints,
               integrality=np.ones(width), bounds=Bounds(0, np.r_[upper, np.ones(n_links)]),
               options=options)
    if res.x is None:
        raise RuntimeError(f"the MIP solver found no solution: {res.message}")
    status = "optimal (MIP, HiGHS)" if res.status == 0 else f"best found: {res.message}"
    return np.rint(res.x[:n_pairs]).astype(np.int64), status
