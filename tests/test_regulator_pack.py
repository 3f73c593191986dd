"""The regulator pack on a generated market: figures equal an independent recomputation from the
warehouse, and no suppressed figure can be solved for from everything published — in this pack,
and with the previous quarter's pack beside it."""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

import duckdb
import numpy as np
import pytest
from scipy.optimize import linprog

from cyberclaims.regulator.disclosure import CARRIED, SECONDARY, TOTAL, DisclosureRules
from cyberclaims.regulator.model import MEASURE_BY_CODE, SUPPRESSED, TOTAL_CODE, Pack
from cyberclaims.regulator.pack import GROUPS, PackConfig, build_pack, write_pack
from cyberclaims.regulator.statistics import PackError, quarter_period, ytd_period
from tests.conftest import materialize
from tests.pack_checks import check_csvs, check_json, check_report, check_workbook

QUARTER, PREVIOUS = "2024Q4", "2024Q3"  # the sample runs 2022-01 to 2024-12
EVERYTHING = DisclosureRules(min_insurers=0, min_insureds=0, dominance_share=1.0)
# Figures that add up exactly along every dimension except time (policies in force is a stock).
ATTACKED = ("policies_in_force", "written_premium", "earned_premium", "incidents", "claims", "paid", "incurred")
STOCKS = ("policies_in_force",)


@pytest.fixture(scope="module")
def packs(sample, tmp_path_factory) -> dict:
    unpublished = tmp_path_factory.mktemp("unpublished")
    everything = PackConfig(EVERYTHING)
    current, audit = build_pack(sample.warehouse_path, unpublished)
    return {
        "current": current,
        "current_audit": audit,
        "previous": build_pack(sample.warehouse_path, unpublished, PREVIOUS)[0],
        "current_true": build_pack(sample.warehouse_path, unpublished, QUARTER, everything)[0],
        "previous_true": build_pack(sample.warehouse_path, unpublished, PREVIOUS, everything)[0],
    }


def test_the_pack_files_of_the_generated_market_open_and_hold_the_pack(packs, sample, tmp_path):
    """What a regulator opens: the workbook in a spreadsheet program, the CSVs, the JSON, the report;
    the bureau's audit goes elsewhere and names the insurers."""
    unpublished = tmp_path / "unpublished"
    pack, audit = build_pack(sample.warehouse_path, unpublished)
    written = write_pack(pack, audit, tmp_path / "regulator", tmp_path / "internal")
    folder = tmp_path / "regulator" / QUARTER
    check_workbook(written["workbook"], pack)
    check_csvs(folder / "csv", pack)
    check_json(written["json"], pack)
    check_report(folder, pack)
    insurers = {row[0] for row in sample.con().execute("select distinct insurer_id from control.submissions").fetchall()}
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix in (".csv", ".json", ".html"):
            text = path.read_text(encoding="utf-8-sig")
            assert not any(insurer in text for insurer in insurers), f"{path} names an insurer"
    audit_text = (tmp_path / "internal" / QUARTER / "contributions.csv").read_text(encoding="utf-8")
    assert all(insurer in audit_text for insurer in insurers)


@pytest.mark.parametrize(("quarter", "message"), [
    ("2025Q1", "2025Q1 is not complete"), ("2019Q4", "there are no data for 2019Q4"), ("2024Q5", "not of the form"),
])
def test_a_quarter_without_complete_data_is_refused_with_a_reason(sample, tmp_path, quarter, message):
    with pytest.raises(PackError, match=message):
        build_pack(sample.warehouse_path, tmp_path, quarter)


