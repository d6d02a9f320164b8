"""The typed result of a ranking: what the matcher returns before it becomes a table."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["Ranking", "Match"]


@dataclass
class Match:
    """One ranked pair with the reasons behind it.

    ``contributions`` are the features that moved the score most (name to its TreeSHAP
    value), strongest first; empty for rows that were not explained.
    """

    need_id: str
    program_id: str
    rank: int
    score: float
    fit: float
    fit_level: str
    matched_terms: list[str] = field(default_factory=list)
    contributions: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Ranking:
    """Ranked pairs, one row per (query, result), the lists one after another.

    Attributes
    ----------
    direction : {"need", "program"}
        ``"need"``: programs ranked for needs (the query is the need); ``"program"``:
        needs ranked for programs.
    need_ids, program_ids : ndarray of str
    rank : ndarray of int
        1 = best in its list.
    score : ndarray of float
        The ranker's score: orders a list, and means nothing across lists.
    fit : ndarray of float
        The calibrated probability that the pair is a real link: the same whatever else
        was ranked with it.
    fit_level : ndarray of str
        ``"high"``, ``"medium"`` or ``"low"``.
    matched_terms : list of list of str, or None
        The shared terms that weigh most, strongest first (None: not asked for).
    contributions : list of dict, or None
        Per row, the top features and their contributions (empty for rows beyond the
        ones explained; None: not asked for).
    """

    direction: str
    need_ids: np.ndarray
    program_ids: np.ndarray
    rank: np.ndarray
    score: np.ndarray
    fit: np.ndarray
    fit_level: np.ndarray
    matched_terms: list[list[str]] | None = None
    contributions: list[dict[str, float]] | None = None

    def __len__(self) -> int:
        return len(self.rank)

    def __iter__(self) -> Iterator[Match]:
        for i in range(len(self)):
            yield Match(str(self.need_ids[i]), str(self.program_ids[i]), int(self.rank[i]),
                        float(self.score[i]), float(self.fit[i]), str(self.fit_level[i]),
                        list(self.matched_terms[i]) if self.matched_terms is not None else [],
                        dict(self.contributions[i]) if self.contributions is not None else {})

    def to_frame(self) -> pd.DataFrame:
        """The table the command line writes: ``need_id, program_id`` (the query's id
        first), ``rank, score, fit, fit_level``, and when explained ``matched_terms``
        (``|``-separated) and ``top_factors`` (``name:+0.123; ...``)."""
        ids = {"need_id": self.need_ids, "program_id": self.program_ids}
        first, second = (("need_id", "program_id") if self.direction == "need"
                         else ("program_id", "need_id"))
        out: dict[str, object] = {first: ids[first], second: ids[second], "rank": self.rank,
               "score": self.score, "fit": self.fit, "fit_level": self.fit_level}
        if self.matched_terms is not None:
            out["matched_terms"] = ["|".join(t) for t in self.matched_terms]
        if self.contributions is not None:
            out["top_factors"] = ["; ".join(f"{name}:{value:+.3f}" for name, value in c.items())
                                  for c in self.contributions]
        return pd.DataFrame(out)
