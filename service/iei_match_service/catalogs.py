"""The stored programs and needs, prepared once for the live model and reused by requests.

Preparing a catalog (vectors, retrieval indexes, link history) costs seconds for ten
thousand programs; ranking one need against a prepared catalog costs milliseconds. A
request asks for the catalog of the live model and of the table as it is now: the table's
state is read with one aggregate query (row count, largest id, latest change;
:mod:`.table_state`), so a write
by any process of the service is seen by the next request, which prepares the catalog
again. It does so from the one it has: a row whose ``updated_at`` is the one already
prepared is neither loaded nor vectorised again (``Matcher.prepare(..., previous=)``), so a
write costs its own rows (and well under a second of bookkeeping for ten thousand), not
the whole table. Like the state check, this relies on every write setting ``updated_at``
(the tables' ``onupdate`` does). Hard filters (level, region, certificates, which needs a
college may see) restrict the prepared catalog; they never rebuild it.
"""

from __future__ import annotations

import functools
import gc
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from iei_match.catalog import Catalog
from iei_match.text import normalize, tokenize

from . import table_state
from .db.tables import Need, Program
from .frames import needs_frame, programs_frame
from .model_host import LiveModel
from .schemas import NeedOut, ProgramOut

WORDS_KEPT = 4096  # rows whose words are kept for the skills check (~13 KB each)
LOAD_CHUNK = 500  # changed rows loaded per query (the ids are bound parameters)

