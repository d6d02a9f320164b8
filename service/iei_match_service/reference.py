"""Reference majors: what the national catalog says a need calls for, whatever the alliance
offers.

An alliance holds a few dozen programs; when none fits a need, a list of its programs says
nothing useful. The live model was trained on a bundled national catalog (1,313 Chinese
vocational majors by default), so it can also rank that catalog for the need: the majors
that fit best tell the enterprise and the coordinator what kind of program to look for,
and ``offered_in_alliance`` whether a program of the alliance already has that code
(:meth:`.directory.Snapshot.offered_codes`).
The catalog is prepared once per model (about a second, before the model is made live) and
kept, and the majors of the needs asked for last are kept too (a stored need is looked at
again and again; its majors change only with its text or the model).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from iei_match.catalog import Catalog, Queries
from iei_match.reference import reference_catalog
from iei_match.taxonomy import major_groups

from .frames import need_key, need_record
from .model_host import LiveModel

REFERENCE_K = 5  # majors shown
POOL = 20  # majors ranked before the ``REFERENCE_K`` of highest fit are kept
KEPT_NEEDS = 512  # needs whose majors are kept


@dataclass(frozen=True)
class _Reference:
    """The catalog prepared for one model, and what a listed major shows, by code."""

    catalog: Catalog
    frame: pd.DataFrame
    levels: np.ndarray  # each major's level, in catalog order
    majors: dict[str, dict]  # code -> title, level, group, group_name

    @classmethod
    def of(cls, matcher, catalog: str) -> _Reference:
        prepared, frame = reference_catalog(matcher, catalog)
        codes = frame["program_id"].astype(str).tolist()
        levels = (frame["level"].fillna("").astype(str).to_numpy() if "level" in frame
                  else np.full(len(frame), "", dtype=object))
        groups = major_groups(codes, catalog)
        majors = {code: {"title": str(title), "level": str(level), "group": str(group),
                         "group_name": str(name)}
                  for code, title, level, group, name in zip(
                      codes, frame["title"], levels, groups["group"], groups["group_name"],
                      strict=True)}
        return cls(prepared, frame, levels, majors)


class ReferenceMajors:
    """The bundled catalog prepared for the live model, and the best majors for a need."""

    MODELS = 2  # the models whose prepared catalogs are kept (the live one and another)

    def __init__(self, catalog: str):
        self.catalog = catalog
        self._lock = threading.Lock()
        self._preparing = threading.Lock()
        # Keyed by the model object, not its version name: activating a version again loads
        # a new object, and a catalog is prepared for one object. The latest first.
        self._kept: list[tuple[object, _Reference]] = []
        self._answers: OrderedDict[tuple, list[dict]] = OrderedDict()

    def _found(self, live: LiveModel) -> _Reference | None:
        for matcher, ref in self._kept:
            if matcher is live.matcher:
                return ref
        return None

    def _prepared(self, live: LiveModel) -> _Reference:
        ref = self._found(live)
        if ref is not None:
            return ref
        # One preparation at a time, outside ``_lock``: the answers of the other model kept
        # are still given while a new one's catalog is prepared.
        with self._preparing:
            ref = self._found(live)
            if ref is None:
                ref = _Reference.of(live.matcher, self.catalog)
                with self._lock:
                    self._kept = [(live.matcher, ref), *self._kept[:self.MODELS - 1]]
                    kept = {id(m) for m, _ in self._kept}
                    for key in [key for key in self._answers if key[0] not in kept]:
                        del self._answers[key]
            return ref

    def warm(self, live: LiveModel) -> None:
        """Prepare the catalog for ``live``'s model before it is made live."""
        self._prepared(live)

    def best(self, live: LiveModel, need, offered: set[str], k: int = REFERENCE_K,
             asked: Callable[[], Queries] | None = None) -> list[dict]:
        """The ``k`` majors of the catalog that fit ``need`` best (of its level when the
        need states one that the catalog has), highest fit first: what
        :func:`iei_match.reference.reference_majors` gives with ``same_level``, ranked
        without its tables (a third of its time for one need). ``asked``: the need's
        :func:`~.ranking.need_queries` by ``live``'s model, when the request has them
        (else it is vectorised here)."""
        record = need_record(need, need_key(0))  # the id plays no part in the ranking
        ref = self._prepared(live)
        key = (id(live.matcher), k, *record.values())
        with self._lock:
            found = self._answers.get(key)
            if found is not None:
                self._answers.move_to_end(key)
        if found is None:
            needs = asked() if asked is not None else [record]
            found = _best(live.matcher, ref, needs, record.get("level") or "", k)
            with self._lock:
                if any(m is live.matcher for m, _ in self._kept):
                    self._answers[key] = found
                    while len(self._answers) > KEPT_NEEDS:
                        self._answers.popitem(last=False)
        return [{**m, "offered_in_alliance": m["code"] in offered} for m in found]


def _best(matcher, ref: _Reference, needs: list[dict] | Queries, level: str, k: int
          ) -> list[dict]:
    """The ``k`` majors of highest fit among the ``POOL`` best ranked for one need (its
    record, or its queries), of its ``level`` when the catalog has it."""
    mask = ref.levels == level if level else None
    catalog = ref.catalog if mask is None or not mask.any() else ref.catalog.restrict(mask)
    ranked = matcher.rank(needs, catalog, k=max(k, POOL), explain=False, as_frame=False)
    order = sorted(range(len(ranked)), key=lambda i: (-ranked.fit[i], ranked.rank[i]))[:k]
    return [{"code": (code := str(ranked.program_ids[i])), "title": ref.majors[code]["title"],
             "level": ref.majors[code]["level"], "fit": round(float(ranked.fit[i]), 4),
             "fit_level": str(ranked.fit_level[i]), "group": ref.majors[code]["group"],
             "group_name": ref.majors[code]["group_name"]} for i in order]
