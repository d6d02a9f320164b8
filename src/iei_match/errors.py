"""Every error the engine raises, in one place.

The service maps these classes to HTTP status codes in exactly one place, and the
command line prints their message; nothing below them needs to know about either.
"""

from __future__ import annotations

__all__ = [
    "IeiMatchError",
    "DataFileError",
    "DataLimitError",
    "InputError",
    "NotFittedError",
    "ModelIntegrityError",
    "ModelCompatibilityError",
    "ModelNotFoundError",
    "OptionalDependencyError",
    "JobConflictError",
    "JobCancelledError",
]


class IeiMatchError(Exception):
    """Base class of every error raised on purpose by :mod:`iei_match`."""

    code = "iei_match_error"


class InputError(IeiMatchError, ValueError):
    """A value handed to the engine is not what it expects (bad parameter, empty input)."""

    code = "invalid_input"


class DataFileError(InputError):
    """A data file (CSV, XLSX, Parquet) cannot be used as it is.

    Parameters
    ----------
    path : str
        The file that was read.
    message : str
        What was expected and what was found.
    row : int or None
        The 1-based line of the file as a spreadsheet shows it (the header is row 1),
        or None when the problem is not tied to one row.
    column : str or None
        The column's name in the file, or None.

    Examples
    --------
    >>> err = DataFileError("needs.csv", "expected a non-empty text", row=3, column="title")
    >>> str(err)
    'needs.csv, row 3, column title: expected a non-empty text'
    """

    code = "bad_data_file"

    def __init__(
        self,
        path: str,
        message: str,
        row: int | None = None,
        column: str | None = None,
        problems: list[dict] | None = None,
    ) -> None:
        self.path = str(path)
        self.row = row
        self.column = column
        self.message = message
        self.problems = problems or [{"row": row, "column": column, "message": message}]
        where = [self.path]
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column}")
        super().__init__(f"{', '.join(where)}: {message}")


class DataLimitError(DataFileError):
    """A data file crosses one of the limits it is read under (unpacked size, rows,
    columns, cells, the longest cell); the message names the limit. Raised while the file
    is being read, before its content is held in memory.

    Examples
    --------
    >>> str(DataLimitError("n.xlsx", "more than 100 columns (the column limit)"))
    'n.xlsx: more than 100 columns (the column limit)'
    """

    code = "file_over_limit"


class NotFittedError(InputError, AttributeError):
    """An estimator was used before ``fit``; like scikit-learn's, it is also a ValueError."""

    code = "not_fitted"


class ModelIntegrityError(IeiMatchError):
    """A model artifact does not match the sha256 recorded in its manifest, or is incomplete."""

    code = "model_integrity"


class ModelCompatibilityError(IeiMatchError):
    """A model artifact was written by an incompatible format version of the engine."""

    code = "model_incompatible"


class ModelNotFoundError(IeiMatchError, FileNotFoundError):
    """No model artifact where one was asked for."""

    code = "model_not_found"


class OptionalDependencyError(IeiMatchError, ImportError):
    """A feature needs an optional extra that is not installed."""

    code = "missing_extra"


class JobConflictError(IeiMatchError):
    """A batch job id is already used by a job with other inputs or settings.

    Reusing a job id resumes that job; its finished partitions are only valid for the same
    model, needs, programs, top-k, explanations and partition size.
    """

    code = "job_conflict"


class JobCancelledError(IeiMatchError):
    """A batch job was cancelled; the partitions it finished are kept for a resume."""

    code = "job_cancelled"
