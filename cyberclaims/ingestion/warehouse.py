"""The internal warehouse's raw zone in DuckDB: DDL derived from the contract, and the
all-or-nothing load of one submission.

Tables (schema `raw`):
- policies, incidents, claim_valuations: canonical rows that passed row-level validation,
  with lineage and identifiers as HMAC keys;
- quarantine: rows that failed, with reasons and the delivered values (identifiers keyed).
The submission's registry entry, counts, control totals, field deliveries and its entry into the gate
(`pending`) are written to the `control` schema (cyberclaims.control) in the same transaction. A submission_id
is the SHA-256 of the file's bytes, or of the insurer and that hash when another insurer delivered the same
bytes first.
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

from cyberclaims import control
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


def raw_zone_ddl() -> list[str]:
    """The raw zone's tables, derived from the contract: a field added to the contract later reaches a
    warehouse created before it (applied once per change of the contract's columns, cyberclaims.control)."""
    statements = ["CREATE SCHEMA IF NOT EXISTS raw"]
    for rt, table in c.RAW_TABLE.items():
        cols = ",\n  ".join(f"{n} {t}" for n, t in record_columns(rt))
        statements.append(f"CREATE TABLE IF NOT EXISTS raw.{table} (\n  {cols}\n)")
        statements += [f"ALTER TABLE raw.{table} ADD COLUMN IF NOT EXISTS {n} {t}" for n, t in record_columns(rt)]
    statements.append(
        """CREATE TABLE IF NOT EXISTS raw.quarantine (
  insurer_id VARCHAR, submission_id VARCHAR, record_type VARCHAR, source_file VARCHAR,
  source_row BIGINT, reasons VARCHAR[], reason_codes VARCHAR[], original_values JSON,
  ingested_at TIMESTAMP, mapping_version VARCHAR
)"""
    )
    return statements


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    limit_memory(con)
    if not read_only:
        control.migrate(con)
        control.apply_derived(con, "raw", raw_zone_ddl())
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
    row = con.execute("SELECT insurer_id FROM control.submissions WHERE submission_id = ?", [digest]).fetchone()
    if row is None or row[0] == insurer_id:
        return digest
    return hashlib.sha256(f"{insurer_id}\n{digest}".encode()).hexdigest()


def known_submission(con: duckdb.DuckDBPyConnection, submission_id: str) -> tuple[str, str] | None:
    row = con.execute(
        "SELECT status, source_file FROM control.submissions WHERE submission_id = ?", [submission_id]
    ).fetchone()
    return (row[0], row[1]) if row else None


def unchanged_file_submission(
    con: duckdb.DuckDBPyConnection, insurer_id: str, source_file: str, file_bytes: int, mtime_ns: int, ctime_ns: int
) -> str | None:
    """The submission id of a landing file last seen with this size, modification time and inode change time."""
    row = con.execute(
        "SELECT submission_id FROM control.landing_file_stats WHERE insurer_id = ? AND source_file = ? "
        "AND file_bytes = ? AND mtime_ns = ? AND ctime_ns = ?",
        [insurer_id, source_file, file_bytes, mtime_ns, ctime_ns],
    ).fetchone()
    return row[0] if row else None


def remember_file_stats(
    con: duckdb.DuckDBPyConnection, insurer_id: str, source_file: str, file_bytes: int, mtime_ns: int, ctime_ns: int,
    submission_id: str,
) -> None:
    con.execute(
        "INSERT OR REPLACE INTO control.landing_file_stats (insurer_id, source_file, file_bytes, mtime_ns, ctime_ns, "
        "submission_id) VALUES (?, ?, ?, ?, ?, ?)",
        [insurer_id, source_file, file_bytes, mtime_ns, ctime_ns, submission_id],
    )


def record_file(con: duckdb.DuckDBPyConnection, meta: SubmissionMeta, is_resubmission: bool) -> None:
    con.execute(
        "INSERT INTO control.submission_files VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
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
                "INSERT INTO control.submission_counts VALUES (?, ?, ?, ?, ?)",
                [meta.submission_id, batch.record_type, batch.delivered, batch.good.height, batch.quarantine.height],
            )
            _insert_controls(con, meta.submission_id, batch, manifest)
            if batch.fields:
                fields = pl.DataFrame(batch.fields).with_columns(
                    pl.lit(meta.submission_id).alias("submission_id"), pl.lit(batch.record_type).alias("record_type"))
                con.register("__fields", fields.to_arrow())
                con.execute("INSERT INTO control.submission_fields BY NAME SELECT * FROM __fields")
                con.unregister("__fields")
        delivered = sum(b.delivered for b in batches)
        loaded = sum(b.good.height for b in batches)
        _insert_submission(con, meta, [b.record_type for b in batches], "loaded", None, warnings,
                           delivered, loaded, delivered - loaded)
        record_file(con, meta, is_resubmission=False)
        con.execute(
            "INSERT INTO control.submission_gate (submission_id, insurer_id, status, reasons, manifest_file, manifest_error) "
            "VALUES (?, ?, 'pending', [], ?, ?)",
            [meta.submission_id, meta.insurer_id, manifest.file if manifest else None, manifest.error if manifest else None],
        )
        con.execute(
            "INSERT INTO control.submission_gate_log VALUES (?, ?, 'pending', [], 'ingestion', ?)",
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
        "INSERT INTO control.submission_controls VALUES (?, ?, ?, ?, ?, ?)",
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
        "SELECT submission_id FROM control.submissions WHERE starts_with(submission_id, ?)", [prefix.lower()]
    ).fetchall()]
    if not matches:
        raise ValueError(f"no submission with id {prefix}")
    if len(matches) > 1:
        raise ValueError(f"{prefix} is ambiguous: {len(matches)} submissions")
    return matches[0]


