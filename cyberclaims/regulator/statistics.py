"""Quarterly statistics from the regulator marts: every cell's figures and who contributes to it.

The warehouse is attached read-only to an in-memory DuckDB. Every definition lives in dbt, in the
contracted internal marts of models/marts/regulator (never published): reg_policy_months (one row
per policy and calendar month with an earned day, earned premium and written premium),
reg_incidents and reg_claims (latest versions and valuations, with the occurrence date), each row
carrying its insurer, its insured and the pack's segment of its policy (sector, product, province,
pilot programme, SME or large). Each period gets three atom tables — the marts' rows in the period,
a policy's months summed into one row — and every table of the pack is a GROUPING SETS aggregation
of those atoms, so margins are computed from the same rows as the cells (distinct insureds and
quantiles included), never added up from rounded cells. Python adds only the period selection, the
claim size bands of the pack's rules, the ratios and the contributions disclosure control needs.

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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb

from cyberclaims.regulator.disclosure import Contribution
from cyberclaims.regulator.model import TOTAL_CODE
from cyberclaims.settings import limit_memory

QUARTER_PATTERN = re.compile(r"^(\d{4})Q([1-4])$")
CENT = Decimal("0.01")
TENTH = Decimal("0.1")

# Atom columns a table can be cut by.
DIMENSIONS = frozenset({"sector", "product_type", "province", "pilot", "size", "incident_type", "severity_band"})


class PackError(ValueError):
    """The pack cannot be built as asked (bad quarter, no data, warehouse not what was published)."""


@dataclass(frozen=True)
class Period:
    label: str
    start: dt.date
    end: dt.date  # included


def parse_quarter(text: str) -> tuple[int, int]:
    m = QUARTER_PATTERN.match(text.strip().upper())
    if not m:
        raise PackError(f"quarter {text!r} is not of the form 2025Q4")
    return int(m.group(1)), int(m.group(2))


def quarter_period(year: int, quarter: int) -> Period:
    start = dt.date(year, 3 * quarter - 2, 1)
    end = (dt.date(year + 1, 1, 1) if quarter == 4 else dt.date(year, 3 * quarter + 1, 1)) - dt.timedelta(days=1)
    return Period(f"{year}Q{quarter}", start, end)


def ytd_period(year: int, quarter: int) -> Period:
    return Period(f"{year} Q1–Q{quarter}", dt.date(year, 1, 1), quarter_period(year, quarter).end)


def latest_complete_quarter(cutoff: dt.date) -> str:
    """The last quarter that ends on or before the data cut-off."""
    year, quarter = cutoff.year, (cutoff.month - 1) // 3 + 1
    if cutoff < quarter_period(year, quarter).end:
        year, quarter = (year, quarter - 1) if quarter > 1 else (year - 1, 4)
    return f"{year}Q{quarter}"


@dataclass(frozen=True)
class SeverityBand:
    code: str
    zh: str
    en: str
    upper: Decimal | None  # incurred up to and including this (CNY); None = no upper bound


@dataclass
class CellStats:
    """Figures of one cell and its contributions, per disclosure group."""

    values: dict[str, int | Decimal | None] = field(default_factory=dict)
    exposure: Contribution | None = None
    loss: Contribution | None = None


Key = tuple[str, str]  # (row, column); column TOTAL_CODE for one-way tables


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


# The pack's dimensions and the columns of the regulator marts (marts/regulator) that hold them.
SEGMENT = """sector_code as sector, product_type, province_code as province, pilot_programme as pilot,
        enterprise_size as size"""


def _band_case(bands: Sequence[SeverityBand], incurred: str) -> str:
    """The claim size band of an incurred amount in CNY."""
    arms = [f"when {incurred} <= {b.upper} then '{b.code}'" for b in bands if b.upper is not None]
    last = next(b.code for b in bands if b.upper is None)
    return f"case {' '.join(arms)} else '{last}' end"


def build_atoms(con: duckdb.DuckDBPyConnection, period: Period, bands: Sequence[SeverityBand]) -> None:
    """(Re)create the temp tables policy_atoms, incident_atoms and claim_atoms for the period: the rows
    of the regulator marts in the period, a policy's months summed into one row."""
    params = {"s": period.start, "e": period.end}
    con.execute(
        f"""
        create or replace temp table policy_atoms as
        select
            policy_key, insured_key, insurer_id, {SEGMENT},
            sum(earned_days) as earned_days,
            cast(sum(earned_premium_cny) * 100 as bigint) as earned_fen,
            cast(sum(written_premium_cny) * 100 as bigint) as written_fen
        from wh.marts.reg_policy_months
        where month_start between $s and $e
        group by all
        """,
        params,
    )
    con.execute(
        f"""
        create or replace temp table incident_atoms as
        select incident_key, insurer_id, insured_key, incident_type, {SEGMENT}
        from wh.marts.reg_incidents
        where occurred_date between $s and $e
        """,
        params,
    )
    con.execute(
        f"""
        create or replace temp table claim_atoms as
        select claim_key, insurer_id, insured_key, incident_type, {SEGMENT},
               paid_cny as paid, incurred_cny as incurred, report_lag_days,
               {_band_case(bands, 'incurred_cny')} as severity_band
        from wh.marts.reg_claims
        where occurred_date between $s and $e
        """,
        params,
    )


def _grouping(row: str, column: str | None) -> tuple[str, list[tuple[str, ...]]]:
    """Select list of the cell keys, and the grouping sets: the cells and every margin."""
    if not {row, column} - {None} <= DIMENSIONS:
        raise ValueError(f"no dimension {row!r} or {column!r} in the atoms")
    r = row
    row_key = f"case when grouping({r}) = 1 then '{TOTAL_CODE}' else {r} end as r"
    if column is None:
        return f"{row_key}, '{TOTAL_CODE}' as c", [(r,), ()]
    c = column
    return (f"{row_key}, case when grouping({c}) = 1 then '{TOTAL_CODE}' else {c} end as c",
            [(r, c), (r,), (c,), ()])


