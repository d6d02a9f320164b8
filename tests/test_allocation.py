"""Allocation: exact (checked by enumeration), never over a capacity, clear about bad input."""

from __future__ import annotations

import itertools
import re
import time

import numpy as np
import pandas as pd
import pytest

from iei_match.allocation import allocate, gini
from iei_match.errors import DataFileError, InputError


def brute_force(scores, needs, programs, bases=None, cap=None) -> float:
    """The best total score over every integer assignment (tiny cases only)."""
    head = dict(zip(needs["need_id"], needs["headcount"], strict=True))
    grad = dict(zip(programs["program_id"], programs["graduates_per_year"], strict=True))
    college = dict(zip(programs["program_id"], programs["org_id"], strict=True))
    base_of, base_cap = {}, {}
    if bases is not None:
        base_of = dict(zip(bases["program_id"], bases["base_id"], strict=True))
        base_cap = dict(zip(bases["base_id"], bases["capacity"], strict=True))
    pairs = [p for p in scores.itertuples(index=False) if p.score > 0]
    best = 0.0
    for people in itertools.product(*(range(min(head[p.need_id], grad[p.program_id]) + 1)
                                      for p in pairs)):
        used_n, used_p, used_b, partners = {}, {}, {}, {}
        for p, x in zip(pairs, people, strict=True):
            if x:
                used_n[p.need_id] = used_n.get(p.need_id, 0) + x
                used_p[p.program_id] = used_p.get(p.program_id, 0) + x
                if p.program_id in base_of:
                    b = base_of[p.program_id]
                    used_b[b] = used_b.get(b, 0) + x
                partners.setdefault(college[p.program_id], set()).add(p.need_id)
        if (any(v > head[k] for k, v in used_n.items())
                or any(v > grad[k] for k, v in used_p.items())
                or any(v > base_cap[k] for k, v in used_b.items())
                or (cap is not None and any(len(v) > cap for v in partners.values()))):
            continue
        best = max(best, sum(p.score * x for p, x in zip(pairs, people, strict=True)))
    return best


def random_case(seed: int):
    rng = np.random.default_rng(seed)
    n_needs, n_progs = 3, 3
    needs = pd.DataFrame({"need_id": [f"n{i}" for i in range(n_needs)],
                          "headcount": rng.integers(0, 4, n_needs)})
    programs = pd.DataFrame({"program_id": [f"p{j}" for j in range(n_progs)],
                             "graduates_per_year": rng.integers(0, 4, n_progs),
                             "org_id": rng.choice(["A", "B"], n_progs)})
    rows = [(f"n{i}", f"p{j}", round(float(rng.normal(1.0, 1.0)), 3))
            for i in range(n_needs) for j in range(n_progs) if rng.random() < 0.6]
    scores = pd.DataFrame(rows, columns=["need_id", "program_id", "score"])
    bases = None
    if seed % 2:
        bases = pd.DataFrame({"base_id": ["b0", "b0"], "program_id": ["p0", "p1"],
                              "capacity": [int(rng.integers(0, 4))] * 2})
    return scores, needs, programs, bases


def assert_within_capacities(plan, needs, programs, bases=None, cap=None):
    assert (plan["assigned"] > 0).all()
    per_need = plan.groupby("need_id")["assigned"].sum()
    head = needs.set_index("need_id")["headcount"]
    assert (per_need <= head.reindex(per_need.index)).all()
    per_prog = plan.groupby("program_id")["assigned"].sum()
    grad = programs.set_index("program_id")["graduates_per_year"]
    assert (per_prog <= grad.reindex(per_prog.index)).all()
    if bases is not None:
        used = plan.merge(bases, on="program_id").groupby("base_id")["assigned"].sum()
        assert (used <= bases.groupby("base_id")["capacity"].first().reindex(used.index)).all()
    if cap is not None:
        colleges = plan.merge(programs[["program_id", "org_id"]], on="program_id")
        assert (colleges.groupby("org_id")["need_id"].nunique() <= cap).all()


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("cap", [None, 1])
def test_matches_the_brute_force_optimum_and_respects_every_capacity(seed, cap):
    scores, needs, programs, bases = random_case(seed)
    plan, report = allocate(scores, needs, programs, bases=bases, max_partners_per_college=cap)
    assert report.objective == pytest.approx(brute_force(scores, needs, programs, bases, cap),
                                             abs=1e-6)
    assert report.objective == pytest.approx(float((plan["assigned"] * plan["score"]).sum()))
    assert_within_capacities(plan, needs, programs, bases, cap)
    assert report.assigned == plan["assigned"].sum()
    assert (report.unmet["unmet"] == report.unmet["headcount"] - report.unmet["assigned"]).all()
    if report.pairs:
        assert ("MIP" if cap is not None else "min-cost flow") in report.status


