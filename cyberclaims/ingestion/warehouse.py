"""The internal warehouse's raw zone in DuckDB: DDL derived from the contract, and the
all-or-nothing load of one submission.

Tables (schema `raw`):
- policies, incidents, claim_valuations: canonical rows that passed row-level validation,
  with lineage and identifiers as HMAC keys;
- quarantine: rows that failed, with reasons and the delivered values (identifiers keyed);
- submissions: one row per insurer and distinct file content (submission_id = SHA-256 of the bytes, or of the
  insurer and that hash when another insurer delivered the same bytes first),
  its status (loaded / rejected), error, warnings and counts;
- submission_files: every file name seen and the submission its content belongs to, so a
  resubmission under a new name is visible and loads nothing;
- submission_counts: delivered / loaded / quarantined per submission and record type;
- submission_controls: per submission, record type and measure (row count, each amount total)
  the figure counted over delivered rows, over accepted rows, and the manifest's figure;
- submission_gate: the submission-level gate's state of each loaded submission (pending →
  passed | held → released | rejected), its reasons and results, and when it was admitted;
- submission_gate_log: every gate decision, automatic or by an operator, in order.
Only rows of admitted submissions (passed or released) flow into the dbt models.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl

from cyberclaims.ingestion import contract as c
from cyberclaims.settings import limit_memory

_SQL_TYPE = {
    "identifier": "VARCHAR",
    "str": "VARCHAR",
    "date": "DATE",
    "money": f"DECIMAL({c.MONEY_PRECISION},{c.MONEY_SCALE})",
    "revenue": f"DECIMAL({c.REVENUE_PRECISION},{c.MONEY_SCALE})",
    "int": "BIGINT",
    "number": "DOUBLE",
    "bool": "BOOLEAN",
    "code": "VARCHAR",
    "currency": "VARCHAR",
    "code_list": "VARCHAR[]",
    "str_list": "VARCHAR[]",
}


def record_columns(rt: str) -> list[tuple[str, str]]:
    cols = list(c.LINEAGE_COLUMNS)
    for f in c.stored_fields(rt):
        name = c.key_column(f) if f.kind == "identifier" else f.name
        cols.append((name, _SQL_TYPE[f.kind]))
    return cols


def ddl() -> list[str]:
    statements = ["CREATE SCHEMA IF NOT EXISTS raw"]
    for rt, table in c.RAW_TABLE.items():
        cols = ",\n  ".join(f"{n} {t}" for n, t in record_columns(rt))
        statements.append(f"CREATE TABLE IF NOT EXISTS raw.{table} (\n  {cols}\n)")
        # A field added to the contract later reaches a warehouse created before it.
        statements += [f"ALTER TABLE raw.{table} ADD COLUMN IF NOT EXISTS {n} {t}" for n, t in record_columns(rt)]
    statements += [
        """CREATE TABLE IF NOT EXISTS raw.quarantine (
  insurer_id VARCHAR, submission_id VARCHAR, record_type VARCHAR, source_file VARCHAR,
  source_row BIGINT, reasons VARCHAR[], reason_codes VARCHAR[], original_values JSON,
  ingested_at TIMESTAMP, mapping_version VARCHAR
)""",
        """CREATE TABLE IF NOT EXISTS raw.submissions (
  submission_id VARCHAR PRIMARY KEY, insurer_id VARCHAR NOT NULL, source_file VARCHAR NOT NULL,
  file_bytes BIGINT, record_types VARCHAR[], status VARCHAR NOT NULL, error VARCHAR, warnings VARCHAR[],
  rows_delivered BIGINT, rows_loaded BIGINT, rows_quarantined BIGINT,
  mapping_version VARCHAR, contract_version VARCHAR, ingested_at TIMESTAMP
)""",
        """CREATE TABLE IF NOT EXISTS raw.submission_files (
  insurer_id VARCHAR, source_file VARCHAR, submission_id VARCHAR, first_seen_at TIMESTAMP,
  is_resubmission BOOLEAN, PRIMARY KEY (insurer_id, source_file)
)""",
        # The size, modification time and inode change time each landing file had when its content was last
        # hashed: a file seen again unchanged is not read again (the quick check of rsync and make). The change
        # time is set by the kernel on every write and cannot be set back (utime sets the modification time
        # only), so a file rewritten in place with its size and mtime restored is read again. A row from before
        # the column has none: its file is hashed once more (and recognised by its content).
        """CREATE TABLE IF NOT EXISTS raw.landing_file_stats (
  insurer_id VARCHAR, source_file VARCHAR, file_bytes BIGINT, mtime_ns BIGINT, submission_id VARCHAR NOT NULL,
  PRIMARY KEY (insurer_id, source_file)
)""",
        "ALTER TABLE raw.landing_file_stats ADD COLUMN IF NOT EXISTS ctime_ns BIGINT",
        # How each canonical field was delivered in each submission: by the insurer's column, computed
        # from several, a constant, or not delivered (declared in the config, or not mapped), and how
        # many accepted rows carry a value. The warehouse's completeness view reads it.
        """CREATE TABLE IF NOT EXISTS raw.submission_fields (
  submission_id VARCHAR, record_type VARCHAR, field VARCHAR, delivery VARCHAR, source VARCHAR,
  rows_accepted BIGINT, rows_with_value BIGINT, PRIMARY KEY (submission_id, record_type, field)
)""",
        """CREATE TABLE IF NOT EXISTS raw.submission_counts (
  submission_id VARCHAR, record_type VARCHAR, rows_delivered BIGINT, rows_loaded BIGINT,
  rows_quarantined BIGINT, PRIMARY KEY (submission_id, record_type)
)""",
        """CREATE TABLE IF NOT EXISTS raw.submission_controls (
  submission_id VARCHAR, record_type VARCHAR, measure VARCHAR, delivered DECIMAL(38,2), accepted DECIMAL(38,2),
  manifest DECIMAL(38,2), PRIMARY KEY (submission_id, record_type, measure)
)""",
        """CREATE TABLE IF NOT EXISTS raw.submission_gate (
  submission_id VARCHAR PRIMARY KEY, insurer_id VARCHAR NOT NULL, status VARCHAR NOT NULL,
  reasons VARCHAR[], results JSON, manifest_file VARCHAR, manifest_error VARCHAR,
  evaluated_at TIMESTAMP, admitted_at TIMESTAMP, decided_by VARCHAR, decided_at TIMESTAMP, decision_note VARCHAR
)""",
        # Each dbt build of the marts, with the fingerprint of the inputs it started from
        # (publication.publish.inputs_fingerprint).
        # With the dbt project it ran and when it completed: a changed model, macro or seed (an FX
        # rate, a taxonomy) since the last completed build makes the next build a full refresh.
        "CREATE TABLE IF NOT EXISTS raw.mart_builds (started_at TIMESTAMP, inputs_fingerprint VARCHAR)",
        "ALTER TABLE raw.mart_builds ADD COLUMN IF NOT EXISTS dbt_project_fingerprint VARCHAR",
        "ALTER TABLE raw.mart_builds ADD COLUMN IF NOT EXISTS completed_at TIMESTAMP",
        """CREATE TABLE IF NOT EXISTS raw.submission_gate_log (
  submission_id VARCHAR, logged_at TIMESTAMP, status VARCHAR, reasons VARCHAR[], actor VARCHAR, note VARCHAR
)""",
    ]
    return statements


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    limit_memory(con)
    if not read_only:
        for statement in ddl():
            con.execute(statement)
    return con


@dataclass(frozen=True)
class SubmissionMeta:
    submission_id: str
    insurer_id: str
    source_file: str
    file_bytes: int
    mapping_version: str
    ingested_at: datetime


def submission_id_for(con: duckdb.DuckDBPyConnection, insurer_id: str, digest: str) -> str:
    """The submission id of a file of this content delivered by this insurer.

    A submission is (insurer, content): the SHA-256 of the bytes, unless another insurer delivered the same bytes
    first — then the SHA-256 of the insurer and that hash, so each insurer's delivery is its own submission with
    its own feedback (and never 'already loaded' because of another insurer's file)."""
    row = con.execute("SELECT insurer_id FROM raw.submissions WHERE submission_id = ?", [digest]).fetchone()
    if row is None or row[0] == insurer_id:
        return digest
    return hashlib.sha256(f"{insurer_id}\n{digest}".encode()).hexdigest()


def known_submission(con: duckdb.DuckDBPyConnection, submission_id: str) -> tuple[str, str] | None:
    row = con.execute(
        "SELECT status, source_file FROM raw.submissions WHERE submission_id = ?", [submission_id]
    ).fetchone()
    return (row[0], row[1]) if row else None


def unchanged_file_submission(
    con: duckdb.DuckDBPyConnection, insurer_id: str, source_file: str, file_bytes: int, mtime_ns: int, ctime_ns: int
) -> str | None:
    """The submission id of a landing file last seen with this size, modification time and inode change time."""
    row = con.execute(
        "SELECT submission_id FROM raw.landing_file_stats WHERE insurer_id = ? AND source_file = ? "
        "AND file_bytes = ? AND mtime_ns = ? AND ctime_ns = ?",
        [insurer_id, source_file, file_bytes, mtime_ns, ctime_ns],
    ).fetchone()
    return row[0] if row else None


def remember_file_stats(
    con: duckdb.DuckDBPyConnection, insurer_id: str, source_file: str, file_bytes: int, mtime_ns: int, ctime_ns: int,
    submission_id: str,
) -> None:
    con.execute(
        "INSERT OR REPLACE INTO raw.landing_file_stats (insurer_id, source_file, file_bytes, mtime_ns, ctime_ns, "
        "submission_id) VALUES (?, ?, ?, ?, ?, ?)",
        [insurer_id, source_file, file_bytes, mtime_ns, ctime_ns, submission_id],
    )


def record_file(con: duckdb.DuckDBPyConnection, meta: SubmissionMeta, is_resubmission: bool) -> None:
    con.execute(
        "INSERT INTO raw.submission_files VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [meta.insurer_id, meta.source_file, meta.submission_id, meta.ingested_at, is_resubmission],
    )


def _lineage(meta: SubmissionMeta) -> list[pl.Expr]:
    return [
        pl.lit(meta.insurer_id).alias("insurer_id"),
        pl.lit(meta.submission_id).alias("submission_id"),
        pl.lit(meta.source_file).alias("source_file"),
        pl.lit(meta.ingested_at).alias("ingested_at"),
        pl.lit(meta.mapping_version).alias("mapping_version"),
    ]


def write_submission(
    con: duckdb.DuckDBPyConnection,
    meta: SubmissionMeta,
    batches: list,  # list[MappedBatch]
    warnings: list[str],
    manifest=None,  # ingestion.manifest.Manifest | None
) -> None:
    """Load a submission's rows, quarantine, control totals and registry entry in ONE transaction.

    The submission enters the gate as `pending`: its rows reach the dbt models only once the
    submission-level gate (or an operator) admits it.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        for batch in batches:
            good = batch.good.with_columns(_lineage(meta))
            con.register("__good", good.to_arrow())
            con.execute(f"INSERT INTO raw.{c.RAW_TABLE[batch.record_type]} BY NAME SELECT * FROM __good")
            con.unregister("__good")
            if batch.quarantine.height:
                q = batch.quarantine.with_columns(
                    *_lineage(meta),
                    pl.lit(batch.record_type).alias("record_type"),
                    pl.col("reasons").list.eval(pl.element().str.split(":").list.first()).list.unique(maintain_order=True).alias("reason_codes"),
                )
                con.register("__q", q.to_arrow())
                con.execute("INSERT INTO raw.quarantine BY NAME SELECT * EXCLUDE (original_values), original_values::JSON AS original_values FROM __q")
                con.unregister("__q")
            con.execute(
                "INSERT INTO raw.submission_counts VALUES (?, ?, ?, ?, ?)",
                [meta.submission_id, batch.record_type, batch.delivered, batch.good.height, batch.quarantine.height],
            )
            _insert_controls(con, meta.submission_id, batch, manifest)
            if batch.fields:
                fields = pl.DataFrame(batch.fields).with_columns(
                    pl.lit(meta.submission_id).alias("submission_id"), pl.lit(batch.record_type).alias("record_type"))
                con.register("__fields", fields.to_arrow())
                con.execute("INSERT INTO raw.submission_fields BY NAME SELECT * FROM __fields")
                con.unregister("__fields")
        delivered = sum(b.delivered for b in batches)
        loaded = sum(b.good.height for b in batches)
        _insert_submission(con, meta, [b.record_type for b in batches], "loaded", None, warnings,
                           delivered, loaded, delivered - loaded)
        record_file(con, meta, is_resubmission=False)
        con.execute(
            "INSERT INTO raw.submission_gate (submission_id, insurer_id, status, reasons, manifest_file, manifest_error) "
            "VALUES (?, ?, 'pending', [], ?, ?)",
            [meta.submission_id, meta.insurer_id, manifest.file if manifest else None, manifest.error if manifest else None],
        )
        con.execute(
            "INSERT INTO raw.submission_gate_log VALUES (?, ?, 'pending', [], 'ingestion', ?)",
            [meta.submission_id, meta.ingested_at, f"manifest {manifest.file}" if manifest else "no manifest"],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _insert_controls(con, submission_id: str, batch, manifest) -> None:
    from cyberclaims.ingestion.manifest import ROW_COUNT

    rt = batch.record_type
    figures = manifest.figures if manifest else {}
    rows = [(ROW_COUNT, Decimal(batch.delivered), Decimal(batch.good.height))]
    accepted = batch.good.select(pl.col(list(batch.delivered_totals)).cast(pl.Decimal(38, 2)).sum()).row(0, named=True) \
        if batch.delivered_totals else {}
    rows += [(name, total, Decimal(accepted[name] or 0)) for name, total in batch.delivered_totals.items()]
    con.executemany(
        "INSERT INTO raw.submission_controls VALUES (?, ?, ?, ?, ?, ?)",
        [[submission_id, rt, measure, delivered, acc, figures.get((rt, measure))] for measure, delivered, acc in rows],
    )


def reject_submission(
    con: duckdb.DuckDBPyConnection, meta: SubmissionMeta, record_types: list[str], error: str
) -> None:
    con.execute("BEGIN TRANSACTION")
    try:
        _insert_submission(con, meta, record_types, "rejected", error, [], None, 0, None)
        record_file(con, meta, is_resubmission=False)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def resolve_submission_id(con: duckdb.DuckDBPyConnection, prefix: str) -> str:
    """The full submission id for an id or an unambiguous prefix of at least 8 characters (any status)."""
    if len(prefix) < 8:
        raise ValueError("give at least 8 characters of the submission id")
    matches = [r[0] for r in con.execute(
        "SELECT submission_id FROM raw.submissions WHERE starts_with(submission_id, ?)", [prefix.lower()]
    ).fetchall()]
    if not matches:
        raise ValueError(f"no submission with id {prefix}")
    if len(matches) > 1:
        raise ValueError(f"{prefix} is ambiguous: {len(matches)} submissions")
    return matches[0]


def rejected_files(con: duckdb.DuckDBPyConnection, insurer_id: str | None = None) -> list[dict]:
    """Files rejected unread (cannot be read, wrong format, no matching layout), with their error."""
    rows = con.execute(
        "SELECT submission_id, insurer_id, source_file, error, mapping_version, ingested_at FROM raw.submissions "
        "WHERE status = 'rejected' AND (? IS NULL OR insurer_id = ?) ORDER BY insurer_id, ingested_at, source_file",
        [insurer_id, insurer_id],
    ).fetchall()
    keys = ("submission_id", "insurer_id", "source_file", "error", "mapping_version", "ingested_at")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def rejected_under_other_mapping(con: duckdb.DuckDBPyConnection, submission_id: str, mapping_version: str) -> bool:
    """A file rejected under an earlier version of the insurer's mapping (read again under the current one)."""
    row = con.execute(
        "SELECT mapping_version FROM raw.submissions WHERE submission_id = ? AND status = 'rejected'", [submission_id]
    ).fetchall()
    return bool(row) and row[0][0] != mapping_version


def forget_rejection(con: duckdb.DuckDBPyConnection, submission_id: str, note: str, actor: str) -> str:
    """Drop a rejected file's registry entry, so the next ingestion run reads the file again; logged.
    Returns the landing file the retry will read."""
    rows = con.execute(
        "SELECT source_file, error FROM raw.submissions WHERE submission_id = ? AND status = 'rejected'", [submission_id]
    ).fetchall()
    if not rows:
        raise ValueError(f"{submission_id[:12]} is not a rejected file")
    source_file, error = rows[0]
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM raw.submissions WHERE submission_id = ?", [submission_id])
        con.execute(
            "INSERT INTO raw.submission_gate_log VALUES (?, ?, 'retry', ?, ?, ?)",
            [submission_id, datetime.now(UTC).replace(tzinfo=None), [error or ""], actor, note],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return source_file


def _insert_submission(con, meta, record_types, status, error, warnings, delivered, loaded, quarantined) -> None:
    con.execute(
        "INSERT INTO raw.submissions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [meta.submission_id, meta.insurer_id, meta.source_file, meta.file_bytes, record_types, status, error,
         warnings, delivered, loaded, quarantined, meta.mapping_version, c.CONTRACT_VERSION, meta.ingested_at],
    )


def table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    tables = [*c.RAW_TABLE.values(), "quarantine", "submissions", "submission_files"]
    return {t: con.execute(f"SELECT count(*) FROM raw.{t}").fetchone()[0] for t in tables}
