"""One insurer never stops the sector: checks decidable per submission hold it at the gate; a blocking
dbt test that fails on rows of new submissions holds exactly those, rebuilds the marts without them and
publishes the rest; an operator revokes an admitted submission; `cyberclaims status` says why a cycle
failed. Real DuckDB files copied from the session's sample, real dbt builds, real Dagster materializations."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
from click.testing import CliRunner

from cyberclaims.ingestion.config import load_all_configs
from cyberclaims.ingestion.manifest import manifest_path
from cyberclaims.ingestion.pipeline import content_hash
from cyberclaims.orchestration.defs.transformation.project import DBT_PROJECT_DIR, dbt_project, dbt_source_fingerprint
from cyberclaims.publication.publish import (
    publication_metadata,
    publish,
    published_manifest,
    published_tables_from_manifest,
)
from cyberclaims.quality.facts import not_delivered_columns
from cyberclaims.quality.gate import SECTOR_ACTOR, evaluate_insurer
from cyberclaims.quality.review import review
from cyberclaims.quality.sector import SectorTestFailure, hold_for_sector_tests
from cyberclaims.transformation.builds import full_refresh_reason, inputs_fingerprint
from tests.conftest import ingestion_assets, make_resources, materialize, publication_assets

LINEAGE = {"insurer_id", "submission_id"}


@dataclass
class Workspace:
    """A data directory of its own holding a copy of the sample's warehouse and landing zone."""

    data_dir: Path
    db: Path

    @property
    def published(self) -> Path:
        return self.data_dir / "published"

    @property
    def resources(self) -> dict:
        return make_resources(self.data_dir, self.db)

    def con(self, read_only: bool = True) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(str(self.db), read_only=read_only)

    def publish_current_marts(self) -> int:
        """Version 1 of the published database: the sample's marts as they stand."""
        with self.con() as con:
            extra = publication_metadata(con, DBT_PROJECT_DIR)
        return publish(self.db, self.published, published_tables_from_manifest(dbt_project().manifest_path), extra).version

    def cycle(self, *, ingest: bool = False) -> dg.ExecuteInProcessResult:
        """dbt build and tests, publication and feedback (and ingestion with its gate, if asked)."""
        sector_claims_db, insurer_feedback = publication_assets()
        from cyberclaims.orchestration.defs.transformation import build_dbt_assets

        assets = [*(ingestion_assets() if ingest else []), build_dbt_assets(), sector_claims_db, insurer_feedback]
        return materialize(assets, self.resources, raise_on_error=False)

    def cli(self, *args: str):
        from cyberclaims.cli import main

        # CYBERCLAIMS_DUCKDB names the warehouse over the data directory (and a dbt build sets it).
        env = {"CYBERCLAIMS_DATA_DIR": str(self.data_dir), "CYBERCLAIMS_DUCKDB": str(self.db),
               "DAGSTER_HOME": str(self.data_dir / "dagster_home")}
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    def gate(self, submission_id: str) -> tuple[str, list[str], str | None, dict]:
        with self.con() as con:
            status, reasons, decided_by, results = con.execute(
                "SELECT status, reasons, decided_by, results FROM control.submission_gate WHERE submission_id = ?",
                [submission_id]).fetchall()[0]
        return status, reasons, decided_by, json.loads(results) if results else {}


@pytest.fixture
def workspace(sample, tmp_path) -> Workspace:
    data_dir = tmp_path / "data"
    db = data_dir / "warehouse" / "cyberclaims.duckdb"
    db.parent.mkdir(parents=True)
    sample.scratch_copy(db)
    shutil.copytree(sample.landing, data_dir / "landing")
    return Workspace(data_dir, db)


def submission_of(con, source_file: str) -> str:
    return con.execute("SELECT submission_id FROM control.submissions WHERE source_file = ?", [source_file]).fetchall()[0][0]


