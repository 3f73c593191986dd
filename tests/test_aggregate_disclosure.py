"""The published aggregates (agg_*) on the sample market: every cell they show covers >= 5 insureds and
>= 3 insurers (recounted here from the warehouse, not from the marts' own columns), no hidden cell follows
from the published ones by subtraction along a dimension, a month or a quarter, and a linear-programming
attacker holding a whole two-way slice with its margins pins no hidden cell down."""

from __future__ import annotations

import itertools

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linprog

SEGMENT = ("sector_code", "size_band", "product_type", "province_code", "pilot_cohort")


@pytest.fixture(scope="module")
def published(sample, tmp_path_factory):
    from cyberclaims.orchestration.defs.transformation.project import dbt_project
    from cyberclaims.publication.publish import publication_metadata, publish, published_tables_from_manifest

    out = tmp_path_factory.mktemp("aggregates") / "published"
    with sample.con() as con:
        extra = publication_metadata(con, dbt_project().project_dir)
    return publish(sample.warehouse_path, out, published_tables_from_manifest(dbt_project().manifest_path), extra).path


def _cube(con, source: str, keys: list[str], dims: tuple[str, ...]) -> pd.DataFrame:
    """Distinct insureds and insurers per cell of every grouping set of `dims` ('all' where rolled up),
    with one GROUP BY per set (not the marts' CUBE)."""
    frames = []
    for n in range(len(dims) + 1):
        for kept in itertools.combinations(dims, n):
            select = ", ".join([*keys, *(d if d in kept else f"'all' AS {d}" for d in dims)])
            group = ", ".join([*keys, *kept]) or "()"
            frames.append(con.execute(
                f"SELECT {select}, count(DISTINCT insured_key) AS insureds, count(DISTINCT insurer_id) AS insurers "
                f"FROM {source} GROUP BY {group}").df())
    return pd.concat(frames, ignore_index=True)


def test_every_published_written_premium_and_claims_cell_covers_5_insureds_and_3_insurers(sample, published):
    """Re-identification through the aggregates: an insured's sector, size band, province, product and
    inception month (a company register and its broker) select a monthly cell; a cell of fewer than 5
    insureds' policies written (or 3 insurers) shows no written premium, so it tells nobody's own. The
    same for the claims' cells of an accident year."""
    segment = """coalesce(p.sector_code, 'unknown') AS sector_code, coalesce(p.revenue_band, 'unknown') AS size_band,
                 coalesce(p.product_type, 'unknown') AS product_type, coalesce(p.province_code, 'unknown') AS province_code,
                 CASE WHEN p.policy_key IS NULL THEN 'unknown' ELSE coalesce(p.pilot_code, 'none') END AS pilot_cohort"""
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{sample.warehouse_path}' AS wh (READ_ONLY)")
        con.execute(f"ATTACH '{published}' AS pub (READ_ONLY)")
        con.execute(f"""CREATE TEMP TABLE written AS SELECT CAST(date_trunc('month', inception_date) AS DATE) AS month_start,
                        p.insured_key, p.insurer_id, {segment} FROM wh.marts.fct_policies p
                        WHERE expiry_date > inception_date""")
        con.execute(f"""CREATE TEMP TABLE claimed AS SELECT c.accident_year, c.insured_key, c.insurer_id, {segment}
                        FROM wh.marts.fct_claims c LEFT JOIN wh.marts.fct_policies p USING (policy_key)
                        WHERE c.accident_year IS NOT NULL""")
        written = _cube(con, "written", ["month_start"], SEGMENT)
        claimed = _cube(con, "claimed", ["accident_year"], SEGMENT)
        exposure = con.execute("SELECT month_start, " + ", ".join(SEGMENT) + ", written_premium_cny, "
                               "written_disclosure_status FROM pub.agg_exposure_monthly WHERE policies_written IS DISTINCT FROM 0").df()
        severity = con.execute("SELECT accident_year, " + ", ".join(SEGMENT) + ", incurred_cny, severity_median "
                               "FROM pub.agg_frequency_severity").df()
    for shown, truth, keys, figure in ((exposure, written, ["month_start"], "written_premium_cny"),
                                       (severity, claimed, ["accident_year"], "incurred_cny")):
        merged = shown.merge(truth, on=[*keys, *SEGMENT], how="left", validate="one_to_one")
        visible = merged[merged[figure].notna()]
        thin = merged[(merged["insureds"] < 5) | (merged["insurers"] < 3)]
        assert len(visible) > 50 and len(thin) > 100, figure
        assert visible["insureds"].min() >= 5 and visible["insurers"].min() >= 3, figure
        assert thin[figure].isna().all(), figure


