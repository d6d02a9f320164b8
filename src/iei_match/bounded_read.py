"""Readers of CSV, XLSX and Parquet files whose cost is bounded by limits checked while
reading, before the content is held in memory.

A small file can stand for a huge table: an XLSX cell that unpacks to gigabytes of text, a
Parquet file of millions of dictionary-encoded rows, a sheet whose rows reach column XFD.
Each reader here checks what it can from the file's directory or metadata first (an XLSX
part's unpacked size, a Parquet file's row and column counts and decoded size), then
counts while it streams (bytes unpacked, rows, columns, non-empty cells, the longest cell),
and raises :class:`~iei_match.errors.DataLimitError` naming the limit as soon as one is
crossed.

XLSX is read with a streaming XML parser (expat), not a DOM: a document type declaration
(the door to external entities and entity expansion) is refused, and only the text of
values is kept.
"""

from __future__ import annotations

import csv
import math
import re
import xml.parsers.expat
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from io import StringIO
from pathlib import Path, PurePosixPath

import pandas as pd

from iei_match.errors import DataFileError, DataLimitError

__all__ = ["ReadLimits", "read_csv", "read_xlsx", "read_parquet"]

_CHUNK = 1 << 16


@dataclass(frozen=True)
class ReadLimits:
    """Limits a table is read under (``None``: no limit).

    Attributes
    ----------
    max_rows : int or None
        Data rows (the header excluded).
    max_columns : int
        Columns; a non-empty cell beyond them is refused (XLSX allows 16,384).
    max_cell_chars : int
        Characters in one cell (Excel's own limit is 32,767).
    max_cells : int or None
        Non-empty cells in the whole table.
    max_unpacked_bytes : int or None
        Bytes an XLSX file unpacks to (all its parts), or a Parquet file's decoded size.

    Examples
    --------
    >>> ReadLimits(max_rows=10).max_columns
    16384
    """

    max_rows: int | None = None
    max_columns: int = 16_384
    max_cell_chars: int = 32_767
    max_cells: int | None = None
    max_unpacked_bytes: int | None = None


UNLIMITED = ReadLimits()


def _over(path: Path, what: str) -> DataLimitError:
    return DataLimitError(path.name, what)


def _scrub(message: str, path: Path) -> str:
    """An error text of a library without the server's paths in it."""
    for text in (str(path), str(path.parent)):
        message = message.replace(text, path.name if text == str(path) else "")
    return message[:300]


class _Counter:
    """Counts rows and non-empty cells against the limits."""

    def __init__(self, path: Path, limits: ReadLimits):
        self.path, self.limits, self.cells = path, limits, 0

    def cell(self, value: str, row: int, col: int) -> None:
        lim = self.limits
        if len(value) > lim.max_cell_chars:
            raise DataLimitError(self.path.name, f"a cell has more than {lim.max_cell_chars} "
                                 "characters (the cell-size limit)", row=row,
                                 column=_letters(col))
        if col >= lim.max_columns:
            raise DataLimitError(self.path.name, f"a value in column {_letters(col)}: at most "
                                 f"{lim.max_columns} columns are read (the column limit)",
                                 row=row)
        if lim.max_rows is not None and row > lim.max_rows + 1:
            raise _over(self.path, f"more than {lim.max_rows} rows (the row limit)")
        self.cells += 1
        if lim.max_cells is not None and self.cells > lim.max_cells:
            raise _over(self.path, f"more than {lim.max_cells} non-empty cells (the cell "
                        "limit)")


def _letters(col: int) -> str:
    """Column letters of a 0-based index: 0 -> A, 16383 -> XFD."""
    out = ""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        out = chr(65 + rem) + out
    return out


# ---------------------------------------------------------------------------------- CSV

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