def test_the_cycle_builds_no_pack_before_the_first_complete_quarter_but_an_asked_quarter_fails(sample, tmp_path):
    """A market in its first months: the latest complete quarter precedes every policy."""

    from cyberclaims.orchestration.defs.regulator.assets import regulator_pack
    from tests.conftest import make_resources

    warehouse = tmp_path / "warehouse" / "young.duckdb"
    warehouse.parent.mkdir()
    sample.scratch_copy(warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("update marts.fct_policies set inception_date = DATE '2025-01-01'")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CYBERCLAIMS_DATA_DIR", str(tmp_path))
        resources = make_resources(tmp_path, warehouse)
        cycle = materialize([regulator_pack], resources)
        asked = materialize([regulator_pack], resources, raise_on_error=False, run_config={
            "ops": {"regulator__pilot_statistics": {"config": {"quarter": QUARTER}}}})
    assert cycle.success and not cycle.get_asset_materialization_events()
    assert not (tmp_path / "regulator").exists()
    assert not asked.success
    failure = asked.get_step_failure_events()[0].event_specific_data.error
    assert f"there are no data for {QUARTER}" in str(failure.cause or failure.message)


def test_a_pack_refuses_marts_that_are_not_the_published_version(sample, tmp_path):
    """The cover names the publication version: the figures must be that version's. The version's
    manifest records the inputs of the build it was published from; a warehouse rebuilt from other
    inputs since (a new submission admitted, one revoked) is refused, and so is a version that does
    not record them."""

    from cyberclaims.orchestration.defs.transformation.project import dbt_project
    from cyberclaims.publication.publish import publication_metadata, publish, published_tables_from_manifest

    warehouse = tmp_path / "warehouse.duckdb"
    sample.scratch_copy(warehouse)
    published = tmp_path / "published"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        extra = publication_metadata(con, dbt_project().project_dir)
    assert extra["inputs_fingerprint"]
    publish(warehouse, published, published_tables_from_manifest(dbt_project().manifest_path), extra)
    assert _published_version_of(warehouse, published) == 1

    with duckdb.connect(str(warehouse)) as con:
        con.execute("INSERT INTO control.mart_builds (started_at, inputs_fingerprint, dbt_project_fingerprint) "
                    "SELECT max(started_at) + INTERVAL 1 HOUR, 'rebuilt from other inputs', "
                    "any_value(dbt_project_fingerprint) FROM control.mart_builds")
    with pytest.raises(PackError, match="not what was published as version 1"):
        build_pack(warehouse, published)

    unrecorded = tmp_path / "unrecorded"
    publish(sample.warehouse_path, unrecorded, published_tables_from_manifest(dbt_project().manifest_path), {})
    with pytest.raises(PackError, match="published from an unrecorded build"):
        _published_version_of(sample.warehouse_path, unrecorded)


def _published_version_of(warehouse, published):
    from cyberclaims.regulator.pack import check_published_version
    from cyberclaims.regulator.statistics import attach

    with attach(warehouse) as con:
        return check_published_version(con, published)


# --- independent recomputation --------------------------------------------------------------------

def _months(start: dt.date, end: dt.date):
    month = start
    while month <= end:
        following = dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)
        yield month, min(following, end + dt.timedelta(days=1))
        month = following


def _cohort(code: str | None, pattern: str) -> str:
    if code is None:
        return "none"
    found = re.search(pattern, code)
    return found.group(1) if found and found.group(1) else code


def _programme_pattern() -> str:
    """The pilot programme pattern dbt applies (var pilot_programme_pattern)."""
    import yaml

    from cyberclaims.orchestration.defs.transformation.project import dbt_project

    project = yaml.safe_load((dbt_project().project_dir / "dbt_project.yml").read_text(encoding="utf-8"))
    return project["vars"]["pilot_programme_pattern"]


def _segment(policy, pattern: str = _programme_pattern()) -> dict:
    if policy is None:
        return {"sector": "unknown", "product_type": "unknown", "province": "unknown", "pilot": "unknown",
                "size": "unknown"}
    return {"sector": policy["sector_code"] or "unknown", "product_type": policy["product_type"] or "unknown",
            "province": policy["province_code"] or "unknown", "pilot": _cohort(policy["pilot_code"], pattern),
            "size": "unknown" if policy["is_sme"] is None else ("sme" if policy["is_sme"] else "large")}


