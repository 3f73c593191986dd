"""Checks of a written regulator pack against the Pack it was written from.

Each check reads the files back the way their users do (openpyxl, csv with utf-8-sig, json with
exact decimals, an HTML parser and an image reader) and raises AssertionError on the first
difference: a figure written as text, a rounded decimal, a missing BOM, a blank chart.
"""

from __future__ import annotations

import codecs
import csv
import json
import math
import re
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
from matplotlib.image import imread
from openpyxl import load_workbook

from cyberclaims.regulator.model import MEASURE_BY_CODE, Cell, Pack, PackTable
from cyberclaims.regulator.render import COVER_SHEET, NOTES_SHEET, TABLE_HEADER_ROW, table_header

CJK = re.compile(r"[\u4e00-\u9fff]")
LATIN = re.compile(r"[A-Za-z]")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
VOID_ELEMENTS = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr",
}


def _labels(table: PackTable, cell: Cell) -> list[str]:
    labels = [cell.row, cell.row_zh, cell.row_en]
    if table.column_dim is not None:
        labels += [cell.column or "", cell.column_zh or "", cell.column_en or ""]
    return labels


def _where(table: PackTable, cell: Cell, measure: str) -> str:
    return f"{table.key} ({cell.row}, {cell.column}) {measure}"


def check_workbook(path: Path, pack: Pack) -> None:
    wb = load_workbook(path, data_only=True)
    assert wb.sheetnames == [COVER_SHEET, NOTES_SHEET, *(t.sheet_name for t in pack.tables)], wb.sheetnames
    for table in pack.tables:
        ws = wb[table.sheet_name]
        sheet = table.sheet_name
        title = str(ws.cell(1, 1).value)
        assert table.title_zh in title and table.title_en in title, title
        rows = list(ws.iter_rows(min_row=TABLE_HEADER_ROW, values_only=True))
        header = list(rows[0])
        for h in header:
            assert isinstance(h, str) and CJK.search(h) and LATIN.search(h), f"{sheet}: header {h!r}"
        data = rows[1:]
        assert len(data) == len(table.cells), f"{sheet}: {len(data)} rows, {len(table.cells)} cells"
        columns = {m: header.index(MEASURE_BY_CODE[m].header) for m in table.measures}
        for cell, row in zip(table.cells, data, strict=True):
            labels = _labels(table, cell)
            # openpyxl reads an empty text cell (a one-way table's missing column) as None.
            assert [v or "" for v in row[: len(labels)]] == labels, f"{sheet}: {row[: len(labels)]}"
            for measure, col in columns.items():
                got, expected = row[col], cell.display(measure)
                where = _where(table, cell, measure)
                if isinstance(expected, str):
                    assert got == expected, f"{where}: {got!r}, expected marker {expected!r}"
                else:
                    is_number = isinstance(got, int | float) and not isinstance(got, bool)
                    assert is_number, f"{where}: {got!r} not a number"
                    assert math.isclose(got, float(expected), rel_tol=1e-9), f"{where}: {got!r} != {expected}"


def check_csvs(folder: Path, pack: Pack) -> None:
    for table in pack.tables:
        path = folder / f"{table.key}.csv"
        assert path.read_bytes().startswith(codecs.BOM_UTF8), f"{path.name}: no UTF-8 BOM"
        with path.open(encoding="utf-8-sig", newline="") as f:
            rows = list(csv.reader(f))
        header, data = rows[0], rows[1:]
        assert header == table_header(table), f"{path.name}: header {header}"
        assert len(data) == len(table.cells), f"{path.name}: {len(data)} rows, {len(table.cells)} cells"
        for cell, row in zip(table.cells, data, strict=True):
            labels = _labels(table, cell)
            assert row[: len(labels)] == labels, f"{path.name}: {row[: len(labels)]}"
            texts = row[len(labels):]
            assert len(texts) == len(table.measures), f"{path.name}: {row}"
            for measure, text in zip(table.measures, texts, strict=True):
                expected = str(cell.display(measure))
                assert text == expected, f"{_where(table, cell, measure)}: {text!r}, expected {expected!r}"


def check_json(path: Path, pack: Pack) -> None:
    # Every number read as Decimal: its text is then compared with the figure's exact text.
    document = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal, parse_int=Decimal)
    assert document["pack"]["quarter"] == pack.quarter
    assert set(document["pack"]["markers"]) == {"x", ".."}
    assert [t["key"] for t in document["tables"]] == [t.key for t in pack.tables]
    for table, written in zip(pack.tables, document["tables"], strict=True):
        assert written["measures"] == list(table.measures), table.key
        assert len(written["cells"]) == len(table.cells), table.key
        for cell, out in zip(table.cells, written["cells"], strict=True):
            assert (out["row"], out["column"]) == (cell.row, cell.column), f"{table.key}: {out['row']}"
            for measure in table.measures:
                where = _where(table, cell, measure)
                value, flag = out["values"][measure], out["flags"].get(measure)
                expected = cell.display(measure)
                if isinstance(expected, str):
                    assert value is None and flag == expected, f"{where}: {value!r} flag {flag!r}"
                else:
                    assert isinstance(value, Decimal), f"{where}: {value!r} not a JSON number"
                    assert str(value) == str(expected) and flag is None, f"{where}: {value} != {expected}"


class _Page(HTMLParser):
    """Collects images and fails on tags that are not closed in order."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str | None]] = []
        self.open: list[str] = []
        self.counts: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1
        if tag == "img":
            self.images.append(dict(attrs))
        if tag not in VOID_ELEMENTS:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1] if self.open else None}>"
        self.open.pop()


def _check_chart(path: Path) -> None:
    assert path.is_file(), f"missing image {path}"
    assert path.read_bytes()[:8] == PNG_MAGIC, f"{path.name}: not a PNG"
    pixels = imread(path)
    height, width = pixels.shape[:2]
    assert width > 200 and height > 200, f"{path.name}: {width}×{height} px"
    assert float(np.std(pixels[..., :3])) > 0.01, f"{path.name}: blank image"


def check_report(folder: Path, pack: Pack) -> None:
    page = _Page()
    page.feed((folder / "report.html").read_text(encoding="utf-8"))
    page.close()
    assert not page.open, f"unclosed tags: {page.open}"
    assert page.counts.get("details", 0) == len(pack.tables), "one folded table per pack table"
    assert len(page.images) >= 7, f"{len(page.images)} images"
    for image in page.images:
        src, alt = image.get("src"), image.get("alt")
        assert src and not src.startswith(("/", "http:", "https:", "data:")), f"not a relative image: {src!r}"
        assert alt, f"{src}: no alt text"
        _check_chart(folder / src)
    assert (folder / "report.pdf").read_bytes().startswith(b"%PDF"), "report.pdf is not a PDF"
