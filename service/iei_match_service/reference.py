"""Reference majors: what the national catalog says a need calls for, whatever the alliance
offers.

An alliance holds a few dozen programs; when none fits a need, a list of its programs says
nothing useful. The live model was trained on a bundled national catalog (1,313 Chinese
vocational majors by default), so it can also rank that catalog for the need: the majors
that fit best tell the enterprise and the coordinator what kind of program to look for,
and ``offered_in_alliance`` whether a program of the alliance already has that code.
The catalog is prepared once per live model (about a second) and kept, and the majors of
the needs asked for last are kept too (a stored need is looked at again and again; its
majors change only with its text or the model).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from iei_match.catalog import Catalog
from iei_match.reference import reference_catalog, reference_majors

from .access import alliances_of, members
from .catalogs import Prepared
from .frames import need_key, need_record
from .model_host import LiveModel

REFERENCE_K = 5  # majors shown
KEPT_NEEDS = 512  # needs whose majors are kept


class ReferenceMajors:
    """The bundled catalog prepared for the live model, and the best majors for a need."""

    def __init__(self, catalog: str):
        self.catalog = catalog
        self._lock = threading.Lock()
        # Keyed by the model object, not its version name: activating a version again loads
        # a new object, and a catalog is prepared for one object.
        self._kept: tuple[object, tuple[Catalog, pd.DataFrame]] | None = None
        self._answers: OrderedDict[tuple, list[dict]] = OrderedDict()

    def _prepared(self, live: LiveModel) -> tuple[Catalog, pd.DataFrame]:
        with self._lock:
            if self._kept is None or self._kept[0] is not live.matcher:
                self._kept = (live.matcher, reference_catalog(live.matcher, self.catalog))
                self._answers.clear()
            return self._kept[1]

    def best(self, live: LiveModel, need, offered: set[str], k: int = REFERENCE_K
             ) -> list[dict]:
        """The ``k`` majors of the catalog that fit ``need`` best (of its level when the
        need states one that the catalog has), highest fit first."""
        record = need_record(need, need_key(0))  # the id plays no part in the ranking
        prepared = self._prepared(live)
        key = (id(live.matcher), k, *record.values())
        with self._lock:
            found = self._answers.get(key)
            if found is not None:
                self._answers.move_to_end(key)
        if found is None:
            majors = reference_majors(live.matcher, pd.DataFrame([record]), self.catalog, k=k,
                                      prepared=prepared, same_level=True)
            found = [{"code": m.code, "title": m.title, "level": m.level,
                      "fit": round(float(m.fit), 4), "fit_level": m.fit_level,
                      "group": m.group, "group_name": m.group_name}
                     for m in majors.itertuples(index=False)]
            with self._lock:
                if self._kept is not None and self._kept[0] is live.matcher:
                    self._answers[key] = found
                    while len(self._answers) > KEPT_NEEDS:
                        self._answers.popitem(last=False)
        return [{**m, "offered_in_alliance": m["code"] in offered} for m in found]


def alliance_codes(s: Session, org_id: int | None, programs: Prepared | None) -> set[str]:
    """The catalog codes of the prepared ``programs`` offered in the alliances of ``org_id``
    (or in the alliance ``org_id`` is; every program's when it belongs to no alliance).

    The codes come from the catalog a request already holds: only the memberships are read.
    """
    if programs is None or "code" not in programs.frame:
        return set()
    codes = programs.frame["code"].to_numpy(dtype=str)
    if org_id is not None:
        alliances = alliances_of(s, org_id)
        if members(s, org_id):  # a coordinator's organisation is the alliance itself
            alliances.add(org_id)
        if alliances:
            orgs: set[int] = set()
            for alliance in alliances:
                orgs |= members(s, alliance)
            codes = codes[np.isin(programs.org, list(orgs))]
    return {c.strip() for c in codes if c.strip()}