def _one_hidden(frame: pd.DataFrame, keys: list[str], dims: tuple[str, ...], figure: str) -> int:
    """Lines along each dimension (the parts and their 'all' total) in which exactly one entry is hidden."""
    exposed = 0
    for d in dims:
        rest = [c for c in [*keys, *dims] if c != d]
        hidden = frame[figure].isna().groupby([frame[c] for c in rest], dropna=False).agg(["sum", "count"])
        exposed += int(((hidden["sum"] == 1) & (hidden["count"] >= 2)).sum())
    return exposed


def test_no_hidden_aggregate_cell_follows_by_subtraction(published):
    with duckdb.connect(str(published), read_only=True) as con:
        tables = {
            "agg_exposure_monthly": (["month_start"], ["earned_premium_cny", "written_premium_cny"]),
            # Each figure on the table with a cell wherever it is not zero (the claims' where there are claims,
            # the premium's where there is premium); the other table holds the same figures (asserted below).
            "agg_frequency_severity": (["accident_year"], ["incurred_cny"]),
            "agg_loss_ratios": (["accident_year"], ["earned_premium_cny", "exposure_years"]),
            "agg_loss_triangles": (["accident_period_type", "accident_period_start", "development_age_months"],
                                   ["incurred_cny"]),
        }
        frames = {t: con.execute(f"SELECT * FROM {t}").df() for t in tables}
        lag = con.execute("SELECT * FROM agg_reporting_lag").df()
    hidden_total = 0
    for table, (keys, figures) in tables.items():
        for figure in figures:
            frame = frames[table]
            hidden_total += int(frame[figure].isna().sum())
            assert _one_hidden(frame, keys, SEGMENT, figure) == 0, (table, figure)
    assert hidden_total > 1000
    assert _one_hidden(lag, [], ("incident_type", "sector_code"), "loss_events") == 0

    # Months of a year against agg_loss_ratios' year; quarters against the year at a year end.
    months = frames["agg_exposure_monthly"].assign(year=lambda f: pd.to_datetime(f["month_start"]).dt.year)
    years = frames["agg_loss_ratios"].rename(columns={"accident_year": "year"})
    line = pd.concat([months[["year", *SEGMENT, "earned_premium_cny"]], years[["year", *SEGMENT, "earned_premium_cny"]]])
    assert _one_hidden(line.assign(part="x"), ["year"], ("part",), "earned_premium_cny") == 0
    cells = frames["agg_loss_triangles"]
    cells = cells[pd.to_datetime(cells["evaluation_date"]).dt.strftime("%m-%d") == "12-31"]
    cells = cells.assign(year=pd.to_datetime(cells["accident_period_start"]).dt.year)
    assert _one_hidden(cells, ["year", "evaluation_date"], ("accident_period_start",), "incurred_cny") == 0
    # The same figure in two tables is hidden in both or in neither.
    both = frames["agg_frequency_severity"].merge(frames["agg_loss_ratios"], on=["accident_year", *SEGMENT],
                                                  suffixes=("_fs", "_lr"))
    assert (both["incurred_cny_fs"].isna() == both["incurred_cny_lr"].isna()).all()
    assert (both["exposure_years_fs"].isna() == both["exposure_years_lr"].isna()).all()


