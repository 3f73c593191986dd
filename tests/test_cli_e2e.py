"""The two things a user runs: `cyberclaims generate` and `cyberclaims run`, as real processes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import duckdb
import pytest

pytestmark = pytest.mark.e2e


def cli(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "cyberclaims.cli", *args], env=env, capture_output=True, text=True, timeout=900
    )


def counts(db):
    with duckdb.connect(str(db), read_only=True) as con:
        return {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("raw.policies", "raw.incidents", "raw.claim_valuations", "raw.quarantine", "control.submissions",
                      "control.submission_files")
        }


def test_generate_then_run_twice(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CYBERCLAIMS_", "DAGSTER_HOME"))}
    env["CYBERCLAIMS_DATA_DIR"] = str(tmp_path / "data")
    gen = cli("generate", "--insureds", "400", "--first-month", "2023-01", "--last-month", "2024-12", env=env)
    assert gen.returncode == 0, gen.stderr
    assert "expected quarantine reasons" in gen.stdout

    first = cli("run", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "SUCCESS" in first.stdout
    assert "DEMO secret" in first.stderr  # no secret configured: the demo key is created loudly
    db = tmp_path / "data" / "warehouse" / "cyberclaims.duckdb"
    after_first = counts(db)
    assert min(after_first.values()) > 0

    summary = json.loads((tmp_path / "data" / "truth" / "summary.json").read_text())
    with duckdb.connect(str(db), read_only=True) as con:
        reasons = dict(con.execute("SELECT reason_codes[1], count(*) FROM raw.quarantine GROUP BY ALL").fetchall())
    assert reasons == summary["expected_quarantine_reasons"]

    published = tmp_path / "data" / "published" / "sector_claims.duckdb"
    with duckdb.connect(str(published), read_only=True) as con:
        assert con.execute("SELECT value FROM publication_manifest WHERE key = 'version'").fetchall() == [("1",)]
        assert con.execute(
            "SELECT count(*) FROM information_schema.columns WHERE column_name = 'insurer_id'"
        ).fetchall() == [(0,)]

    catalog = (tmp_path / "data" / "published" / "catalog" / "index.html").read_text(encoding="utf-8")
    assert "fct_claim_valuations" in catalog
    assert (tmp_path / "data" / "published" / "parquet" / "fct_claims.parquet").stat().st_size > 0

    reports = list((tmp_path / "data" / "feedback").glob("*/*.json"))
    assert len(reports) == after_first["control.submissions"]

    # The cycle ends with the regulator pack of the latest complete quarter.
    pack = tmp_path / "data" / "regulator" / "2024Q4"
    assert (pack / "cyber_insurance_pilot_statistics_2024Q4.xlsx").stat().st_size > 0
    # One CSV per table of the pack (each table once per period), one chart file per chart the report shows.
    tables = json.loads((pack / "cyber_insurance_pilot_statistics_2024Q4.json").read_text(encoding="utf-8"))["tables"]
    assert tables and {p.name for p in (pack / "csv").glob("*.csv")} == {f"{t['name']}_{t['period']}.csv" for t in tables}
    shown = set(re.findall(r"charts/([\w.-]+\.png)", (pack / "report.html").read_text(encoding="utf-8")))
    assert shown and {p.name for p in (pack / "charts").glob("*.png")} == shown
    assert (tmp_path / "data" / "internal" / "regulator" / "2024Q4" / "suppression_audit.csv").exists()
    earlier = cli("report", "regulator", "--quarter", "2024q3", env=env)
    assert earlier.returncode == 0, earlier.stdout + earlier.stderr
    assert "Regulator pack 2024Q3" in earlier.stdout and "publication version 1" in earlier.stdout
    incomplete = cli("report", "regulator", "--quarter", "2025Q1", env=env)
    assert incomplete.returncode == 1 and "2025Q1 is not complete" in incomplete.stderr

    # Nothing arrived and nothing was decided: the run stops after ingestion and the gate.
    second = cli("run", env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert counts(db) == after_first
    assert "Nothing new since the published version" in second.stdout
    assert "emitted no result" not in second.stderr and "Traceback" not in second.stderr
    assert "version 1 (kept: [1])" in second.stdout

    # An operator's decision is new: releasing a held submission rebuilds. Its rows alone are one insurer's
    # change since version 1, so that version is held (the difference rule) and the run says why.
    with duckdb.connect(str(db), read_only=True) as con:
        held_by_insurer = dict(con.execute(
            "SELECT insurer_id, min(submission_id) FROM control.submission_gate WHERE status = 'held' GROUP BY ALL "
            "ORDER BY 1").fetchall())
    assert held_by_insurer
    first_insurer, held = next(iter(held_by_insurer.items()))
    released = cli("submissions", "release", held, "--note", "row count confirmed by the insurer", env=env)
    assert released.returncode == 0, released.stdout + released.stderr
    alone = cli("run", env=env)
    assert alone.returncode == 0, alone.stdout + alone.stderr
    assert "Nothing new" not in alone.stdout
    assert "Publication held (version 1 stays published)" in alone.stdout and "from 1 insurer(s)" in alone.stdout
    assert "version 1 (kept: [1])" in alone.stdout
    # The other held releases join it, and an operator revokes a file a third insurer withdrew: a
    # withdrawal is published at once, and the held changes go out with it.
    for insurer, submission in held_by_insurer.items():
        if insurer != first_insurer:
            assert cli("submissions", "release", submission, "--note", "confirmed", env=env).returncode == 0
    with duckdb.connect(str(db), read_only=True) as con:
        withdrawn = con.execute(
            "SELECT min(submission_id) FROM control.submission_gate WHERE status = 'passed' AND insurer_id NOT IN "
            "(SELECT unnest($1))", [list(held_by_insurer)]).fetchall()[0][0]
    revoked = cli("submissions", "revoke", withdrawn, "--note", "the insurer withdrew the file", env=env)
    assert revoked.returncode == 0, revoked.stdout + revoked.stderr
    third = cli("run", env=env)
    assert third.returncode == 0, third.stdout + third.stderr
    assert "Nothing new" not in third.stdout and "version 2 (kept: [1, 2])" in third.stdout, third.stdout
    with duckdb.connect(str(published), read_only=True) as con:
        included = json.loads(con.execute(
            "SELECT value FROM publication_manifest WHERE key = 'submissions_included'").fetchall()[0][0])
        checks = json.loads(con.execute("SELECT value FROM publication_manifest WHERE key = 'checks'").fetchall()[0][0])
    assert withdrawn not in included
    difference = next(c for c in checks if c["name"] == "difference_from_enough_insurers")
    assert difference["passed"] and f"withdrawal of {withdrawn}" in difference["detail"]
    assert set(held_by_insurer.values()) <= set(included)
    # Same dbt project: version 2 reuses version 1's docs site instead of starting dbt docs again.
    exports = tmp_path / "data" / "published" / "exports"
    assert (exports / "v000002" / "catalog" / "index.html").read_bytes() == (
        exports / "v000001" / "catalog" / "index.html"
    ).read_bytes()

    rolled = cli("publish", "--rollback", "1", env=env)
    assert rolled.returncode == 0 and "version 1 again" in rolled.stdout

    # The run is recorded in the Dagster instance the UI reads.
    runs = list((tmp_path / "data" / "dagster_home" / "storage").iterdir())
    assert len(runs) >= 2
