"""Quarterly statistics from the regulator marts: every cell's figures and who contributes to it.

The warehouse is attached read-only to an in-memory DuckDB. Every figure is defined in dbt, in the
contracted internal marts of models/marts/regulator (never published): the atoms (reg_policy_months,
reg_incidents, reg_claims: each row with its insurer, its insured and the pack's segment of its
policy), the same atoms per period (reg_period_policies, reg_period_losses: every quarter and year to
date of the data's years, reg_periods; claim size bands from the seed tax_claim_size_band), and
every cut of the pack's tables as a GROUPING SETS aggregation of them: reg_cells holds each cell's
figures, margins included (so margins are computed from the same rows as the cells, distinct insureds
and quantiles included, never added up from rounded cells), and reg_cell_insurers each insurer's
contribution to a cell. Python only reads them into the shape disclosure control needs.

Conventions (the notes sheet of the pack states them; dbt implements them):
- exposure: a policy covers inception (included) to expiry (excluded); it is in force in a period
  when it has an earned day there; earned premium = premium × earned days ÷ term days, rounded half
  up to the fen per policy and calendar month (dbt macro earned_premium, the same figure as the
  actuaries' agg_exposure_monthly); written premium is the premium of policies incepting in the
  period;
- losses are on an accident-period basis as at the data cut-off: incidents and claims whose incident
  occurred in the period, at their latest valuation; claims without an occurrence date cannot be
  placed in a period and are counted in the pack's caveats instead;
- a claim or incident takes the segment of its policy (unknown when the policy is unknown).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import duckdb

from cyberclaims.regulator.disclosure import Contribution
from cyberclaims.settings import limit_memory

QUARTER_PATTERN = re.compile(r"^(\d{4})Q([1-4])$")

class PackError(ValueError):
    """The pack cannot be built as asked (bad quarter, no data, warehouse not what was published)."""


@dataclass(frozen=True)
class Period:
    label: str
    start: dt.date
    end: dt.date  # included
    id: str  # period_id of the regulator marts (reg_periods): 2025Q4, 2025Q1-Q4


def parse_quarter(text: str) -> tuple[int, int]:
    m = QUARTER_PATTERN.match(text.strip().upper())
    if not m:
        raise PackError(f"quarter {text!r} is not of the form 2025Q4")
    return int(m.group(1)), int(m.group(2))


def quarter_period(year: int, quarter: int) -> Period:
    start = dt.date(year, 3 * quarter - 2, 1)
    end = (dt.date(year + 1, 1, 1) if quarter == 4 else dt.date(year, 3 * quarter + 1, 1)) - dt.timedelta(days=1)
    return Period(f"{year}Q{quarter}", start, end, f"{year}Q{quarter}")


def ytd_period(year: int, quarter: int) -> Period:
    return Period(f"{year} Q1–Q{quarter}", dt.date(year, 1, 1), quarter_period(year, quarter).end, f"{year}Q1-Q{quarter}")


def latest_complete_quarter(cutoff: dt.date) -> str:
    """The last quarter that ends on or before the data cut-off."""
    year, quarter = cutoff.year, (cutoff.month - 1) // 3 + 1
    if cutoff < quarter_period(year, quarter).end:
        year, quarter = (year, quarter - 1) if quarter > 1 else (year - 1, 4)
    return f"{year}Q{quarter}"


@dataclass
class CellStats:
    """Figures of one cell and its contributions, per disclosure group."""

    values: dict[str, int | Decimal | None] = field(default_factory=dict)
    exposure: Contribution | None = None
    loss: Contribution | None = None


Key = tuple[str, str]  # (row, column); column "total" (model.TOTAL_CODE) for one-way tables


@contextmanager
def attach(warehouse_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    limit_memory(con)
    try:
        con.execute(f"attach '{warehouse_path}' as wh (read_only)")
        yield con
    finally:
        con.close()


def data_cutoff(con: duckdb.DuckDBPyConnection) -> dt.date:
    cutoff = con.execute("select max(valuation_date) from wh.marts.fct_claim_valuations").fetchall()[0][0]
    if cutoff is None:
        raise PackError("the warehouse holds no claim valuations yet: run the cycle first")
    return cutoff


# reg_cells' figure columns → the pack's measures (regulator/model.py), by figure group.
EXPOSURE_FIGURES = {"policies_in_force": "policies_in_force", "insureds": "insureds",
                    "exposure_years": "exposure_years", "written_premium": "written_premium_cny",
                    "earned_premium": "earned_premium_cny"}
CLAIM_FIGURES = {"claims": "claims", "paid": "paid_cny", "incurred": "incurred_cny",
                 "severity_median": "severity_median_cny", "severity_p90": "severity_p90_cny",
                 "report_lag_median": "report_lag_median_days"}
RATIOS = {"loss_ratio": "loss_ratio", "frequency": "claim_frequency"}


def cut_id(row: str, column: str | None) -> str:
    """The cut's name in the regulator marts (dbt var regulator_pack_cuts)."""
    return "__".join(d for d in (row, column) if d)


