"""A side of the pairs (all programs, or all needs) prepared once for repeated ranking.

Ranking a few needs against a large, slowly changing set of programs spends most of its
time on the programs: vectorising them, indexing them for retrieval, finding their link
history. A :class:`Catalog` does that once per model, so each call to
:meth:`~iei_match.matcher.Matcher.rank` (or ``partners``) only vectorises its own queries.
:meth:`Catalog.restrict` applies a hard filter (level, region, ...) without re-indexing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from .errors import InputError
from .retrieval import PostingIndex
from .sides import Side

__all__ = ["Catalog", "Queries"]

KINDS = ("program", "need")


@dataclass(frozen=True)
class Catalog:
    """Programs (or needs) vectorised and indexed by one fitted matcher.

    Made by :meth:`Matcher.prepare <iei_match.matcher.Matcher.prepare>`; pass it in place
    of the frame being searched: the programs of :meth:`Matcher.rank`, the needs of
    :meth:`Matcher.partners`. Rankings are identical to those on the frame itself.

    Attributes
    ----------
    kind : {"program", "need"}
    side : Side
        The rows, vectorised.
    word_index, char_index : PostingIndex
        Retrieval indexes over the rows' word and character TF-IDF.
    history : csr_matrix
        ``kind="program"``: the links of every known need to each row (rows whose id or
        code the model has seen share that program's history). ``kind="need"``: each row's
        nearest known needs (what lends them past links).
    blocked : ndarray of bool or None
        Rows that searches skip (see :meth:`restrict`).
    vectorizers : tuple
        The matcher's fitted vectorizers, to check a catalog is used with its own model.
    fingerprints : ndarray of uint64 or None
        Each row's :func:`~iei_match.sides.text_fingerprints`: which rows a later
        ``prepare(..., previous=this)`` may copy rather than vectorise again.
    reused : int
        Rows copied from the ``previous`` catalog when this one was prepared (0: all of
        them were vectorised).

    Examples
    --------
    >>> import pandas as pd
    >>> from iei_match import Matcher
    >>> needs = pd.DataFrame({"need_id": ["n1", "n2"], "title": ["数控车工", "护士"],
    ...                       "text": ["操作数控机床加工零件", "临床护理病人"]})
    >>> programs = pd.DataFrame({"program_id": ["p1", "p2"], "title": ["数控技术", "护理"],
    ...                          "text": ["数控机床编程与加工", "临床护理与健康照护"]})
    >>> m = Matcher().fit(needs, programs, links=None)
    >>> catalog = m.prepare(programs, "program")
    >>> m.rank(needs, catalog, k=1)[["need_id", "program_id"]].values.tolist()
    [['n1', 'p1'], ['n2', 'p2']]
    >>> m.rank(needs, catalog.restrict([False, True]), k=1)["program_id"].tolist()
    ['p2']

    After an edit, only the changed rows are vectorised again:

    >>> edited = programs.assign(text=["数控机床编程与加工", "临床护理与老年照护"])
    >>> m.prepare(edited, "program", previous=catalog).reused
    1
    """

    kind: str
    side: Side
    word_index: PostingIndex
    char_index: PostingIndex
    history: sp.csr_matrix
    vectorizers: tuple
    blocked: np.ndarray | None = None
    fingerprints: np.ndarray | None = None
    reused: int = 0

    def __len__(self) -> int:
        return len(self.side)

    @property
    def ids(self) -> np.ndarray:
        """The rows' ids, in order."""
        return self.side.ids

    def restrict(self, allowed) -> Catalog:
        """The same catalog, searching only the rows where ``allowed`` is true.

        Parameters
        ----------
        allowed : array-like of bool, one per row

        Returns
        -------
        Catalog
            Shares the vectors and indexes of this one (nothing is rebuilt).
        """
        mask = np.asarray(allowed)
        if mask.dtype != np.bool_ or mask.shape != (len(self),):
            raise InputError(f"allowed must be {len(self)} booleans, one per {self.kind} of "
                             f"the catalog; got {mask.dtype} of shape {mask.shape}")
        blocked = ~mask if self.blocked is None else (self.blocked | ~mask)
        return replace(self, blocked=blocked)

    @property
    def n_allowed(self) -> int:
        """Rows a search may return."""
        return len(self) if self.blocked is None else int((~self.blocked).sum())

    def search(self, word: sp.csr_matrix, char: sp.csr_matrix, k: int
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` rows by word and by character TF-IDF for each query (rows, -1 padded)."""
        return (self.word_index.search(word, k, self.blocked)[0],
                self.char_index.search(char, k, self.blocked)[0])


@dataclass(frozen=True)
class Queries:
    """Needs (or programs) vectorised once, to be asked about against several catalogs.

    Made by :meth:`Matcher.queries <iei_match.matcher.Matcher.queries>`; pass it in place of
    the frame being asked about: the needs of :meth:`Matcher.rank`, the programs of
    :meth:`Matcher.partners`. Rankings are identical to those on the frame itself; what is
    spared is vectorising the rows (and, for needs, finding their nearest known needs) on
    every call. A service that ranks one need against an alliance's programs and then
    against the national catalog does that work once.

    Attributes
    ----------
    kind : {"need", "program"}
    side : Side
        The rows, vectorised.
    neighbours : csr_matrix or None
        ``kind="need"``: each row's nearest known needs; None for programs.
    vectorizers : tuple
        The matcher's fitted vectorizers, to check the queries are used with their model.

    Examples
    --------
    >>> import pandas as pd
    >>> from iei_match import Matcher
    >>> needs = pd.DataFrame({"need_id": ["n1", "n2"], "title": ["数控车工", "护士"],
    ...                       "text": ["操作数控机床加工零件", "临床护理病人"]})
    >>> programs = pd.DataFrame({"program_id": ["p1", "p2"], "title": ["数控技术", "护理"],
    ...                          "text": ["数控机床编程与加工", "临床护理与健康照护"]})
    >>> m = Matcher().fit(needs, programs, links=None)
    >>> asked = m.queries(needs)
    >>> m.rank(asked, programs, k=1)["program_id"].tolist()
    ['p1', 'p2']
    >>> m.rank(asked, m.prepare(programs, "program").restrict([False, True]), k=1)[
    ...     ["need_id", "program_id"]].values.tolist()
    [['n2', 'p2']]
    """

    kind: str
    side: Side
    neighbours: sp.csr_matrix | None
    vectorizers: tuple

    def __len__(self) -> int:
        return len(self.side)

    @property
    def ids(self) -> np.ndarray:
        """The rows' ids, in order."""
        return self.side.ids


def kind_of(kind: str) -> str:
    if kind not in KINDS:
        raise InputError(f"kind must be 'program' or 'need', got {kind!r}")
    return kind