log = logging.getLogger("iei_match_service")


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
    stamps: np.ndarray  # each row's updated_at when it was loaded
    frame: pd.DataFrame  # the rows as the engine's table
    position: dict[str, int]  # catalog id -> row (built once: a request's hits look it up)
    _words: OrderedDict[int, frozenset[str]] = field(default_factory=OrderedDict, repr=False)
    _words_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def words(self, i: int) -> frozenset[str]:
        """Row ``i``'s words (its text split when first asked for, then kept: the
        :data:`WORDS_KEPT` rows asked for last)."""
        with self._words_lock:
            found = self._words.get(i)
            if found is not None:
                self._words.move_to_end(i)
                return found
        found = frozenset(tokenize(self.haystack[i], normalized=True))  # normalised once
        with self._words_lock:
            self._words[i] = found
            while len(self._words) > WORDS_KEPT:  # forget the rows asked for longest ago
                self._words.popitem(last=False)
        return found

    @functools.cached_property
    def _codes(self) -> dict[str, tuple[dict[str, int], np.ndarray]]:
        """For ``level``, ``province`` and ``city``: each value's number, and each row's."""
        out = {}
        for name in ("level", "province", "city"):
            values, codes = np.unique(np.asarray(getattr(self, name), dtype=str),
                                      return_inverse=True)
            out[name] = ({v: i for i, v in enumerate(values.tolist())}, codes.ravel())
        return out

    def _equal(self, name: str, value: str) -> np.ndarray:
        """``getattr(self, name) == value``, from the rows' numbers (comparing the strings
        of ten thousand rows took 0.4 ms a rule)."""
        at, codes = self._codes[name]
        code = at.get(value)
        return codes == code if code is not None else np.zeros(len(codes), dtype=bool)

    def mask(self, *, level: str = "", province: str = "", city: str = "",
             near: str = "anywhere", certificates=(), orgs: set[int] | None = None
             ) -> np.ndarray:
        """Rows that pass the hard rules (all of them by default)."""
        ok = np.ones(len(self.rows), dtype=bool)
        if level:
            ok &= self._equal("level", level)
        province, city = normalize(province or ""), normalize(city or "")
        if near == "city" and city:
            ok &= self._equal("city", city)
        elif near in ("city", "province") and province:
            ok &= self._equal("province", province)
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
    """The prepared programs and needs of the live model.

    One preparation runs at a time; requests that need it wait for it (after a write, the
    time to load and vectorise the written rows) and then share it.

    The tables of a second model are kept too while it is in use: a model is warmed
    (:meth:`warm`) before it is made live, and a request still running on the model it
    replaced keeps finding that one's tables, so a swap of models prepares nothing while
    requests wait. A model's tables that no request looked at for ``OTHER_MODEL_S``
    seconds (or twice ``refresh_s``) are let go when another model's are looked at.

    With ``refresh_s`` > 0 (``IEI_MATCH_CATALOG_REFRESH_S``), a request takes the kept
    catalog of the live model as it is when the table was looked at less than
    ``refresh_s`` seconds before, without looking again: a write is ranked at most that
    late, and under a stream of writes a table is prepared again at most once per
    ``refresh_s`` instead of for nearly every ranking (each preparation costs tens of ms of
    CPU however few rows changed).
    """

    MODELS = 2  # the models whose tables are kept
    OTHER_MODEL_S = 60.0  # how long another model's tables are kept unused

    def __init__(self, refresh_s: float = 0.0):
        self._lock = threading.Lock()
        # kind: [(key, prepared, looked at)], the latest prepared first, one per model
        self._kept: dict[str, list[tuple[tuple, Prepared, float]]] = {}
        self.refresh_s = refresh_s

    def _of(self, kind: str, live: LiveModel) -> tuple[tuple, Prepared, float] | None:
        """The kept entry of ``kind`` prepared by ``live``'s model (None if there is none)."""
        for entry in self._kept.get(kind, ()):
            if entry[0][:2] == (live.version, id(live.matcher)) and _same_model(entry[1], live):
                return entry
        return None

    def _keep(self, kind: str, entry: tuple[tuple, Prepared, float]) -> None:
        unused = max(self.OTHER_MODEL_S, 2 * self.refresh_s)
        others = [e for e in self._kept.get(kind, ())
                  if e[0][:2] != entry[0][:2] and entry[2] - e[2] < unused]
        self._kept[kind] = [entry, *others[:self.MODELS - 1]]

    def models(self, kind: str) -> list[str]:
        """The versions whose ``kind`` table is kept, the latest prepared or looked at
        first."""
        return [e[0][0] for e in self._kept.get(kind, ())]

    def _get(self, kind: str, s: Session, live: LiveModel, state: tuple | None) -> Prepared:
        kept = self._of(kind, live)
        if (self.refresh_s > 0 and kept is not None
                and time.monotonic() - kept[2] < self.refresh_s):
            return kept[1]
        now = time.monotonic()
        if state is None:
            state = table_state.read(s, kind)[kind]
        key = (live.version, id(live.matcher), state)
        if kept is not None and kept[0] == key:
            self._keep(kind, (key, kept[1], now))
            return kept[1]
        with self._lock:  # one preparation at a time; the others wait and reuse it
            kept = self._of(kind, live)
            if kept is not None and kept[0] == key:
                return kept[1]
            started = time.perf_counter()
            prepared = _build(kind, s, live, None if kept is None or kept[1].catalog is None
                              else kept[1])
            if prepared.rows:
                log.info("prepared %d %ss in %.2f s, %d of them unchanged", len(prepared.rows),
                         kind, time.perf_counter() - started, prepared.catalog.reused)
            self._keep(kind, (key, prepared, now))
            _settle_heap()
            return prepared

    def kept(self, kind: str) -> Prepared | None:
        """The ``"program"`` or ``"need"`` table as last prepared (None before the first)."""
        kept = self._kept.get(kind)
        return kept[0][1] if kept else None

    def warm(self, s: Session, live: LiveModel) -> None:
        """Prepare both tables for ``live``'s model before it is made live (requests on the
        model still live keep its tables)."""
        for kind in ("program", "need"):
            self._get(kind, s, live, None)

    def programs(self, s: Session, live: LiveModel, state: tuple | None = None
                 ) -> Prepared | None:
        """Every stored program, prepared (None when there are none). ``state``: the
        table's state as :func:`.table_state.read` gave it in ``s`` (read here if None)."""
        prepared = self._get("program", s, live, state)
        return prepared if prepared.rows else None

    def needs(self, s: Session, live: LiveModel, state: tuple | None = None
              ) -> Prepared | None:
        """Every stored need, prepared (None when there are none); ``state`` as for
        :meth:`programs`."""
        prepared = self._get("need", s, live, state)
        return prepared if prepared.rows else None


SETTLE_S = 5.0  # the least time between two full collections made by preparations
_settled = [0.0]


def _settle_heap() -> None:
    """Collect garbage once, then exempt every object now alive from later collections.

    A prepared catalog and the model are a few hundred thousand long-lived Python objects;
    each full collection walked them all, holding the GIL while requests waited, at moments
    nobody chose. They are now walked here, after a preparation (when a request already
    waits for it), and objects made later are collected as usual. At most once every
    ``SETTLE_S`` seconds: under a steady stream of writes every ranking prepares its
    written rows, and a collection after each took more than half of the rankings'
    throughput (4 writing clients, two replicas on 2 cores).
    """
    if time.monotonic() - _settled[0] < SETTLE_S:
        return
    gc.unfreeze()  # what an earlier call froze may have become garbage since
    gc.collect()
    gc.freeze()
    _settled[0] = time.monotonic()