def _rows(con, sql):
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _bands_of_the_seed() -> list[tuple[str, Decimal | None]]:
    """The claim size bands as the seed file writes them (code, inclusive upper bound), in order."""
    import csv

    from cyberclaims.orchestration.defs.transformation.project import dbt_project

    with (dbt_project().project_dir / "seeds" / "tax_claim_size_band.csv").open(encoding="utf-8") as f:
        rows = sorted(csv.DictReader(f), key=lambda b: int(b["sort_order"]))
    return [(b["claim_size_band"], Decimal(b["upper_bound"]) if b["upper_bound"] else None) for b in rows]


class Recomputed:
    """Every cell of every table, computed row by row in Python from the warehouse tables."""

    def __init__(self, con, bands):
        self.policies = {p["policy_key"]: p for p in _rows(con, "select * from marts.fct_policies")}
        self.claims = _rows(con, "select * from marts.fct_claims")
        self.incidents = _rows(con, "select * from intermediate.int_incidents__linked")
        self.bands = bands

    def band(self, incurred: Decimal) -> str:
        return next(code for code, upper in self.bands if upper is None or incurred <= upper)

    def cells(self, start: dt.date, end: dt.date, row: str, column: str | None) -> dict:
        acc = defaultdict(lambda: {"n": 0, "insureds": set(), "days": 0, "written": Decimal(0), "earned": Decimal(0),
                                   "claims": 0, "paid": Decimal(0), "incurred": Decimal(0), "sev": [], "lags": [],
                                   "incidents": 0})

        def keys(atom):
            r = atom[row]
            if column is None:
                return [(r, TOTAL_CODE), (TOTAL_CODE, TOTAL_CODE)]
            c = atom[column]
            return [(r, c), (r, TOTAL_CODE), (TOTAL_CODE, c), (TOTAL_CODE, TOTAL_CODE)]

        for p in self.policies.values():
            if p["expiry_date"] <= p["inception_date"] or row in ("incident_type", "severity_band") \
                    or column == "incident_type":
                continue
            term = (p["expiry_date"] - p["inception_date"]).days
            days, earned = 0, Decimal(0)
            for month_start, month_after in _months(start, end):
                d = (min(p["expiry_date"], month_after) - max(p["inception_date"], month_start)).days
                if d > 0:
                    days += d
                    earned += (p["written_premium_cny"] * d / term).quantize(Decimal("0.01"), ROUND_HALF_UP)
            if days <= 0:
                continue
            atom = _segment(p)
            for k in keys(atom):
                a = acc[k]
                a["n"] += 1
                a["insureds"].add(p["insured_key"])
                a["days"] += days
                a["earned"] += earned
                if start <= p["inception_date"] <= end:
                    a["written"] += p["written_premium_cny"]
        for c in self.claims:
            if c["occurred_date"] is None or not (start <= c["occurred_date"] <= end):
                continue
            atom = {**_segment(self.policies.get(c["policy_key"])), "incident_type": c["incident_type"] or "unknown",
                    "severity_band": self.band(c["incurred_cny"])}
            for k in keys(atom):
                a = acc[k]
                a["claims"] += 1
                a["paid"] += c["paid_cny"]
                a["incurred"] += c["incurred_cny"]
                if c["incurred_cny"] > 0:
                    a["sev"].append(float(c["incurred_cny"]))
                a["lags"].append((c["report_date"] - c["occurred_date"]).days)
        if row != "severity_band":
            for i in self.incidents:
                if not (start <= i["occurred_date"] <= end):
                    continue
                atom = {**_segment(self.policies.get(i["policy_key"])), "incident_type": i["incident_type"] or "unknown"}
                for k in keys(atom):
                    acc[k]["incidents"] += 1
        return acc


