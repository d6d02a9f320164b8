"""Database rows as the engine's tables.

Database needs and programs get the engine ids ``db-need-<id>`` and ``db-program-<id>``,
so they never collide with catalog ids; a program's ``code`` (its catalog code) lets a
model that has not seen the program yet use the history of the catalog major it offers.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from .db.tables import Need, Program

NEED_PREFIX, PROGRAM_PREFIX = "db-need-", "db-program-"


def need_key(need_id: int) -> str:
    return f"{NEED_PREFIX}{need_id}"


def program_key(program_id: int) -> str:
    return f"{PROGRAM_PREFIX}{program_id}"


def key_id(key: str) -> int:
    return int(key.rsplit("-", 1)[-1])


def need_record(need, key: str) -> dict:
    """One need (a :class:`Need` row or an object with the same fields) as an engine row."""
    return {"need_id": key, "title": need.title or "", "text": need.description or "",
            "skills": " ".join(need.skills or []), "industry": need.industry or "",
            "certificates": " ".join(need.certificates or []), "code": need.code or "",
            "level": need.level or "", "province": need.province or "",
            "city": need.city or "", "headcount": need.headcount}


def needs_frame(needs: Iterable[Need]) -> pd.DataFrame:
    rows = [need_record(n, need_key(n.id)) for n in needs]
    return pd.DataFrame(rows, columns=["need_id", "title", "text", "skills", "industry",
                                       "certificates", "code", "level", "province", "city",
                                       "headcount"])


def program_record(p) -> dict:
    """One program (a :class:`Program` row or an object with the same fields) as an engine
    row."""
    return {"program_id": program_key(p.id), "title": p.title, "text": p.description or "",
            "certificates": " ".join(p.certificates or []), "code": p.code or "",
            "level": p.level or "", "province": p.province or "", "city": p.city or "",
            "graduates_per_year": p.graduates_per_year}


def programs_frame(programs: Iterable[Program]) -> pd.DataFrame:
    rows = [program_record(p) for p in programs]
    return pd.DataFrame(rows, columns=["program_id", "title", "text", "certificates", "code",
                                       "level", "province", "city", "graduates_per_year"])