def read_csv(path: Path, limits: ReadLimits = UNLIMITED) -> pd.DataFrame:
    """A CSV file (UTF-8 or GB18030) as strings, one list per record so that positions are
    spreadsheet rows; cells past the header's width must be empty."""
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise DataFileError(path.name, "the file is neither UTF-8 nor GB18030 text")
    del raw
    count = _Counter(path, limits)
    rows: list[list[str]] = []
    width = None
    long: list[dict] = []
    from iei_match.io import problems_error

    # Quotes are read strictly: a quote that is never closed (which would swallow the rest
    # of the file into one cell) or text after a closing quote refuses the file, naming the
    # row and the column where the bad cell starts.
    reader = csv.reader(StringIO(text, newline=""), strict=True)
    while True:
        line = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                raise _over(path, f"a cell has more than {limits.max_cell_chars} characters "
                            "(the cell-size limit)") from None
            header = rows[0] if rows else []
            at = _bad_cell(text, line)
            column = (header[at] or f"column {at + 1}") if at < len(header) else f"{at + 1}"
            what = ("a quote (\") opened in this cell is never closed"
                    if "end of data" in str(exc)
                    else f"bad quoting ({exc}); a cell that contains quotes must be quoted "
                         "as a whole, with each quote inside doubled")
            raise problems_error(path.name, [{"row": len(rows) + 1, "column": column,
                                              "message": f"{what} (line {line} of the file)"}]
                                 ) from None
        n = len(rows) + 1
        if len(record) > limits.max_columns:
            extra = next((i for i, c in enumerate(record) if i >= limits.max_columns
                          and c.strip()), None)
            if extra is not None:
                count.cell(record[extra], n, extra)  # raises: past the column limit
            record = record[:limits.max_columns]
        for i, cell in enumerate(record):
            if cell:
                count.cell(cell, n, i)
        if width is None:
            width = len(record)
            rows.append(record)
            continue
        if any(c.strip() for c in record[width:]):
            long.append({"row": n, "column": None,
                         "message": f"{len(record)} cells but {width} column names"})
        rows.append(record[:width] + [""] * (width - len(record)))
    if not rows:
        raise DataFileError(path.name, "the file is empty (no header row)")
    if long:
        raise problems_error(path.name, long)
    header = [name or f"Unnamed: {i}" for i, name in enumerate(rows[0])]
    return pd.DataFrame(rows[1:], columns=header, dtype=str)


# --------------------------------------------------------------------------------- XLSX

_DATE_IDS = set(range(14, 23)) | {45, 46, 47}
_DATE_CODE = re.compile(r"[dmyhs]", re.I)
_CELL_REF = re.compile(r"([A-Za-z]{1,3})(\d+)$")


class _Refused(Exception):
    """A document type declaration (entities) in an XLSX part."""


class _Part:
    """Streams one zip member through expat, counting the bytes it unpacks to."""

    def __init__(self, book: _Book, name: str):
        self.book, self.name = book, name

    def parse(self, start, end=None, text=None) -> None:
        parser = xml.parsers.expat.ParserCreate()
        parser.buffer_text = True

        def refuse(*_):
            raise _Refused()

        parser.StartDoctypeDeclHandler = refuse
        parser.EntityDeclHandler = refuse
        parser.StartElementHandler = lambda tag, attrs: start(tag.rsplit(":", 1)[-1], attrs)
        if end is not None:
            parser.EndElementHandler = lambda tag: end(tag.rsplit(":", 1)[-1])
        if text is not None:
            parser.CharacterDataHandler = text
        try:
            with self.book.zip.open(self.name) as stream:
                while chunk := stream.read(_CHUNK):
                    self.book.unpacked(len(chunk))
                    parser.Parse(chunk, False)
            parser.Parse(b"", True)
        except _Refused:
            raise DataFileError(self.book.path.name, "not a readable XLSX file: it declares "
                                "a document type (entities are not accepted)") from None
        except xml.parsers.expat.ExpatError as exc:
            raise DataFileError(self.book.path.name, f"not a readable XLSX file: {self.name} "
                                f"is not well-formed XML ({exc})") from None
        except (zipfile.BadZipFile, OSError, EOFError) as exc:  # includes a bad CRC
            raise DataFileError(self.book.path.name, "not a readable XLSX file: "
                                f"{_scrub(str(exc), self.book.path)}") from None


