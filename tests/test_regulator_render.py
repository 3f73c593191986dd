"""Writers of the regulator pack, on a synthetic pack: every figure and marker comes back from the
workbook, the CSVs, the JSON and the report as it went in; the checks catch corrupted outputs."""

from __future__ import annotations

import copy as copy_module
import datetime as dt
import random
import shutil
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imsave
from openpyxl import load_workbook
from PIL import Image

from cyberclaims.regulator.model import (
    MEASURE_BY_CODE,
    NOT_AVAILABLE,
    SUPPRESSED,
    TABLE_SPECS,
    TOTAL_CODE,
    Cell,
    Pack,
    PackTable,
    TableSpec,
)
from cyberclaims.regulator.render import TABLE_HEADER_ROW, write_csvs, write_json, write_workbook
from cyberclaims.regulator.report import write_report
from tests.pack_checks import check_csvs, check_json, check_report, check_workbook

# Labels with characters that break careless writers: a comma (CSV), markup (HTML), an ampersand.
MEMBERS = {
    "sector": [("finance", "金融业", "Finance, banking"), ("manufacturing", "制造业", "Manufacturing"),
               ("rnd", "研发服务", "R&D <services>")],
    "product_type": [("first_party", "第一方损失", "First-party"), ("liability", "第三方责任", "Liability")],
    "incident_type": [("ransomware", "勒索软件", "Ransomware"), ("data_breach", "数据泄露", "Data breach")],
    "province": [("310000", "上海市", "Shanghai"), ("440000", "广东省", "Guangdong"), ("110000", "北京市", "Beijing")],
    "pilot": [("batch_1", "第一批试点", "Pilot batch 1"), ("batch_2", "第二批试点", "Pilot batch 2"),
              ("non_pilot", "非试点", "Non-pilot")],
    "size": [("sme", "中小企业", "SME"), ("large", "大型企业", "Large enterprise")],
    "quarter": [("2025Q1", "2025年第一季度", "2025 Q1"), ("2025Q2", "2025年第二季度", "2025 Q2"),
                ("2025Q3", "2025年第三季度", "2025 Q3")],
    "severity_band": [("lt_10k", "1万元以下", "Under CNY 10k"), ("10k_100k", "1万至10万元", "CNY 10k-100k"),
                      ("ge_100k", "10万元及以上", "CNY 100k and over")],
}
TOTAL = (TOTAL_CODE, "合计", "Total")
QUARTER_START, QUARTER_END, YTD_START = dt.date(2025, 7, 1), dt.date(2025, 9, 30), dt.date(2025, 1, 1)
RULES = {"min_insurers": 3, "min_insureds": 5, "dominance_share": 0.85}
DECIMAL_PLACES = {"money": 2, "ratio": 4, "rate": 2, "years": 2, "days": 1}


def figure(rng: random.Random, measure: str) -> int | Decimal:
    kind = MEASURE_BY_CODE[measure].kind
    if kind == "count":
        return rng.randint(0, 5_000)
    return Decimal(rng.randint(0, 10**9)).scaleb(-DECIMAL_PLACES[kind])


def make_cell(rng: random.Random, index: int, row: tuple, column: tuple | None, measures: tuple[str, ...],
              hide: bool) -> Cell:
    """A cell with a published figure per measure, some of them replaced by markers in a fixed pattern."""
    values: dict[str, int | Decimal | None] = {m: figure(rng, m) for m in measures}
    flags = {}
    for j, m in enumerate(measures):
        if hide or (3 * index + j) % 7 == 0:
            flags[m] = SUPPRESSED
        elif (index + 2 * j) % 11 == 5:
            flags[m] = NOT_AVAILABLE
        if m in flags:
            values[m] = None
    column = column or (None, None, None)
    return Cell(row[0], row[1], row[2], column[0], column[1], column[2], values, flags)