def rejected_files(con: duckdb.DuckDBPyConnection, insurer_id: str | None = None) -> list[dict]:
    """Files rejected unread (cannot be read, wrong format, no matching layout), with their error."""
    rows = con.execute(
        "SELECT submission_id, insurer_id, source_file, error, mapping_version, ingested_at FROM control.submissions "
        "WHERE status = 'rejected' AND (? IS NULL OR insurer_id = ?) ORDER BY insurer_id, ingested_at, source_file",
        [insurer_id, insurer_id],
    ).fetchall()
    keys = ("submission_id", "insurer_id", "source_file", "error", "mapping_version", "ingested_at")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def rejected_under_other_mapping(con: duckdb.DuckDBPyConnection, submission_id: str, mapping_version: str) -> bool:
    """A file rejected under an earlier version of the insurer's mapping (read again under the current one)."""
    row = con.execute(
        "SELECT mapping_version FROM control.submissions WHERE submission_id = ? AND status = 'rejected'", [submission_id]
    ).fetchall()
    return bool(row) and row[0][0] != mapping_version


def forget_rejection(con: duckdb.DuckDBPyConnection, submission_id: str, note: str, actor: str) -> str:
    """Drop a rejected file's registry entry, so the next ingestion run reads the file again; logged.
    Returns the landing file the retry will read."""
    rows = con.execute(
        "SELECT source_file, error FROM control.submissions WHERE submission_id = ? AND status = 'rejected'", [submission_id]
    ).fetchall()
    if not rows:
        raise ValueError(f"{submission_id[:12]} is not a rejected file")
    source_file, error = rows[0]
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM control.submissions WHERE submission_id = ?", [submission_id])
        con.execute(
            "INSERT INTO control.submission_gate_log VALUES (?, ?, 'retry', ?, ?, ?)",
            [submission_id, datetime.now(UTC).replace(tzinfo=None), [error or ""], actor, note],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return source_file


def _insert_submission(con, meta, record_types, status, error, warnings, delivered, loaded, quarantined) -> None:
    con.execute(
        "INSERT INTO control.submissions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [meta.submission_id, meta.insurer_id, meta.source_file, meta.file_bytes, record_types, status, error,
         warnings, delivered, loaded, quarantined, meta.mapping_version, c.CONTRACT_VERSION, meta.ingested_at],
    )


def table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows per table of the raw zone and of the submission registry, by qualified name."""
    tables = [f"raw.{t}" for t in (*c.RAW_TABLE.values(), "quarantine")] + ["control.submissions", "control.submission_files"]
    return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