def test_the_college_cap_spreads_needs_across_colleges():
    needs = pd.DataFrame({"need_id": ["n1", "n2", "n3"], "headcount": [1, 1, 1]})
    programs = pd.DataFrame({"program_id": ["famous", "other"], "graduates_per_year": [10, 10],
                             "org_id": ["Famous U", "Other C"]})
    scores = pd.DataFrame({"need_id": ["n1", "n2", "n3", "n1", "n2", "n3"],
                           "program_id": ["famous"] * 3 + ["other"] * 3,
                           "score": [3.0, 2.9, 2.8, 1.0, 1.0, 1.0]})
    free, free_report = allocate(scores, needs, programs)
    assert set(free["program_id"]) == {"famous"} and free_report.gini == pytest.approx(0.5)
    capped, report = allocate(scores, needs, programs, max_partners_per_college=2)
    assert sorted(capped["program_id"]) == ["famous", "famous", "other"]
    assert capped.loc[capped["program_id"] == "other", "need_id"].tolist() == ["n3"]
    assert report.objective == pytest.approx(3.0 + 2.9 + 1.0)
    assert report.gini < free_report.gini
    assert report.colleges.set_index("college")["partners"].to_dict() == {"Famous U": 2,
                                                                           "Other C": 1}


def test_min_score_and_non_positive_scores_are_left_out():
    needs = pd.DataFrame({"need_id": ["n1"], "headcount": [5]})
    programs = pd.DataFrame({"program_id": ["a", "b", "c"], "graduates_per_year": [1, 1, 1]})
    scores = pd.DataFrame({"need_id": ["n1"] * 3, "program_id": ["a", "b", "c"],
                           "score": [2.0, 0.5, -1.0]})
    plan, report = allocate(scores, needs, programs)
    assert plan["program_id"].tolist() == ["a", "b"]
    plan, report = allocate(scores, needs, programs, min_score=1.0)
    assert plan["program_id"].tolist() == ["a"]
    assert report.unmet["unmet"].tolist() == [4]
    assert "unmet demand: 4 people in 1 needs" in report.summary()


def test_gini():
    assert gini([5, 5, 5]) == 0.0
    assert gini([0, 0, 0]) == 0.0
    assert gini([0, 0, 10]) == pytest.approx(2 / 3)
    assert gini([1, 2, 3, 4]) == pytest.approx(0.25)


@pytest.fixture
def files(tmp_path):
    needs = tmp_path / "needs.csv"
    needs.write_text("need_id,title,text,headcount\nn1,焊工,焊接,3\nn2,车工,数控,2\n",
                     encoding="utf-8")
    programs = tmp_path / "programs.csv"
    programs.write_text("program_id,title,text,graduates_per_year,org_id\n"
                        "p1,焊接技术,焊接,2,C1\np2,数控技术,数控,4,C2\n", encoding="utf-8")
    scores = tmp_path / "scores.csv"
    scores.write_text("need_id,program_id,rank,score\nn1,p1,1,2.5\nn2,p2,1,1.5\n",
                      encoding="utf-8")
    return {"needs": needs, "programs": programs, "scores": scores, "dir": tmp_path}