def _sets(sets: list[tuple[str, ...]], *extra: str) -> str:
    return "grouping sets (" + ", ".join("(" + ", ".join([*s, *extra]) + ")" for s in sets) + ")"


def quantile(values: list, q: float, step: Decimal = CENT) -> Decimal | None:
    """Linear-interpolation quantile (numpy's default), exact in Decimal, rounded half up."""
    if not values:
        return None
    ordered = sorted(Decimal(v) for v in values)
    position = Decimal(str(q)) * (len(ordered) - 1)
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    fraction = position - lower
    value = ordered[lower] + (ordered[upper] - ordered[lower]) * fraction
    return value.quantize(step, rounding=ROUND_HALF_UP)


def _yuan(fen: int) -> Decimal:
    return Decimal(fen).scaleb(-2)


def _ratio(numerator, denominator, step: Decimal, scale: int = 1) -> Decimal | None:
    if numerator is None or not denominator:
        return None
    return (Decimal(numerator) * scale / Decimal(denominator)).quantize(step, rounding=ROUND_HALF_UP)


def aggregate(con: duckdb.DuckDBPyConnection, row: str, column: str | None, *,
              exposure: bool, incidents: bool) -> dict[Key, CellStats]:
    """Every cell (margins included) of a table cut by `row` × `column` over the current atoms."""
    keys, grouping = _grouping(row, column)
    sets, by_insurer_sets = _sets(grouping), _sets(grouping, "insurer_id")
    cells: dict[Key, CellStats] = {}

    def cell(k: Key) -> CellStats:
        return cells.setdefault(k, CellStats())

    if exposure:
        for r, c, n, insureds, days, written, earned in con.execute(
            # An empty period still has its grand total row, with null sums.
            f"""select {keys}, count(*), count(distinct insured_key), coalesce(sum(earned_days), 0),
                       coalesce(sum(written_fen), 0), coalesce(sum(earned_fen), 0)
                from policy_atoms group by {sets}"""
        ).fetchall():
            years = (Decimal(days) / 365).quantize(CENT, rounding=ROUND_HALF_UP)
            cell((r, c)).values.update(
                policies_in_force=n, insureds=insureds, exposure_years=years,
                written_premium=_yuan(written), earned_premium=_yuan(earned))
            cell((r, c)).exposure = Contribution(insured_count=insureds)
        for r, c, insurer, written, earned in con.execute(
            f"""select {keys}, insurer_id, sum(written_fen), sum(earned_fen)
                from policy_atoms group by {by_insurer_sets}"""
        ).fetchall():
            contribution = cells[(r, c)].exposure
            contribution.by_insurer[insurer] = float(earned)
            contribution.amounts.setdefault("written_premium", {})[insurer] = float(written)

    for r, c, n, paid, incurred, severities, lags in con.execute(
        f"""select {keys}, count(*), coalesce(sum(paid), 0), coalesce(sum(incurred), 0),
                   list(incurred) filter (where incurred > 0), list(report_lag_days) filter (where report_lag_days is not null)
            from claim_atoms group by {sets}"""
    ).fetchall():
        cell((r, c)).values.update(
            claims=n, paid=Decimal(paid).quantize(CENT), incurred=Decimal(incurred).quantize(CENT),
            severity_median=quantile(severities or [], 0.5), severity_p90=quantile(severities or [], 0.9),
            report_lag_median=quantile(lags or [], 0.5, TENTH))
    # Loss contributors: whoever reports an incident or a claim in the cell. Distinct insureds are
    # counted here, where the data are, never carried into Python as sets.
    dims = ", ".join(d for d in (row, column) if d)
    reported = f"select {dims}, insurer_id, insured_key from claim_atoms" + (
        f" union all select {dims}, insurer_id, insured_key from incident_atoms" if incidents else "")
    for r, c, insureds in con.execute(
        f"select {keys}, count(distinct insured_key) from ({reported}) group by {sets}"
    ).fetchall():
        cell((r, c)).loss = Contribution(insured_count=insureds)
    for r, c, insurer in con.execute(f"select {keys}, insurer_id from ({reported}) group by {by_insurer_sets}").fetchall():
        cells[(r, c)].loss.by_insurer[insurer] = 0.0
    for r, c, insurer, paid, incurred in con.execute(
        f"""select {keys}, insurer_id, sum(paid), sum(incurred) from claim_atoms group by {by_insurer_sets}"""
    ).fetchall():
        contribution = cells[(r, c)].loss
        contribution.by_insurer[insurer] = float(incurred)
        contribution.amounts.setdefault("paid", {})[insurer] = float(paid)
    if incidents:
        for r, c, n in con.execute(f"select {keys}, count(*) from incident_atoms group by {sets}").fetchall():
            cell((r, c)).values["incidents"] = n
    for stats in cells.values():
        v = stats.values
        v["loss_ratio"] = _ratio(v.get("incurred", Decimal(0)), v.get("earned_premium"), Decimal("0.0001"))
        v["frequency"] = _ratio(v.get("claims", 0), v.get("exposure_years"), CENT, scale=100)
    return cells


def contributing_insurers(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute(
        """select count(distinct insurer_id) from (
               select insurer_id from policy_atoms union all select insurer_id from incident_atoms
               union all select insurer_id from claim_atoms)"""
    ).fetchall()[0][0]


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
    for names in out.values():
        names.setdefault("unknown", ("未知", "Unknown"))
    return out
