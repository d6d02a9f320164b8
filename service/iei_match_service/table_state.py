"""The state of the tables a ranking depends on, read with one statement built once.

A ranking checks that what the service keeps is current: the prepared programs or needs
(:mod:`.catalogs`) and the organisations, memberships and training bases
(:mod:`.directory`). A table's state is its row count and largest id, and for tables whose
rows are edited the latest ``updated_at``; each is a scalar subquery answered from an
index (as one SELECT's aggregates they made SQLite read the whole table: 42 ms a request
for 10,000 programs, and growing with the table). One statement reads every part a ranking
needs. It is built and compiled once per database dialect and then handed to the driver as
it is (it has no parameters): building, compiling and caching it per request cost more
than running it.

The values are compared only with values read the same way (this module's), never with
others: SQLite gives a date as the text it stores.
"""

from __future__ import annotations

import threading

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from .db.tables import Membership, Need, Organization, Program, TrainingBase

CATALOGS = {"program": Program, "need": Need}


def _count_max(table, *latest) -> list:
    return [select(func.count()).select_from(table).scalar_subquery(),
            select(func.max(table.id)).scalar_subquery(),
            *(select(func.max(c)).scalar_subquery() for c in latest)]


def _columns(part: str) -> list:
    if part in CATALOGS:
        table = CATALOGS[part]
        return _count_max(table, table.updated_at)
    if part == "directory":
        return [*_count_max(Organization), *_count_max(Membership),
                *_count_max(TrainingBase, TrainingBase.updated_at)]
    raise ValueError(f"no table state called {part!r}")


def statement(*parts: str) -> Select:
    """The statement reading ``parts`` (``"program"``, ``"need"``, ``"directory"``)."""
    return select(*(c for part in parts for c in _columns(part)))


_WIDTH = {part: len(_columns(part)) for part in (*CATALOGS, "directory")}
_sql: dict[tuple, str] = {}
_lock = threading.Lock()


def read(s: Session, *parts: str) -> dict[str, tuple]:
    """The state of each of ``parts``, read in one statement in ``s``'s transaction.

    Returns
    -------
    dict
        ``part -> tuple`` (programs, needs: count, largest id, latest change; directory:
        the same for organisations and memberships without the latest change, then for
        training bases).
    """
    conn = s.connection()
    key = (conn.dialect.name, parts)
    sql = _sql.get(key)
    if sql is None:
        with _lock:
            sql = _sql[key] = str(statement(*parts).compile(dialect=conn.dialect))
    row = tuple(conn.exec_driver_sql(sql).one())
    out, at = {}, 0
    for part in parts:
        out[part] = row[at:at + _WIDTH[part]]
        at += _WIDTH[part]
    return out
