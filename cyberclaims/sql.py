"""`cyberclaims sql`: SQL on the published sector claims database, locked down for readers.

The database is opened read-only, with external access disabled (no reading or writing files,
no ATTACH, no extensions) and the configuration locked so no statement can lift either.
The open connection keeps answering from the version it opened while a newer one is published.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import TextIO

import duckdb

LOCKED = {"enable_external_access": False, "lock_configuration": True}


def open_published(path: Path) -> duckdb.DuckDBPyConnection:
    if not path.exists():
        raise FileNotFoundError(f"no published database at {path}: run `cyberclaims run` first")
    return duckdb.connect(str(path), read_only=True, config=dict(LOCKED))


def run_sql(con: duckdb.DuckDBPyConnection, sql: str, out: TextIO, fmt: str = "table", max_rows: int = 10_000) -> int:
    """Run one or more statements; print the last one's result. Returns the number of rows printed."""
    relation = con.sql(sql)
    if relation is None:
        return 0
    columns = relation.columns
    rows = relation.limit(max_rows + 1).fetchall() if fmt == "table" else relation.fetchall()
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        return len(rows)
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