def test_a_linear_programming_attacker_pins_no_hidden_cell_of_a_two_way_slice(sample, published):
    """For every accident year, the sector × size band slice of agg_frequency_severity (the other
    dimensions 'all') with its margins: the attacker knows every published incurred and that amounts are
    not negative, and solves for the smallest and largest value of each hidden cell. None is pinned to
    within 1 % of its true value (read from the warehouse mart)."""
    with sample.con() as con:
        truth = con.execute("SELECT accident_year, sector_code, size_band, incurred_cny FROM marts.agg_frequency_severity "
                            "WHERE product_type = 'all' AND province_code = 'all' AND pilot_cohort = 'all'").df()
    with duckdb.connect(str(published), read_only=True) as con:
        shown = con.execute("SELECT accident_year, sector_code, size_band, incurred_cny AS shown FROM agg_frequency_severity "
                            "WHERE product_type = 'all' AND province_code = 'all' AND pilot_cohort = 'all'").df()
    frame = truth.merge(shown, on=["accident_year", "sector_code", "size_band"])
    attacked = pinned = 0
    for _, grid in frame.groupby("accident_year"):
        grid = grid.reset_index(drop=True)
        hidden = grid.index[grid["shown"].isna()].tolist()
        if not hidden:
            continue
        index = {i: n for n, i in enumerate(hidden)}
        rows, rhs = [], []
        for dim, other in (("sector_code", "size_band"), ("size_band", "sector_code")):
            for _, line in grid.groupby(other):
                total = line[line[dim] == "all"]
                parts = line[line[dim] != "all"]
                if total.empty:
                    continue
                row = np.zeros(len(hidden))
                known = 0.0
                for i, cell in parts.iterrows():
                    if i in index:
                        row[index[i]] += 1
                    else:
                        known += float(cell["shown"])
                t = total.index[0]
                if t in index:
                    row[index[t]] -= 1
                    value = -known
                else:
                    value = float(total["shown"].iloc[0]) - known
                if row.any():
                    rows.append(row)
                    rhs.append(value)
        for n, i in enumerate(hidden):
            c = np.zeros(len(hidden))
            c[n] = 1
            low = linprog(c, A_eq=rows or None, b_eq=rhs or None, bounds=(0, None), method="highs")
            high = linprog(-c, A_eq=rows or None, b_eq=rhs or None, bounds=(0, None), method="highs")
            value = float(grid.loc[i, "incurred_cny"])
            width = (-high.fun if high.status == 0 else np.inf) - (low.fun if low.status == 0 else 0)
            attacked += 1
            pinned += bool(width <= 0.01 * max(value, 1.0))
    assert attacked > 20
    assert pinned == 0, f"{pinned} of {attacked} hidden cells pinned down"



def test_the_audit_refuses_a_shown_hidden_cell_a_lone_hidden_cell_and_an_unprotected_aggregate(published, tmp_path):
    """The audit's re-check (publication.cells.violations, check aggregate_cells_protected) on a copy of
    the published version made bad three ways."""
    import shutil

    from cyberclaims.publication.cells import violations

    bad = tmp_path / "bad.duckdb"
    shutil.copyfile(published, bad)
    with duckdb.connect(str(bad)) as con:
        assert violations(con) == {}
        # A hidden cell whose incurred is shown; a line whose second hidden cell is shown again.
        con.execute("""UPDATE agg_frequency_severity SET incurred_cny = 1 WHERE rowid = (
                           SELECT min(rowid) FROM agg_frequency_severity WHERE disclosure_status = 'few_insureds')""")
        (line,) = con.execute("""
            SELECT accident_year, sector_code, size_band, product_type, province_code FROM agg_loss_triangles
            WHERE accident_period_type = 'year' AND disclosure_status <> 'published'
            GROUP BY ALL HAVING count(*) = 2 LIMIT 1""".replace("accident_year", "accident_period_start, "
                                                               "development_age_months")).fetchall()
        con.execute("""UPDATE agg_loss_triangles SET disclosure_status = 'published', incurred_cny = 0 WHERE rowid = (
                           SELECT max(rowid) FROM agg_loss_triangles WHERE accident_period_type = 'year'
                             AND disclosure_status <> 'published'
                             AND accident_period_start = ? AND development_age_months = ? AND sector_code = ?
                             AND size_band = ? AND product_type = ? AND province_code = ?)""", list(line))
        con.execute("CREATE TABLE agg_premium_by_county AS SELECT 1 AS premium_cny")
        found = violations(con)
    assert found["agg_frequency_severity.disclosure_status: hidden cells with a published figure"] == 1
    assert found["lines with exactly one hidden entry (it follows by subtraction)"] >= 1
    assert "agg_premium_by_county: no disclosure spec (publication.cells.AGGREGATES)" in found


def test_no_published_row_repeats_the_amount_of_a_one_contributor_cell(published):
    """Before the cells were protected, 6,411 of 7,869 demo policies carried the exact premium of a
    one-policy monthly cell (giving back its month, province and size band); the manifest's measure."""
    import json

    with duckdb.connect(str(published), read_only=True) as con:
        trust = json.loads(con.execute("SELECT value FROM publication_manifest WHERE key = 'trust'").fetchall()[0][0])
    linkage = {link["aggregate"]: link for link in trust["aggregate_linkage"]}
    assert set(linkage) == {"agg_exposure_monthly", "agg_frequency_severity", "agg_loss_ratios", "agg_loss_triangles"}
    assert all(link["rows"] > 0 and link["single_contributor_cells"] == link["rows_linked"] == 0
               for link in linkage.values())
    cells = trust["aggregate_cells"]["agg_exposure_monthly"]["written_disclosure_status"]
    assert cells["published"] > 0 and cells["few_insureds"] > 0 and cells["secondary"] > 0
