"""The regulator pack as a report: charts (PNG), one self-contained bilingual HTML page, and a PDF.

Charts draw published figures only. An unpublished figure leaves a gap marked with its marker, and
the caption says so (`x` = suppressed, `..` = not available); a panel with nothing published says
so in its plot area. Chart texts are English (the machines that build the pack have no Chinese
font); the HTML is bilingual, Chinese first.

The HTML page holds the cover facts, the headline figures (grand totals of table 1), the charts
with their captions, every table (folded) and the notes. The PDF holds a title page and the charts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import jinja2
import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, StrMethodFormatter

from cyberclaims.regulator.model import (
    MEASURE_BY_CODE,
    MEASURES,
    NOT_AVAILABLE,
    SUPPRESSED,
    TOTAL_CODE,
    Cell,
    Pack,
    PackTable,
)
from cyberclaims.regulator.render import (
    TITLE_EN,
    TITLE_ZH,
    TOTALS_NOTE,
    cell_labels,
    cover_facts,
    date_range,
    format_figure,
    marker_notes,
    period_heading,
    rule_lines,
    suppression_lines,
    table_header,
    table_title,
)

DPI = 110
HEADLINE_MEASURES = (
    "policies_in_force", "written_premium", "earned_premium", "claims", "incurred", "loss_ratio",
)

# A published figure as a float, or the marker of one that is not published.
Point = float | str

PALETTE = matplotlib.colormaps["tab10"]
SECTOR_PALETTE = matplotlib.colormaps["tab20"]
GAP_STYLE = {"facecolor": "none", "hatch": "//", "edgecolor": "gray"}


@dataclass
class Chart:
    file_name: str
    title_zh: str
    title_en: str
    figure: Figure
    points: list[Point]  # every figure the chart was asked to show, drawn or not

    @property
    def markers(self) -> set[str]:
        return {p for p in self.points if isinstance(p, str)}

    @property
    def nothing_published(self) -> bool:
        return not any(isinstance(p, float) for p in self.points)

    def _note(self, language: int) -> str:
        """The caption's note in Chinese (0) or English (1): which markers left figures out."""
        if self.nothing_published:
            return _nothing_published_texts(self.markers)[language] + ("。", ".")[language]
        notes = [texts[language] for marker, texts in _MARKER_NOTES.items() if marker in self.markers]
        separator, stop, none = (("；", "。", "全部数据均已公布。"), ("; ", ".", "All figures published."))[language]
        return separator.join(notes) + stop if notes else none

    @property
    def note_zh(self) -> str:
        return self._note(0)

    @property
    def note_en(self) -> str:
        return self._note(1)


_MARKER_NOTES = {
    SUPPRESSED: ("x = 为保密而隐去（未绘出）", "x = suppressed (not drawn)"),
    NOT_AVAILABLE: (".. = 不适用或无数据（未绘出）", ".. = not available (not drawn)"),
}


# ---------------------------------------------------------------------------------------------
# Picking figures out of tables


def _point(cell: Cell | None, measure: str) -> Point:
    if cell is None:
        return NOT_AVAILABLE
    shown = cell.display(measure)
    return shown if isinstance(shown, str) else float(shown)


def _one_way_rows(table: PackTable) -> list[Cell]:
    return [c for c in table.cells if c.row != TOTAL_CODE]


def _row_margins(table: PackTable) -> list[Cell]:
    """Each row's total over the columns (e.g. a sector's figures over all product types)."""
    return [c for c in table.cells if c.column == TOTAL_CODE and c.row != TOTAL_CODE]


def _column_margins(table: PackTable) -> list[Cell]:
    """Each column's total over the rows (e.g. an incident type's figures over all sectors)."""
    return [c for c in table.cells if c.row == TOTAL_CODE and c.column not in (TOTAL_CODE, None)]


def _series(cells: list[Cell], measures: Iterable[str]) -> dict[str, list[Point]]:
    return {MEASURE_BY_CODE[m].en: [_point(c, m) for c in cells] for m in measures}


# ---------------------------------------------------------------------------------------------
# Drawing


def _figure(title: str, panels: int, width: float = 11.0, height: float = 6.0) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # rendered off-screen, whatever backend pyplot may use in the same process
    fig.suptitle(title, fontsize=13)
    return fig, list(fig.subplots(1, panels, squeeze=False)[0])