def _check_cell(measure: str, value, a) -> None:
    years = (Decimal(a["days"]) / 365).quantize(Decimal("0.01"), ROUND_HALF_UP)
    exact = {
        "policies_in_force": a["n"], "insureds": len(a["insureds"]), "exposure_years": years,
        "written_premium": a["written"], "earned_premium": a["earned"], "incidents": a["incidents"],
        "claims": a["claims"], "paid": a["paid"], "incurred": a["incurred"],
    }
    if measure in exact:
        assert value == exact[measure], measure
    elif measure == "loss_ratio":
        assert value == (a["incurred"] / a["earned"]).quantize(Decimal("0.0001"), ROUND_HALF_UP)
    elif measure == "frequency":
        assert value == (Decimal(a["claims"]) * 100 / years).quantize(Decimal("0.01"), ROUND_HALF_UP)
    elif measure in ("severity_median", "severity_p90"):
        q = 0.5 if measure == "severity_median" else 0.9
        assert abs(float(value) - float(np.quantile(a["sev"], q))) <= 0.0051, measure
    elif measure == "report_lag_median":
        assert abs(float(value) - float(np.median(a["lags"]))) <= 0.051
    else:
        raise AssertionError(f"no recomputation for {measure}")


def test_the_packs_earned_premium_is_the_actuaries_mart_s_to_the_fen(sample, packs):
    """Earned premium is defined once: table 1's sector and product margins (quarter and year to date)
    equal agg_exposure_monthly's cells of the same segment summed over the period's months, and both
    equal premium × earned days ÷ term days rounded half up to the fen per policy and month, in Decimal."""
    pack = packs["current_true"]
    with sample.con() as con:
        policies = _rows(con, "select * from marts.fct_policies where expiry_date > inception_date")
        mart = _rows(con, """select month_start, sector_code, product_type, earned_premium_cny
                             from marts.agg_exposure_monthly
                             where size_band = 'all' and province_code = 'all' and pilot_cohort = 'all'
                               and (sector_code = 'all' or product_type = 'all')""")
    compared = 0
    for period in ("quarter", "ytd"):
        table = pack.table("sector_product", period)
        start, end = table.period_start, table.period_end
        truth: dict = defaultdict(Decimal)
        for p in policies:
            term = (p["expiry_date"] - p["inception_date"]).days
            for month_start, month_after in _months(start, end):
                d = (min(p["expiry_date"], month_after) - max(p["inception_date"], month_start)).days
                if d > 0:
                    earned = (p["written_premium_cny"] * d / term).quantize(Decimal("0.01"), ROUND_HALF_UP)
                    sector, product = p["sector_code"] or "unknown", p["product_type"] or "unknown"
                    for key in ((sector, TOTAL_CODE), (TOTAL_CODE, product), (TOTAL_CODE, TOTAL_CODE)):
                        truth[key] += earned
        actuaries: dict = defaultdict(Decimal)
        for m in mart:
            if start <= m["month_start"] <= end:
                key = (TOTAL_CODE if m["sector_code"] == "all" else m["sector_code"],
                       TOTAL_CODE if m["product_type"] == "all" else m["product_type"])
                actuaries[key] += m["earned_premium_cny"]
        margins = [c for c in table.cells if TOTAL_CODE in (c.row, c.column)]
        assert len(margins) > 10
        for cell in margins:
            key = (cell.row, cell.column)
            assert cell.values["earned_premium"] == actuaries[key] == truth[key], (period, key)
            compared += 1
    assert compared > 20