def make_table(rng: random.Random, spec: TableSpec, period: str, hide: bool) -> PackTable:
    rows = [*MEMBERS[spec.row_dim.code], TOTAL]
    columns = [None] if spec.column_dim is None else [*MEMBERS[spec.column_dim.code], TOTAL]
    cells = [make_cell(rng, i, row, column, spec.measures, hide)
             for i, (row, column) in enumerate((r, c) for r in rows for c in columns)]
    quarter = period == "quarter"
    return PackTable(spec.name, spec.number, period, "2025Q3" if quarter else "2025 Q1–Q3",
                     QUARTER_START if quarter else YTD_START, QUARTER_END, spec.title_zh, spec.title_en,
                     spec.row_dim, spec.column_dim, spec.measures, cells)


def make_pack(seed: int = 1, hide: bool = False) -> Pack:
    """All 13 tables of a pack; with `hide`, every figure is suppressed."""
    rng = random.Random(seed)
    tables = [make_table(rng, spec, period, hide) for spec in TABLE_SPECS for period in spec.periods]
    return Pack("2025Q3", QUARTER_START, QUARTER_END, YTD_START, dt.date(2025, 10, 15), 4,
                dt.datetime(2025, 10, 20, 9, 30), 6, RULES, tables,
                {"cells": 120, "primary": 3, "secondary": 5, "carried": 1},
                [("12件赔案缺少事故发生日期。", "12 claims have no occurrence date.")])


def pin(pack: Pack) -> Pack:
    """Figures whose exact text matters: trailing zeros, and a money figure without decimals."""
    total = pack.table("sector_product", "quarter").cell(TOTAL_CODE, TOTAL_CODE)
    for measure, value in (("written_premium", Decimal("1234.50")), ("earned_premium", Decimal("1000"))):
        total.values[measure] = value
        total.flags.pop(measure, None)
    return pack


def write_all(pack: Pack, folder: Path) -> Path:
    write_workbook(pack, folder / "pack.xlsx")
    write_csvs(pack, folder / "csv")
    write_json(pack, folder / "pack.json")
    write_report(pack, folder / "report")
    return folder


def check_all(pack: Pack, folder: Path) -> None:
    check_workbook(folder / "pack.xlsx", pack)
    check_csvs(folder / "csv", pack)
    check_json(folder / "pack.json", pack)
    check_report(folder / "report", pack)


@pytest.fixture(scope="module")
def pack() -> Pack:
    return pin(make_pack())


