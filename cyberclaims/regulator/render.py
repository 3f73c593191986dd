"""The regulator pack as files: an Excel workbook, one CSV per table, and JSON for machine intake.

All three show the same figures: a published figure as a number (exact in CSV and JSON), an
unpublished one as its marker, `x` (suppressed by disclosure control) or `..` (not applicable or
not available). Every header is bilingual, Chinese first.

The workbook opens with a cover (period, data cut-off, sector database version, disclosure
thresholds, contents) and notes (measure definitions, dimensions, markers, caveats), then one
sheet per table: title, period, a blank row, the header row, and one row per cell, margins in bold.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import unicodedata
import uuid
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from cyberclaims import csvsafe
from cyberclaims.regulator.model import (
    MEASURE_BY_CODE,
    MEASURES,
    NOT_AVAILABLE,
    SUPPRESSED,
    Cell,
    Dimension,
    MeasureKind,
    Pack,
    PackTable,
)

TITLE_ZH = "网络安全保险试点统计"
TITLE_EN = "Cyber insurance pilot statistics"
COVER_SHEET = "封面 Cover"
NOTES_SHEET = "说明 Notes"

# 1-based Excel row of a table sheet's header: title, period, a blank row, then the header.
TABLE_HEADER_ROW = 4

# Excel number format and the matching Python format spec, per kind of measure.
NUMBER_FORMATS: dict[MeasureKind, tuple[str, str]] = {
    "money": ("#,##0.00", ",.2f"),
    "count": ("#,##0", ","),
    "ratio": ("0.0000", ".4f"),
    "rate": ("0.00", ".2f"),
    "years": ("#,##0.00", ",.2f"),
    "days": ("0.0", ".1f"),
}

RULE_LABELS = {
    "min_insurers": ("最少提供数据的保险公司数", "Minimum contributing insurers"),
    "min_insureds": ("最少被保险人数", "Minimum contributing insureds"),
    "dominance_share": ("单一保险公司占金额的最大比例", "Maximum share of the amount from one insurer"),
}

# Keys of Pack.suppression_summary; a key not listed here is shown as it is.
SUPPRESSION_LABELS = {
    "cells": ("受保密控制的单元格总数", "Cells under disclosure control"),
    "primary": ("一次隐去", "Primary suppressions"),
    "secondary": ("二次隐去（防止从合计推算）", "Secondary suppressions (protecting primary cells from totals)"),
    "carried": ("因本年此前季度统计包已隐去相关数据而隐去",
                "Suppressed because an earlier pack of the year hid a figure this one would reveal by subtraction"),
}

TOTALS_NOTE = (
    "合计为真实合计，包含被隐去的单元格。",
    "Totals are true totals, including suppressed cells.",
)

Number = int | Decimal


# ---------------------------------------------------------------------------------------------
# Texts shared by every writer


def date_range(start: dt.date, end: dt.date) -> str:
    return f"{start:%Y-%m-%d} – {end:%Y-%m-%d}"


def percent(share: float | Decimal) -> str:
    # Through Decimal so that 0.85 reads "85%" and 0.855 "85.5%", never a rounded or binary figure.
    return f"{(Decimal(str(share)) * 100).normalize():f}%"


def marker_notes(rules: dict) -> dict[str, dict[str, str]]:
    """What each marker means, in Chinese and English, with the thresholds that were applied."""
    insurers, insureds = rules["min_insurers"], rules["min_insureds"]
    share = percent(rules["dominance_share"])
    return {
        SUPPRESSED: {
            "zh": f"为保密而隐去：提供数据的保险公司少于{insurers}家或被保险人少于{insureds}个，"
                  f"或单一保险公司占金额的比例超过{share}（一次隐去）；"
                  "或为防止从合计、其他表或本年此前季度统计包推算出被隐去的数据而隐去（二次隐去）。",
            "en": f"Suppressed for confidentiality by disclosure control: fewer than {insurers} insurers or "
                  f"fewer than {insureds} insureds contribute, or one insurer contributes more than {share} "
                  "of the amount (primary); or hidden so that no hidden figure can be derived from totals, "
                  "other tables or the earlier packs of the year (secondary).",
        },
        NOT_AVAILABLE: {"zh": "不适用或无数据。", "en": "Not applicable or not available."},
    }


def period_heading(table: PackTable) -> str:
    kind = "本季度 / Quarter" if table.period == "quarter" else "本年累计 / Year to date"
    return f"{kind}: {table.period_label} ({date_range(table.period_start, table.period_end)})"


def table_title(table: PackTable) -> str:
    return f"表{table.number} {table.title_zh} / Table {table.number} {table.title_en}"


def _dimension_headers(dim: Dimension) -> list[str]:
    return [
        f"{dim.zh}代码 / {dim.en} code",
        f"{dim.zh}（中文） / {dim.en} (Chinese)",
        f"{dim.zh}（英文） / {dim.en} (English)",
    ]


def table_header(table: PackTable) -> list[str]:
    """The header of a table in every format: code, Chinese and English name of the row (and column)
    dimension, then one column per published measure."""
    dims = [table.row_dim] if table.column_dim is None else [table.row_dim, table.column_dim]
    return [
        *(h for dim in dims for h in _dimension_headers(dim)),
        *(MEASURE_BY_CODE[m].header for m in table.measures),
    ]


def cell_labels(table: PackTable, cell: Cell) -> list[str]:
    labels = [cell.row, cell.row_zh, cell.row_en]
    if table.column_dim is not None:
        labels += [cell.column or "", cell.column_zh or "", cell.column_en or ""]
    return labels


def format_figure(value: Number | str, kind: MeasureKind) -> str:
    """A figure for reading (thousands separators, the workbook's decimals), or its marker."""
    return value if isinstance(value, str) else format(value, NUMBER_FORMATS[kind][1])


# ---------------------------------------------------------------------------------------------
# Workbook


class _Formats:
    """The workbook's cell formats, created once each (Excel caps the number of distinct formats)."""

    def __init__(self, workbook: xlsxwriter.Workbook) -> None:
        self._workbook = workbook
        self._cache: dict[tuple, Format] = {}
        self.title = workbook.add_format({"bold": True, "font_size": 14})
        self.heading = workbook.add_format({"bold": True, "font_size": 12})
        self.header = workbook.add_format(
            {"bold": True, "text_wrap": True, "valign": "top", "bg_color": "#DDE4EE", "border": 1}
        )
        self.wrap = workbook.add_format({"text_wrap": True, "valign": "top"})
        self.link = workbook.add_format({"font_color": "blue", "underline": 1})

    def _get(self, key: tuple, properties: dict) -> Format:
        if key not in self._cache:
            self._cache[key] = self._workbook.add_format(properties)
        return self._cache[key]

    def text(self, bold: bool) -> Format:
        return self._get(("text", bold), {"bold": bold})

    def number(self, kind: MeasureKind, bold: bool) -> Format:
        return self._get(("number", kind, bold), {"bold": bold, "num_format": NUMBER_FORMATS[kind][0]})

    def marker(self, bold: bool) -> Format:
        return self._get(("marker", bold), {"bold": bold, "align": "right"})


def _display_width(text: str) -> int:
    """Width in Excel character units: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _write_pairs(ws: Worksheet, row: int, pairs: Iterable[tuple[str, str]], fmt: _Formats) -> int:
    """Label / value lines from `row`; returns the next free row."""
    for label, value in pairs:
        ws.write_string(row, 0, label, fmt.text(bold=True))
        ws.write_string(row, 1, value)
        row += 1
    return row


def _write_grid(ws: Worksheet, row: int, header: list[str], lines: Iterable[Iterable[object]],
                fmt: _Formats) -> int:
    """A small header + lines block on the cover or notes; returns the next free row."""
    ws.write_row(row, 0, header, fmt.header)
    row += 1
    for line in lines:
        for col, value in enumerate(line):
            if isinstance(value, int) and not isinstance(value, bool):
                ws.write_number(row, col, value)
            else:
                ws.write_string(row, col, str(value), fmt.wrap)
        row += 1
    return row


def cover_facts(pack: Pack) -> list[tuple[str, str]]:
    version = "无 / none" if pack.publication_version is None else str(pack.publication_version)
    return [
        ("季度 / Quarter", pack.quarter),
        ("本季度 / Quarter period", date_range(pack.quarter_start, pack.quarter_end)),
        ("本年累计 / Year to date", date_range(pack.ytd_start, pack.quarter_end)),
        ("数据截止日 / Data cut-off date", f"{pack.cutoff_date:%Y-%m-%d}"),
        ("行业赔案数据库发布版本 / Sector claims database publication version", version),
        ("提供数据的保险公司数 / Contributing insurers", str(pack.contributing_insurers)),
        ("生成时间 / Built at", pack.built_at.isoformat(timespec="seconds")),
    ]


def rule_lines(rules: dict) -> list[tuple[str, str]]:
    lines = []
    for key, value in rules.items():
        zh, en = RULE_LABELS.get(key, (key, key))
        shown = percent(value) if key == "dominance_share" else str(value)
        lines.append((f"{zh} / {en}", shown))
    return lines


def _write_cover(wb: xlsxwriter.Workbook, pack: Pack, fmt: _Formats) -> None:
    ws = wb.add_worksheet(COVER_SHEET)
    ws.write_string(0, 0, f"{TITLE_ZH} / {TITLE_EN}", fmt.title)
    row = _write_pairs(ws, 2, cover_facts(pack), fmt)
    ws.write_string(row + 1, 0, "保密规则 / Disclosure thresholds", fmt.heading)
    row = _write_pairs(ws, row + 2, rule_lines(pack.rules), fmt)
    ws.write_string(row + 1, 0, "目录 / Contents", fmt.heading)
    row += 2
    ws.write_row(row, 0, ["工作表 / Sheet", "表 / Table", "标题 / Title (中文)", "Title / 标题 (English)",
                          "期间 / Period", "起止日期 / Dates"], fmt.header)
    for table in pack.tables:
        row += 1
        ws.write_url(row, 0, f"internal:'{table.sheet_name}'!A1", fmt.link, string=table.sheet_name)
        ws.write_number(row, 1, table.number)
        ws.write_row(row, 2, [table.title_zh, table.title_en, table.period_label,
                              date_range(table.period_start, table.period_end)])
    ws.set_column(0, 0, 58)
    ws.set_column(1, 1, 26)
    ws.set_column(2, 3, 34)
    ws.set_column(4, 5, 24)


def _dimensions(pack: Pack) -> list[Dimension]:
    seen: dict[str, Dimension] = {}
    for table in pack.tables:
        for dim in (table.row_dim, table.column_dim):
            if dim is not None:
                seen.setdefault(dim.code, dim)
    return list(seen.values())


def suppression_lines(pack: Pack) -> list[tuple[str, str, int]]:
    lines = []
    for code, count in pack.suppression_summary.items():
        zh, en = SUPPRESSION_LABELS.get(code, (code, code))
        lines.append((code, f"{zh} / {en}", count))
    return lines


def _write_notes(wb: xlsxwriter.Workbook, pack: Pack, fmt: _Formats) -> None:
    ws = wb.add_worksheet(NOTES_SHEET)
    ws.write_string(0, 0, "说明 / Notes", fmt.title)
    ws.write_string(2, 0, "指标 / Measures", fmt.heading)
    row = _write_grid(
        ws, 3,
        ["代码 / Code", "指标 / Measure (中文)", "Measure / 指标 (English)", "类型 / Kind", "可加 / Additive",
         "定义 / Definition (中文)", "Definition / 定义 (English)"],
        ([m.code, m.zh, m.en, m.kind, "是 / yes" if m.additive else "否 / no", m.definition_zh,
          m.definition_en] for m in MEASURES),
        fmt,
    )
    ws.write_string(row + 1, 0, "维度 / Dimensions", fmt.heading)
    row = _write_grid(ws, row + 2, ["代码 / Code", "维度 / Dimension (中文)", "Dimension / 维度 (English)"],
                      ([d.code, d.zh, d.en] for d in _dimensions(pack)), fmt)
    ws.write_string(row + 1, 0, "符号 / Markers", fmt.heading)
    row = _write_grid(ws, row + 2, ["符号 / Marker", "含义 / Meaning (中文)", "Meaning / 含义 (English)"],
                      ([marker, text["zh"], text["en"]] for marker, text in marker_notes(pack.rules).items()),
                      fmt)
    ws.write_row(row, 1, TOTALS_NOTE, fmt.wrap)
    row += 1
    ws.write_string(row + 1, 0, "保密处理统计 / Suppression summary", fmt.heading)
    row = _write_grid(ws, row + 2, ["代码 / Code", "原因 / Reason", "单元格数 / Cells"],
                      suppression_lines(pack), fmt)
    ws.write_string(row + 1, 0, "注意事项 / Caveats", fmt.heading)
    _write_grid(ws, row + 2, ["中文 / Chinese", "English / 英文"], pack.caveats, fmt)
    ws.set_column(0, 0, 22)
    ws.set_column(1, 2, 40)
    ws.set_column(3, 4, 12)
    ws.set_column(5, 6, 60)


def _write_table_sheet(wb: xlsxwriter.Workbook, table: PackTable, fmt: _Formats) -> None:
    ws = wb.add_worksheet(table.sheet_name)
    header = table_header(table)
    kinds = [MEASURE_BY_CODE[m].kind for m in table.measures]
    header_row = TABLE_HEADER_ROW - 1  # xlsxwriter counts rows from 0
    first_data_row = header_row + 1
    ws.write_string(0, 0, table_title(table), fmt.title)
    ws.write_string(1, 0, period_heading(table))
    ws.write_row(header_row, 0, header, fmt.header)

    widths = [0] * len(header)
    for i, cell in enumerate(table.cells):
        row = first_data_row + i
        labels = cell_labels(table, cell)
        for col, label in enumerate(labels):
            ws.write_string(row, col, label, fmt.text(cell.is_margin))
            widths[col] = max(widths[col], _display_width(label))
        for j, (measure, kind) in enumerate(zip(table.measures, kinds, strict=True)):
            col = len(labels) + j
            shown = cell.display(measure)
            if isinstance(shown, str):
                ws.write_string(row, col, shown, fmt.marker(cell.is_margin))
            else:
                # Excel holds doubles: Decimals become floats here and nowhere earlier.
                ws.write_number(row, col, float(shown), fmt.number(kind, cell.is_margin))
            widths[col] = max(widths[col], len(format_figure(shown, kind)))

    n_dims = len(header) - len(table.measures)
    for col, width in enumerate(widths):
        low, high = (12, 40) if col < n_dims else (14, 24)
        widths[col] = min(max(width + 2, low), high)
        ws.set_column(col, col, widths[col])
    header_lines = max(math.ceil(_display_width(h) / w) for h, w in zip(header, widths, strict=True))
    ws.set_row(header_row, 15 * header_lines)
    ws.freeze_panes(first_data_row, n_dims)
    ws.autofilter(header_row, 0, header_row + max(len(table.cells), 1), len(header) - 1)


def write_workbook(pack: Pack, path: Path) -> Path:
    """The pack as one .xlsx: cover, notes, then one sheet per table in pack order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Text stays text: no formula, URL or number guessing from a label or caveat.
    wb = xlsxwriter.Workbook(
        str(path), {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
    )
    fmt = _Formats(wb)
    _write_cover(wb, pack, fmt)
    _write_notes(wb, pack, fmt)
    for table in pack.tables:
        _write_table_sheet(wb, table, fmt)
    wb.close()
    return path


# ---------------------------------------------------------------------------------------------
# CSV

def write_csvs(pack: Pack, folder: Path) -> list[Path]:
    """One UTF-8 CSV with BOM per table (the BOM lets Excel open Chinese text correctly)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for table in pack.tables:
        path = folder / f"{table.key}.csv"
        with path.open("w", encoding="utf-8-sig", newline="") as f:
            writer = csvsafe.writer(f)
            writer.writerow(table_header(table))
            for cell in table.cells:
                # str() of a Decimal is its exact text ("1234.50"); a marker is already text.
                writer.writerow([*cell_labels(table, cell), *(str(cell.display(m)) for m in table.measures)])
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------------
# JSON


def _table_document(table: PackTable) -> dict:
    def dimension(dim: Dimension | None) -> dict | None:
        return None if dim is None else {"code": dim.code, "zh": dim.zh, "en": dim.en}

    return {
        "key": table.key,
        "number": table.number,
        "name": table.name,
        "period": table.period,
        "period_label": table.period_label,
        "period_start": table.period_start.isoformat(),
        "period_end": table.period_end.isoformat(),
        "title_zh": table.title_zh,
        "title_en": table.title_en,
        "row_dimension": dimension(table.row_dim),
        "column_dimension": dimension(table.column_dim),
        "measures": list(table.measures),
        "cells": [
            {
                "row": cell.row, "row_zh": cell.row_zh, "row_en": cell.row_en,
                "column": cell.column, "column_zh": cell.column_zh, "column_en": cell.column_en,
                "values": {m: cell.values.get(m) for m in table.measures},
                "flags": {m: cell.display(m) for m in table.measures if cell.values.get(m) is None},
            }
            for cell in table.cells
        ],
    }


def pack_document(pack: Pack) -> dict:
    """The JSON tree of the pack; figures stay int / Decimal."""
    return {
        "pack": {
            "quarter": pack.quarter,
            "quarter_start": pack.quarter_start.isoformat(),
            "quarter_end": pack.quarter_end.isoformat(),
            "ytd_start": pack.ytd_start.isoformat(),
            "cutoff_date": pack.cutoff_date.isoformat(),
            "publication_version": pack.publication_version,
            "built_at": pack.built_at.isoformat(),
            "contributing_insurers": pack.contributing_insurers,
            "rules": pack.rules,
            "markers": marker_notes(pack.rules),
            "measures": [
                {"code": m.code, "zh": m.zh, "en": m.en, "kind": m.kind, "additive": m.additive,
                 "definition_zh": m.definition_zh, "definition_en": m.definition_en}
                for m in MEASURES
            ],
            "suppression_summary": pack.suppression_summary,
            "caveats": [{"zh": zh, "en": en} for zh, en in pack.caveats],
        },
        "tables": [_table_document(t) for t in pack.tables],
    }


def dumps_exact(document: object) -> str:
    """json.dumps, but a Decimal is written as its exact decimal text (1234.50), not a float repr."""
    decimals: list[Decimal] = []
    # Each Decimal goes out as a quoted placeholder, then the quotes and placeholder are swapped for
    # its text: the json module has no hook to emit a raw number.
    token = f"decimal-{uuid.uuid4().hex}-"

    def placeholder(value: object) -> str:
        if not isinstance(value, Decimal):
            raise TypeError(f"not JSON serializable: {value!r}")
        if not value.is_finite():
            raise ValueError(f"JSON has no {value}")
        decimals.append(value)
        return f"{token}{len(decimals) - 1}"

    text = json.dumps(document, ensure_ascii=False, indent=1, default=placeholder)
    return re.sub(rf'"{token}(\d+)"', lambda m: str(decimals[int(m[1])]), text)


def write_json(pack: Pack, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps_exact(pack_document(pack)) + "\n", encoding="utf-8")
    return path
