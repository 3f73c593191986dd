"""The regulator pack as data: tables of cells, each cell with its measures and markers.

Everything the writers (workbook, CSV, JSON, HTML report) need is here, already protected: a value
is either a published figure or None with a marker saying why it is not shown.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

# Markers, as in official statistics: `x` confidential (suppressed by disclosure control), `..` not
# applicable or not available (e.g. premium by incident type, severity of a cell without claims).
SUPPRESSED = "x"
NOT_AVAILABLE = ".."

TOTAL_CODE = "total"

MeasureKind = Literal["count", "money", "ratio", "days", "rate", "years"]
MeasureGroup = Literal["exposure", "loss", "both"]


@dataclass(frozen=True)
class Measure:
    code: str
    zh: str
    en: str
    kind: MeasureKind
    # Which disclosure pattern hides it: exposure cells, loss cells, or either (ratios of the two).
    group: MeasureGroup
    # Cells add up to their totals (so an attacker can subtract); distinct counts and quantiles do not.
    additive: bool
    definition_zh: str
    definition_en: str

    @property
    def header(self) -> str:
        return f"{self.zh} / {self.en}"


MEASURES: tuple[Measure, ...] = (
    Measure("policies_in_force", "有效保单数", "Policies in force", "count", "exposure", True,
            "统计期内任一天有效的保单数（起保日含、到期日不含）。",
            "Policies in force on at least one day of the period (cover from inception, included, to expiry, "
            "excluded)."),
    Measure("insureds", "被保险人数", "Insureds", "count", "exposure", False,
            "有效保单的不同被保险人数（按统一社会信用代码的假名化键去重，跨保险公司去重）。",
            "Distinct insureds holding a policy in force (by pseudonymized USCC, counted once across insurers)."),
    Measure("exposure_years", "已赚风险单位（保单年）", "Earned exposure (policy-years)", "years", "exposure", True,
            "统计期内已赚保单天数 ÷ 365。",
            "Policy days earned in the period ÷ 365."),
    Measure("written_premium", "签单保费（元）", "Written premium (CNY)", "money", "exposure", True,
            "起保日在统计期内的保单保费，按起保月汇率折算人民币。",
            "Premium of policies incepting in the period, in CNY at the inception month's rate."),
    Measure("earned_premium", "已赚保费（元）", "Earned premium (CNY)", "money", "exposure", True,
            "保费 × 统计期内已赚天数 ÷ 保险期间天数，按保单和月份四舍五入到分后加总。",
            "Premium × days earned in the period ÷ term days, rounded to the fen per policy and month, then summed."),
    Measure("incidents", "事故数", "Incidents", "count", "loss", True,
            "发生日在统计期内、由保险公司报告的网络安全事故数（同一事件由两家公司报告计两次）。",
            "Cyber incidents occurring in the period as notified by insurers (an event notified by two insurers "
            "counts twice)."),
    Measure("claims", "赔案数", "Claims", "count", "loss", True,
            "事故发生日在统计期内的赔案数（事故年度口径，截至数据截止日）。",
            "Claims whose incident occurred in the period (accident-period basis, as at the data cut-off)."),
    Measure("paid", "已决赔款（元）", "Paid (CNY)", "money", "loss", True,
            "上述赔案截至数据截止日的已付赔款与费用，扣除追偿，人民币。",
            "Indemnity and expense paid on those claims to the cut-off, net of recoveries, in CNY."),
    Measure("incurred", "已发生赔款（元）", "Incurred (CNY)", "money", "loss", True,
            "已决赔款加未决赔款准备金，人民币，截至数据截止日。",
            "Paid plus case reserve at the cut-off, in CNY."),
    Measure("loss_ratio", "赔付率", "Loss ratio", "ratio", "both", False,
            "已发生赔款 ÷ 已赚保费（事故期口径）。",
            "Incurred ÷ earned premium (accident-period basis)."),
    Measure("frequency", "出险频率（每百保单年）", "Claim frequency (per 100 policy-years)", "rate", "both", False,
            "赔案数 ÷ 已赚风险单位 × 100。",
            "Claims ÷ earned exposure × 100."),
    Measure("severity_median", "案均赔款中位数（元）", "Severity, median (CNY)", "money", "loss", False,
            "已发生赔款大于零的赔案的已发生赔款中位数（线性插值）。",
            "Median incurred of claims with incurred above zero (linear interpolation)."),
    Measure("severity_p90", "案均赔款90分位数（元）", "Severity, 90th percentile (CNY)", "money", "loss", False,
            "已发生赔款大于零的赔案的已发生赔款第90百分位数（线性插值）。",
            "90th percentile of incurred of claims with incurred above zero (linear interpolation)."),
    Measure("report_lag_median", "报案时滞中位数（天）", "Report lag, median (days)", "days", "loss", False,
            "赔案从事故发生到报案的天数中位数。",
            "Median days from occurrence to the claim's report."),
)
MEASURE_BY_CODE = {m.code: m for m in MEASURES}

EXPOSURE_MEASURES = tuple(m.code for m in MEASURES if m.group == "exposure")
LOSS_MEASURES = tuple(m.code for m in MEASURES if m.group == "loss")
ALL_MEASURES = tuple(m.code for m in MEASURES)


@dataclass(frozen=True)
class Dimension:
    code: str
    zh: str
    en: str


@dataclass
class Cell:
    """One published line of a table: a (row, column) cell with all its measures.

    `column` is None for a one-way table. A margin has row or column == TOTAL_CODE. `values[m]` is
    the figure (int for counts, Decimal for money, ratios, rates, years and days) or None; when None,
    `flags[m]` says why (SUPPRESSED or NOT_AVAILABLE). A published figure has no flag.
    """

    row: str
    row_zh: str
    row_en: str
    column: str | None
    column_zh: str | None
    column_en: str | None
    values: dict[str, int | Decimal | None]
    flags: dict[str, str] = field(default_factory=dict)

    @property
    def is_margin(self) -> bool:
        return self.row == TOTAL_CODE or self.column == TOTAL_CODE

    def display(self, measure: str) -> int | Decimal | str:
        """The figure, or its marker."""
        value = self.values.get(measure)
        return self.flags.get(measure, NOT_AVAILABLE) if value is None else value


@dataclass
class PackTable:
    """One table of the pack for one period."""

    name: str  # e.g. "sector_product"; with the period it names the file / sheet
    number: int  # table number in the pack (表1 / Table 1)
    period: Literal["quarter", "ytd"]
    period_label: str  # "2025Q4" or "2025 Q1–Q4"
    period_start: dt.date
    period_end: dt.date
    title_zh: str
    title_en: str
    row_dim: Dimension
    column_dim: Dimension | None
    measures: tuple[str, ...]  # codes of the measures this table publishes, in order
    cells: list[Cell]

    @property
    def key(self) -> str:
        return f"{self.name}_{self.period}"

    @property
    def sheet_name(self) -> str:
        return f"T{self.number} {'Q' if self.period == 'quarter' else 'YTD'}"

    def cell(self, row: str, column: str | None = None) -> Cell:
        for c in self.cells:
            if c.row == row and c.column == column:
                return c
        raise KeyError((self.key, row, column))


@dataclass
class Pack:
    quarter: str  # "2025Q4"
    quarter_start: dt.date
    quarter_end: dt.date
    ytd_start: dt.date
    cutoff_date: dt.date  # the latest valuation date in the data
    publication_version: int | None
    built_at: dt.datetime
    contributing_insurers: int
    rules: dict  # the disclosure thresholds applied
    tables: list[PackTable]
    # Counts by marker reason for the notes (never per cell: reasons stay internal).
    suppression_summary: dict[str, int] = field(default_factory=dict)
    # Figures the reader needs to interpret the tables (e.g. claims without an occurrence date).
    caveats: list[tuple[str, str]] = field(default_factory=list)

    def table(self, name: str, period: str) -> PackTable:
        for t in self.tables:
            if t.name == name and t.period == period:
                return t
        raise KeyError((name, period))


@dataclass(frozen=True)
class TableSpec:
    name: str
    number: int
    title_zh: str
    title_en: str
    row_dim: Dimension
    column_dim: Dimension | None
    measures: tuple[str, ...]
    periods: tuple[str, ...] = ("quarter", "ytd")


SECTOR = Dimension("sector", "行业", "Sector")
PRODUCT = Dimension("product_type", "产品类型", "Product type")
INCIDENT_TYPE = Dimension("incident_type", "事故类型", "Incident type")
PROVINCE = Dimension("province", "省份", "Province")
PILOT = Dimension("pilot", "试点项目", "Pilot programme")
SIZE = Dimension("size", "企业规模", "Enterprise size")
QUARTER = Dimension("quarter", "季度", "Quarter")
SEVERITY_BAND = Dimension("severity_band", "赔款金额区间", "Claim size band")

LOSS_ONLY = ("incidents", "claims", "paid", "incurred", "severity_median", "severity_p90", "report_lag_median")

TABLE_SPECS: tuple[TableSpec, ...] = (
    TableSpec("sector_product", 1, "按行业和产品类型", "By sector and product type", SECTOR, PRODUCT, ALL_MEASURES),
    TableSpec("sector_incident_type", 2, "按行业和事故类型", "By sector and incident type", SECTOR, INCIDENT_TYPE,
              LOSS_ONLY),
    TableSpec("province", 3, "按省份", "By province", PROVINCE, None, ALL_MEASURES),
    TableSpec("pilot", 4, "试点项目与非试点", "Pilot programmes and non-pilot", PILOT, None, ALL_MEASURES),
    TableSpec("size", 5, "中小企业与大型企业", "SMEs and large enterprises", SIZE, None, ALL_MEASURES),
    # Quarters of the year so far: its row totals are the year-to-date sector figures of table 1.
    TableSpec("sector_quarter", 6, "按行业和季度（本年）", "By sector and quarter (year to date)", SECTOR, QUARTER,
              ALL_MEASURES, periods=("ytd",)),
    TableSpec("severity_band", 7, "按赔款金额区间", "By claim size band", SEVERITY_BAND, None,
              ("claims", "paid", "incurred", "report_lag_median")),
)