def plant_passed_submission(con, submission_id: str, insurer_id: str, table: str, where: str, replace: str) -> int:
    """Copy accepted rows of `table` as a new submission the gate passed (bypassing its suites): what
    slips past the gate and reaches the sector tests. Registry, gate and log as ingestion and the gate
    write them."""
    source_file = f"{insurer_id}/planted_{submission_id}.parquet"
    con.execute(f"""INSERT INTO raw.{table} SELECT * REPLACE ({replace + ', ' if replace else ''}? AS submission_id,
                    ? AS source_file, now()::TIMESTAMP AS ingested_at) FROM raw.{table} WHERE insurer_id = ? AND {where}""",
                [submission_id, source_file, insurer_id])
    n = con.execute(f"SELECT count(*) FROM raw.{table} WHERE submission_id = ?", [submission_id]).fetchall()[0][0]
    con.execute("""INSERT INTO control.submissions SELECT * REPLACE (? AS submission_id, ? AS source_file, ? AS rows_delivered,
                   ? AS rows_loaded, 0 AS rows_quarantined, now()::TIMESTAMP AS ingested_at)
                   FROM control.submissions WHERE insurer_id = ? AND status = 'loaded' LIMIT 1""",
                [submission_id, source_file, n, n, insurer_id])
    con.execute("INSERT INTO control.submission_gate (submission_id, insurer_id, status, reasons, evaluated_at, admitted_at, "
                "decided_by, decided_at) VALUES (?, ?, 'passed', [], now(), now(), 'gate', now())", [submission_id, insurer_id])
    con.execute("INSERT INTO control.submission_gate_log VALUES (?, now(), 'pending', [], 'ingestion', NULL), "
                "(?, now() + INTERVAL 1 MICROSECOND, 'passed', [], 'gate', NULL)", [submission_id, submission_id])
    return n


