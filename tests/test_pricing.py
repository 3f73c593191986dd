"""Pricing marts against an independent implementation: the `chainladder` actuarial library builds
the same triangles from claim-level valuations and must agree with the warehouse to 1e-9 relative."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

REL = 1e-9
SEGMENT = ("sector_code", "size_band", "product_type", "province_code", "pilot_cohort")
GRAINS = {"year": "OYDY", "quarter": "OQDQ"}


def close(a: float, b: float, abs_tol: float = 1e-6) -> bool:
    return math.isclose(float(a), float(b), rel_tol=REL, abs_tol=abs_tol)


@pytest.fixture(scope="module")
def valuations(sample) -> pd.DataFrame:
    """Claim-level incremental paid and incurred at each valuation, with the claim's sector: what an
    actuary would hand to chainladder, straight from the fact tables (not from the triangles)."""
    with sample.con() as con:
        return con.sql("""
            SELECT claims.claim_key, claims.occurred_date, valuations.valuation_date,
                   coalesce(policies.sector_code, 'unknown') AS sector_code,
                   CAST(valuations.paid_cny - coalesce(lag(valuations.paid_cny) OVER w, 0) AS DOUBLE) AS paid,
                   CAST(valuations.incurred_cny - coalesce(lag(valuations.incurred_cny) OVER w, 0) AS DOUBLE) AS incurred
            FROM marts.fct_claim_valuations AS valuations
            JOIN marts.fct_claims AS claims USING (claim_key)
            LEFT JOIN marts.fct_policies AS policies ON policies.policy_key = claims.policy_key
            WHERE claims.occurred_date IS NOT NULL
            WINDOW w AS (PARTITION BY valuations.claim_key ORDER BY valuations.valuation_date)""").df()


def reference(frame: pd.DataFrame, grain: str) -> dict:
    import chainladder as cl

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        triangle = cl.Triangle(frame, origin="occurred_date", development="valuation_date",
                               columns=["paid", "incurred"], cumulative=False).grain(grain).incr_to_cum()
        development = cl.Development(average="volume").fit(triangle)
        model = cl.Chainladder().fit(triangle)
    origins = [p.start_time.date() for p in triangle.origin]
    ages = [int(a) for a in triangle.development]
    out = {}
    for measure in ("paid", "incurred"):
        cells = triangle[measure].values[0, 0]
        ultimates = model.ultimate_[measure].values[0, 0, :, 0]
        out[measure] = {
            "cells": {(o, a): cells[i, j] for i, o in enumerate(origins) for j, a in enumerate(ages)
                      if not np.isnan(cells[i, j])},
            "ldf": dict(zip(ages[:-1], development.ldf_[measure].values[0, 0, 0], strict=True)),
            "cdf": dict(zip(ages[:-1], development.cdf_[measure].values[0, 0, 0], strict=True)),
            "ultimate": dict(zip(origins, ultimates, strict=True)),
        }
    return out


def warehouse(con, period_type: str, segment: dict) -> dict:
    where = " AND ".join(f"{d} = '{segment.get(d, 'all')}'" for d in SEGMENT)
    out = {}
    for measure, column in (("paid", "paid_cny"), ("incurred", "incurred_cny")):
        cells = dict(((o, a), v) for o, a, v in con.execute(
            f"SELECT accident_period_start, development_age_months, {column} FROM marts.agg_loss_triangles "
            f"WHERE accident_period_type = ? AND {where}", [period_type]).fetchall())
        factors = con.execute(
            f"SELECT development_age_months, age_to_age_factor, cdf_to_ultimate, base_cny FROM marts.agg_development_factors "
            f"WHERE accident_period_type = ? AND measure = ? AND {where}", [period_type, measure]).fetchall()
        ladder = con.execute(
            f"SELECT accident_period_start, latest_cny, ultimate_cny, ibnr_cny FROM marts.agg_chain_ladder "
            f"WHERE accident_period_type = ? AND measure = ? AND {where}", [period_type, measure]).fetchall()
        out[measure] = {"cells": cells, "factors": factors, "ladder": ladder}
    return out


def compare(ours: dict, theirs: dict, label: str) -> int:
    compared = 0
    for measure in ("paid", "incurred"):
        o, t = ours[measure], theirs[measure]
        # chainladder holds a zero cell as missing: compare the non-zero cells, and require every
        # cell it has to be one of ours.
        nonzero = {k for k, v in o["cells"].items() if v != 0}
        assert nonzero == {k for k, v in t["cells"].items() if v != 0} and set(t["cells"]) <= set(o["cells"]), (
            f"{label} {measure}: triangle shape differs")
        for key, value in t["cells"].items():
            assert close(o["cells"][key], value), f"{label} {measure} cell {key}: {o['cells'][key]} vs {value}"
            compared += 1
        for age, ldf, cdf, base in o["factors"]:
            if base and base != 0:
                assert close(ldf, t["ldf"][age], 0), f"{label} {measure} ldf at {age}: {ldf} vs {t['ldf'][age]}"
                compared += 1
            if np.isfinite(t["cdf"][age]):
                assert close(cdf, t["cdf"][age], 0), f"{label} {measure} cdf at {age}: {cdf} vs {t['cdf'][age]}"
        for origin, latest, ultimate, ibnr in o["ladder"]:
            expected = t["ultimate"].get(origin, float("nan"))
            # A latest value of zero is missing to chainladder (it projects from an earlier age).
            if latest != 0 and not np.isnan(expected):
                assert close(ultimate, expected), f"{label} {measure} ultimate {origin}: {ultimate} vs {expected}"
                assert close(ibnr, expected - float(latest)), f"{label} {measure} ibnr {origin}"
                compared += 1
    return compared


@pytest.mark.parametrize("period_type", ["year", "quarter"])
def test_triangles_factors_ultimates_and_ibnr_match_chainladder(sample, valuations, period_type):
    grain = GRAINS[period_type]
    compared = 0
    with sample.con() as con:
        compared += compare(warehouse(con, period_type, {}), reference(valuations, grain), f"all/{period_type}")
        sectors = valuations.groupby("sector_code")["claim_key"].nunique()
        for sector in sectors[sectors >= 20].index:
            frame = valuations[valuations["sector_code"] == sector]
            compared += compare(warehouse(con, period_type, {"sector_code": sector}), reference(frame, grain),
                                f"{sector}/{period_type}")
    assert compared > 50 and len(sectors[sectors >= 20]) >= 3


def test_every_sector_has_triangle_rows_and_the_cube_rolls_up(sample):
    with sample.con() as con:
        sectors = {r[0] for r in con.execute("SELECT DISTINCT sector_code FROM marts.fct_claims").fetchall()}
        in_triangles = {r[0] for r in con.execute(
            "SELECT DISTINCT sector_code FROM marts.agg_loss_triangles WHERE sector_code <> 'all'").fetchall()}
        # The 'all' segment equals the sum over sectors, cell by cell.
        mismatched = con.execute("""
            WITH by_sector AS (
                SELECT accident_period_type, accident_period_start, development_age_months,
                       sum(paid_cny) AS paid, sum(reported_claims) AS reported
                FROM marts.agg_loss_triangles
                WHERE sector_code <> 'all' AND size_band = 'all' AND product_type = 'all'
                  AND province_code = 'all' AND pilot_cohort = 'all'
                GROUP BY ALL)
            SELECT count(*) FROM by_sector JOIN marts.agg_loss_triangles AS total USING
                (accident_period_type, accident_period_start, development_age_months)
            WHERE total.sector_code = 'all' AND total.size_band = 'all' AND total.product_type = 'all'
              AND total.province_code = 'all' AND total.pilot_cohort = 'all'
              AND (total.paid_cny <> by_sector.paid OR total.reported_claims <> by_sector.reported)""").fetchall()[0][0]
    assert {s if s else "unknown" for s in sectors} <= in_triangles | {"unknown"}
    assert mismatched == 0


def _policy_years(policies: pd.DataFrame, year: int, cutoff) -> float:
    """Earned policy-years in a calendar year, to the cut-off: overlap of [inception, expiry) / 365."""
    start = pd.Timestamp(year, 1, 1)
    end = min(pd.Timestamp(year + 1, 1, 1), pd.Timestamp(cutoff) + pd.Timedelta(days=1))
    lo = policies["inception_date"].clip(lower=start)
    hi = policies["expiry_date"].clip(upper=end)
    return float((hi - lo).dt.days.clip(lower=0).sum()) / 365.0


def test_frequency_and_severity_recomputed_independently(sample):
    """Claims, loss events, exposure, frequency and severity quantiles per accident year, for the
    whole sector and per sector, recomputed in pandas/numpy from the fact tables."""
    with sample.con() as con:
        claims = con.sql("""
            SELECT claims.claim_key, claims.loss_event_id, claims.accident_year,
                   CAST(claims.incurred_cny AS DOUBLE) AS incurred, coalesce(policies.sector_code, 'unknown') AS sector
            FROM marts.fct_claims AS claims
            LEFT JOIN marts.fct_policies AS policies ON policies.policy_key = claims.policy_key
            WHERE claims.accident_year IS NOT NULL""").df()
        policies = con.sql("""
            SELECT CAST(inception_date AS TIMESTAMP) AS inception_date, CAST(expiry_date AS TIMESTAMP) AS expiry_date,
                   coalesce(sector_code, 'unknown') AS sector
            FROM marts.fct_policies WHERE expiry_date > inception_date""").df()
        cutoff = con.execute("SELECT max(valuation_date) FROM marts.fct_claim_valuations").fetchall()[0][0]
        marts = con.sql("""
            SELECT * FROM marts.agg_frequency_severity
            WHERE size_band = 'all' AND product_type = 'all' AND province_code = 'all' AND pilot_cohort = 'all'""").df()
    checked = 0
    for sector in ["all", *sorted(claims["sector"].unique())]:
        subset = claims if sector == "all" else claims[claims["sector"] == sector]
        exposure_base = policies if sector == "all" else policies[policies["sector"] == sector]
        for year, group in subset.groupby("accident_year"):
            row = marts[(marts["sector_code"] == sector) & (marts["accident_year"] == year)]
            assert len(row) == 1, (sector, year)
            row = row.iloc[0]
            incurred = group["incurred"].to_numpy()
            events = group.dropna(subset=["loss_event_id"]).groupby("loss_event_id")["incurred"].sum().to_numpy()
            exposure = _policy_years(exposure_base, int(year), cutoff)
            assert row["claims"] == len(group) and row["loss_events"] == group["loss_event_id"].nunique()
            if exposure > 0:
                assert close(row["exposure_years"], exposure, 1e-9)
                assert close(row["claim_frequency"], len(group) / exposure, 1e-12)
            assert close(row["severity_mean"], incurred.mean(), 1e-6)
            for q, column in ((50, "severity_median"), (90, "severity_p90"), (99, "severity_p99")):
                assert close(row[column], np.percentile(incurred, q), 1e-6), (sector, year, column)
            assert close(float(row["severity_max"]), incurred.max())
            assert close(row["event_severity_mean"], events.mean(), 1e-6)
            assert close(row["event_severity_p90"], np.percentile(events, 90), 1e-6)
            checked += 1
    assert checked > 20


def test_earned_premium_and_loss_ratios_add_up(sample):
    with sample.con() as con:
        premium = con.execute("""
            SELECT sum(round(CAST(written_premium_cny AS DECIMAL(38, 6))
                   * greatest(date_diff('day', inception_date,
                              least(expiry_date, (SELECT max(valuation_date) FROM marts.fct_claim_valuations) + 1)), 0)
                   / date_diff('day', inception_date, expiry_date), 2)), count(*)
            FROM marts.fct_policies WHERE expiry_date > inception_date""").fetchall()[0]
        earned = con.execute("""
            SELECT sum(earned_premium_cny) FROM marts.agg_exposure_monthly
            WHERE sector_code = 'all' AND size_band = 'all' AND product_type = 'all' AND province_code = 'all'
              AND pilot_cohort = 'all'""").fetchall()[0][0]
        ratios = con.execute("""
            SELECT accident_year, earned_premium_cny, incurred_cny, incurred_loss_ratio FROM marts.agg_loss_ratios
            WHERE sector_code = 'all' AND size_band = 'all' AND product_type = 'all' AND province_code = 'all'
              AND pilot_cohort = 'all'""").fetchall()
        incurred_by_year = dict(con.execute(
            "SELECT accident_year, sum(incurred_cny) FROM marts.fct_claims WHERE accident_year IS NOT NULL GROUP BY ALL"
        ).fetchall())
    # Earned premium is rounded per policy and month: the monthly pieces (at most 13 per annual
    # term to the cut-off) sum to each policy's earned premium within half a fen per piece.
    premium, n_policies = premium
    assert abs(float(earned) - float(premium)) <= 0.005 * 13 * n_policies
    assert ratios
    for year, earned_year, incurred, ratio in ratios:
        assert incurred == incurred_by_year.get(year, 0)
        assert close(ratio, float(incurred) / float(earned_year), 1e-12)


def test_every_pricing_mart_has_rows_for_every_sector_of_the_sample(sample):
    marts = ("agg_exposure_monthly", "agg_frequency_severity", "agg_loss_triangles", "agg_development_factors",
             "agg_chain_ladder", "agg_loss_ratios", "agg_reporting_lag", "agg_security_score_lift")
    with sample.con() as con:
        policy_sectors = {r[0] for r in con.execute("SELECT DISTINCT sector_code FROM marts.fct_policies").fetchall()}
        claim_sectors = {r[0] or "unknown" for r in con.execute(
            "SELECT DISTINCT p.sector_code FROM marts.fct_claims c LEFT JOIN marts.fct_policies p USING (policy_key) "
            "WHERE c.accident_year IS NOT NULL").fetchall()}
        found = {m: {r[0] for r in con.execute(f"SELECT DISTINCT sector_code FROM marts.{m}").fetchall()} for m in marts}
    assert len(policy_sectors) >= 10
    for mart in ("agg_exposure_monthly", "agg_loss_ratios", "agg_security_score_lift"):
        assert policy_sectors | {"all"} <= found[mart], mart
    for mart in ("agg_frequency_severity", "agg_loss_triangles", "agg_chain_ladder"):
        assert claim_sectors | {"all"} <= found[mart], mart
    assert {"all"} < found["agg_development_factors"] and {"all"} < found["agg_reporting_lag"]