def _nothing_published_texts(markers: set[str]) -> tuple[str, str]:
    """Chinese and English: why a chart or panel shows no figure."""
    if markers == {SUPPRESSED}:
        return "全部数据已隐去（x）", "All figures suppressed (x)"
    if markers <= {NOT_AVAILABLE}:
        return "无数据（..）", "No figures available (..)"
    return "全部数据已隐去（x）或无数据（..）", "All figures suppressed (x) or not available (..)"


def _nothing_published(ax: Axes, points: list[Point]) -> None:
    markers = {p for p in points if isinstance(p, str)}
    ax.text(0.5, 0.5, _nothing_published_texts(markers)[1], transform=ax.transAxes, ha="center", va="center",
            fontsize=13, color="dimgray", wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def _has_figures(points: list[Point]) -> bool:
    return any(isinstance(p, float) for p in points)


def _bars(ax: Axes, labels: list[str], series: dict[str, list[Point]], title: str) -> list[Point]:
    """Horizontal bars, one group per label and one bar per series; an unpublished figure is a gap
    with its marker at the axis."""
    points = [p for values in series.values() for p in values]
    ax.set_title(title, fontsize=10)
    if not _has_figures(points):
        _nothing_published(ax, points)
        return points
    height = 0.8 / len(series)
    for k, (name, values) in enumerate(series.items()):
        offsets = [i - 0.4 + height * (k + 0.5) for i in range(len(labels))]
        drawn = [(y, v) for y, v in zip(offsets, values, strict=True) if isinstance(v, float)]
        ax.barh([y for y, _ in drawn], [v for _, v in drawn], height=height, label=name, color=PALETTE(k))
        for y, v in zip(offsets, values, strict=True):
            if isinstance(v, str):
                ax.annotate(v, (0, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8,
                            color="dimgray")
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    # Limits from the labels, not the drawn bars: a gap at either end keeps its place.
    ax.set_ylim(len(labels) - 0.5, -0.5)
    # Few ticks: money figures in millions would otherwise run into each other on narrow panels.
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.10g}"))
    ax.tick_params(axis="x", labelsize=8)
    if len(series) > 1:
        ax.legend(fontsize=8)
    return points


def _cell_bars(ax: Axes, cells: list[Cell], measures: Iterable[str], title: str,
               by_column: bool = False) -> list[Point]:
    """_bars over cells, labelled by their row (or column) in English."""
    labels = [(c.column_en or "") if by_column else c.row_en for c in cells]
    return _bars(ax, labels, _series(cells, measures), title)


def _lines(ax: Axes, x_labels: list[str], series: dict[str, list[Point]], title: str) -> list[Point]:
    """One line per series over x; an unpublished figure breaks the line."""
    points = [p for values in series.values() for p in values]
    ax.set_title(title, fontsize=10)
    if not _has_figures(points):
        _nothing_published(ax, points)
        return points
    for k, (name, values) in enumerate(series.items()):
        ys = [v if isinstance(v, float) else math.nan for v in values]
        # Markers on the points, so that a figure between two gaps is still visible.
        ax.plot(range(len(x_labels)), ys, marker="o", label=name, color=SECTOR_PALETTE(k % 20))
    ax.set_xticks(range(len(x_labels)), x_labels, fontsize=8)
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.10g}"))
    return points


@dataclass
class _ShareBar:
    shares: list[float | None]  # percent of the total per row; None where the row is not published
    gap: float  # percent of the total in unpublished rows
    gap_markers: str


def _share_bar(parts: list[Point], whole: Point) -> _ShareBar | None:
    """Shares of the published total; unpublished rows together are the rest of it, which any reader
    can work out (total minus the published rows), so showing that gap discloses nothing new. Without a
    published total, shares exist only when every row is published."""
    published = [p for p in parts if isinstance(p, float)]
    if isinstance(whole, float):
        denominator = whole
    elif len(published) == len(parts):
        denominator = sum(published)
    else:
        return None
    if denominator <= 0:
        return None
    shares = [100 * p / denominator if isinstance(p, float) else None for p in parts]
    gap_markers = " / ".join(sorted({p for p in parts if isinstance(p, str)}, reverse=True))
    gap = max(100 - sum(s for s in shares if s is not None), 0.0) if gap_markers else 0.0
    return _ShareBar(shares, gap, gap_markers)


