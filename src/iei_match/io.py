"""Read and write the needs, programs and links tables (CSV, XLSX, Parquet).

Every loader returns a :class:`pandas.DataFrame` whose index is the spreadsheet row of each
record (the header is row 1, the first data row is row 2; Parquet files follow the same
convention), so any later check can point at the line a person sees in Excel. Rows that are
completely blank are skipped; every other problem is collected and raised as one
:class:`~iei_match.errors.DataFileError` whose ``problems`` lists them all.
"""

from __future__ import annotations

import csv
import os
import re
import tempfile
import unicodedata
from collections.abc import Mapping
from io import StringIO
from pathlib import Path

import pandas as pd

from iei_match.errors import DataFileError

__all__ = [
    "read_table", "load_needs", "load_programs", "load_links", "check_links", "write_table",
    "split_list", "problems_error",
]

PathLike = str | os.PathLike
EXTENSIONS = (".csv", ".xlsx", ".parquet", ".pq")
_SHOWN = 5  # problems spelled out in an error message
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_LIST_SEP = re.compile(r"[,;、，；|]")
_TEXT_ALIASES = {"description": "text", "desc": "text", "描述": "text", "name": "title",
                 "名称": "title"}
_OPTIONAL = ("level", "skills", "industry", "province", "city", "org_id", "code", "certificates")


def _entity(id_col: str, number: str) -> dict:
    return {"required": (id_col, "title", "text"), "optional": (*_OPTIONAL, number),
            "always": ("level",), "key": (id_col,), "number": (number, None),
            "aliases": {"id": id_col, **_TEXT_ALIASES}}


# number: (column, highest allowed value or None); the lowest is always 0
_SPECS = {
    "needs": _entity("need_id", "headcount"),
    "programs": _entity("program_id", "graduates_per_year"),
    "links": {"required": ("need_id", "program_id"), "optional": ("grade",), "always": (),
              "key": ("need_id", "program_id"), "number": ("grade", 3),
              "aliases": {"label": "grade", "outcome": "grade"}},
}


def _bad_cell(text: str, line: int) -> int:
    """The 0-based cell of the record starting on ``line`` (1-based) whose quoting is broken:
    a quote that never closes, or text after a closing quote."""
    lines = text.splitlines(keepends=True)
    rest = "".join(lines[line - 1:])
    cell, i, start = 0, 0, True
    while i < len(rest):
        ch = rest[i]
        if start and ch == '"':
            while True:
                j = rest.find('"', i + 1)
                if j < 0:
                    return cell  # never closed
                if rest[j + 1:j + 2] == '"':
                    i = j + 1
                    continue
                i = j + 1
                break
            if i < len(rest) and rest[i] not in ",\r\n":
                return cell  # text after the closing quote
            start = False
            continue
        if ch in "\r\n":
            break
        if ch == ",":
            cell, start = cell + 1, True
        else:
            start = False
        i += 1
    return cell


def _csv_records(path: Path, text: str) -> list[list[str]]:
    """The records of a CSV text (one list per record: positions are spreadsheet rows).

    Quotes are read strictly: a quote that is never closed (which would swallow the rest of
    the file into one cell) or text after a closing quote refuses the file, naming the row
    and the column where the bad cell starts.
    """
    reader = csv.reader(StringIO(text, newline=""), strict=True)
    rows: list[list[str]] = []
    while True:
        line = reader.line_num + 1
        try:
            rows.append(next(reader))
        except StopIteration:
            return rows
        except csv.Error as exc:
            header = rows[0] if rows else []
            at = _bad_cell(text, line)
            column = (header[at] or f"column {at + 1}") if at < len(header) else f"{at + 1}"
            what = ("a quote (\") opened in this cell is never closed"
                    if "end of data" in str(exc)
                    else f"bad quoting ({exc}); a cell that contains quotes must be quoted "
                         "as a whole, with each quote inside doubled")
            raise problems_error(path, [{"row": len(rows) + 1, "column": column,
                                         "message": f"{what} (line {line} of the file)"}]
                                 ) from None