@pytest.fixture(scope="module")
def written(pack: Pack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_all(pack, tmp_path_factory.mktemp("pack"))


@pytest.fixture
def copy(written: Path, tmp_path: Path) -> Path:
    """A copy of the written pack, to corrupt."""
    return Path(shutil.copytree(written, tmp_path / "pack"))


def test_the_synthetic_pack_has_every_table_and_both_markers(pack: Pack):
    # Every table of the specification, once per period it is published for, under its own number.
    assert sorted((t.name, t.period, t.number) for t in pack.tables) == sorted(
        (s.name, period, s.number) for s in TABLE_SPECS for period in s.periods)
    flags = {f for t in pack.tables for c in t.cells for f in c.flags.values()}
    assert flags == {SUPPRESSED, NOT_AVAILABLE}


def test_written_pack_passes_every_check(pack: Pack, written: Path):
    check_all(pack, written)


def test_json_writes_decimals_as_exact_numbers(written: Path):
    text = (written / "pack.json").read_text(encoding="utf-8")
    assert '"written_premium": 1234.50,' in text
    assert '"earned_premium": 1000,' in text
    assert "金融业" in text  # not \u-escaped


def test_workbook_number_formats_markers_and_margins(pack: Pack, written: Path):
    table = pack.table("sector_product", "quarter")
    ws = load_workbook(written / "pack.xlsx")[table.sheet_name]
    header = [c.value for c in ws[TABLE_HEADER_ROW]]
    total_row = TABLE_HEADER_ROW + 1 + table.cells.index(table.cell(TOTAL_CODE, TOTAL_CODE))
    premium = ws.cell(total_row, header.index(MEASURE_BY_CODE["written_premium"].header) + 1)
    assert premium.value == 1234.5 and premium.number_format == "#,##0.00" and premium.font.b
    suppressed_cell, measure = next((c, m) for c in table.cells for m in table.measures
                                    if c.flags.get(m) == SUPPRESSED)
    marker = ws.cell(TABLE_HEADER_ROW + 1 + table.cells.index(suppressed_cell),
                     header.index(MEASURE_BY_CODE[measure].header) + 1)
    assert marker.value == "x" and marker.alignment.horizontal == "right"
    assert ws.freeze_panes == f"G{TABLE_HEADER_ROW + 1}"
    assert ws.auto_filter.ref.startswith(f"A{TABLE_HEADER_ROW}:")


def test_report_links_one_chart_per_topic(written: Path):
    charts = sorted(p.name for p in (written / "report" / "charts").glob("*.png"))
    assert len(charts) == 7 and charts[0] == "01_sector_over_time.png"
    html = (written / "report" / "report.html").read_text(encoding="utf-8")
    assert "R&amp;D &lt;services&gt;" in html and "x = suppressed" in html


def test_check_workbook_fails_on_a_figure_written_as_text(pack: Pack, copy: Path):
    table = pack.table("province", "ytd")
    path = copy / "pack.xlsx"
    wb = load_workbook(path)
    ws = wb[table.sheet_name]
    row, col = next((r, c) for r in ws.iter_rows(min_row=TABLE_HEADER_ROW + 1) for c, v in enumerate(r)
                    if isinstance(v.value, int | float))
    row[col].value = "12"
    wb.save(path)
    with pytest.raises(AssertionError, match="not a number"):
        check_workbook(path, pack)


def test_check_csvs_fails_without_the_bom(pack: Pack, copy: Path):
    path = copy / "csv" / "pilot_quarter.csv"
    path.write_bytes(path.read_bytes().removeprefix(b"\xef\xbb\xbf"))
    with pytest.raises(AssertionError, match="BOM"):
        check_csvs(copy / "csv", pack)


def test_check_json_fails_on_a_rounded_decimal(pack: Pack, copy: Path):
    path = copy / "pack.json"
    path.write_text(path.read_text(encoding="utf-8").replace(": 1234.50,", ": 1234.5,"), encoding="utf-8")
    with pytest.raises(AssertionError, match="1234.5"):
        check_json(path, pack)


def test_check_report_fails_on_a_blank_chart(pack: Pack, copy: Path):
    imsave(copy / "report" / "charts" / "04_severity.png", np.ones((400, 600, 3)))
    with pytest.raises(AssertionError, match="blank image"):
        check_report(copy / "report", pack)


def test_a_pack_with_every_figure_suppressed_still_renders(tmp_path: Path):
    pack = make_pack(seed=2, hide=True)
    check_all(pack, write_all(pack, tmp_path))
    for png in sorted((tmp_path / "report" / "charts").glob("*.png")):
        assert Image.open(png).info["Description"] == "All figures suppressed (x).", png.name
    html = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert html.count("All figures suppressed (x).") >= 7


def test_report_shows_a_hostile_label_as_text(pack: Pack, tmp_path: Path):
    from html.parser import HTMLParser

    from cyberclaims.regulator.report import CHARTS, _html

    hostile = '<script>alert("x")</script>&'
    attacked = copy_module.deepcopy(pack)
    attacked.caveats = [(hostile, hostile)]

    class Page(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags, self.items, self._li = [], [], None

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            if tag == "li":
                self._li = []

        def handle_endtag(self, tag):
            if tag == "li":
                self.items.append("".join(self._li))
                self._li = None

        def handle_data(self, data):
            if self._li is not None:
                self._li.append(data)

    markup = _html(attacked, [build(attacked) for build in CHARTS])
    page = Page()
    page.feed(markup)
    assert "script" not in page.tags and hostile not in markup
    assert page.items == [hostile + hostile]
