"""The shared loss-event schema against the generator's truth, and incremental = full refresh."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal

import duckdb
import polars as pl
import pytest

from cyberclaims.ingestion.taxonomy import SEEDS_DIR
from tests.conftest import all_assets, make_resources, materialize

CENT = Decimal("0.01")


def fx_rates() -> dict[tuple[str, str], Decimal]:
    with open(SEEDS_DIR / "fx_rates_monthly.csv", encoding="utf-8") as fh:
        return {(r["rate_month"][:7], r["currency"]): Decimal(r["cny_per_unit"]) for r in csv.DictReader(fh)}


def to_cny(amount: Decimal | None, rate: Decimal) -> Decimal:
    return ((amount or Decimal(0)) * rate).quantize(CENT, rounding=ROUND_HALF_UP)


def test_every_claims_latest_incurred_in_cny_equals_truth_to_the_cent(sample):
    rates = fx_rates()
    truth = sample.admitted_truth("claim_valuation")
    latest = truth.sort("valuation_date").group_by("insurer_id", "claim_number").last()
    key = sample.pseudonymizer().key
    expected = {}
    for row in latest.iter_rows(named=True):
        rate = rates[(row["valuation_date"].strftime("%Y-%m"), row["currency"])]
        parts = [to_cny(row[c], rate) for c in ("paid_indemnity", "paid_expense", "case_reserve", "recoveries")]
        expected[key(f"claim|{row['insurer_id']}|{row['claim_number']}")] = (
            parts[0] + parts[1] + parts[2] - parts[3], row["valuation_date"], row["status"],
        )
    with sample.con() as con:
        actual = {
            k: (incurred, valuation_date, status)
            for k, incurred, valuation_date, status in con.execute(
                "SELECT claim_key, incurred_cny, latest_valuation_date, status FROM marts.fct_claims"
            ).fetchall()
        }
    assert len(expected) > 100
    assert actual.keys() == expected.keys()
    wrong = {k: (actual[k], v) for k, v in expected.items() if actual[k] != v}
    assert not wrong, f"{len(wrong)} claims differ, e.g. {list(wrong.items())[:3]}"
    foreign = latest.filter(pl.col("currency") != "CNY")
    assert foreign.height > 0, "the sample must exercise the FX conversion"


def test_co_insured_incidents_are_linked_into_one_loss_event(sample):
    truth = sample.admitted_truth("incident")
    planted = (
        truth.group_by("occurrence_id")
        .agg(pl.col("insurer_id"), pl.col("incident_number"))
        .filter(pl.col("insurer_id").list.n_unique() >= 2)
    )
    assert planted.height > 0, "the sample must contain co-insured events"
    key = sample.pseudonymizer().key
    with sample.con() as con:
        event_of = dict(con.execute("SELECT incident_key, loss_event_id FROM intermediate.int_incidents__linked").fetchall())
        multi_insurer_events = con.execute(
            "SELECT count(*) FROM marts.fct_loss_events WHERE n_insurers >= 2"
        ).fetchall()[0][0]
    for insurers, numbers in planted.select("insurer_id", "incident_number").iter_rows():
        events = {event_of[key(f"incident|{i}|{n}")] for i, n in zip(insurers, numbers, strict=True)}
        assert len(events) == 1, f"co-insured incidents {numbers} landed in {len(events)} loss events"
    assert multi_insurer_events == planted.height, "no loss event may join insurers beyond the planted ones"


def test_systemic_events_are_recovered_exactly(sample):
    truth = sample.admitted_truth("incident").filter(pl.col("systemic_event_ref").is_not_null())
    planted = dict(truth.group_by("systemic_event_ref").len().iter_rows())
    planted_insurers = dict(
        truth.group_by("systemic_event_ref").agg(pl.col("insurer_id").n_unique()).iter_rows()
    )
    assert len(planted) >= 3
    with sample.con() as con:
        found = con.execute(
            "SELECT systemic_event_ref, n_insurer_incidents, n_insurers, grouping_method FROM marts.fct_systemic_events"
        ).fetchall()
    assert {r[0]: r[1] for r in found} == planted
    assert {r[0]: r[2] for r in found} == planted_insurers
    assert {r[3] for r in found} == {"reference"}


def test_unmapped_codes_model_is_empty_on_the_sample(sample):
    with sample.con() as con:
        assert con.execute("SELECT count(*) FROM intermediate.int_unmapped_codes").fetchall()[0][0] == 0


def test_a_code_the_taxonomy_no_longer_knows_shows_up_as_unmapped(sample, tmp_path):
    """A row loaded under an older taxonomy (here: written straight to raw) surfaces per insurer."""
    db = tmp_path / "wh.duckdb"
    sample.scratch_copy(db)
    with duckdb.connect(str(db)) as con:
        con.execute("""
            INSERT INTO raw.policies
            SELECT * REPLACE ('cyber_pet_cover' AS product_type, 'retired-submission' AS submission_id,
                              'ffff' || policy_key AS policy_key)
            FROM raw.policies WHERE insurer_id = 'tianfu_digital' LIMIT 1""")
        con.execute("""INSERT INTO control.submission_gate (submission_id, insurer_id, status, reasons, admitted_at)
                       VALUES ('retired-submission', 'tianfu_digital', 'passed', [], now()::TIMESTAMP)""")
    dbt(db, "build", "--select", "stg_raw__policies+", "--exclude", "test_type:data")
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT insurer_id, record_type, field, code, n_rows FROM intermediate.int_unmapped_codes"
        ).fetchall()
    assert rows == [("tianfu_digital", "policy", "product_type", "cyber_pet_cover", 1)]


def dbt(db, *args):
    from cyberclaims.orchestration.defs.transformation.project import DBT_PROJECT_DIR

    env = {**os.environ, "CYBERCLAIMS_DUCKDB": str(db)}
    result = subprocess.run(
        [f"{sys.prefix}/bin/dbt", *args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
         "--target-path", str(db.parent / "target")],
        env=env, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    return result.stdout


MARTS = ("fct_policies", "fct_claim_valuations", "fct_claims", "fct_loss_events", "fct_systemic_events")
# Columns that record when or by which run a row was written, not what it says.
RUN_COLUMNS = ("loaded_by_invocation", "ingested_at")


@pytest.mark.e2e
def test_a_new_monthly_submission_processed_incrementally_equals_a_full_refresh(sample, tmp_path):
    last_month = max(p.stem[-6:] for p in sample.landing.rglob("*") if p.stem[-6:].isdigit())
    data_dir = tmp_path / "data"
    landing = data_dir / "landing"
    held_back = []
    for path in sorted(sample.landing.rglob("*")):
        if path.is_file():
            target = landing / path.relative_to(sample.landing)
            target.parent.mkdir(parents=True, exist_ok=True)
            if last_month in path.name:
                held_back.append((path, target))
            else:
                shutil.copy(path, target)
    assert held_back, f"no file of month {last_month}"
    db = data_dir / "warehouse" / "wh.duckdb"
    resources = make_resources(data_dir, db)
    assert materialize(all_assets(), resources).success

    for path, target in held_back:
        shutil.copy(path, target)
    assert materialize(all_assets(), resources).success

    with duckdb.connect(str(db), read_only=True) as con:
        new_raw = con.execute(
            "SELECT count(*) FROM raw.claim_valuations WHERE source_file LIKE ?", [f"%{last_month}%"]
        ).fetchall()[0][0]
        last_invocation = con.execute(
            "SELECT loaded_by_invocation FROM marts.fct_claim_valuations ORDER BY ingested_at DESC LIMIT 1"
        ).fetchall()[0][0]
        processed = con.execute(
            "SELECT count(*) FROM marts.fct_claim_valuations WHERE loaded_by_invocation = ?", [last_invocation]
        ).fetchall()[0][0]
        total = con.execute("SELECT count(*) FROM marts.fct_claim_valuations").fetchall()[0][0]
    # The incremental run wrote exactly the new month's valuations, not the history.
    assert 0 < processed == new_raw < total

    # The incremental models keep rows of earlier builds, so a changed dbt project (a model, a macro,
    # a seed such as an FX rate) must rebuild them whole: the next build is a full refresh, once. That
    # full refresh, of the same inputs, is what the incremental build must equal.
    from cyberclaims.orchestration.defs.transformation.project import dbt_source_fingerprint
    from cyberclaims.transformation.builds import incremental_project

    incremental = tmp_path / "incremental.duckdb"
    shutil.copy(db, incremental)
    with duckdb.connect(str(db)) as con:
        assert incremental_project(con) == dbt_source_fingerprint()
        con.execute("UPDATE control.mart_builds SET dbt_project_fingerprint = 'built with an older project'")
    assert materialize(all_assets(), resources).success
    with duckdb.connect(str(db), read_only=True) as con:
        invocations = con.execute("SELECT DISTINCT loaded_by_invocation FROM marts.fct_claim_valuations").fetchall()
        assert len(invocations) == 1 and invocations[0][0] != last_invocation, "every row rebuilt by one invocation"
        assert con.execute("SELECT count(*) FROM marts.fct_claim_valuations").fetchall()[0][0] == total
        assert incremental_project(con) == dbt_source_fingerprint()

    with duckdb.connect(str(incremental), read_only=True) as con:
        con.execute(f"ATTACH '{db}' AS refreshed (READ_ONLY)")
        for mart in MARTS:
            columns = [
                r[0] for r in con.execute(f"DESCRIBE marts.{mart}").fetchall() if r[0] not in RUN_COLUMNS
            ]
            select = ", ".join(columns)
            diff = con.execute(f"""
                SELECT count(*) FROM (
                    (SELECT {select} FROM marts.{mart} EXCEPT ALL SELECT {select} FROM refreshed.marts.{mart})
                    UNION ALL
                    (SELECT {select} FROM refreshed.marts.{mart} EXCEPT ALL SELECT {select} FROM marts.{mart}))
            """).fetchall()[0][0]
            assert diff == 0, f"{mart}: incremental and full refresh differ in {diff} rows"