class _Book:
    def __init__(self, path: Path, limits: ReadLimits):
        self.path, self.limits, self.seen = path, limits, 0
        try:
            self.zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise DataFileError(path.name, "not a readable XLSX file: "
                                f"{_scrub(str(exc), path)}") from None
        infos = self.zip.infolist()
        self.names = {i.filename for i in infos}
        total = sum(i.file_size for i in infos)
        cap = limits.max_unpacked_bytes
        if cap is not None and (total > cap or len(infos) > 10_000):
            raise _over(path, f"the file unpacks to {total:,} bytes; at most {cap:,} are "
                        "read (the unpacked-size limit)")

    def unpacked(self, n: int) -> None:
        """Counted while streaming too: a zip directory may understate a part's size."""
        self.seen += n
        cap = self.limits.max_unpacked_bytes
        if cap is not None and self.seen > cap:
            raise _over(self.path, f"the file unpacks to more than {cap:,} bytes (the "
                        "unpacked-size limit)")

    def part(self, name: str) -> _Part | None:
        return _Part(self, name) if name in self.names else None

    def rels(self, name: str) -> dict[str, tuple[str, str]]:
        """Relationships of part ``name``: id -> (type, resolved target)."""
        folder = PurePosixPath(name).parent
        rel_name = str(folder / "_rels" / (PurePosixPath(name).name + ".rels")).lstrip("./")
        part = self.part(rel_name if name else "_rels/.rels")
        out: dict[str, tuple[str, str]] = {}
        if part is None:
            return out

        def start(tag, attrs):
            if tag == "Relationship" and "Target" in attrs:
                target = attrs["Target"]
                if target.startswith("/"):
                    resolved = target.lstrip("/")
                else:
                    parts: list[str] = []
                    for bit in (folder / target).parts:
                        if bit == "..":
                            parts = parts[:-1]
                        elif bit != ".":
                            parts.append(bit)
                    resolved = "/".join(parts)
                out[attrs.get("Id", "")] = (attrs.get("Type", ""), resolved)

        part.parse(start)
        return out


def _first_sheet(book: _Book) -> tuple[str, str | None, str | None, bool]:
    """(sheet part, shared strings part, styles part, 1904 dates) of the first sheet."""
    workbook = next((t for typ, t in book.rels("").values()
                     if typ.endswith("/officeDocument")), "xl/workbook.xml")
    part = book.part(workbook)
    if part is None:
        raise DataFileError(book.path.name, "not a readable XLSX file: no workbook in it")
    found: dict = {"sheet": None, "1904": False}

    def start(tag, attrs):
        if tag == "sheet" and found["sheet"] is None:
            found["sheet"] = next((v for k, v in attrs.items()
                                   if k == "id" or k.endswith(":id")), None)
        elif tag == "workbookPr":
            found["1904"] = attrs.get("date1904", "0") in ("1", "true")

    part.parse(start)
    rels = book.rels(workbook)
    if found["sheet"] not in rels:
        raise DataFileError(book.path.name, "not a readable XLSX file: it has no worksheet")
    by_type = {typ.rsplit("/", 1)[-1]: target for typ, target in rels.values()}
    return (rels[found["sheet"]][1], by_type.get("sharedStrings"), by_type.get("styles"),
            found["1904"])


def _shared_strings(book: _Book, name: str | None) -> list[str]:
    part = book.part(name) if name else None
    strings: list[str] = []
    if part is None:
        return strings
    state = {"in_t": False, "skip": 0, "buf": [], "size": 0}
    cap = book.limits.max_cell_chars
    max_cells = book.limits.max_cells

    def start(tag, attrs):
        if tag == "si":
            state["buf"], state["size"] = [], 0
        elif tag == "rPh":  # phonetic runs are not part of the text
            state["skip"] += 1
        elif tag == "t":
            state["in_t"] = True

    def end(tag):
        if tag == "si":
            strings.append("".join(state["buf"]))
            if max_cells is not None and len(strings) > max_cells:
                raise _over(book.path, f"more than {max_cells} distinct texts (the cell "
                            "limit)")
        elif tag == "rPh":
            state["skip"] -= 1
        elif tag == "t":
            state["in_t"] = False

    def text(data):
        if state["in_t"] and not state["skip"]:
            state["size"] += len(data)
            if state["size"] > cap:
                raise _over(book.path, f"a cell has more than {cap} characters (the "
                            "cell-size limit)")
            state["buf"].append(data)

    part.parse(start, end, text)
    return strings


