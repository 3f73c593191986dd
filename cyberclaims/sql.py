"""`cyberclaims sql`: SQL on the published sector claims database, locked down for readers.

The database is opened read-only, with external access disabled (no reading or writing files,
no ATTACH, no extensions) and the configuration locked so no statement can lift either.
The open connection keeps answering from the version it opened while a newer one is published.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import duckdb

from cyberclaims import csvsafe

LOCKED = {"enable_external_access": False, "lock_configuration": True}
CSV_BATCH_ROWS = 10_000


@dataclass(frozen=True)
class ShellLimits:
    """What one SQL session may take of a shared machine. Set by environment variables:
    CYBERCLAIMS_SQL_MEMORY_LIMIT (DuckDB size, default 2GB), CYBERCLAIMS_SQL_THREADS (default 1) and
    CYBERCLAIMS_SQL_TIMEOUT_SECONDS (per statement, default 300; 0 for none). They are locked with the
    rest of the configuration: no statement can raise them."""

    memory_limit: str = "2GB"
    threads: int = 1
    timeout_seconds: float = 300.0

    @classmethod
    def from_env(cls) -> ShellLimits:
        env = os.environ
        try:
            return cls(env.get("CYBERCLAIMS_SQL_MEMORY_LIMIT") or cls.memory_limit,
                       int(env.get("CYBERCLAIMS_SQL_THREADS") or cls.threads),
                       float(env.get("CYBERCLAIMS_SQL_TIMEOUT_SECONDS") or cls.timeout_seconds))
        except ValueError as exc:
            raise ValueError(f"CYBERCLAIMS_SQL_THREADS / CYBERCLAIMS_SQL_TIMEOUT_SECONDS must be numbers ({exc})") from None


def open_published(path: Path, limits: ShellLimits | None = None) -> duckdb.DuckDBPyConnection:
    if not path.exists():
        raise FileNotFoundError(f"no published database at {path}: run `cyberclaims run` first")
    limits = limits or ShellLimits.from_env()
    config = {"memory_limit": limits.memory_limit, "threads": limits.threads, **LOCKED}
    return duckdb.connect(str(path), read_only=True, config=config)


def is_internal(con: duckdb.DuckDBPyConnection) -> bool:
    """The internal warehouse holds the raw submissions (schema raw); the published database does not."""
    return bool(con.execute("SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'raw'").fetchall()[0][0])


@contextmanager
def warehouse_snapshot(path: Path, folder: Path, attempts: int = 5) -> Iterator[Path]:
    """A private copy of the internal warehouse, taken without a lock, so a session on it never blocks
    the pipeline's writer. The copy is kept only when the file did not change while it was copied (size,
    modification time and no write-ahead log before and after); it is removed when the session ends."""
    if not path.exists():
        raise FileNotFoundError(f"no warehouse at {path}: run `cyberclaims run` first")
    folder.mkdir(parents=True, exist_ok=True)
    wal = path.with_name(path.name + ".wal")

    def state() -> tuple:
        st = path.stat()
        return st.st_size, st.st_mtime_ns, wal.exists()

    for _ in range(attempts):
        before = state()
        if before[2]:  # a writer has work not yet checkpointed: wait for it
            time.sleep(1.0)
            continue
        fd, name = tempfile.mkstemp(prefix="warehouse-snapshot-", suffix=".duckdb", dir=folder)
        os.close(fd)
        copy = Path(name)
        shutil.copyfile(path, copy)
        if state() == before:
            try:
                yield copy
            finally:
                copy.unlink(missing_ok=True)
            return
        copy.unlink(missing_ok=True)
        time.sleep(1.0)
    raise RuntimeError(f"the warehouse {path} kept changing while it was copied: try again when the cycle is idle")


class StatementTimeout(duckdb.Error):
    """A statement ran past the shell's time limit and was interrupted."""


@contextmanager
def time_limit(con: duckdb.DuckDBPyConnection, seconds: float) -> Iterator[None]:
    """Interrupt the connection's running statement after `seconds` (0: no limit)."""
    if not seconds:
        yield
        return
    fired = threading.Event()

    def interrupt() -> None:
        fired.set()
        con.interrupt()

    timer = threading.Timer(seconds, interrupt)
    timer.daemon = True
    timer.start()
    try:
        yield
    except duckdb.Error as exc:
        if fired.is_set():
            raise StatementTimeout(f"statement interrupted after {seconds:g} s "
                                   "(CYBERCLAIMS_SQL_TIMEOUT_SECONDS sets the limit)") from exc
        raise
    finally:
        timer.cancel()


def run_sql(con: duckdb.DuckDBPyConnection, sql: str, out: TextIO, fmt: str = "table", max_rows: int = 10_000,
            timeout_seconds: float | None = None) -> int:
    """Run one or more statements; print the last one's result. Returns the number of rows printed.
    Each call may run for the shell's time limit (ShellLimits.timeout_seconds), then it is interrupted."""
    with time_limit(con, timeout_seconds if timeout_seconds is not None else ShellLimits.from_env().timeout_seconds):
        return _run_sql(con, sql, out, fmt, max_rows)


def _run_sql(con: duckdb.DuckDBPyConnection, sql: str, out: TextIO, fmt: str, max_rows: int) -> int:
    relation = con.sql(sql)
    if relation is None:
        return 0
    columns = relation.columns
    if fmt == "csv":
        # Streamed in batches: an answer of any size costs one batch of memory. Text cells that a
        # spreadsheet would run as a formula are neutralised (cyberclaims.csvsafe).
        writer = csvsafe.writer(out, lineterminator="\n")
        writer.writerow(columns)
        count = 0
        for batch in relation.fetch_record_batch(CSV_BATCH_ROWS):
            writer.writerows(zip(*(column.to_pylist() for column in batch.columns), strict=True))
            count += batch.num_rows
        return count
    rows = relation.limit(max_rows + 1).fetchall()
    truncated = len(rows) > max_rows
    rows = rows[:max_rows]
    text = [[("NULL" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in text]) for i, c in enumerate(columns)]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    out.write(line + "\n| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |\n" + line + "\n")
    for r in text:
        out.write("| " + " | ".join(v.rjust(w) if _numeric(v) else v.ljust(w) for v, w in zip(r, widths, strict=True)) + " |\n")
    out.write(line + "\n")
    out.write(f"{len(rows)} row(s){' (truncated; use --csv for everything)' if truncated else ''}\n")
    return len(rows)


def _numeric(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def repl(con: duckdb.DuckDBPyConnection, fmt: str, stdin: TextIO = sys.stdin, out: TextIO = sys.stdout) -> None:
    """A minimal interactive shell: statements end with ';', `.quit` leaves."""
    interactive = stdin.isatty()
    buffer: list[str] = []
    while True:
        if interactive:
            out.write("sector_claims> " if not buffer else "          ...> ")
            out.flush()
        line = stdin.readline()
        if not line or line.strip() in (".quit", ".exit", "\\q"):
            break
        buffer.append(line)
        if line.rstrip().endswith(";"):
            statement = "".join(buffer)
            buffer = []
            try:
                run_sql(con, statement, out, fmt)
            except duckdb.Error as exc:
                out.write(f"Error: {exc}\n")
