"""Recommendations and partner lists: hard filters, the engine's ranking, explanations.

The engine ranks a prepared catalog (:mod:`.catalogs`) restricted to the rows the hard
rules allow (level, region, required certificates, who may see what); this module dresses
its output with what a person needs to act on: the matched terms, the skills the other side
does not cover (:mod:`iei_match.skills`: by phrase, all words or a synonym), and the
features that moved the score; and, for a program, the skills its fitting needs ask for that
its profile does not cover (:func:`skill_gaps`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence, Set

import numpy as np

from iei_match.catalog import Queries
from iei_match.explanations import as_written, describe_feature, is_shown, read_from
from iei_match.matcher import Matcher
from iei_match.results import Ranking
from iei_match.skills import canonical, merge_counts, missing_skills
from iei_match.text import normalize, tokenize

from .catalogs import Prepared
from .frames import need_key, need_record, program_record


def _explanation(match, skills: Sequence[str], text: str, haystack: str,
                 words: Callable[[], Set[str]], written: Sequence[str],
                 via: dict[str, str]) -> dict:
    """``match``'s reasons: its matched terms in the letter case of ``written`` (the two
    sides' texts as their owners typed them: "GMP", not the engine's "gmp"), and those the
    need does not write with what it wrote (``via``: :func:`read_from` of the need), the
    skills asked that ``text`` lacks, and its shown factors."""
    terms = match.matched_terms or []
    shown = as_written(terms, *written)
    return {
        "matched_terms": shown,
        "matched_via": {s: via[t] for s, t in zip(shown, terms, strict=True) if t in via},
        "missing_skills": missing_skills(skills, text, haystack=haystack, words=words),
        "factors": [{"feature": name, "label": describe_feature(name, "en", v),
                     "label_zh": describe_feature(name, "zh", v), "contribution": round(v, 4)}
                    for name, v in match.contributions.items() if is_shown(name)],
    }


def low_fit_below(matcher: Matcher, include_low: bool) -> float | None:
    """The smallest fit a listed pair may have: the model's ``medium`` threshold, unless
    pairs of low fit are asked for too (None)."""
    return None if include_low else float(matcher.fit_model_.thresholds_["medium"])


def need_queries(matcher: Matcher, need) -> Callable[[], Queries]:
    """One need (a stored need or a :class:`MatchIn`) vectorised by ``matcher`` when first
    asked for, then kept: a request ranks it against the alliance's programs and against
    the national catalog (the reference majors), and vectorises it once."""
    return functools.cache(lambda: matcher.queries(
        [need_record(need, need_key(getattr(need, "id", 0) or 0))]))


def rank_programs(matcher: Matcher, need, programs: Prepared, allowed: np.ndarray,
                  k: int, include_low: bool = False,
                  asked: Callable[[], Queries] | None = None) -> list[dict]:
    """The best ``k`` of the ``allowed`` prepared programs for one need (a stored need or a
    :class:`MatchIn`); ``asked``: its :func:`need_queries`, when the request has them.

    Returns dicts with ``row`` (the program's :class:`Row`), ``rank``, ``score`` and
    ``explanation``.
    """
    if not allowed.any():
        return []
    needs = (asked or need_queries(matcher, need))()
    ranked = matcher.rank(needs, programs.catalog.restrict(allowed), k=k, explain=k,
                          min_fit=low_fit_below(matcher, include_low), as_frame=False)
    skills = need.skills or []
    written = (need.title or "", need.description or "", " ".join(skills))
    via = read_from(need.title or "", need.description or "", bridge=matcher.language_ == "zh")
    return _hits(matcher, ranked, programs, "program_id", lambda i: (
        skills, programs.rows[i].text, programs.haystack[i], lambda: programs.words(i),
        (*written, programs.rows[i].text), via))


def rank_needs(matcher: Matcher, program, needs: Prepared, allowed: np.ndarray,
               k: int, include_low: bool = False) -> list[dict]:
    """The best ``k`` of the ``allowed`` prepared needs for one program (its partner list)."""
    if not allowed.any():
        return []
    ranked = matcher.partners([program_record(program)],
                              needs.catalog.restrict(allowed), k=k, explain=k,
                              min_fit=low_fit_below(matcher, include_low), as_frame=False)
    text = " ".join([program.title, program.description or "",
                     " ".join(program.certificates or [])])
    haystack, words = normalize(text), functools.cache(lambda: set(tokenize(text)))
    bridge = matcher.language_ == "zh"
    return _hits(matcher, ranked, needs, "need_id", lambda i: (
        needs.rows[i].skills, text, haystack, words,
        (text, needs.rows[i].text, " ".join(needs.rows[i].skills)),
        read_from(needs.rows[i].out.title, needs.rows[i].out.description or "", bridge)))


def _hits(matcher: Matcher, ranked: Ranking, prepared: Prepared, id_col: str,
          skills_and_text: Callable[[int], tuple]) -> list[dict]:
    """``skills_and_text(i)`` gives, for row ``i`` of ``prepared``, the skills asked and the
    other side's text (as it is, normalised, and a function giving its words)."""
    out = []
    for m in ranked:
        i = prepared.position[getattr(m, id_col)]
        out.append({"row": prepared.rows[i], "rank": m.rank, "score": m.score, "fit": m.fit,
                    "fit_level": m.fit_level, "explanation": _explanation(m, *skills_and_text(i))})
    return out


FITTING = ("high", "medium")


def skill_gaps(hits: Sequence[dict]) -> list[dict]:
    """The skills that the fitting needs of a partner list ask for and the program's profile
    does not cover, most asked first.

    ``hits`` are :func:`rank_needs` items; only those whose ``fit_level`` is ``high`` or
    ``medium`` count. Synonymous skills ("PLC", "可编程控制器") are one entry. Each entry is
    ``{"skill", "needs", "headcount"}``: the skill as the needs spell it most often, how many
    needs ask for it and the headcount they ask for in all.
    """
    return merge_counts([(skill, h["row"].out.headcount or 0) for h in hits
                         if h["fit_level"] in FITTING
                         for skill in {canonical(s): s for s in reversed(
                             h["explanation"]["missing_skills"])}.values()])
