"""Tables handed to the coordinator functions (batch, allocation, gap), as frames or files.

Each function accepts a :class:`pandas.DataFrame` or the path of a CSV, XLSX or Parquet
file, and names the file, the spreadsheet row and the column of every problem it finds
(frames loaded with :mod:`iei_match.io` keep the spreadsheet row as their index; other
frames are numbered the same way, header = row 1).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from .errors import InputError
from .io import load_needs, load_programs, problems_error, read_table

__all__ = ["as_table", "whole_numbers", "real_numbers", "require_columns", "check_known",
           "unique_ids", "score_pairs"]

_LOADERS = {"needs": load_needs, "programs": load_programs}


def as_table(table, kind: str) -> tuple[pd.DataFrame, str]:
    """Return ``(frame, source)``: the table and the name errors should give for it.

    Parameters
    ----------
    table : DataFrame or path
        A path is read with :func:`~iei_match.io.load_needs` / ``load_programs`` (kinds
        ``"needs"``, ``"programs"``) or :func:`~iei_match.io.read_table` (any other kind).
    kind : str
        What the table holds, e.g. ``"needs"``, ``"scores"``; it names a frame in errors.
    """
    if isinstance(table, pd.DataFrame):
        frame = table
        if not (pd.api.types.is_integer_dtype(frame.index) and len(frame)
                and frame.index.min() >= 2):
            frame = frame.reset_index(drop=True)
            frame.index = pd.RangeIndex(2, 2 + len(frame), name="row")
        return frame, kind
    if isinstance(table, (str, os.PathLike)):
        loader = _LOADERS.get(kind)
        return (loader(table) if loader else read_table(table)), str(table)
    raise InputError(f"{kind} must be a pandas DataFrame or a file path, got "
                     f"{type(table).__name__}")


def require_columns(frame: pd.DataFrame, columns, source: str) -> None:
    """Raise a DataFileError naming every column of ``columns`` that ``frame`` lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns)) or "(none)"
        raise problems_error(source, [{"row": None, "column": c,
                              "message": f"missing required column '{c}'; columns found: "
                                         f"{found}"} for c in missing])


def _numbers(frame: pd.DataFrame, column: str, source: str, whole: bool, why: str) -> np.ndarray:
    require_columns(frame, [column], source)
    raw = frame[column]
    values = pd.to_numeric(raw.astype(object).where(raw.notna(), None).map(
        lambda v: str(v).strip() if v is not None else ""), errors="coerce")
    values = values.astype(float)
    bad = values.isna() | ~np.isfinite(values)
    if whole:
        bad |= (values < 0) | (values % 1 != 0)
    if bad.any():
        kind = "a whole number >= 0" if whole else "a number"
        raise problems_error(source, [{"row": int(r), "column": column,
                              "message": f"expected {kind}{why}, got {raw.loc[r]!r}"}
                             for r in frame.index[bad.to_numpy()]])
    return values.to_numpy(dtype=np.int64 if whole else float)


def whole_numbers(frame: pd.DataFrame, column: str, source: str, why: str = "") -> np.ndarray:
    """``frame[column]`` as int64, or a DataFileError listing each empty, negative or
    non-whole cell (``why`` is added to the message, e.g. ``" (allocation needs it)"``)."""
    return _numbers(frame, column, source, True, why)


def real_numbers(frame: pd.DataFrame, column: str, source: str) -> np.ndarray:
    """``frame[column]`` as float, or a DataFileError listing each cell that is not a number."""
    return _numbers(frame, column, source, False, "")


def check_known(frame: pd.DataFrame, column: str, known, source: str, what: str) -> None:
    """Raise a DataFileError listing the rows whose ``column`` is not in ``known``."""
    known = set(known)
    values = frame[column].astype(str)
    unknown = ~values.isin(known)
    if unknown.any():
        raise problems_error(source, [{"row": int(r), "column": column,
                              "message": f"unknown {what} {values.loc[r]!r}"}
                             for r in frame.index[unknown.to_numpy()]])


def unique_ids(frame: pd.DataFrame, column: str, source: str) -> pd.Series:
    """``frame[column]`` as str, or a DataFileError listing repeated or empty ids."""
    require_columns(frame, [column], source)
    ids = frame[column].astype(str).str.strip()
    problems = [{"row": int(r), "column": column, "message": f"empty {column}"}
                for r in frame.index[(ids == "").to_numpy()]]
    problems += [{"row": int(r), "column": column, "message": f"duplicate {column} {ids.loc[r]!r}"}
                 for r in frame.index[(ids.duplicated() & (ids != "")).to_numpy()]]
    if problems:
        raise problems_error(source, problems)
    return ids


def score_pairs(scores, need_ids, prog_ids, with_fit: bool = False) -> pd.DataFrame:
    """The ``need_id, program_id, score`` (and with ``with_fit``, ``fit``; and
    ``fit_level`` when the table has it) columns of a scores table, checked.

    Every id must be among ``need_ids`` / ``prog_ids``, every score (and fit) a number,
    and each pair given once; otherwise a DataFileError lists the rows.
    """
    frame, source = as_table(scores, "scores")
    require_columns(frame, ["need_id", "program_id", "score", *(["fit"] if with_fit else [])],
                    source)
    out = pd.DataFrame({"need_id": frame["need_id"].astype(str).str.strip(),
                        "program_id": frame["program_id"].astype(str).str.strip(),
                        "score": real_numbers(frame, "score", source)}, index=frame.index)
    if with_fit:
        out["fit"] = real_numbers(frame, "fit", source)
    if "fit_level" in frame:
        out["fit_level"] = frame["fit_level"].fillna("").astype(str).str.strip()
    check_known(out, "need_id", need_ids, source, "need_id")
    check_known(out, "program_id", prog_ids, source, "program_id")
    dup = out.duplicated(["need_id", "program_id"])
    if dup.any():
        raise problems_error(source, [{"row": int(r), "column": None, "message":
                              f"pair ({out.loc[r, 'need_id']!r}, {out.loc[r, 'program_id']!r}) "
                              f"appears more than once"} for r in out.index[dup.to_numpy()]])
    return out
