"""The transformation stage's bookkeeping of its dbt builds (control.mart_builds): what each build of the marts
started from, whether the next one may be incremental, and which build a warehouse's marts come from.

Plain DuckDB functions, no Dagster: the dbt assets record their builds with them, publication reads
`built_from` into the manifest of the version it publishes, and tests call them directly.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import duckdb

from cyberclaims.quality.gate import ADMITTED


def inputs_fingerprint(con: duckdb.DuckDBPyConnection, dbt_sources: str) -> str:
    """What the marts are a function of: every submission with its ingestion status and gate decision,
    the row count of every raw table, the dbt project's files, the contract and the code version.
    Equal fingerprints, equal marts; computed from the registry and table metadata, not the rows."""
    from cyberclaims import __version__
    from cyberclaims.ingestion.contract import CONTRACT_VERSION
    from cyberclaims.ingestion.warehouse import table_counts

    digest = hashlib.sha256(f"{__version__}\0{CONTRACT_VERSION}\0{dbt_sources}".encode())
    digest.update(json.dumps(table_counts(con), sort_keys=True).encode())
    for row in con.execute(
        "SELECT submission_id, coalesce(s.status, ''), coalesce(g.status, ''), "
        "coalesce(CAST(g.decided_at AS VARCHAR), '') "
        "FROM control.submissions s FULL JOIN control.submission_gate g USING (submission_id) ORDER BY submission_id"
    ).fetchall():
        digest.update("\0".join(row).encode() + b"\n")
    return digest.hexdigest()


def record_build_inputs(con: duckdb.DuckDBPyConnection, fingerprint: str, dbt_project: str) -> datetime:
    """Note, before dbt builds the marts, which inputs and dbt project they are built from (read back by
    publication and by the next build). Returns the build's start, its key for record_build_completed."""
    started = datetime.now(UTC).replace(tzinfo=None)
    con.execute("INSERT INTO control.mart_builds (started_at, inputs_fingerprint, dbt_project_fingerprint) VALUES (?, ?, ?)",
                [started, fingerprint, dbt_project])
    return started


def record_build_completed(con: duckdb.DuckDBPyConnection, started: datetime) -> None:
    con.execute("UPDATE control.mart_builds SET completed_at = ? WHERE started_at = ?",
                [datetime.now(UTC).replace(tzinfo=None), started])


def record_build_restarted(con: duckdb.DuckDBPyConnection, started: datetime, fingerprint: str) -> datetime:
    """The build started at `started` begins again (the sector tests held submissions, the marts are
    rebuilt whole): it now starts from these inputs, at this time. Returns the build's new key."""
    restarted = datetime.now(UTC).replace(tzinfo=None)
    con.execute("UPDATE control.mart_builds SET started_at = ?, inputs_fingerprint = ? WHERE started_at = ?",
                [restarted, fingerprint, started])
    return restarted


def _last_completed_build(con: duckdb.DuckDBPyConnection) -> tuple[str, datetime] | None:
    row = con.execute("SELECT dbt_project_fingerprint, started_at FROM control.mart_builds WHERE completed_at IS NOT NULL "
                      "ORDER BY completed_at DESC LIMIT 1").fetchall()
    return row[0] if row else None


def incremental_project(con: duckdb.DuckDBPyConnection) -> str | None:
    """The dbt project fingerprint of the last completed build of the marts (None: never recorded)."""
    last = _last_completed_build(con)
    return last[0] if last else None


def left_admission_since(con: duckdb.DuckDBPyConnection, since: datetime) -> list[str]:
    """Submissions that left the admitted set at or after `since` (held by the sector tests, rejected or
    revoked by an operator), from the gate log: the incremental models still hold their rows."""
    return [r[0] for r in con.execute(
        """SELECT DISTINCT submission_id FROM (
               SELECT submission_id, logged_at, status,
                      lag(status) OVER (PARTITION BY submission_id ORDER BY logged_at, rowid) AS before
               FROM control.submission_gate_log)
           WHERE logged_at >= ? AND before IN (SELECT unnest(?)) AND status NOT IN (SELECT unnest(?))
           ORDER BY submission_id""",
        [since, list(ADMITTED), list(ADMITTED)],
    ).fetchall()]


def full_refresh_reason(con: duckdb.DuckDBPyConnection, dbt_project: str) -> str | None:
    """Why the next build must rebuild the incremental models whole, or None when it may be incremental.

    The incremental models keep the rows earlier builds wrote and only add what is newly admitted, so
    they are rebuilt whole when there is no completed build, when the dbt project changed since it (a
    model, a macro, a seed such as an FX rate), or when a submission left the admitted set since it
    started (a sector-test hold, an operator's rejection or revocation)."""
    last = _last_completed_build(con)
    if last is None:
        return "no completed build recorded"
    project, started = last
    if project != dbt_project:
        return "the dbt project changed since the last completed build"
    left = left_admission_since(con, started)
    if left:
        return (f"{len(left)} submission(s) left the admitted set since the last completed build "
                f"({', '.join(s[:12] for s in left)})")
    return None


def built_from(con: duckdb.DuckDBPyConnection, database: str | None = None) -> str | None:
    """The inputs fingerprint of the latest dbt build of the marts in this warehouse (`database`: the name
    the warehouse is attached under, when it is not the connection's own)."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'control' AND table_name = 'mart_builds' "
        "AND database_name = coalesce(?, current_database())", [database]).fetchall()[0][0]
    if not exists:
        return None
    prefix = f'"{database}".' if database else ""
    row = con.execute(f"SELECT inputs_fingerprint FROM {prefix}control.mart_builds ORDER BY started_at DESC LIMIT 1"
                      ).fetchall()
    return row[0][0] if row else None
