"""The control schema: versioned migrations applied once, a warehouse that kept its bookkeeping in `raw`
moved to `control`, and the raw zone's contract-derived DDL applied when the contract changes."""

from __future__ import annotations

import duckdb
import pytest

from cyberclaims import control
from cyberclaims.ingestion import warehouse


def _tables(con, schema: str) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = ?", [schema]).fetchall()}


def test_a_new_warehouse_is_migrated_once_and_keeps_bookkeeping_out_of_raw(tmp_path):
    db = tmp_path / "wh.duckdb"
    with warehouse.connect(db) as con:
        assert control.applied_versions(con) == [m.version for m in control.MIGRATIONS]
        assert _tables(con, "control") >= set(control.BOOKKEEPING_TABLES)
        assert _tables(con, "raw") == {"policies", "incidents", "claim_valuations", "quarantine"}
        applied_at = con.execute("SELECT applied_at FROM control.schema_migrations ORDER BY version").fetchall()
    with warehouse.connect(db) as con:
        assert control.migrate(con) == []
        assert con.execute("SELECT applied_at FROM control.schema_migrations ORDER BY version").fetchall() == applied_at
        assert control.apply_derived(con, "raw", warehouse.raw_zone_ddl()) is False


def test_a_warehouse_from_before_the_control_schema_has_its_bookkeeping_moved(tmp_path):
    """The old layout: bookkeeping in raw, landing_file_stats without ctime_ns, mart_builds with two columns."""
    db = tmp_path / "old.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE SCHEMA raw")
        con.execute("CREATE TABLE raw.submissions (submission_id VARCHAR PRIMARY KEY, insurer_id VARCHAR NOT NULL, "
                    "source_file VARCHAR NOT NULL, status VARCHAR NOT NULL, ingested_at TIMESTAMP)")
        con.execute("INSERT INTO raw.submissions VALUES ('s1', 'ins_a', 'ins_a/a.csv', 'loaded', TIMESTAMP '2025-01-05 10:00')")
        con.execute("CREATE TABLE raw.landing_file_stats (insurer_id VARCHAR, source_file VARCHAR, file_bytes BIGINT, "
                    "mtime_ns BIGINT, submission_id VARCHAR NOT NULL)")
        con.execute("INSERT INTO raw.landing_file_stats VALUES ('ins_a', 'ins_a/a.csv', 10, 5, 's1')")
        con.execute("CREATE TABLE raw.mart_builds (started_at TIMESTAMP, inputs_fingerprint VARCHAR)")
        con.execute("INSERT INTO raw.mart_builds VALUES (TIMESTAMP '2025-01-06 00:00', 'abc')")
        con.execute("CREATE TABLE raw.submission_gate_log (submission_id VARCHAR, logged_at TIMESTAMP, status VARCHAR, "
                    "reasons VARCHAR[], actor VARCHAR, note VARCHAR)")
        con.execute("INSERT INTO raw.submission_gate_log VALUES ('s1', TIMESTAMP '2025-01-05 10:00', 'pending', [], 'ingestion', NULL)")
    with warehouse.connect(db) as con:
        assert not (_tables(con, "raw") & set(control.BOOKKEEPING_TABLES))
        assert con.execute("SELECT submission_id, insurer_id, status, file_bytes FROM control.submissions").fetchall() == [
            ("s1", "ins_a", "loaded", None)]
        assert con.execute("SELECT file_bytes, mtime_ns, ctime_ns FROM control.landing_file_stats").fetchall() == [(10, 5, None)]
        assert con.execute("SELECT inputs_fingerprint, completed_at FROM control.mart_builds").fetchall() == [("abc", None)]
        assert con.execute("SELECT status, actor FROM control.submission_gate_log").fetchall() == [("pending", "ingestion")]
        # The primary keys of the new tables hold.
        with pytest.raises(duckdb.ConstraintException):
            con.execute("INSERT INTO control.submissions (submission_id, insurer_id, source_file, status) "
                        "VALUES ('s1', 'ins_a', 'x', 'loaded')")


def test_a_failing_migration_changes_nothing_and_is_applied_again_next_time(tmp_path):
    db = tmp_path / "wh.duckdb"
    with warehouse.connect(db) as con:
        current = control.applied_versions(con)
        broken = control.Migration(99, "a column and a broken statement", [
            "ALTER TABLE control.submissions ADD COLUMN reviewed BOOLEAN", "ALTER TABLE control.no_such_table ADD COLUMN x INT"])
        with pytest.raises(duckdb.CatalogException):
            control.migrate(con, (*control.MIGRATIONS, broken))
        assert control.applied_versions(con) == current
        columns = {r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = 'submissions'").fetchall()}
        assert "reviewed" not in columns
        fixed = control.Migration(99, "a column", ["ALTER TABLE control.submissions ADD COLUMN reviewed BOOLEAN"])
        assert control.migrate(con, (*control.MIGRATIONS, fixed)) == [99]
        assert control.migrate(con, (*control.MIGRATIONS, fixed)) == []


def test_the_raw_zone_follows_the_contract_when_it_changes(tmp_path):
    with warehouse.connect(tmp_path / "wh.duckdb") as con:
        ddl = warehouse.raw_zone_ddl()
        assert control.apply_derived(con, "raw", ddl) is False
        grown = [*ddl, "ALTER TABLE raw.policies ADD COLUMN IF NOT EXISTS broker_code VARCHAR"]
        assert control.apply_derived(con, "raw", grown) is True
        assert control.apply_derived(con, "raw", grown) is False
        assert "broker_code" in {r[0] for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'raw' AND table_name = 'policies'").fetchall()}
