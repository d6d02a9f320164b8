"""Hostile upload files, made on the spot: XLSX that unpack to far more than their size,
sheets that reach column XFD, Parquet files of millions of rows in a few kilobytes."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

_CT = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
       'package/2006/content-types"><Default Extension="rels" ContentType="application/'
       'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType='
       '"application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/'
       'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName='
       '"/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
       'officedocument.spreadsheetml.worksheet+xml"/></Types>')
_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
         'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://'
         'schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
         'Target="xl/workbook.xml"/></Relationships>')
_BOOK = ('<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats'
         '.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/'
         'officeDocument/2006/relationships"><sheets><sheet name="s" sheetId="1" r:id="rId1"/>'
         '</sheets></workbook>')
_BOOK_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
              'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type='
              '"http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
              'Target="worksheets/sheet1.xml"/></Relationships>')
SHEET_HEAD = ('<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.'
              'openxmlformats.org/spreadsheetml/2006/main"><sheetData>')
SHEET_TAIL = "</sheetData></worksheet>"
HEADER_ROW = ('<row r="1"><c r="A1" t="inlineStr"><is><t>need_id</t></is></c><c r="B1" '
              't="inlineStr"><is><t>title</t></is></c><c r="C1" t="inlineStr"><is><t>text</t>'
              '</is></c></row>')


def xlsx(path: Path, sheet_chunks, prolog: str = "") -> Path:
    """An XLSX whose sheet XML is the concatenation of ``sheet_chunks`` (streamed into the
    zip, so a gigantic sheet costs the test no memory)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", _CT)
        z.writestr("_rels/.rels", _RELS)
        z.writestr("xl/workbook.xml", _BOOK)
        z.writestr("xl/_rels/workbook.xml.rels", _BOOK_RELS)
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as out:
            out.write((prolog + SHEET_HEAD + HEADER_ROW).encode())
            for chunk in sheet_chunks:
                out.write(chunk.encode() if isinstance(chunk, str) else chunk)
            out.write(SHEET_TAIL.encode())
    return path


def xlsx_big_cell(path: Path, chars: int) -> Path:
    """One data cell of ``chars`` characters (1 MB of text packs to about 1 KB)."""
    block = b"A" * (1 << 20)

    def chunks():
        yield '<row r="2"><c r="A2" t="inlineStr"><is><t>N1</t></is></c><c r="C2" ' \
              't="inlineStr"><is><t>'
        left = chars
        while left > 0:
            yield block[:min(left, len(block))]
            left -= len(block)
        yield "</t></is></c></row>"

    return xlsx(path, chunks())


def xlsx_column_xfd(path: Path, rows: int = 1000) -> Path:
    """``rows`` data rows, each with one value in column XFD (the last Excel has)."""
    return xlsx(path, (f'<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>N{r}</t></is></c>'
                       f'<c r="XFD{r}"><v>1</v></c></row>' for r in range(2, rows + 2)))


def xlsx_doctype(path: Path) -> Path:
    """A sheet with an external entity (XXE) and entity expansion (billion laughs)."""
    prolog = ('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd"><!ENTITY l "lol">'
              '<!ENTITY l2 "&l;&l;&l;&l;&l;&l;&l;&l;&l;&l;">]>')
    return xlsx(path, ['<row r="2"><c r="A2" t="inlineStr"><is><t>&e;&l2;</t></is></c>'
                       '</row>'], prolog=prolog.replace("<?xml", ""))


def parquet_many_rows(path: Path, rows: int = 20_000_000) -> Path:
    """``rows`` rows of one repeated text, dictionary-encoded: a few hundred kilobytes."""
    dictionary = pa.array(["焊工"])
    chunk = pa.DictionaryArray.from_arrays(pa.array(np.zeros(1_000_000, np.int32)), dictionary)
    with pq.ParquetWriter(path, pa.schema([("need_id", chunk.type), ("title", chunk.type),
                                            ("text", chunk.type)]),
                          compression="zstd") as writer:
        for _ in range(rows // 1_000_000):
            writer.write_table(pa.table({"need_id": chunk, "title": chunk, "text": chunk}))
    return path


def parquet_empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path