def _share_bars(ax: Axes, table: PackTable, measures: tuple[str, ...]) -> list[Point]:
    """100 % stacked bars, one per measure, one segment per row of a one-way table; the unpublished
    rows are one hatched gap marked with their markers."""
    rows = _one_way_rows(table)
    total = next((c for c in table.cells if c.row == TOTAL_CODE), None)
    ax.set_title(f"Share of the total, {table.period_label}", fontsize=10)
    points: list[Point] = []
    bars: list[_ShareBar | None] = []
    for m in measures:
        parts = [_point(c, m) for c in rows]
        bar = _share_bar(parts, _point(total, m))
        points += parts if bar is not None else [*parts, _point(total, m)]
        bars.append(bar)
    if not _has_figures(points):
        _nothing_published(ax, points)
        return points

    for i, bar in enumerate(bars):
        if bar is None:
            marker = _point(total, measures[i])
            ax.annotate(marker if isinstance(marker, str) else NOT_AVAILABLE, (0, i), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=9, color="dimgray")
            continue
        left = 0.0
        for k, share in enumerate(bar.shares):
            if share is not None:
                ax.barh(i, share, left=left, color=PALETTE(k))
                left += share
        if bar.gap_markers:
            ax.barh(i, bar.gap, left=left, **GAP_STYLE)
            ax.annotate(bar.gap_markers, (left, i), xytext=(3, 0), textcoords="offset points", va="center",
                        fontsize=9, color="dimgray")
    ax.set_yticks(range(len(measures)), [MEASURE_BY_CODE[m].en for m in measures], fontsize=8)
    ax.set_ylim(len(measures) - 0.5, -0.5)
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of total", fontsize=9)
    # Built by hand so that the rows keep their table order whichever bar shows them first.
    legend = [Patch(color=PALETTE(k), label=cell.row_en) for k, cell in enumerate(rows)]
    if any(bar is not None and bar.gap_markers for bar in bars):
        legend.append(Patch(label="Not published (x = suppressed, .. = not available)", **GAP_STYLE))
    ax.legend(handles=legend, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return points


# ---------------------------------------------------------------------------------------------
# The charts


def _finish(fig: Figure, file_name: str, title_zh: str, title_en: str, points: list[Point]) -> Chart:
    chart = Chart(file_name, title_zh, title_en, fig, points)
    fig.supxlabel(chart.note_en, fontsize=9, color="dimgray")
    return chart


def _sector_over_time(pack: Pack) -> Chart:
    table = pack.table("sector_quarter", "ytd")
    rows = list(dict.fromkeys((c.row, c.row_en) for c in table.cells if c.row != TOTAL_CODE))
    columns = list(dict.fromkeys((c.column, c.column_en or "") for c in table.cells
                                 if c.column not in (TOTAL_CODE, None)))
    grid = {(c.row, c.column): c for c in table.cells}
    title_en = "Policies in force and written premium by sector and quarter"
    fig, (left, right) = _figure(f"{title_en}, {table.period_label}", 2, width=12)
    points: list[Point] = []
    for ax, measure in ((left, "policies_in_force"), (right, "written_premium")):
        series = {en: [_point(grid.get((row, col)), measure) for col, _ in columns] for row, en in rows}
        points += _lines(ax, [en for _, en in columns], series, MEASURE_BY_CODE[measure].en)
    # One legend for both panels: a sector with nothing published in one panel still has a line in the other.
    handles = {label: h for ax in (left, right)
               for h, label in zip(*ax.get_legend_handles_labels(), strict=True)}
    if handles:
        fig.legend(handles.values(), handles.keys(), loc="outside right upper", fontsize=8)
    return _finish(fig, "01_sector_over_time.png", "各行业有效保单数和签单保费（按季度）", title_en, points)


def _frequency_loss_ratio(pack: Pack) -> Chart:
    table = pack.table("sector_product", "ytd")
    sectors = _row_margins(table)
    title_en = "Claim frequency and loss ratio by sector"
    fig, axes = _figure(f"{title_en}, {table.period_label}", 2)
    points: list[Point] = []
    for ax, measure in zip(axes, ("frequency", "loss_ratio"), strict=True):
        points += _cell_bars(ax, sectors, [measure], MEASURE_BY_CODE[measure].en)
    return _finish(fig, "02_frequency_loss_ratio.png", "各行业出险频率和赔付率", title_en, points)


def _incident_mix(pack: Pack) -> Chart:
    table = pack.table("sector_incident_type", "ytd")
    types = _column_margins(table)
    title_en = "Incidents and claims by incident type"
    fig, (ax,) = _figure(f"{title_en}, {table.period_label}", 1, width=10)
    points = _cell_bars(ax, types, ("incidents", "claims"), "All sectors", by_column=True)
    return _finish(fig, "03_incident_mix.png", "按事故类型的事故数和赔案数", title_en, points)


def _severity(pack: Pack) -> Chart:
    bands = pack.table("severity_band", "ytd")
    sectors_table = pack.table("sector_product", "ytd")
    sectors = _row_margins(sectors_table)
    title_en = "Claim severity: claims by size band; median and 90th percentile by sector"
    fig, (left, right) = _figure(f"{title_en}, {bands.period_label}", 2, width=12)
    band_rows = _one_way_rows(bands)
    points = _cell_bars(left, band_rows, ("claims",), "Claims by claim size band")
    points += _cell_bars(right, sectors, ("severity_median", "severity_p90"), "Severity by sector (CNY)")
    return _finish(fig, "04_severity.png", "赔款金额分布：按金额区间的赔案数；各行业赔款中位数和90分位数", title_en,
                   points)


def _report_lag(pack: Pack) -> Chart:
    table = pack.table("sector_incident_type", "ytd")
    types, sectors = _column_margins(table), _row_margins(table)
    title_en = "Reporting lag, median days: by incident type and by sector"
    fig, (left, right) = _figure(f"{title_en}, {table.period_label}", 2, width=12)
    points = _cell_bars(left, types, ("report_lag_median",), "By incident type", by_column=True)
    points += _cell_bars(right, sectors, ("report_lag_median",), "By sector")
    return _finish(fig, "05_report_lag.png", "报案时滞中位数（天）：按事故类型和行业", title_en, points)


def _pilot(pack: Pack) -> Chart:
    table = pack.table("pilot", "ytd")
    cohorts = _one_way_rows(table)
    title_en = "Pilot programmes compared with non-pilot"
    fig, axes = _figure(f"{title_en}, {table.period_label}", 3, width=13, height=5)
    points: list[Point] = []
    for ax, measure in zip(axes, ("frequency", "loss_ratio", "severity_median"), strict=True):
        points += _cell_bars(ax, cohorts, [measure], MEASURE_BY_CODE[measure].en)
    return _finish(fig, "06_pilot.png", "试点项目与非试点比较", title_en, points)


def _size_share(pack: Pack) -> Chart:
    table = pack.table("size", "ytd")
    title_en = "Share of SMEs and large enterprises"
    fig, (ax,) = _figure(f"{title_en}, {table.period_label}", 1, width=11, height=5)
    points = _share_bars(ax, table, ("policies_in_force", "written_premium", "claims", "incurred"))
    return _finish(fig, "07_size_share.png", "中小企业与大型企业占比", title_en, points)


CHARTS: tuple[Callable[[Pack], Chart], ...] = (
    _sector_over_time, _frequency_loss_ratio, _incident_mix, _severity, _report_lag, _pilot, _size_share,
)


def _title_page(pack: Pack) -> Figure:
    fig = Figure(figsize=(8.27, 11.69))  # A4 portrait
    FigureCanvasAgg(fig)
    version = "none" if pack.publication_version is None else str(pack.publication_version)
    lines = [
        f"Quarter: {pack.quarter}",
        f"Quarter period: {date_range(pack.quarter_start, pack.quarter_end)}",
        f"Year to date: {date_range(pack.ytd_start, pack.quarter_end)}",
        f"Data cut-off: {pack.cutoff_date:%Y-%m-%d}",
        f"Sector claims database publication version: {version}",
        f"Contributing insurers: {pack.contributing_insurers}",
        f"Built at: {pack.built_at.isoformat(timespec='seconds')}",
        "",
        "x = suppressed for confidentiality; .. = not applicable or not available.",
        "Tables, definitions and notes: see the workbook and report.html.",
    ]
    fig.text(0.1, 0.85, TITLE_EN, fontsize=20, weight="bold")
    fig.text(0.1, 0.8, "\n".join(lines), fontsize=11, va="top", linespacing=1.8)
    return fig


# ---------------------------------------------------------------------------------------------
# HTML

CSS = """
body { font-family: "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", sans-serif; margin: 2em;
       color: #222; }
h1 .en, h2 .en { color: #555; font-weight: normal; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; vertical-align: top; }
th { background: #dde4ee; text-align: left; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
tr.margin td { font-weight: bold; background: #f4f6f9; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.9em; }
details { margin: 0.5em 0; }
summary { cursor: pointer; font-weight: bold; }
"""


def _grid(rows: Iterable[Iterable[str]], header: Iterable[str]) -> dict:
    return {"header": list(header), "rows": [list(row) for row in rows]}


def _headline(pack: Pack) -> dict:
    tables = [pack.table("sector_product", period) for period in ("quarter", "ytd")]
    totals = [t.cell(TOTAL_CODE, TOTAL_CODE) for t in tables]
    rows = [(MEASURE_BY_CODE[code].header, [format_figure(c.display(code), MEASURE_BY_CODE[code].kind) for c in totals])
            for code in HEADLINE_MEASURES]
    return {"header": [period_heading(t) for t in tables], "rows": rows, "caption": table_title(tables[0])}


def _table(table: PackTable) -> dict:
    rows = [{"margin": cell.is_margin, "labels": list(cell_labels(table, cell)),
             "figures": [format_figure(cell.display(m), MEASURE_BY_CODE[m].kind) for m in table.measures]}
            for cell in table.cells]
    return {"summary": f"{table_title(table)} — {period_heading(table)}", "header": list(table_header(table)), "rows": rows}


def _notes(pack: Pack) -> dict:
    return {
        "measures": _grid(([m.code, m.zh, m.en, m.definition_zh, m.definition_en] for m in MEASURES),
                          ["代码 / Code", "指标 / Measure", "Measure / 指标", "定义 / Definition", "Definition / 定义"]),
        "markers": _grid(([marker, text["zh"], text["en"]] for marker, text in marker_notes(pack.rules).items()),
                         ["符号 / Marker", "含义 / Meaning", "Meaning / 含义"]),
        "totals": TOTALS_NOTE,
        "rules": _grid(rule_lines(pack.rules), ["规则 / Rule", "阈值 / Threshold"]),
        "summary": _grid(([code, label, str(n)] for code, label, n in suppression_lines(pack)),
                         ["代码 / Code", "原因 / Reason", "单元格数 / Cells"]),
        "caveats": list(pack.caveats),
    }


_TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")), autoescape=True,
                                keep_trailing_newline=True)


