"""Organisations, memberships and training bases as a ranking shows them, read once and
kept until their tables change.

A recommendation names each program's college and its nearby training bases, and marks the
reference majors its alliance offers; a partner list names each need's enterprise. Reading
them per request took three to five queries (memberships, organisations, every base of the
programs' provinces). A request now reads the three tables' state (row count and largest
id; for training bases the latest change too), in the statement that reads the state of
its catalog (:mod:`.table_state`), and reads a table
again only when its state moved, as :mod:`.catalogs` does for programs and needs. A write
by any process of the service is seen by the next request. Organisations and memberships
are only ever added or removed (ids are never reused), so their count and largest id tell
every change the service makes; a training base's edit sets its ``updated_at``.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import table_state
from .db.tables import Membership, Organization, TrainingBase

KEPT_CODES = 64  # (catalog, organisations) whose offered codes are kept


@dataclass(frozen=True)
class Base:
    """A training base as a recommendation lists it."""

    id: int
    org_id: int
    province: str
    city: str
    brief: dict  # id, name, province, city, capacity


@dataclass(frozen=True)
class Snapshot:
    """The three tables as read at one state."""

    orgs: dict[int, dict]  # id -> {id, name, province, city}
    alliances: dict[int, frozenset[int]]  # member -> the alliances it belongs to
    members: dict[int, frozenset[int]]  # alliance -> its members
    by_province: dict[str, list[Base]]  # each list by id
    by_city: dict[str, list[Base]]
    _codes: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def brief(self, org_id: int) -> dict:
        return self.orgs[org_id]

    def reach(self, org_id: int) -> frozenset[int] | None:
        """The members of the alliances of ``org_id`` (and of the alliance ``org_id`` is);
        None when it belongs to no alliance."""
        alliances = set(self.alliances.get(org_id, ()))
        if org_id in self.members:  # a coordinator's organisation is the alliance itself
            alliances.add(org_id)
        if not alliances:
            return None
        return frozenset().union(*(self.members.get(a, ()) for a in alliances))

    def offered_codes(self, org_id: int | None, programs) -> set[str]:
        """The catalog codes of the prepared ``programs`` offered in the alliances of
        ``org_id`` (every program's when it belongs to no alliance), kept per catalog and
        set of organisations."""
        if programs is None or "code" not in programs.frame:
            return set()
        orgs = None if org_id is None else self.reach(org_id)
        key = (id(programs), orgs)
        with self._lock:
            kept = self._codes.get(key)
            if kept is not None and kept[0]() is programs:
                self._codes.move_to_end(key)
                return kept[1]
        codes = programs.frame["code"].to_numpy(dtype=str)
        if orgs is not None:
            codes = codes[np.isin(programs.org, np.fromiter(orgs, np.int64, len(orgs)))]
        found = {c.strip() for c in set(codes.tolist())} - {""}
        with self._lock:
            # weakly: a catalog replaced by a newer one is freed, not kept alive here
            self._codes[key] = (weakref.ref(programs), found)
            while len(self._codes) > KEPT_CODES:
                self._codes.popitem(last=False)
        return found

    def nearby_bases(self, programs: list, limit: int = 3) -> dict[int, list[dict]]:
        """For each program (a :class:`~.catalogs.Row`), the training bases near it: those in
        its city first (its college's own before others), then those elsewhere in its
        province; never one in another province. The program's place is its own, else its
        college's; with no province known, only bases in its city count."""
        out = {}
        for p in programs:
            college = self.orgs.get(p.org_id)
            province = p.out.province or (college["province"] if college else "")
            city = p.out.city or (college["city"] if college and college["province"]
                                  == province else "")
            if province:
                near = [b for b in self.by_province.get(province, ()) if b.province == province]
                near += [b for b in self.by_city.get(city, ()) if not b.province] if city else []
            else:
                near = list(self.by_city.get(city, ())) if city else []
            near.sort(key=lambda b: (not city or b.city != city, b.org_id != p.org_id, b.id))
            out[p.id] = [b.brief for b in near[:limit]]
        return out


def _load(s: Session) -> Snapshot:
    orgs = {o.id: {"id": o.id, "name": o.name, "province": o.province, "city": o.city}
            for o in s.execute(select(Organization.id, Organization.name,
                                      Organization.province, Organization.city))}
    alliances, members = defaultdict(set), defaultdict(set)
    for alliance, member in s.execute(select(Membership.alliance_id, Membership.member_id)):
        alliances[member].add(alliance)
        members[alliance].add(member)
    by_province, by_city = defaultdict(list), defaultdict(list)
    for b in s.execute(select(TrainingBase.id, TrainingBase.org_id, TrainingBase.name,
                              TrainingBase.province, TrainingBase.city, TrainingBase.capacity)
                       .order_by(TrainingBase.id)):
        base = Base(b.id, b.org_id, b.province, b.city,
                    {"id": b.id, "name": b.name, "province": b.province, "city": b.city,
                     "capacity": b.capacity})
        if b.province:
            by_province[b.province].append(base)
        if b.city:
            by_city[b.city].append(base)
    return Snapshot(orgs, {k: frozenset(v) for k, v in alliances.items()},
                    {k: frozenset(v) for k, v in members.items()},
                    dict(by_province), dict(by_city))


class Directory:
    """The :class:`Snapshot` of the tables as they are now (re-read after a change)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._kept: tuple[tuple, Snapshot] | None = None

    def snapshot(self, s: Session, state: tuple | None = None) -> Snapshot:
        """The snapshot of the tables in ``state`` (as :func:`.table_state.read` gave it in
        ``s``; read here if None)."""
        if state is None:
            state = table_state.read(s, "directory")["directory"]
        kept = self._kept
        if kept is not None and kept[0] == state:
            return kept[1]
        with self._lock:
            kept = self._kept
            if kept is None or kept[0] != state:
                kept = self._kept = (state, _load(s))
            return kept[1]
