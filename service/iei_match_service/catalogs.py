"""The stored programs and needs, prepared once for the live model and reused by requests.

Preparing a catalog (vectors, retrieval indexes, link history) costs seconds for ten
thousand programs; ranking one need against a prepared catalog costs milliseconds. A
request asks for the catalog of the live model and of the table as it is now: the table's
state is read with one aggregate query (row count, largest id, latest change), so a write
by any process of the service is seen by the next request, which prepares the catalog
again. Hard filters (level, region, certificates, which needs a college may see) restrict
the prepared catalog; they never rebuild it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from iei_match.catalog import Catalog
from iei_match.text import normalize, tokenize

from .db.tables import Need, Program
from .frames import needs_frame, programs_frame
from .model_host import LiveModel
from .schemas import NeedOut, ProgramOut

WORDS_KEPT = 4096  # rows whose words are kept for the skills check (~13 KB each)


@dataclass(frozen=True)
class Row:
    """What a ranking shows of a stored program or need (detached from any session)."""

    id: int
    org_id: int
    out: ProgramOut | NeedOut
    text: str  # title, description and certificates: where missing skills are looked for
    skills: tuple[str, ...] = ()


@dataclass(frozen=True)
class Prepared:
    """A table's rows, in catalog order, and their catalog for one model version."""

    rows: list[Row]
    catalog: Catalog
    org: np.ndarray
    level: np.ndarray
    province: np.ndarray
    city: np.ndarray
    haystack: np.ndarray  # normalised text searched for required certificates
    position: dict[str, int]  # catalog id -> row (built once: a request's hits look it up)
    _words: dict[int, frozenset[str]] = field(default_factory=dict, repr=False)

    def words(self, i: int) -> frozenset[str]:
        """Row ``i``'s words (its text split when first asked for, then kept: at most
        :data:`WORDS_KEPT` rows' words at once)."""
        found = self._words.get(i)
        if found is None:
            if len(self._words) >= WORDS_KEPT:
                self._words.clear()
            found = self._words[i] = frozenset(tokenize(self.rows[i].text))
        return found

    def mask(self, *, level: str = "", province: str = "", city: str = "",
             near: str = "anywhere", certificates=(), orgs: set[int] | None = None
             ) -> np.ndarray:
        """Rows that pass the hard rules (all of them by default)."""
        ok = np.ones(len(self.rows), dtype=bool)
        if level:
            ok &= self.level == level
        province, city = normalize(province or ""), normalize(city or "")
        if near == "city" and city:
            ok &= self.city == city
        elif near in ("city", "province") and province:
            ok &= self.province == province
        for cert in certificates or ():
            c = normalize(cert)
            if c:
                ok &= np.fromiter((c in h for h in self.haystack), bool, len(self.rows))
        if orgs is not None:
            ok &= np.isin(self.org, np.fromiter(orgs, np.int64, len(orgs)))
        return ok


def _program_row(p: Program) -> Row:
    text = " ".join([p.title, p.description or "", " ".join(p.certificates or [])])
    return Row(p.id, p.org_id, ProgramOut.model_validate(p), text)


def _need_row(n: Need) -> Row:
    text = " ".join([n.title, n.description or "", " ".join(n.certificates or [])])
    return Row(n.id, n.org_id, NeedOut.model_validate(n), text, tuple(n.skills or ()))


class Catalogs:
    """The prepared programs and needs of the live model (one of each is kept)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._kept: dict[str, tuple[tuple, Prepared]] = {}

    @staticmethod
    def _state_query(table) -> Select:
        # Three scalar subqueries, so that each is answered from an index (the primary key,
        # ``updated_at``'s): as one SELECT's aggregates they made SQLite read the whole table
        # (42 ms a request for 10,000 programs, and growing with the table).
        return select(select(func.count()).select_from(table).scalar_subquery(),
                      select(func.max(table.id)).scalar_subquery(),
                      select(func.max(table.updated_at)).scalar_subquery())

    @classmethod
    def _state(cls, s: Session, table) -> tuple:
        return tuple(s.execute(cls._state_query(table)).one())

    def _get(self, kind: str, s: Session, live: LiveModel, table, build: Callable) -> Prepared:
        key = (live.version, id(live.matcher), self._state(s, table))
        kept = self._kept.get(kind)
        if kept is not None and kept[0] == key:
            return kept[1]
        with self._lock:  # one preparation at a time; the others wait and reuse it
            kept = self._kept.get(kind)
            if kept is not None and kept[0] == key:
                return kept[1]
            prepared = build(s, live)
            self._kept[kind] = (key, prepared)
            return prepared

    def programs(self, s: Session, live: LiveModel) -> Prepared | None:
        """Every stored program, prepared (None when there are none)."""
        prepared = self._get("program", s, live, Program, _build_programs)
        return prepared if prepared.rows else None

    def needs(self, s: Session, live: LiveModel) -> Prepared | None:
        """Every stored need, prepared (None when there are none)."""
        prepared = self._get("need", s, live, Need, _build_needs)
        return prepared if prepared.rows else None


def _arrays(objs, rows: list[Row], catalog: Catalog | None) -> Prepared:
    return Prepared(
        rows=rows, catalog=catalog,  # type: ignore[arg-type]
        org=np.array([r.org_id for r in rows], dtype=np.int64),
        level=np.array([o.level or "" for o in objs], dtype=object),
        province=np.array([normalize(o.province or "") for o in objs], dtype=object),
        city=np.array([normalize(o.city or "") for o in objs], dtype=object),
        haystack=np.array([normalize(r.text) for r in rows], dtype=object),
        position={} if catalog is None else {key: i for i, key in enumerate(catalog.ids)})


def _build_programs(s: Session, live: LiveModel) -> Prepared:
    objs = s.scalars(select(Program).order_by(Program.id)).all()
    rows = [_program_row(p) for p in objs]
    catalog = live.matcher.prepare(programs_frame(objs), "program") if objs else None
    return _arrays(objs, rows, catalog)


def _build_needs(s: Session, live: LiveModel) -> Prepared:
    objs = s.scalars(select(Need).order_by(Need.id)).all()
    rows = [_need_row(n) for n in objs]
    catalog = live.matcher.prepare(needs_frame(objs), "need") if objs else None
    return _arrays(objs, rows, catalog)