def _read_csv(path: Path) -> pd.DataFrame:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise DataFileError(str(path), "the file is neither UTF-8 nor GB18030 text")
    rows = _csv_records(path, text)
    if not rows:
        raise DataFileError(str(path), "the file is empty (no header row)")
    header = [name or f"Unnamed: {i}" for i, name in enumerate(rows[0])]
    width = len(header)
    long = [{"row": n, "column": None, "message": f"{len(r)} cells but {width} column names"}
            for n, r in enumerate(rows[1:], start=2) if any(c.strip() for c in r[width:])]
    if long:
        raise problems_error(path, long)
    return pd.DataFrame([r[:width] + [""] * (width - len(r)) for r in rows[1:]],
                        columns=header, dtype=str)


def _read_xlsx(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_excel(path, sheet_name=0, dtype=str, keep_default_na=False,
                           engine="openpyxl")
    except Exception as exc:  # openpyxl raises many unrelated types for a broken file
        raise DataFileError(str(path), f"not a readable XLSX file: {exc}") from exc
    return df.fillna("")


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow's errors are not part of its stable API
        raise DataFileError(str(path), f"not a readable Parquet file: {exc}") from exc
    df = df.reset_index(drop=isinstance(df.index, pd.RangeIndex))
    return pd.DataFrame({c: df[c].astype(str).where(df[c].notna(), "") for c in df.columns})


_READERS = {".csv": _read_csv, ".xlsx": _read_xlsx, ".parquet": _read_parquet,
            ".pq": _read_parquet}


def read_table(path: PathLike, aliases: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Read a CSV, XLSX (first sheet) or Parquet file with every cell as a string.

    Header names are NFKC-normalised, stripped and lower-cased, then renamed through
    ``aliases`` when the canonical name is not already present. Cells are stripped, empty
    cells are ``""``, fully blank rows and unnamed empty columns are skipped and the index is
    the spreadsheet row (header = row 1). ``df.attrs["source_columns"]`` maps each column to
    its header in the file.

    Parameters
    ----------
    path : str or os.PathLike
        File to read; the extension (.csv, .xlsx, .parquet, .pq) selects the format.
    aliases : mapping of str to str, optional
        Lower-case alternative header -> canonical column name.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    DataFileError
        Unsupported extension, missing or unreadable file, duplicate column names.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = f.write_text(" Name ,描述\\n焊工, 焊接 \\n", encoding="utf-8")
    >>> read_table(f, {"name": "title"}).loc[2].to_dict()
    {'title': '焊工', '描述': '焊接'}
    """
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise DataFileError(str(path), f"unsupported file type {path.suffix!r}; "
                            f"accepted extensions: {', '.join(EXTENSIONS)}")
    if not path.is_file():
        raise DataFileError(str(path), "file not found")
    df = reader(path).fillna("")
    unnamed = [c for c in df.columns if re.fullmatch(r"Unnamed: \d+", str(c))]
    df = df.drop(columns=[c for c in unnamed if (df[c].astype(str).str.strip() == "").all()])
    source = [str(c).replace("\ufeff", "").strip() for c in df.columns]
    names = [unicodedata.normalize("NFKC", c).strip().lower() for c in source]
    for i, name in enumerate(names):
        canonical = (aliases or {}).get(name)
        if canonical and canonical not in names:
            names[i] = canonical
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise DataFileError(str(path), f"duplicate column(s): {', '.join(duplicated)}")
    df.columns = names
    df = pd.DataFrame({c: df[c].astype(str).str.strip() for c in names})
    df.index = pd.RangeIndex(2, 2 + len(df), name="row")
    df = df[(df != "").any(axis=1)] if names else df
    df.attrs["source_columns"] = dict(zip(names, source, strict=True))
    return df


def _whole(value: str) -> int | None:
    """Return ``value`` as an int when it is a whole number ("3", "3.0"), else None."""
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        return None
    return int(number) if number.is_integer() else None


def problems_error(path: PathLike, problems: list[dict]) -> DataFileError:
    """One :class:`DataFileError` listing every problem (dicts with ``row``, ``column`` and
    ``message``), the earliest row first; the first five are spelled out in the message."""
    problems = sorted(problems, key=lambda p: (p["row"] is not None, p["row"] or 0))
    shown = []
    for p in problems[:_SHOWN]:
        where = ", ".join(w for w in (p["row"] and f"row {p['row']}",
                                      p["column"] and f"column {p['column']}") if w)
        shown.append(f"{where}: {p['message']}" if where else p["message"])
    more = f"; ... and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
    count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
    first = problems[0]
    return DataFileError(str(path), f"{count}: {'; '.join(shown)}{more}", row=first["row"],
                         column=first["column"], problems=problems)


def _load(path: PathLike, kind: str) -> pd.DataFrame:
    spec = _SPECS[kind]
    df = read_table(path, spec["aliases"])
    src = df.attrs["source_columns"]
    found = ", ".join(src.values()) or "(none)"
    missing = [{"row": None, "column": c,
                "message": f"missing required column '{c}'; columns found: {found}"}
               for c in spec["required"] if c not in df.columns]
    if missing:
        raise problems_error(path, missing)
    if df.empty:
        raise DataFileError(str(path), "no rows: the file has a header but no data")
    problems: list[dict] = []

    def problem(row: int, column: str | None, message: str) -> None:
        problems.append({"row": int(row), "column": src.get(column, column),
                         "message": message})

    for col in (c for c in ("need_id", "program_id") if c in df.columns):
        df[col] = [unicodedata.normalize("NFKC", v).strip() for v in df[col]]
    for col in spec["required"][:2]:  # ids and title must not be empty; text may be
        for row in df.index[df[col] == ""]:
            problem(row, col, f"empty {col}")
    key = list(spec["key"])
    seen: dict[tuple, int] = {}
    for row, value in zip(df.index, df[key].itertuples(index=False, name=None), strict=True):
        if "" in value:
            continue
        if value in seen:
            what = f"{key[0]} {value[0]!r}" if len(key) == 1 else f"({', '.join(key)}) pair {value}"
            problem(row, key[0] if len(key) == 1 else None,
                    f"duplicate {what}, first seen in row {seen[value]}")
        seen.setdefault(value, row)
    number, high = spec["number"]
    if number in df.columns:
        values = [_whole(text) if text else None for text in df[number]]
        for row, text, value in zip(df.index, df[number], values, strict=True):
            bad = value is None or value < 0 or (high is not None and value > high)
            if bad and (text or high is not None):  # an empty count is <NA>, a grade is not
                span = f"0..{high}" if high is not None else ">= 0"
                problem(row, number, f"expected a whole number {span}, got {text!r}")
        df[number] = pd.array(values, dtype="Int64")
    else:
        df[number] = pd.array([1 if high is not None else None] * len(df), dtype="Int64")
    if problems:
        raise problems_error(path, problems)
    for col in spec["always"]:
        df[col] = df[col] if col in df.columns else ""
    known = [*spec["required"], *spec["optional"]]
    return df[[c for c in known if c in df.columns] + [c for c in df.columns if c not in known]]


def load_needs(path: PathLike) -> pd.DataFrame:
    """Load and validate an enterprise needs table.

    Required columns ``need_id, title, text`` (aliases ``id``, ``name``/``名称``,
    ``description``/``desc``/``描述``); optional ``level, skills, industry, province, city,
    org_id, code, certificates`` and ``headcount`` (nullable Int64). ``level`` and
    ``headcount`` are always present; unknown columns are kept after the known ones. The
    index is the spreadsheet row number.

    Raises
    ------
    DataFileError
        With every problem found: missing column, no rows, empty or duplicate ``need_id``,
        empty ``title``, ``headcount`` not a whole number >= 0.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "needs.csv"
    >>> _ = f.write_text("ID,名称,描述,Headcount\\nＮ１,焊工,焊接,3\\n", encoding="utf-8")
    >>> needs = load_needs(f)
    >>> list(needs.columns), needs.loc[2, "need_id"], int(needs.loc[2, "headcount"])
    (['need_id', 'title', 'text', 'level', 'headcount'], 'N1', 3)
    """
    return _load(path, "needs")


def load_programs(path: PathLike) -> pd.DataFrame:
    """Load and validate a college programs table.

    Same rules as :func:`load_needs` with ``program_id`` for the id and
    ``graduates_per_year`` (nullable Int64, whole number >= 0) for the number column.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "programs.csv"
    >>> _ = f.write_text("program_id,title,text\\n460104,数控技术,\\n", encoding="utf-8")
    >>> load_programs(f).loc[2, "graduates_per_year"] is pd.NA
    True
    """
    return _load(path, "programs")


def load_links(path: PathLike) -> pd.DataFrame:
    """Load and validate a need-program links table.

    Required ``need_id, program_id``; optional ``grade`` (alias ``label``/``outcome``), a
    whole number 0..3 stored as Int64, 1 for every row when the column is absent. A repeated
    (need_id, program_id) pair is an error. The index is the spreadsheet row number, which
    :func:`check_links` uses in its messages.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "links.csv"
    >>> _ = f.write_text("need_id,program_id\\nN1,P1\\n", encoding="utf-8")
    >>> load_links(f).loc[2].to_dict()
    {'need_id': 'N1', 'program_id': 'P1', 'grade': 1}
    """
    return _load(path, "links")


def check_links(links: pd.DataFrame, needs: pd.DataFrame, programs: pd.DataFrame,
                path: PathLike) -> None:
    """Raise one DataFileError listing every link whose need_id or program_id is unknown.

    Row numbers are read from ``links.index``, which :func:`load_links` sets to the
    spreadsheet row of each link; ``path`` is the links file named in the error.

    Examples
    --------
    >>> links = pd.DataFrame({"need_id": ["N1"], "program_id": ["P9"]}, index=[2])
    >>> needs = pd.DataFrame({"need_id": ["N1"]})
    >>> programs = pd.DataFrame({"program_id": ["P1"]})
    >>> try:
    ...     check_links(links, needs, programs, "links.csv")
    ... except DataFileError as err:
    ...     print(err.row, err.column, err.problems[0]["message"])
    2 program_id unknown program_id 'P9'
    """
    problems = []
    for col, table in (("need_id", needs), ("program_id", programs)):
        known = set(table[col])
        for row, value in links[col].items():
            if value not in known:
                problems.append({"row": int(row) if pd.api.types.is_integer(row) else None,
                                 "column": col,
                                 "message": f"unknown {col} {value!r}"})
    if problems:
        raise problems_error(path, problems)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # OWASP's list for CSV injection


def _neutralise(value: object, csv: bool = False) -> object:
    if not isinstance(value, str):
        return value
    if value[:1] in _FORMULA_START and not _NUMBER.fullmatch(value):
        value = "'" + value
    if csv and "\r" in value:  # a bare CR is not quoted by the CSV writer and ends the row
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    return value


def write_table(df: pd.DataFrame, path: PathLike) -> None:
    """Write ``df`` (without its index) as CSV (plain UTF-8), XLSX or Parquet, atomically.

    The data goes to a temporary file in the target directory that then replaces ``path``,
    so readers never see a half-written file. For CSV and XLSX, text cells starting with
    ``=``, ``+``, ``-``, ``@``, a tab or a carriage return that are not numbers get a leading
    apostrophe so that a spreadsheet does not run them as formulas (the apostrophe stays
    when read back). Line breaks inside cells are written as ``\\n`` (XLSX stores them so;
    in CSV a bare ``\\r`` would end the row).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "out.csv"
    >>> write_table(pd.DataFrame({"a": ["=1+1", "-3"]}), f)
    >>> f.read_text(encoding="utf-8").splitlines()
    ['a', "'=1+1", '-3']
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in EXTENSIONS:
        raise DataFileError(str(path), f"unsupported file type {path.suffix!r}; "
                            f"accepted extensions: {', '.join(EXTENSIONS)}")
    if ext in (".csv", ".xlsx"):
        df = df.copy()
        for col in df.columns:
            if pd.api.types.is_object_dtype(df[col]) or pd.api.types.is_string_dtype(df[col]):
                df[col] = df[col].map(lambda v: _neutralise(v, csv=ext == ".csv"))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{ext}", dir=path.parent)
    os.close(fd)
    try:
        if ext == ".csv":
            df.to_csv(tmp, index=False, encoding="utf-8")
        elif ext == ".xlsx":
            df.to_excel(tmp, index=False, engine="openpyxl")
        else:
            df.to_parquet(tmp, index=False)
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def split_list(value: str) -> list[str]:
    """Split a ``skills``/``certificates`` cell on , ; 、 ， ； or |, dropping empty items.

    Examples
    --------
    >>> split_list("焊接、钳工； CAD | Python,")
    ['焊接', '钳工', 'CAD', 'Python']
    """
    if not isinstance(value, str):
        return []
    return [item.strip() for item in _LIST_SEP.split(value) if item.strip()]