def _date_styles(book: _Book, name: str | None) -> set[int]:
    """Indexes of the cell formats that show numbers as dates or times."""
    part = book.part(name) if name else None
    if part is None:
        return set()
    codes: dict[int, str] = {}
    xfs: list[int] = []
    state = {"in_xfs": False}

    def start(tag, attrs):
        if tag == "numFmt":
            try:
                codes[int(attrs.get("numFmtId", "-1"))] = attrs.get("formatCode", "")
            except ValueError:
                pass
        elif tag == "cellXfs":
            state["in_xfs"] = True
        elif tag == "xf" and state["in_xfs"]:
            try:
                xfs.append(int(attrs.get("numFmtId", "0")))
            except ValueError:
                xfs.append(0)

    def end(tag):
        if tag == "cellXfs":
            state["in_xfs"] = False

    part.parse(start, end)

    def is_date(fmt: int) -> bool:
        if fmt in _DATE_IDS:
            return True
        code = re.sub(r'"[^"]*"|\[[^\]]*\]|\\.', "", codes.get(fmt, ""))
        return fmt in codes and code.lower() != "general" and bool(_DATE_CODE.search(code))

    return {i for i, fmt in enumerate(xfs) if is_date(fmt)}


def _number(text: str, as_date: bool, date1904: bool) -> str:
    try:
        value = float(text)
    except ValueError:
        return text
    if not math.isfinite(value):
        return text
    if as_date and 0 <= value < 2_958_466:
        epoch = datetime(1904, 1, 1) if date1904 else datetime(1899, 12, 30)
        moment = epoch + timedelta(days=value)
        moment = moment.replace(microsecond=0) + timedelta(seconds=round(moment.microsecond
                                                                        / 1e6))
        return str(moment.time()) if value < 1 else str(moment)
    return str(int(value)) if value.is_integer() else str(value)


def read_xlsx(path: Path, limits: ReadLimits = UNLIMITED) -> pd.DataFrame:
    """The first sheet of an XLSX file as strings; row 1 is the header and missing rows
    between data rows stay as blank rows, so positions are spreadsheet rows."""
    book = _Book(path, limits)
    with book.zip:
        sheet_name, strings_name, styles_name, date1904 = _first_sheet(book)
        strings = _shared_strings(book, strings_name)
        dates = _date_styles(book, styles_name)
        sheet = book.part(sheet_name)
        if sheet is None:
            raise DataFileError(path.name, "not a readable XLSX file: its sheet is missing")
        count = _Counter(path, limits)
        rows: dict[int, dict[int, str]] = {}
        cap = limits.max_cell_chars
        cell: dict = {}
        pos = {"row": 0, "col": -1}

        def start(tag, attrs):
            if tag == "row":
                try:
                    pos["row"] = int(attrs["r"]) if "r" in attrs else pos["row"] + 1
                except ValueError:
                    pos["row"] += 1
                pos["col"] = -1
            elif tag == "c":
                ref = _CELL_REF.match(attrs.get("r", ""))
                if ref:
                    col = 0
                    for ch in ref.group(1).upper():
                        col = col * 26 + ord(ch) - 64
                    pos["col"] = col - 1
                else:
                    pos["col"] += 1
                cell.clear()
                cell.update(type=attrs.get("t", "n"), style=attrs.get("s", "0"), buf=[],
                            size=0, keep=False)
            elif tag in ("v", "t") and cell:
                cell["keep"] = True

        def end(tag):
            if tag in ("v", "t") and cell:
                cell["keep"] = False
            elif tag == "c" and cell:
                value = "".join(cell["buf"])
                kind = cell["type"]
                if kind == "s":
                    try:
                        value = strings[int(value)]
                    except (ValueError, IndexError):
                        value = ""
                elif kind == "b":
                    value = {"1": "True", "0": "False"}.get(value.strip(), value)
                elif kind == "e":
                    value = ""
                elif kind == "n" and value:
                    try:
                        style = int(cell["style"])
                    except ValueError:
                        style = 0
                    value = _number(value, style in dates, date1904)
                if value != "":
                    count.cell(value, pos["row"], pos["col"])
                    rows.setdefault(pos["row"], {})[pos["col"]] = value
                cell.clear()

        def text(data):
            if cell and cell["keep"]:
                cell["size"] += len(data)
                if cell["size"] > cap:
                    raise DataLimitError(path.name, f"a cell has more than {cap} characters "
                                         "(the cell-size limit)", row=pos["row"],
                                         column=_letters(pos["col"]))
                cell["buf"].append(data)

        sheet.parse(start, end, text)
    if not rows:
        return pd.DataFrame()
    width = 1 + max(max(r) for r in rows.values())
    last = max(rows)
    header_cells = rows.get(1, {})
    header = [header_cells.get(i, "") or f"Unnamed: {i}" for i in range(width)]
    data = [[rows.get(r, {}).get(i, "") for i in range(width)] for r in range(2, last + 1)]
    return pd.DataFrame(data, columns=header, dtype=str)