def test_published_figures_equal_an_independent_recomputation_from_the_warehouse(sample, packs):
    pack = packs["current"]
    with sample.con() as con:
        recomputed = Recomputed(con, _bands_of_the_seed())
    year, q = int(QUARTER[:4]), int(QUARTER[-1])
    checked = 0
    for table in pack.tables:
        row, column = table.row_dim.code, table.column_dim.code if table.column_dim else None
        if table.name == "sector_quarter":
            expected = {}
            for j in range(1, q + 1):
                period = quarter_period(year, j)
                for (r, _), a in recomputed.cells(period.start, period.end, "sector", None).items():
                    expected[(r, period.label)] = a
            for (r, _), a in recomputed.cells(*ytd_range(year, q), "sector", None).items():
                expected[(r, TOTAL_CODE)] = a
        else:
            expected = recomputed.cells(table.period_start, table.period_end, row, column)
        for cell in table.cells:
            a = expected.get((cell.row, cell.column if column else TOTAL_CODE))
            for m in table.measures:
                value = cell.values[m]
                if value is None:
                    continue
                if a is None:  # a cell nobody contributes to: zero counts and amounts only
                    kind = MEASURE_BY_CODE[m]
                    assert (kind.additive or kind.kind == "count") and value == 0, (table.key, cell.row, cell.column, m)
                else:
                    _check_cell(m, value, a)
                checked += 1
    assert checked > 3000
    # The grand total of table 1 is the whole market's: published, unless a primary rule hides the grand total
    # itself (its year to date or, linked to it, its quarter: a quarter one insurer's payments dominate).
    total = pack.table("sector_product", "ytd").cell(TOTAL_CODE, TOTAL_CODE)
    assert total.values["policies_in_force"] > 0 and total.values["written_premium"] > 0
    audit = packs["current_audit"]
    for m in total.flags:
        group = MEASURE_BY_CODE[m].group
        reasons = {r for g in (GROUPS if group == "both" else (group,)) for p in ("quarter", "ytd")
                   for r in audit.grids[f"sector_product_{p}:{g}"].suppressed.get((TOTAL, TOTAL), [])}
        assert reasons - {SECONDARY, CARRIED}, f"the grand total's {m} is hidden without a primary reason: {reasons}"
    assert total.flags or total.values["claims"] > 0


def ytd_range(year: int, q: int):
    period = ytd_period(year, q)
    return period.start, period.end


# --- disclosure control on the pack ----------------------------------------------------------------

def test_the_pack_has_primary_and_secondary_suppressions_and_true_totals(packs):
    pack, truth = packs["current"], packs["current_true"]
    assert pack.suppression_summary["primary"] >= 1 and pack.suppression_summary["secondary"] >= 1
    assert truth.suppression_summary["primary"] == truth.suppression_summary["secondary"] == 0
    for table in pack.tables:
        true_table = truth.table(table.name, table.period)
        for cell, true_cell in zip(table.cells, true_table.cells, strict=True):
            for m in table.measures:
                # Published figures are the true ones; hidden ones are marked, never blanked or altered.
                if cell.values[m] is not None:
                    assert cell.values[m] == true_cell.values[m]
                elif true_cell.values[m] is not None:
                    assert cell.flags[m] == SUPPRESSED


def _lines(table, measure):
    """Equations of one table: (entries, total entry); entries are (row, column) keys."""
    column_keys = [c.column for c in table.cells if c.row == TOTAL_CODE] if table.column_dim else [TOTAL_CODE]
    rows = [c.row for c in table.cells if c.column in (TOTAL_CODE, None)]
    inner_rows, inner_columns = [r for r in rows if r != TOTAL_CODE], [c for c in column_keys if c != TOTAL_CODE]
    lines = []
    if table.column_dim is None:
        return [([(r, TOTAL_CODE) for r in inner_rows], (TOTAL_CODE, TOTAL_CODE))]
    across_time = table.name == "sector_quarter"
    if not (across_time and measure in STOCKS):
        lines += [([(r, c) for c in inner_columns], (r, TOTAL_CODE)) for r in rows]
    lines += [([(r, c) for r in inner_rows], (TOTAL_CODE, c)) for c in column_keys]
    return lines


