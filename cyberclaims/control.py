"""The warehouse's own bookkeeping: the `control` schema and its versioned migrations.

Landed data lives in `raw` (canonical rows and quarantine, written by ingestion); what the pipeline knows
about that data lives here, owned by this module:
- submissions: one row per insurer and distinct file content, loaded or rejected, with counts;
- submission_files: every landing file name seen and the submission its content belongs to;
- landing_file_stats: size, mtime and ctime of each landing file when its content was last hashed;
- submission_fields: how each canonical field was delivered in each submission;
- submission_counts: delivered / loaded / quarantined per submission and record type;
- submission_controls: the control totals of each submission (delivered, accepted, manifest);
- submission_gate: the submission-level gate's state of each loaded submission and its reasons;
- submission_gate_log: every gate decision, automatic or by an operator, in order;
- mart_builds: each dbt build of the marts with the inputs fingerprint it started from.

Each change to these tables is a numbered migration, applied once per warehouse, in order, in one transaction,
and recorded in `control.schema_migrations`; a warehouse opened for writing is brought up to the latest version
(`migrate`). A new column or table is a new migration appended to `MIGRATIONS`, never an edit of an old one.
The raw zone's tables are derived from the canonical contract (ingestion.warehouse): they are (re)applied when
the contract's columns change, which `apply_derived` records by fingerprint, not on every connection.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

SCHEMA = "control"

BOOKKEEPING_TABLES = (
    "submissions",
    "submission_files",
    "landing_file_stats",
    "submission_fields",
    "submission_counts",
    "submission_controls",
    "submission_gate",
    "submission_gate_log",
    "mart_builds",
)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    # SQL statements, or a function of the connection for a step that depends on what the warehouse holds.
    steps: Sequence[str] | Callable[[duckdb.DuckDBPyConnection], None]


_CONTROL_TABLES = [
    """CREATE TABLE control.submissions (
  submission_id VARCHAR PRIMARY KEY, insurer_id VARCHAR NOT NULL, source_file VARCHAR NOT NULL,
  file_bytes BIGINT, record_types VARCHAR[], status VARCHAR NOT NULL, error VARCHAR, warnings VARCHAR[],
  rows_delivered BIGINT, rows_loaded BIGINT, rows_quarantined BIGINT,
  mapping_version VARCHAR, contract_version VARCHAR, ingested_at TIMESTAMP
)""",
    # Every file name seen, so a resubmission under a new name is visible and loads nothing.
    """CREATE TABLE control.submission_files (
  insurer_id VARCHAR, source_file VARCHAR, submission_id VARCHAR, first_seen_at TIMESTAMP,
  is_resubmission BOOLEAN, PRIMARY KEY (insurer_id, source_file)
)""",
    # The size, modification time and inode change time each landing file had when its content was last
    # hashed: a file seen again unchanged is not read again (the quick check of rsync and make). The change
    # time is set by the kernel on every write and cannot be set back (utime sets the modification time
    # only), so a file rewritten in place with its size and mtime restored is read again. A row without a
    # change time (from a warehouse that did not record it) has its file hashed once more.
    """CREATE TABLE control.landing_file_stats (
  insurer_id VARCHAR, source_file VARCHAR, file_bytes BIGINT, mtime_ns BIGINT, submission_id VARCHAR NOT NULL,
  ctime_ns BIGINT, PRIMARY KEY (insurer_id, source_file)
)""",
    # How each canonical field was delivered in each submission: by the insurer's column, computed from
    # several, a constant, or not delivered (declared in the config, or not mapped), and how many accepted
    # rows carry a value. The warehouse's completeness view reads it.
    """CREATE TABLE control.submission_fields (
  submission_id VARCHAR, record_type VARCHAR, field VARCHAR, delivery VARCHAR, source VARCHAR,
  rows_accepted BIGINT, rows_with_value BIGINT, PRIMARY KEY (submission_id, record_type, field)
)""",
    """CREATE TABLE control.submission_counts (
  submission_id VARCHAR, record_type VARCHAR, rows_delivered BIGINT, rows_loaded BIGINT,
  rows_quarantined BIGINT, PRIMARY KEY (submission_id, record_type)
)""",
    # Per submission, record type and measure (row count, each amount total): the figure counted over
    # delivered rows, over accepted rows, and the manifest's figure.
    """CREATE TABLE control.submission_controls (
  submission_id VARCHAR, record_type VARCHAR, measure VARCHAR, delivered DECIMAL(38,2), accepted DECIMAL(38,2),
  manifest DECIMAL(38,2), PRIMARY KEY (submission_id, record_type, measure)
)""",
    # pending → passed | held → released | rejected (and revoked), with reasons, GX results, admitted_at.
    """CREATE TABLE control.submission_gate (
  submission_id VARCHAR PRIMARY KEY, insurer_id VARCHAR NOT NULL, status VARCHAR NOT NULL,
  reasons VARCHAR[], results JSON, manifest_file VARCHAR, manifest_error VARCHAR,
  evaluated_at TIMESTAMP, admitted_at TIMESTAMP, decided_by VARCHAR, decided_at TIMESTAMP, decision_note VARCHAR
)""",
    """CREATE TABLE control.submission_gate_log (
  submission_id VARCHAR, logged_at TIMESTAMP, status VARCHAR, reasons VARCHAR[], actor VARCHAR, note VARCHAR
)""",
    # Each dbt build of the marts, with the fingerprint of the inputs it started from, the dbt project it ran
    # and when it completed: a changed model, macro or seed since the last completed build makes the next
    # build a full refresh.
    """CREATE TABLE control.mart_builds (
  started_at TIMESTAMP, inputs_fingerprint VARCHAR, dbt_project_fingerprint VARCHAR, completed_at TIMESTAMP
)""",
]


def _move_out_of_raw(con: duckdb.DuckDBPyConnection) -> None:
    """A warehouse created before the control schema kept its bookkeeping in `raw`: move it, column by name
    (a column the old table lacks stays null), and drop the old table."""
    old = {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'raw' AND database_name = current_database()"
    ).fetchall()}
    for table in BOOKKEEPING_TABLES:
        if table in old:
            con.execute(f"INSERT INTO control.{table} BY NAME SELECT * FROM raw.{table}")
            con.execute(f"DROP TABLE raw.{table}")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "the control schema's bookkeeping tables", _CONTROL_TABLES),
    Migration(2, "bookkeeping of a warehouse that kept it in raw moved to control", _move_out_of_raw),
)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _bootstrap(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_migrations "
        "(version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {SCHEMA}.derived_schemas "
        "(name VARCHAR PRIMARY KEY, fingerprint VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )


def applied_versions(con: duckdb.DuckDBPyConnection) -> list[int]:
    return [r[0] for r in con.execute(f"SELECT version FROM {SCHEMA}.schema_migrations ORDER BY version").fetchall()]


def migrate(con: duckdb.DuckDBPyConnection, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Apply the migrations this warehouse has not had, in order, each in its own transaction; returns the
    versions applied (none when the warehouse is current)."""
    _bootstrap(con)
    done = set(applied_versions(con))
    applied = []
    for m in sorted(migrations, key=lambda m: m.version):
        if m.version in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            if callable(m.steps):
                m.steps(con)
            else:
                for statement in m.steps:
                    con.execute(statement)
            con.execute(f"INSERT INTO {SCHEMA}.schema_migrations VALUES (?, ?, ?)", [m.version, m.name, _now()])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        applied.append(m.version)
    return applied


def apply_derived(con: duckdb.DuckDBPyConnection, name: str, statements: Sequence[str]) -> bool:
    """Apply idempotent DDL derived from code (the raw zone from the contract) when it differs from what was
    last applied under this name; returns whether it ran."""
    fingerprint = hashlib.sha256("\n;\n".join(statements).encode()).hexdigest()
    row = con.execute(f"SELECT fingerprint FROM {SCHEMA}.derived_schemas WHERE name = ?", [name]).fetchall()
    if row and row[0][0] == fingerprint:
        return False
    con.execute("BEGIN TRANSACTION")
    try:
        for statement in statements:
            con.execute(statement)
        con.execute(f"INSERT OR REPLACE INTO {SCHEMA}.derived_schemas VALUES (?, ?, ?)", [name, fingerprint, _now()])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return True