def test_files_are_read_and_capacities_come_from_their_columns(files):
    plan, report = allocate(files["scores"], files["needs"], files["programs"])
    assert plan.to_dict("list") == {"need_id": ["n1", "n2"], "program_id": ["p1", "p2"],
                                    "assigned": [2, 2], "score": [2.5, 1.5]}
    assert (report.demand, report.supply, report.assigned) == (5, 6, 4)


@pytest.mark.parametrize("name, content, where", [
    ("scores", "need_id,program_id\nn1,p1\n", "column score"),
    ("scores", "need_id,program_id,score\nn1,p1,high\n", "row 2, column score"),
    ("scores", "need_id,program_id,score\nn1,p1,1\nn9,p1,1\n", "row 3, column need_id"),
    ("scores", "need_id,program_id,score\nn1,p1,1\nn1,p1,2\n", "row 3"),
    ("needs", "need_id,title,text,headcount\nn1,a,b,3\nn2,c,d,\n", "row 3, column headcount"),
    ("programs", "program_id,title,text\np1,a,b\np2,c,d\n", "column graduates_per_year"),
])
def test_bad_files_are_refused_with_file_row_and_column(files, name, content, where):
    files[name].write_text(content, encoding="utf-8")
    with pytest.raises(DataFileError) as err:
        allocate(files["scores"], files["needs"], files["programs"])
    assert str(files[name]) in str(err.value) and where in str(err.value)


def test_bad_bases_are_refused(files):
    bases = pd.DataFrame({"base_id": ["b1", "b1"], "program_id": ["p1", "p2"],
                          "capacity": [3, 4]})
    with pytest.raises(DataFileError, match="capacity 3 on another row"):
        allocate(files["scores"], files["needs"], files["programs"], bases=bases)
    bases = pd.DataFrame({"base_id": ["b1"], "program_id": ["p7"], "capacity": [3]})
    with pytest.raises(DataFileError, match="unknown program_id 'p7'"):
        allocate(files["scores"], files["needs"], files["programs"], bases=bases)
    with pytest.raises(InputError, match="max_partners_per_college"):
        allocate(files["scores"], files["needs"], files["programs"],
                 max_partners_per_college=-1)


def test_a_base_shared_by_two_programs_caps_them_together(files):
    bases = pd.DataFrame({"base_id": ["b1", "b1"], "program_id": ["p1", "p2"],
                          "capacity": [3, 3]})
    plan, report = allocate(files["scores"], files["needs"], files["programs"], bases=bases)
    assert plan["assigned"].sum() == 3
    assert plan.set_index("need_id")["assigned"].to_dict() == {"n1": 2, "n2": 1}


def medium_case(seed: int = 0, n_needs: int = 2000, n_pairs: int = 20, n_progs: int = 2000,
                n_colleges: int = 300):
    """Random scores with a college effect (good colleges score well with every need, so
    the cap binds), headcount 1-10, graduates 10-60, a base over a quarter of the programs."""
    rng = np.random.default_rng(seed)
    college = rng.integers(0, n_colleges, n_progs)
    quality = rng.random(n_colleges)
    needs = pd.DataFrame({"need_id": [f"n{i}" for i in range(n_needs)],
                          "headcount": rng.integers(1, 11, n_needs)})
    programs = pd.DataFrame({"program_id": [f"p{j}" for j in range(n_progs)],
                             "graduates_per_year": rng.integers(10, 61, n_progs),
                             "org_id": [f"c{c}" for c in college]})
    prog = np.argsort(rng.random((n_needs, n_progs)), axis=1)[:, :n_pairs].ravel()
    scores = pd.DataFrame({"need_id": np.repeat(needs["need_id"].to_numpy(), n_pairs),
                           "program_id": programs["program_id"].to_numpy()[prog],
                           "score": 0.5 * quality[college[prog]] + 0.5 * rng.random(len(prog))})
    in_base = np.flatnonzero(rng.random(n_progs) < 0.25)
    bases = pd.DataFrame({"base_id": [f"b{c % 40}" for c in college[in_base]],
                          "program_id": programs["program_id"].to_numpy()[in_base],
                          "capacity": 0})
    bases["capacity"] = bases["base_id"].map(
        dict(zip(sorted(set(bases["base_id"])), rng.integers(50, 400, 40), strict=False)))
    return scores, needs, programs, bases