def published_pairs(path: Path, table: str = "fct_claim_valuations") -> set[tuple[str, date]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return set(con.execute(f"SELECT claim_key, valuation_date FROM {table}").fetchall())


# --------------------------------------------------------------------------- the submission gate


def deliver_claims(landing: Path, cfg, source: str, target: str, paid_factor: float, valuation: tuple[date, date] | None
                   = None) -> Path:
    """A claim file of the insurer built from one it delivered: paid amounts × paid_factor, valuations
    moved from one date to another (or kept: a re-delivery of that month), with its manifest."""
    cols = cfg.record_types["claim_valuation"].columns
    frame = pl.read_csv(landing / cfg.insurer_id / source, infer_schema=False, encoding="utf8")
    paid = [cols["paid_indemnity"], cols["paid_expense"]]
    moved = [pl.col(cols["valuation_date"]).str.replace(valuation[0].isoformat(), valuation[1].isoformat())] if valuation else []
    frame = frame.with_columns(
        *moved,
        *[(pl.col(c).cast(pl.Decimal(18, 2), strict=False) * Decimal(str(paid_factor))).cast(pl.Decimal(18, 2))
          .cast(pl.String).alias(c) for c in paid],
    )
    dst = landing / cfg.insurer_id / target
    frame.write_csv(dst)
    totals = {cols[n]: str(frame[cols[n]].cast(pl.Decimal(18, 2), strict=False).sum() or Decimal(0))
              for n in ("paid_indemnity", "paid_expense", "case_reserve", "recoveries")}
    manifest_path(dst).write_text(json.dumps({
        "manifest_version": "1", "data_file": dst.name,
        "record_types": {"claim_valuation": {"row_count": frame.height, "totals": totals}},
    }), encoding="utf-8")
    return dst


def test_paid_that_falls_against_the_admitted_history_is_held_at_the_gate(sample, workspace):
    """Dongfang delivers January as December's valuations with paid halved (cumulative paid falls), and a
    late correction of June with paid tripled (above July's admitted valuations, so paid would fall
    after it). Both are held for PAID_DECREASES, each row counted against the generator's truth; nothing
    else about them is wrong."""
    dongfang = load_all_configs()["dongfang_pc"]
    landing = workspace.data_dir / "landing"
    assert not {"dongfang_pc/claims_202412.csv", "dongfang_pc/claims_202406.csv"} & sample.expected_held_files()
    january = content_hash(deliver_claims(landing, dongfang, "claims_202412.csv", "claims_202501.csv", 0.5,
                                          (date(2024, 12, 31), date(2025, 1, 31))))
    june = content_hash(deliver_claims(landing, dongfang, "claims_202406.csv", "claims_202406_corrected.csv", 3))
    assert materialize(ingestion_assets(), workspace.resources, raise_on_error=False).success

    # The truth: the canonical rows the generator delivered, without defects, from files the gate admits.
    admitted = sample.admitted_truth("claim_valuation").filter(pl.col("insurer_id") == "dongfang_pc")
    december = admitted.filter(pl.col("source_file") == "dongfang_pc/claims_202412.csv")
    falls = december.filter(pl.col("paid_indemnity") > 0)
    june_rows = admitted.filter(pl.col("source_file") == "dongfang_pc/claims_202406.csv")
    later = (admitted.filter(pl.col("valuation_date") > date(2024, 6, 30)).sort("valuation_date")
             .group_by("claim_number", maintain_order=True).first())
    above_next = june_rows.join(later, on="claim_number", suffix="_next").filter(
        pl.col("paid_indemnity") * 3 > pl.col("paid_indemnity_next"))
    assert falls.height > 0 and above_next.height > 0

    for sid, describe, expected in ((january, "previous admitted valuation", falls),
                                    (june, "next later admitted valuation", above_next)):
        status, reasons, decided_by, results = workspace.gate(sid)
        assert status == "held" and "PAID_DECREASES" in reasons and decided_by == "gate"
        finding = next(f for f in results["findings"] if f["reason"] == "PAID_DECREASES"
                       and describe in f["describe"] and f["columns"].get("column_A", "").endswith("paid_indemnity")
                       and "expense" not in json.dumps(f["columns"]))
        assert finding["unexpected_rows"] == expected.height
        assert {s["source_row"] for s in finding["samples"]} <= set(expected["source_row"])
    assert workspace.gate(january)[1] == ["PAID_DECREASES"], "nothing else is wrong with January"


def _pending_copy(con, insurer_id: str, source_file: str, submission_id: str, replace: str) -> str:
    """A pending submission made of the accepted claim rows of one of the insurer's files, changed: what
    ingestion would load from the file delivered again with those changes."""
    original = submission_of(con, source_file)
    con.execute(f"""INSERT INTO raw.claim_valuations SELECT * REPLACE ({replace}, ? AS submission_id,
                    now()::TIMESTAMP AS ingested_at) FROM raw.claim_valuations WHERE submission_id = ?""",
                [submission_id, original])
    con.execute("INSERT INTO control.submissions SELECT * REPLACE (? AS submission_id, now()::TIMESTAMP AS ingested_at) "
                "FROM control.submissions WHERE submission_id = ?", [submission_id, original])
    con.execute("INSERT INTO control.submission_counts SELECT * REPLACE (? AS submission_id) FROM control.submission_counts "
                "WHERE submission_id = ?", [submission_id, original])
    con.execute("INSERT INTO control.submission_gate (submission_id, insurer_id, status, reasons) VALUES (?, ?, 'pending', [])",
                [submission_id, insurer_id])
    return original


def test_incurred_fx_dates_across_files_and_not_delivered_fields_at_the_gate(sample, workspace):
    """Rows re-delivered under a new submission: a delivered incurred that disagrees with its parts, a
    currency without a rate for the month, a report date after the claim's first admitted valuation —
    each held with its reason on exactly the planted rows. A coverage section left empty is held as
    REQUIRED_FIELD, unless the insurer's config declares the field not delivered."""
    tianfu = load_all_configs()["tianfu_digital"]
    source_file = "tianfu_digital/tf_claim_202412.parquet"
    with workspace.con(read_only=False) as con:
        original = submission_of(con, source_file)
        accepted = [r for (r,) in con.execute("SELECT source_row FROM raw.claim_valuations WHERE submission_id = ? "
                                              "ORDER BY source_row", [original]).fetchall()]
        off, within, no_rate = accepted[:3]
        # A row whose claim was valued in an earlier file: reported on its own valuation date, it was
        # reported after that earlier valuation.
        reported_late = con.execute("""
            SELECT min(source_row) FROM raw.claim_valuations r WHERE submission_id = ? AND source_row > ?
            AND EXISTS (SELECT 1 FROM raw.claim_valuations h JOIN control.submission_gate g USING (submission_id)
                        WHERE h.claim_key = r.claim_key AND h.valuation_date < r.valuation_date
                        AND g.status IN ('passed', 'released'))""", [original, no_rate]).fetchall()[0][0]
        assert reported_late is not None
        incurred = "paid_indemnity + paid_expense + case_reserve - coalesce(recoveries, 0)"
        _pending_copy(con, "tianfu_digital", source_file, "planted-gate", f"""
            CASE WHEN source_row = {off} THEN {incurred} + 1 WHEN source_row = {within} THEN {incurred} + 0.05
                 END AS reported_incurred,
            CASE WHEN source_row = {no_rate} THEN 'XAU' ELSE currency END AS currency,
            CASE WHEN source_row = {reported_late} THEN valuation_date ELSE report_date END AS report_date,
            CASE WHEN source_row = {reported_late} THEN NULL ELSE closed_date END AS closed_date,
            NULL AS coverage_section""")
        decision = evaluate_insurer(con, tianfu)[0]
    by_reason: dict[str, set[int]] = {}
    for f in decision.results["findings"]:
        by_reason.setdefault(f["reason"], set()).update(s["source_row"] for s in f["samples"])
    assert decision.status == "held"
    assert by_reason["INCURRED_MISMATCH"] == {off}, "a difference of 0.05 is within quality.incurred_tolerance"
    assert by_reason["FX_RATE_MISSING"] == {no_rate}
    assert by_reason["VALUED_BEFORE_REPORTED"] == {reported_late}
    required = [f for f in decision.results["findings"] if f["reason"] == "REQUIRED_FIELD"]
    assert [f["columns"]["column"] for f in required] == ["coverage_section"] and required[0]["unexpected_rows"] == len(accepted)

    # The same delivery from an insurer whose config declares coverage_section not delivered.
    rtc = tianfu.record_types["claim_valuation"]
    no_sections = tianfu.model_copy(update={"record_types": {**tianfu.record_types, "claim_valuation": rtc.model_copy(
        update={"not_delivered": ["coverage_section"],
                "columns": {k: v for k, v in rtc.columns.items() if k != "coverage_section"}})}})
    assert "coverage_section" in not_delivered_columns(no_sections, "claim_valuation")
    with workspace.con(read_only=False) as con:
        con.execute("UPDATE control.submission_gate SET status = 'pending' WHERE submission_id = 'planted-gate'")
        again = evaluate_insurer(con, no_sections)[0]
    assert "REQUIRED_FIELD" not in again.reasons
    assert set(again.reasons) == {"INCURRED_MISMATCH", "FX_RATE_MISSING", "VALUED_BEFORE_REPORTED"}


# --------------------------------------------------------------------------- sector tests


def test_every_blocking_test_on_a_model_with_lineage_returns_its_insurer_and_submission(sample, tmp_path):
    """Compiled on the sample's warehouse: every error-severity test whose model (for a singular test: any
    model it reads) has insurer_id and submission_id returns both with its failing rows. The row-grain
    marts have lineage; the tests without it are on seeds and aggregates."""
    db = tmp_path / "wh.duckdb"
    sample.scratch_copy(db)
    target = tmp_path / "target"
    compiled = subprocess.run(
        [f"{sys.prefix}/bin/dbt", "compile", "--select", "resource_type:test", "--project-dir", str(DBT_PROJECT_DIR),
         "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(target)],
        env={**os.environ, "CYBERCLAIMS_DUCKDB": str(db)}, capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stdout[-3000:]
    manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
    sql = {r["unique_id"]: r["compiled_code"] for r in json.loads((target / "run_results.json").read_text())["results"]}
    with duckdb.connect(str(db), read_only=True) as con:
        columns: dict[tuple[str, str], set[str]] = {}
        for schema, table, column in con.execute(
                "SELECT table_schema, table_name, column_name FROM information_schema.columns").fetchall():
            columns.setdefault((schema, table), set()).add(column)

        def has_lineage(unique_id: str) -> bool:
            node = manifest["nodes"][unique_id]
            return columns.get((node["schema"], node["alias"]), set()) >= LINEAGE

        missing, with_lineage, without = [], set(), set()
        for uid, node in manifest["nodes"].items():
            if node["resource_type"] != "test" or node["config"]["severity"].lower() != "error":
                continue
            models = [d for d in node["depends_on"]["nodes"] if d.startswith("model.")]
            tested = [node["attached_node"]] if node.get("attached_node") else models
            returned = {d[0] for d in con.execute(f"SELECT * FROM (\n{sql[uid]}\n) AS failing LIMIT 0").description}
            if any(has_lineage(m) for m in tested if m.startswith("model.")):
                with_lineage.update(manifest["nodes"][m]["name"] for m in tested if has_lineage(m))
                if not returned >= LINEAGE:
                    missing.append(node["name"])
            else:
                without.update(tested or node["depends_on"]["nodes"])
    assert missing == []
    assert {"fct_claim_valuations", "fct_claims", "fct_policies", "int_unmapped_codes",
            "int_systemic_events__members", "int_submission_fields__completeness"} <= with_lineage
    # Without lineage: seeds, dimensions and aggregates (several insurers' rows in one), two lists
    # that carry no single submission of their own, the published forms (pub_*, which drop lineage) and
    # the regulator pack's atoms (reg_*, internal, without lineage).
    unattributable = ("seed.", "model.cyberclaims.dim_", "model.cyberclaims.agg_", "model.cyberclaims.fct_loss_events",
                      "model.cyberclaims.pub_fct_", "model.cyberclaims.reg_", "model.cyberclaims.int_exposure__yearly_contributors",
                      "model.cyberclaims.fct_systemic_events", "model.cyberclaims.int_claim_valuations__corrections",
                      "model.cyberclaims.stg_raw__submission_fields")
    assert all(uid.startswith(unattributable) for uid in without), sorted(without)


def test_what_a_failed_build_stopped_on_and_who_it_can_be_blamed_on(workspace):
    """The failed nodes of a build's run results, and the attribution rules on the warehouse: a failing
    row must name an admitted, unpublished submission not released after a sector hold; a test without
    lineage, rows of a published submission, a model error or a test failing for most insurers at once
    name nobody to hold."""
    from cyberclaims.orchestration.defs.transformation.project import blocked_message, build_failures
    from cyberclaims.quality.sector import attribute_sector_failures

    run_results = {"results": [
        {"unique_id": "model.cyberclaims.fct_claims", "status": "success", "message": None},
        {"unique_id": "test.cyberclaims.not_null_fct_claims_status.0a1b2c", "status": "fail", "failures": 2,
         "message": "Got 2 results", "compiled_code": "select 1"},
        {"unique_id": "test.cyberclaims.relationships_x.9f", "status": "warn", "failures": 3, "compiled_code": "select 1"},
        {"unique_id": "model.cyberclaims.fct_loss_events", "status": "error", "message": "Binder Error: x\nmore"},
        {"unique_id": "test.cyberclaims.unique_fct_loss_events_loss_event_id.77", "status": "skipped"},
    ]}
    failed = build_failures(run_results)
    assert [(f.name, f.resource_type, f.status, f.failures) for f in failed] == [
        ("not_null_fct_claims_status", "test", "fail", 2), ("fct_loss_events", "model", "error", None)]

    with workspace.con(read_only=False) as con:
        december = submission_of(con, "tianfu_digital/tf_claim_202412.parquet")
        plant_passed_submission(con, "new-submission", "tianfu_digital", "claim_valuations",
                                f"submission_id = '{december}' AND source_row <= 2", "")
    rows_of = "select claim_key, insurer_id, submission_id from raw.claim_valuations where submission_id = '{}'"
    every_insurer = ("select insurer_id, submission_id from control.submission_gate where status = 'passed' "
                     "and submission_id <> 'new-submission'")
    cases = {
        "new": SectorTestFailure("t_new", "test", "fail", "", 2, rows_of.format("new-submission")),
        "published": SectorTestFailure("t_published", "test", "fail", "", 1, rows_of.format(december)),
        "no_lineage": SectorTestFailure("t_agg", "test", "fail", "", 1, "select 1 as n_rows"),
        "model": failed[1],
        "everyone": SectorTestFailure("t_all", "test", "fail", "", 9, every_insurer),
    }
    with workspace.con() as con:
        verdicts = {k: attribute_sector_failures(con, [f], {december}) for k, f in cases.items()}
        both = attribute_sector_failures(con, [cases["new"], cases["published"]], {december})
    assert verdicts["new"].attributable
    assert list(verdicts["new"].holds) == ["new-submission"]
    finding = verdicts["new"].holds["new-submission"][0]
    assert finding["test"] == "t_new" and finding["failing_rows"] == 2 and set(finding["samples"][0]) == {"claim_key"}
    reasons = {k: dict(v.unattributable) for k, v in verdicts.items() if k != "new"}
    assert "published submission(s) " + december[:12] in reasons["published"]["t_published"]
    assert "no insurer_id and submission_id" in reasons["no_lineage"]["t_agg"]
    assert reasons["model"]["fct_loss_events"] == "model error: Binder Error: x"
    assert "not one delivery's problem" in reasons["everyone"]["t_all"]
    assert not both.attributable and both.holds, "nothing is held while another failure blocks"
    assert "t_published (rows of published" in blocked_message(both, [])

    with workspace.con(read_only=False) as con:
        hold_for_sector_tests(con, verdicts["new"].holds)
        review(con, "new-submission", "release", "data office", "the test is wrong, the data right")
        again = attribute_sector_failures(con, [cases["new"]], {december})
    assert "released by an operator after a sector-test hold" in dict(again.unattributable)["t_new"]


def test_a_submission_failing_a_sector_test_is_held_and_the_others_are_published(workspace):
    """A submission that slipped past the gate delivers a valuation dated before its claim was reported:
    the blocking test names it, the build holds it (SECTOR_TEST:<test>), rebuilds the marts whole without
    it and the cycle publishes every other submission; its feedback and the held list say why."""
    assert workspace.publish_current_marts() == 1
    with workspace.con(read_only=False) as con:
        december = submission_of(con, "tianfu_digital/tf_claim_202412.parquet")
        plant_passed_submission(con, "late-report", "tianfu_digital", "claim_valuations",
                                f"source_row = 1 AND submission_id = '{december}'",
                                "valuation_date + INTERVAL 1 DAY AS report_date")
        bad = con.execute("SELECT claim_key, valuation_date FROM raw.claim_valuations WHERE submission_id = 'late-report'"
                          ).fetchall()
        admitted_before = publication_metadata(con, DBT_PROJECT_DIR)["submissions_included"]
    result = workspace.cycle()
    assert result.success, "the cycle publishes the rest"

    status, reasons, decided_by, results = workspace.gate("late-report")
    assert (status, reasons, decided_by) == ("held", ["SECTOR_TEST:assert_claim_valuation_dates_in_order"], SECTOR_ACTOR)
    finding = results["sector_tests"][0]
    assert finding["test"] == "assert_claim_valuation_dates_in_order" and finding["failing_rows"] == 1
    assert finding["samples"][0]["claim_key"] == bad[0][0] and "insurer_id" not in finding["samples"][0]
    with workspace.con() as con:
        log = con.execute("SELECT status, actor FROM control.submission_gate_log WHERE submission_id = 'late-report' "
                          "ORDER BY logged_at").fetchall()
        in_marts = con.execute("SELECT count(*) FROM marts.fct_claim_valuations WHERE submission_id = 'late-report'"
                               ).fetchall()[0][0]
    assert log[-1] == ("held", SECTOR_ACTOR) and in_marts == 0
    # Only the final build's events reach Dagster: the failing test passed in it.
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["assert_claim_valuation_dates_in_order"].passed
    assert all(e.passed for e in checks.values() if e.severity == dg.AssetCheckSeverity.ERROR)

    manifest = published_manifest(workspace.published)
    assert manifest["version"] == 2
    assert "late-report" not in manifest["submissions_included"]
    assert set(manifest["submissions_included"]) == set(admitted_before) - {"late-report"}
    assert bad[0] in published_pairs(workspace.published / "sector_claims.duckdb"), "the original valuation stays"

    report = json.loads((workspace.data_dir / "feedback" / "tianfu_digital" / "late-report.json").read_text())
    assert report["publication"] == {"status": "held", "version": None}
    assert report["gate"]["sector_tests"][0]["test"] == "assert_claim_valuation_dates_in_order"
    assert report["gate"]["reason_descriptions"]["SECTOR_TEST:assert_claim_valuation_dates_in_order"]
    assert report["gate"]["history"][-1]["by"] == SECTOR_ACTOR
    listed = workspace.cli("submissions", "list", "--status", "held")
    assert "late-report" in listed.output and "SECTOR_TEST:assert_claim_valuation_dates_in_order" in listed.output
    status_out = workspace.cli("status").output
    assert "held by the sector tests" in status_out and "planted_late-report" in status_out


def test_a_revoked_submission_leaves_the_next_published_version(workspace):
    """An operator revokes a published submission: the fingerprint changes, the next build is a full
    refresh (the incremental models held its rows), and its valuations leave the next version unless
    another admitted submission delivers them; the log and its feedback say who, when and why."""
    assert workspace.publish_current_marts() == 1
    source_file = "tianfu_digital/tf_claim_202412.parquet"
    with workspace.con() as con:
        sid = submission_of(con, source_file)
        before = inputs_fingerprint(con, dbt_source_fingerprint())
        # What only this submission delivers (no other admitted one carries the claim and date).
        only_here = set(con.execute("""
            SELECT claim_key, valuation_date FROM raw.claim_valuations WHERE submission_id = $sid
            EXCEPT SELECT claim_key, valuation_date FROM raw.claim_valuations c JOIN control.submission_gate g USING (submission_id)
            WHERE g.status IN ('passed', 'released') AND c.submission_id <> $sid""", {"sid": sid}).fetchall())
    assert only_here and only_here <= published_pairs(workspace.published / "sector_claims.duckdb")

    refused = workspace.cli("submissions", "release", sid[:12], "--note", "already admitted")
    assert refused.exit_code != 0 and "not held" in refused.output
    revoked = workspace.cli("submissions", "revoke", sid[:12], "--note", "insurer withdrew the file: wrong ledger",
                            "--reviewer", "data office")
    assert revoked.exit_code == 0 and "revoked by data office" in revoked.output
    with workspace.con() as con:
        assert inputs_fingerprint(con, dbt_source_fingerprint()) != before
        assert sid[:12] in full_refresh_reason(con, dbt_source_fingerprint())
    assert workspace.cycle().success

    after = published_pairs(workspace.published / "sector_claims.duckdb")
    assert not only_here & after
    manifest = published_manifest(workspace.published)
    assert manifest["version"] == 2 and sid not in manifest["submissions_included"]
    with workspace.con() as con:
        log = con.execute("SELECT status, actor, note FROM control.submission_gate_log WHERE submission_id = ? "
                          "ORDER BY logged_at DESC LIMIT 1", [sid]).fetchall()[0]
        assert full_refresh_reason(con, dbt_source_fingerprint()) is None, "the completed build took it into account"
    assert log == ("revoked", "data office", "insurer withdrew the file: wrong ledger")
    report = json.loads((workspace.data_dir / "feedback" / "tianfu_digital" / f"{sid}.json").read_text())
    assert report["publication"] == {"status": "revoked by operator", "version": None}
    assert report["gate"]["decided_by"] == "data office" and report["gate"]["decision_note"].startswith("insurer withdrew")
    again = workspace.cli("submissions", "revoke", sid[:12], "--note", "twice")
    assert again.exit_code != 0 and "is rejected" in again.output


def test_fields_an_insurer_does_not_deliver_are_unknown_in_the_marts_and_in_the_completeness_view(workspace):
    """A submission without coverage sections and regions (the insurer declares them not delivered)
    passes every blocking test: its claims' coverage party and its policies' province are 'unknown'
    where the marts segment, and the completeness view shows how the fields were delivered."""
    with workspace.con(read_only=False) as con:
        policies = plant_passed_submission(
            con, "no-sections", "pearl_river_hk", "policies", "true",
            "NULL AS region_code, NULL AS coverage_sections, 'nd' || policy_key AS policy_key, "
            "row_number() OVER () AS source_row")
        claims = plant_passed_submission(
            con, "no-sections-claims", "pearl_river_hk", "claim_valuations", "true",
            "NULL AS coverage_section, 'nd' || claim_key AS claim_key, 'nd' || policy_key AS policy_key, "
            "row_number() OVER () AS source_row")
        con.executemany("INSERT INTO control.submission_fields VALUES (?, ?, ?, ?, ?, ?, ?)", [
            ["no-sections", "policy", "region_code", "not_delivered", None, policies, 0],
            ["no-sections", "policy", "coverage_sections", "not_delivered", None, policies, 0],
            ["no-sections-claims", "claim_valuation", "coverage_section", "not_delivered", None, claims, 0],
        ])
    result = workspace.cycle()
    assert result.success
    with workspace.con() as con:
        assert con.execute("SELECT count(*) FROM control.submission_gate WHERE status = 'held' AND decided_by = ?",
                           [SECTOR_ACTOR]).fetchall()[0][0] == 0
        parties = dict(con.execute("SELECT coverage_party, count(*) FROM marts.fct_claims WHERE claim_key LIKE 'nd%' "
                                   "GROUP BY ALL").fetchall())
        provinces = con.execute("SELECT count(*) FROM marts.fct_policies WHERE policy_key LIKE 'nd%' "
                                "AND province_code IS NULL").fetchall()[0][0]
        exposure = con.execute("SELECT count(*) FROM marts.agg_exposure_monthly WHERE province_code = 'unknown'"
                               ).fetchall()[0][0]
        n_claims = con.execute("SELECT count(DISTINCT claim_key) FROM raw.claim_valuations "
                               "WHERE submission_id = 'no-sections-claims'").fetchall()[0][0]
        completeness = con.execute(
            "SELECT record_type, field, delivery, submission_id, rows_accepted, rows_with_value "
            "FROM intermediate.int_submission_fields__completeness WHERE insurer_id = 'pearl_river_hk' "
            "AND field IN ('coverage_section', 'coverage_sections', 'region_code')").fetchall()
        # Over every admitted submission of the insurer (ingestion may record the fields of its real ones).
        delivered = con.execute(
            "SELECT f.record_type, f.field, f.rows_accepted, f.rows_with_value FROM control.submission_fields f "
            "JOIN control.submission_gate g USING (submission_id) WHERE g.insurer_id = 'pearl_river_hk' "
            "AND g.status IN ('passed', 'released')").fetchall()
    assert parties == {"unknown": n_claims}
    assert provinces == policies and exposure > 0
    totals: dict[tuple[str, str], list[int]] = {}
    for rt, name, accepted, with_value in delivered:
        totals.setdefault((rt, name), [0, 0])
        totals[(rt, name)][0] += accepted
        totals[(rt, name)][1] += with_value
    expected = {("claim_valuation", "coverage_section", "no-sections-claims"), ("policy", "coverage_sections", "no-sections"),
                ("policy", "region_code", "no-sections")}
    assert {(rt, name, sid) for rt, name, _, sid, _, _ in completeness} == expected
    for rt, name, delivery, _, accepted, with_value in completeness:
        assert delivery == "not_delivered" and [accepted, with_value] == totals[(rt, name)]


@pytest.mark.e2e
def test_a_failure_no_submission_can_be_held_for_blocks_publication_and_status_says_why(sample, workspace):
    """A blocking test fails on rows of a published submission (here: a row changed in place, found by a
    full rebuild): nothing can be held for it, the cycle fails, nothing is published, and
    `cyberclaims status` names the failed step, the test and why it could not be attributed."""
    assert workspace.publish_current_marts() == 1
    with workspace.con(read_only=False) as con:
        sid = submission_of(con, "tianfu_digital/tf_claim_202406.parquet")
        con.execute("UPDATE raw.claim_valuations SET report_date = valuation_date + INTERVAL 1 DAY "
                    "WHERE submission_id = ? AND source_row = 1", [sid])
        # A full rebuild reads it (as after any change of the dbt project).
        con.execute("UPDATE control.mart_builds SET dbt_project_fingerprint = 'an older project'")
    before = (workspace.published / "sector_claims.duckdb").read_bytes()
    env = {**os.environ, "CYBERCLAIMS_DATA_DIR": str(workspace.data_dir)}
    env.pop("CYBERCLAIMS_DUCKDB", None)
    env.pop("DAGSTER_HOME", None)
    run = subprocess.run([sys.executable, "-m", "cyberclaims.cli", "run", "--rebuild"], env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    assert (workspace.published / "sector_claims.duckdb").read_bytes() == before
    assert workspace.gate(sid)[0] == "passed", "a published submission is not held by the sector tests"

    status = subprocess.run([sys.executable, "-m", "cyberclaims.cli", "status"], env=env, capture_output=True,
                            text=True, timeout=300)
    assert status.returncode == 0, status.stderr
    assert "Last cycle: monthly_cycle run" in status.stdout and "FAILURE" in status.stdout
    failed = next(line for line in status.stdout.splitlines() if "failed step cyberclaims_dbt" in line)
    assert "assert_claim_valuation_dates_in_order" in failed and f"published submission(s) {sid[:12]}" in failed
