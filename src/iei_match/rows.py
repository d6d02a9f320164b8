"""The rows of a needs or programs table as plain Python lists: :class:`Rows`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import InputError

__all__ = ["Rows", "series_numbers"]

# Records of more rows than this are read through pandas, as a DataFrame of them would be.
SMALL = 64


class Rows:
    """The columns of a needs or programs table, each read once as a list.

    A table is a DataFrame or a list of records (dicts, one per row, as ``pd.DataFrame``
    would take them). pandas reads a column of a one-row frame in 20-50 µs (its string
    arrays), which was most of what reading a request's need cost; records skip pandas.
    A frame's columns are read when first asked for and kept. Records keep each value as
    given, as a frame of object columns would (``pd.DataFrame(records)`` turns a column of
    3 and NaN into floats); a row without a column has None there.

    Parameters
    ----------
    frame : DataFrame, optional
        The table.
    columns : dict of list, optional
        Columns given as lists (records' values, or replacements of the frame's).
    n : int
        The number of rows (taken from ``frame`` when it is given).

    Examples
    --------
    >>> rows = Rows.of([{"need_id": "n1", "title": "电工"}, {"need_id": "n2", "text": "x"}])
    >>> len(rows), rows["title"], "text" in rows, "code" in rows
    (2, ['电工', None], True, False)
    >>> rows.assign(title=["a", "b"])["title"]
    ['a', 'b']
    """

    __slots__ = ("_frame", "_columns", "n")

    def __init__(self, frame: pd.DataFrame | None = None,
                 columns: Mapping[str, list] | None = None, n: int = 0):
        self._frame = frame
        self._columns = dict(columns or {})
        self.n = len(frame) if frame is not None else n

    @classmethod
    def of(cls, data) -> Rows:
        """``data`` (Rows, a DataFrame or a list of records) as :class:`Rows`."""
        if isinstance(data, Rows):
            return data
        if isinstance(data, pd.DataFrame):
            return cls(data)
        if isinstance(data, Sequence) and not isinstance(data, (str, bytes)) and all(
                isinstance(r, Mapping) for r in data):
            names: dict[str, None] = {}
            for record in data:
                names.update(dict.fromkeys(record))
            columns = {c: [r.get(c) for r in data] for c in names}
            return cls(columns=columns, n=len(data))
        raise InputError("a table must be a pandas DataFrame or a list of records (dicts), "
                         f"got {type(data).__name__}")

    def __len__(self) -> int:
        return self.n

    def __contains__(self, name: str) -> bool:
        return name in self._columns or (self._frame is not None and name in self._frame)

    @property
    def names(self) -> list[str]:
        """The column names, the frame's first."""
        first = list(self._frame.columns) if self._frame is not None else []
        return first + [c for c in self._columns if c not in first]

    def __getitem__(self, name: str) -> list:
        """The values of a column, as given (a frame's missing values are NaN or None)."""
        found = self._columns.get(name)
        if found is None:
            if self._frame is None or name not in self._frame:
                raise KeyError(name)
            found = self._columns[name] = self._frame[name].tolist()
        return found

    def numbers(self, name: str) -> np.ndarray:
        """A column as float64 (NaN: missing or not a number), as
        ``pd.to_numeric(column, errors="coerce")`` reads the column of a DataFrame of
        these rows."""
        if self._frame is not None and name not in self._columns:
            return series_numbers(self._frame[name])
        values = self[name]
        if len(values) <= SMALL and all(type(v) in (int, float) and abs(v) < 2 ** 53
                                        for v in values):
            return np.array(values, dtype=np.float64)  # what pandas gives, without it
        return series_numbers(pd.Series(values))

    def assign(self, **columns: list) -> Rows:
        """These rows with some columns replaced or added (lists, one value per row)."""
        return Rows(self._frame, {**self._columns, **columns}, self.n)


def series_numbers(column: pd.Series) -> np.ndarray:
    """``pd.to_numeric(column, errors="coerce")`` as float64 (NaN: missing or not a
    number); a request's few plain numbers are converted without pandas' machinery."""
    if len(column) <= SMALL and isinstance(column.dtype, np.dtype) and column.dtype.kind in "iuf":
        return np.array(column.tolist(), dtype=np.float64)
    return pd.to_numeric(column, errors="coerce").to_numpy(np.float64, na_value=np.nan)