def _fen(amount: Decimal | None) -> float:
    return float(amount * 100) if amount is not None else 0.0


def aggregate(con: duckdb.DuckDBPyConnection, period: Period, row: str, column: str | None) -> dict[Key, CellStats]:
    """Every cell (margins included) of the cut `row` × `column` in the period, from reg_cells and
    reg_cell_insurers: its figures, and its exposure and loss contributions (figure groups the cell
    has no atoms of, or the cut cannot carry, are absent)."""
    cut = cut_id(row, column)
    names = [*EXPOSURE_FIGURES.values(), "incidents", *CLAIM_FIGURES.values(), "loss_insureds", *RATIOS.values()]
    rows = con.execute(
        f"select row_code, column_code, {', '.join(names)} from wh.marts.reg_cells where period_id = $p and cut_id = $c",
        {"p": period.id, "c": cut}).fetchall()
    if not rows:
        known = con.execute("select count(*) from wh.marts.reg_cells where cut_id = $c", {"c": cut}).fetchall()[0][0]
        raise PackError(
            f"the regulator marts have no figures for {period.label} by {cut.replace('__', ' × ')}: "
            + ("the period is outside the data's years" if known else
               "add the cut to dbt var regulator_pack_cuts and rebuild (`cyberclaims run`)"))
    cells: dict[Key, CellStats] = {}
    for r, c, *figures in rows:
        f = dict(zip(names, figures, strict=True))
        stats = cells[(r, c)] = CellStats()
        if f["policies_in_force"] is not None:
            stats.values.update({m: f[col] for m, col in EXPOSURE_FIGURES.items()})
            stats.exposure = Contribution(insured_count=f["insureds"])
        if f["claims"] is not None:
            stats.values.update({m: f[col] for m, col in CLAIM_FIGURES.items()})
        if f["incidents"] is not None:
            stats.values["incidents"] = f["incidents"]
        if f["loss_insureds"] is not None:
            stats.loss = Contribution(insured_count=f["loss_insureds"])
        stats.values.update({m: f[col] for m, col in RATIOS.items()})
    for r, c, insurer, written, earned, paid, incurred, reports_loss in con.execute(
        """select row_code, column_code, insurer_id, written_premium_cny, earned_premium_cny, paid_cny,
                  incurred_cny, reports_loss
           from wh.marts.reg_cell_insurers where period_id = $p and cut_id = $c""",
        {"p": period.id, "c": cut}).fetchall():
        stats = cells[(r, c)]
        if earned is not None and stats.exposure is not None:
            stats.exposure.by_insurer[insurer] = _fen(earned)
            stats.exposure.amounts.setdefault("written_premium", {})[insurer] = _fen(written)
        if reports_loss and stats.loss is not None:
            stats.loss.by_insurer[insurer] = float(incurred) if incurred is not None else 0.0
            if incurred is not None:
                stats.loss.amounts.setdefault("paid", {})[insurer] = float(paid)
    return cells


def contributing_insurers(con: duckdb.DuckDBPyConnection, period: Period) -> int:
    """Insurers with a policy, an incident or a claim in the period."""
    return con.execute("select count(distinct insurer_id) from wh.marts.reg_cell_insurers where period_id = $p",
                       {"p": period.id}).fetchall()[0][0]


def claims_without_occurrence(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("select count(*) from wh.marts.reg_claims where occurred_date is null").fetchall()[0][0]


def labels(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, tuple[str, str]]]:
    """Bilingual names of every dimension value, from the published taxonomies."""
    out: dict[str, dict[str, tuple[str, str]]] = {}
    for dim, table, key in (
        ("sector", "dim_sector", "sector_code"),
        ("product_type", "dim_product_type", "product_type"),
        ("incident_type", "dim_incident_type", "incident_type"),
        ("province", "dim_region", "province_code"),
    ):
        out[dim] = {code: (zh, en) for code, zh, en in
                    con.execute(f"select {key}, name_zh, name_en from wh.marts.{table}").fetchall()}
    out["pilot"] = {code: (f"试点项目 {code}", f"Pilot programme {code}") for (code,) in con.execute(
        "select pilot_programme from wh.marts.reg_pilot_programmes").fetchall()}
    out["pilot"]["none"] = ("非试点", "Non-pilot")
    out["size"] = {"sme": ("中小企业", "SME"), "large": ("大型企业", "Large enterprise")}
    # Claim size bands in their order (seed tax_claim_size_band).
    out["severity_band"] = {code: (zh, en) for code, zh, en in con.execute(
        "select claim_size_band, name_zh, name_en from wh.reference.tax_claim_size_band order by sort_order").fetchall()}
    for names in out.values():
        names.setdefault("unknown", ("未知", "Unknown"))
    return out