def _same_figures(pack_id: str, pack: Pack) -> list[tuple]:
    """Entries of one pack that are the same figure (what a reader can match up)."""
    q = int(pack.quarter[-1])
    same = []
    for period in ("quarter", "ytd"):
        tables = [t for t in pack.tables if t.period == period and t.name != "sector_quarter"]
        same.append([(pack_id, t.key, (TOTAL_CODE, TOTAL_CODE)) for t in tables])
        sectors = {c.row for c in pack.table("sector_product", period).cells}
        same += [[(pack_id, f"sector_product_{period}", (s, TOTAL_CODE)),
                  (pack_id, f"sector_incident_type_{period}", (s, TOTAL_CODE))] for s in sectors]
    for s in {c.row for c in pack.table("sector_quarter", "ytd").cells}:
        same.append([(pack_id, "sector_quarter_ytd", (s, pack.quarter)), (pack_id, "sector_product_quarter", (s, TOTAL_CODE))])
        same.append([(pack_id, "sector_quarter_ytd", (s, TOTAL_CODE)), (pack_id, "sector_product_ytd", (s, TOTAL_CODE))])
    if q == 1:
        for t in pack.tables:
            if t.period == "quarter":
                same += [[(pack_id, t.key, (c.row, c.column or TOTAL_CODE)),
                          (pack_id, f"{t.name}_ytd", (c.row, c.column or TOTAL_CODE))] for c in t.cells]
    return same