def _same_model(prepared: Prepared, live: LiveModel) -> bool:
    """Whether ``prepared`` was made by ``live``'s model (the key's ``id`` may be reused;
    an empty table is the same for every model)."""
    catalog, m = prepared.catalog, live.matcher
    return catalog is None or (catalog.vectorizers[0] is m.word_
                               and catalog.vectorizers[1] is m.char_)


@dataclass(frozen=True)
class _Part:
    """Rows of a table made ready for a :class:`Prepared` (all of them, or the changed)."""

    rows: list[Row]
    frame: pd.DataFrame
    arrays: dict[str, np.ndarray]  # Prepared's per-row arrays, by field name


def _part(kind: str, objs: Sequence) -> _Part:
    if kind == "program":
        rows, frame = [_program_row(p) for p in objs], programs_frame(objs)
    else:
        rows, frame = [_need_row(n) for n in objs], needs_frame(objs)
    return _Part(rows, frame, {
        "org": np.array([r.org_id for r in rows], dtype=np.int64),
        "level": np.array([o.level or "" for o in objs], dtype=object),
        "province": np.array([normalize(o.province or "") for o in objs], dtype=object),
        "city": np.array([normalize(o.city or "") for o in objs], dtype=object),
        "haystack": np.array([normalize(r.text) for r in rows], dtype=object),
        "stamps": np.array([o.updated_at for o in objs], dtype=object),
    })


def _build(kind: str, s: Session, live: LiveModel, previous: Prepared | None) -> Prepared:
    """The table prepared, taking from ``previous`` every row whose ``updated_at`` it has."""
    table: type[Program] | type[Need] = Program if kind == "program" else Need
    if previous is not None and previous.rows:
        at = {r.id: i for i, r in enumerate(previous.rows)}
        now = s.execute(select(table.id, table.updated_at).order_by(table.id)).all()
        source = np.array([j if (j := at.get(i, -1)) >= 0 and previous.stamps[j] == stamp
                           else -1 for i, stamp in now], dtype=np.int64)
        changed = [i for (i, _), j in zip(now, source, strict=True) if j < 0]
        if len(changed) <= len(now) // 2:  # else one query for all rows is quicker
            found = {o.id: o for lo in range(0, len(changed), LOAD_CHUNK) for o in s.scalars(
                select(table).where(table.id.in_(changed[lo:lo + LOAD_CHUNK])))}
            # A row deleted since ``now`` was read is left out; one changed since is taken
            # as loaded (with its own updated_at).
            source = source[(source >= 0) | np.isin([i for i, _ in now], list(found))]
            part = _part(kind, [found[i] for i in changed if i in found])
            index = source.copy()
            index[source < 0] = len(previous.rows) + np.arange(len(part.rows))
            return _prepared(kind, live, _merged(previous, part, index), previous)
    part = _part(kind, s.scalars(select(table).order_by(table.id)).all())
    return _prepared(kind, live, part, previous)


def _merged(previous: Prepared, part: _Part, index: np.ndarray) -> _Part:
    """Row ``index[i]`` of ``previous``'s rows followed by ``part``'s."""
    both = previous.rows + part.rows
    frame = (pd.concat([previous.frame, part.frame], ignore_index=True) if part.rows
             else previous.frame)
    return _Part([both[i] for i in index], frame.iloc[index].reset_index(drop=True),
                 {name: np.concatenate([getattr(previous, name), values])[index]
                  for name, values in part.arrays.items()})


def _prepared(kind: str, live: LiveModel, part: _Part, previous: Prepared | None) -> Prepared:
    """``part`` with its catalog (vectorising only the rows ``previous`` does not have)."""
    catalog = None
    if part.rows:
        catalog = live.matcher.prepare(part.frame, kind, previous=None if previous is None
                                       else previous.catalog)
    a = part.arrays
    return Prepared(
        rows=part.rows, catalog=catalog, frame=part.frame,  # type: ignore[arg-type]
        org=a["org"], level=a["level"], province=a["province"], city=a["city"],
        haystack=a["haystack"], stamps=a["stamps"],
        position={} if catalog is None else {key: i for i, key in enumerate(catalog.ids)})