# ------------------------------------------------------------------------------ Parquet

def read_parquet(path: Path, limits: ReadLimits = UNLIMITED) -> pd.DataFrame:
    """A Parquet file as strings (missing values ""); its row and column counts and decoded
    size are checked from the metadata before any data is read, and text columns are read
    dictionary-encoded so that a repeated value is held once."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path, read_dictionary=None)
        meta = pf.metadata
    except Exception as exc:  # pyarrow's errors are not part of its stable API
        raise DataFileError(path.name, "not a readable Parquet file: "
                            f"{_scrub(str(exc), path)}") from None
    if limits.max_rows is not None and meta.num_rows > limits.max_rows:
        raise _over(path, f"{meta.num_rows:,} rows; at most {limits.max_rows:,} are read "
                    "(the row limit)")
    if meta.num_columns > limits.max_columns:
        raise _over(path, f"{meta.num_columns:,} columns; at most {limits.max_columns:,} "
                    "are read (the column limit)")
    if limits.max_cells is not None and meta.num_rows * meta.num_columns > limits.max_cells:
        raise _over(path, f"{meta.num_rows * meta.num_columns:,} cells; at most "
                    f"{limits.max_cells:,} are read (the cell limit)")
    decoded = sum(meta.row_group(g).total_byte_size for g in range(meta.num_row_groups))
    cap = limits.max_unpacked_bytes
    if cap is not None and decoded > cap:
        raise _over(path, f"the data decodes to {decoded:,} bytes; at most {cap:,} are read "
                    "(the unpacked-size limit)")
    try:
        schema = pf.schema_arrow
        text_cols = [f.name for f in schema if pa.types.is_string(f.type)
                     or pa.types.is_large_string(f.type) or pa.types.is_binary(f.type)
                     or pa.types.is_large_binary(f.type)]
        pf = pq.ParquetFile(path, read_dictionary=text_cols)
        batches = []
        total = 0
        for batch in pf.iter_batches(batch_size=4096):
            for name, column in zip(batch.schema.names, batch.columns, strict=True):
                values = column.dictionary if pa.types.is_dictionary(column.type) else column
                if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
                        or pa.types.is_binary(values.type)
                        or pa.types.is_large_binary(values.type)) or len(values) == 0:
                    continue
                longest = pc.max(pc.binary_length(values)).as_py() or 0
                if longest > limits.max_cell_chars:
                    raise DataLimitError(path.name, f"a cell has more than "
                                         f"{limits.max_cell_chars} characters (the cell-size "
                                         "limit)", column=name)
                lengths = pc.binary_length(values)
                if pa.types.is_dictionary(column.type):
                    lengths = pc.take(lengths, column.indices)
                total += pc.sum(lengths).as_py() or 0
                if cap is not None and total > cap:
                    raise _over(path, f"the text decodes to more than {cap:,} bytes (the "
                                "unpacked-size limit)")
            batches.append(batch)
        table = (pa.Table.from_batches(batches) if batches
                 else pf.schema_arrow.empty_table())
        table = table.replace_schema_metadata(pf.schema_arrow.metadata)
        df = table.to_pandas()
    except DataFileError:
        raise
    except Exception as exc:
        raise DataFileError(path.name, "not a readable Parquet file: "
                            f"{_scrub(str(exc), path)}") from None
    df = df.reset_index(drop=isinstance(df.index, pd.RangeIndex))
    return pd.DataFrame({c: df[c].astype(object).astype(str).where(df[c].notna(), "")
                         for c in df.columns})
