"""Recommendations and partner lists: hard filters, the engine's ranking, explanations.

The engine ranks; this module decides which rows it may rank (level, region and required
certificates are hard rules applied before ranking) and dresses its output with what a
person needs to act on: the program's college and nearby training bases, the matched terms,
the skills the program does not cover, and the features that moved the score.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from iei_match.features import describe_feature
from iei_match.matcher import Matcher
from iei_match.text import normalize, tokenize

from .frames import key_id, need_key, need_record, needs_frame, program_key, programs_frame


def _near(place_of, province: str, city: str, near: str):
    """Predicate: is a (province, city) within ``near`` of the given place."""
    province, city = normalize(province), normalize(city)

    def ok(obj) -> bool:
        p, c = place_of(obj)
        if near == "city" and city:
            return normalize(c) == city
        if near in ("city", "province") and province:
            return normalize(p) == province
        return True

    return ok


def _has_certificates(required: Sequence[str], program) -> bool:
    if not required:
        return True
    offered = normalize(" ".join(program.certificates or []) + " " + program.title + " "
                        + (program.description or ""))
    return all(normalize(c) in offered for c in required)


def filter_programs(programs: Sequence, *, level: str = "", province: str = "", city: str = "",
                    near: str = "anywhere", certificates: Sequence[str] = ()) -> list:
    """Programs that pass the hard rules: level, region and the need's certificates."""
    near_ok = _near(lambda p: (p.province, p.city), province, city, near)
    return [p for p in programs
            if (not level or p.level == level) and near_ok(p)
            and _has_certificates(certificates, p)]


def missing_skills(skills: Sequence[str], text: str) -> list[str]:
    """The stated skills that a text does not mention (by phrase, or by all its words)."""
    haystack = normalize(text)
    words = set(tokenize(text))
    out = []
    for skill in skills:
        s = normalize(skill)
        if not s or s in haystack:
            continue
        toks = tokenize(skill)
        if not toks or not all(t in words for t in toks):
            out.append(skill)
    return out


def _explanation(match, skills: Sequence[str], other_text: str) -> dict:
    return {
        "matched_terms": match.matched_terms,
        "missing_skills": missing_skills(skills, other_text),
        "factors": [{"feature": name, "label": describe_feature(name, "en"),
                     "label_zh": describe_feature(name, "zh"), "contribution": round(v, 4)}
                    for name, v in match.contributions.items()],
    }


def rank_programs(matcher: Matcher, need, programs: Sequence, k: int) -> list[dict]:
    """The best ``k`` of ``programs`` for one need (a row or a :class:`MatchIn`).

    Returns dicts with ``program`` (the row), ``rank``, ``score`` and ``explanation``.
    """
    if not programs:
        return []
    needs = pd.DataFrame([need_record(need, need_key(getattr(need, "id", 0) or 0))])
    ranked = matcher.rank(needs, programs_frame(programs), k=k, explain=k)
    by_key = {program_key(p.id): p for p in programs}
    out = []
    for m in matcher.explain(ranked):
        program = by_key[m.program_id]
        out.append({"program": program, "rank": m.rank, "score": m.score,
                    "explanation": _explanation(m, need.skills or [], " ".join(
                        [program.title, program.description or "",
                         " ".join(program.certificates or [])]))})
    return out


def rank_needs(matcher: Matcher, program, needs: Sequence, k: int) -> list[dict]:
    """The best ``k`` of ``needs`` for one program (its partner list)."""
    if not needs:
        return []
    ranked = matcher.partners(programs_frame([program]), needs_frame(needs), k=k, explain=k)
    by_id = {n.id: n for n in needs}
    program_text = " ".join([program.title, program.description or "",
                             " ".join(program.certificates or [])])
    out = []
    for m in matcher.explain(ranked):
        need = by_id[key_id(m.need_id)]
        out.append({"need": need, "rank": m.rank, "score": m.score,
                    "explanation": _explanation(m, need.skills or [], program_text)})
    return out