def greedy(scores, needs, programs, bases, cap) -> float:
    """Best pair first, as many people as every capacity and the cap allow (feasible)."""
    head = dict(zip(needs["need_id"], needs["headcount"], strict=True))
    grad = dict(zip(programs["program_id"], programs["graduates_per_year"], strict=True))
    college = dict(zip(programs["program_id"], programs["org_id"], strict=True))
    base_of = dict(zip(bases["program_id"], bases["base_id"], strict=True))
    room = dict(zip(bases["base_id"], bases["capacity"], strict=True))
    partners: dict[str, set] = {}
    total = 0.0
    for p in scores.sort_values("score", ascending=False).itertuples(index=False):
        c, b = college[p.program_id], base_of.get(p.program_id)
        served = partners.setdefault(c, set())
        if p.need_id not in served and len(served) >= cap:
            continue
        x = min(head[p.need_id], grad[p.program_id], room[b] if b else head[p.need_id])
        if x > 0:
            head[p.need_id] -= x
            grad[p.program_id] -= x
            if b:
                room[b] -= x
            served.add(p.need_id)
            total += x * p.score
    return total


def test_the_cap_on_a_medium_instance_is_feasible_and_between_greedy_and_no_cap():
    scores, needs, programs, bases = medium_case()
    cap = 10
    _, free = allocate(scores, needs, programs, bases=bases)
    assert free.colleges["partners"].max() > cap  # the cap binds
    floor = greedy(scores, needs, programs, bases, cap)
    for time_limit in (0, 3):  # 0: no MIP, the repaired flow alone
        start = time.perf_counter()
        plan, report = allocate(scores, needs, programs, bases=bases,
                                max_partners_per_college=cap, time_limit=time_limit)
        assert time.perf_counter() - start < time_limit + 10  # the limit holds (2 loaded cores)
        assert_within_capacities(plan, needs, programs, bases, cap)
        assert report.colleges["partners"].max() <= cap
        assert report.objective == pytest.approx(float((plan["assigned"] * plan["score"]).sum()))
        assert floor < report.objective <= free.objective
        if "optimal" not in report.status:
            assert "best found within the time limit" in report.status
            assert re.search(r"gap [0-9.e-]+% at most", report.status)


def test_low_fit_pairs_are_left_out_by_default_and_unmet_needs_say_why():
    needs = pd.DataFrame({"need_id": ["care", "tcm", "busy"], "headcount": [20, 5, 9]})
    programs = pd.DataFrame({"program_id": ["robot", "pharma"],
                             "graduates_per_year": [40, 10]})
    scores = pd.DataFrame({
        "need_id": ["care", "care", "tcm", "busy"],
        "program_id": ["robot", "pharma", "pharma", "pharma"],
        "score": [2.0, 1.5, 3.0, 1.0],
        "fit": [0.01, 0.02, 0.8, 0.4],
        "fit_level": ["low", "low", "high", "medium"]})
    plan, report = allocate(scores, needs, programs)
    # Nobody is sent to a program that does not fit, though graduates are free.
    assert set(plan["need_id"]) == {"tcm", "busy"}
    unmet = report.unmet.set_index("need_id")
    assert unmet.loc["care", "unmet"] == 20 and unmet.loc["care", "reason"] == "no_fitting_program"
    assert unmet.loc["tcm", "unmet"] == 0 and unmet.loc["tcm", "reason"] == ""
    assert unmet.loc["busy", "unmet"] == 4 and unmet.loc["busy", "reason"] == "capacity"
    assert "no program fits" in report.summary()
    # The coordinator may let low pairs in.
    plan0, report0 = allocate(scores, needs, programs, min_fit=0.0)
    assert "care" in set(plan0["need_id"]) and report0.assigned > report.assigned