def _html(pack: Pack, charts: list[Chart]) -> str:
    return _TEMPLATES.get_template("report.html.j2").render(
        title_zh=TITLE_ZH, title_en=TITLE_EN, quarter=pack.quarter, css=CSS,
        facts=_grid(cover_facts(pack), ["项目 / Item", "内容 / Value"]), headline=_headline(pack), charts=charts,
        tables=[_table(t) for t in pack.tables], notes=_notes(pack),
    )


def write_report(pack: Pack, folder: Path) -> dict:
    """report.html, its charts under charts/, and report.pdf (title page and charts) in `folder`."""
    charts_dir = folder / "charts"
    charts_dir.mkdir(parents=True, exist_ok=True)
    pdf_path, html_path = folder / "report.pdf", folder / "report.html"
    charts, paths = [], []
    with PdfPages(pdf_path, metadata={"Title": f"{TITLE_EN} {pack.quarter}"}) as pdf:
        pdf.savefig(_title_page(pack))
        for build in CHARTS:
            chart = build(pack)
            path = charts_dir / chart.file_name
            # The caption travels with the image, for readers of the PNG alone.
            chart.figure.savefig(path, dpi=DPI,
                                 metadata={"Title": chart.title_en, "Description": chart.note_en})
            pdf.savefig(chart.figure)
            charts.append(chart)
            paths.append(path)
    html_path.write_text(_html(pack, charts), encoding="utf-8")
    return {"html": html_path, "pdf": pdf_path, "charts": paths}