def attack(published: dict[str, Pack], truth: dict[str, Pack], measure: str, across_packs: bool) -> list[str]:
    """Bound every hidden figure of `measure` by linear programming over everything published:
    each table's sums, figures repeated across tables, non-negativity, and (across packs) this year to
    date = last year to date + this quarter. Returns the hidden figures the attacker pins down."""
    index: dict[tuple, int] = {}
    value: dict[tuple, Decimal] = {}
    true_value: dict[tuple, Decimal] = {}
    tables = {}
    for pid, pack in published.items():
        for t in pack.tables:
            if measure not in t.measures:
                continue
            tables[(pid, t.key)] = t
            true_t = truth[pid].table(t.name, t.period)
            for cell, true_cell in zip(t.cells, true_t.cells, strict=True):
                entry = (pid, t.key, (cell.row, cell.column or TOTAL_CODE))
                true_value[entry] = true_cell.values[measure]
                if cell.values[measure] is None:
                    index[entry] = len(index)
                else:
                    value[entry] = cell.values[measure]
    if not index:
        return []
    equations: list[list[tuple[float, tuple]]] = []
    for (pid, key), t in tables.items():
        for parts, total in _lines(t, measure):
            equations.append([(1.0, (pid, key, p)) for p in parts] + [(-1.0, (pid, key, total))])
    for pid, pack in published.items():
        for group in _same_figures(pid, pack):
            group = [e for e in group if e in value or e in index]
            equations += [[(1.0, a), (-1.0, b)] for a, b in zip(group, group[1:], strict=False)]
    if across_packs:
        prev, cur = published["previous"], published["current"]
        for t in cur.tables:
            if t.period != "ytd" or t.name == "sector_quarter" or measure in STOCKS or measure not in t.measures:
                continue
            for cell in t.cells:
                k = (cell.row, cell.column or TOTAL_CODE)
                ytd, last, this = ("current", t.key, k), ("previous", t.key, k), ("current", f"{t.name}_quarter", k)
                if all(e in value or e in index for e in (ytd, last, this)):
                    equations.append([(1.0, ytd), (-1.0, last), (-1.0, this)])
        for c in prev.table("sector_quarter", "ytd").cells:
            k = (c.row, c.column)
            if c.column != TOTAL_CODE:
                equations.append([(1.0, ("previous", "sector_quarter_ytd", k)), (-1.0, ("current", "sector_quarter_ytd", k))])
    a_eq, b_eq = [], []
    for equation in equations:
        row, constant = np.zeros(len(index)), 0.0
        for coefficient, entry in equation:
            if entry in index:
                row[index[entry]] += coefficient
            elif entry in value:
                constant -= coefficient * float(value[entry])
        if row.any():
            a_eq.append(row)
            b_eq.append(constant)
    pinned = []
    a_eq, b_eq = np.array(a_eq), np.array(b_eq)
    bounds = [(0, None)] * len(index)
    for entry, i in index.items():
        objective = np.zeros(len(index))
        objective[i] = 1.0
        low = linprog(objective, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
        high = linprog(-objective, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
        assert low.status == 0, f"published {measure} figures must be consistent ({low.message})"
        truth_here = float(true_value[entry])
        upper = -high.fun if high.status == 0 else float("inf")
        assert low.fun - 1e-4 <= truth_here <= upper + 1e-4
        if upper - low.fun <= 1e-6 * max(1.0, truth_here):
            pinned.append(f"{entry} = {truth_here} pinned to [{low.fun}, {upper}]")
    return pinned


def _hidden(pack, measure: str) -> int:
    return sum(c.flags.get(measure) == SUPPRESSED for t in pack.tables for c in t.cells)


@pytest.mark.parametrize("measure", ATTACKED)
def test_no_suppressed_figure_of_the_pack_can_be_solved_for(packs, measure):
    assert _hidden(packs["current"], measure) > 0, "the pack hides some of these figures: there is something to attack"
    pinned = attack({"current": packs["current"]}, {"current": packs["current_true"]}, measure, across_packs=False)
    assert pinned == []


@pytest.mark.parametrize("measure", ATTACKED)
def test_nor_with_the_previous_quarters_pack_beside_it(packs, measure):
    assert _hidden(packs["current"], measure) > 0 and _hidden(packs["previous"], measure) > 0
    published = {"current": packs["current"], "previous": packs["previous"]}
    truth = {"current": packs["current_true"], "previous": packs["previous_true"]}
    assert attack(published, truth, measure, across_packs=True) == []


def test_the_attack_does_pin_down_a_lone_suppression(packs):
    """The attack is real: hide one interior figure only, and it is solved for exactly."""
    published = copy.deepcopy(packs["current_true"])
    table = published.table("sector_product", "ytd")
    cell = next(c for c in table.cells if c.row != TOTAL_CODE and c.column != TOTAL_CODE and c.values["claims"])
    hidden = cell.values["claims"]
    cell.values["claims"], cell.flags["claims"] = None, SUPPRESSED
    pinned = attack({"current": published}, {"current": packs["current_true"]}, "claims", across_packs=False)
    assert len(pinned) == 1 and str(float(hidden)) in pinned[0]


def test_pack_csvs_neutralise_text_a_spreadsheet_would_run(packs, tmp_path):
    """OWASP CSV injection: a label starting with = + - @ is written as text; figures stay numbers."""
    import csv as csv_module

    from cyberclaims.regulator.render import write_csvs

    pack = copy.deepcopy(packs["current"])
    table = pack.table("sector_product", "ytd")
    planted = ["=cmd|' /C calc'!A0", "@SUM(1+1)", "+1+1", "-2+3", '=HYPERLINK("http://x","y")']
    cells = [c for c in table.cells if c.row != TOTAL_CODE][: len(planted)]
    for cell, text in zip(cells, planted, strict=True):
        cell.row_en = text
    written = {p.name: p for p in write_csvs(pack, tmp_path)}
    with written[f"{table.key}.csv"].open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv_module.reader(f))
    texts = [v for row in rows[1:] for v in row]
    assert all("'" + text in texts for text in planted)
    assert not any(v.startswith(("=", "+", "@")) for v in texts)
    negative = [v for v in texts if v.startswith("-")]
    assert all(float(v) < 0 for v in negative)  # only numbers may start with a minus sign
