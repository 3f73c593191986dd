"""The benchmark floor: marts.fct_claim_valuations from the landing files by the cheapest honest route.

    .venv/bin/python benchmarks/floor.py --landing data/landing --warehouse data/warehouse/cyberclaims.duckdb \\
        --secret-file data/secrets/hmac.key     # or --secret SECRET; [--fx dbt_project/seeds/fx_rates_monthly.csv]

The full pipeline's time is divided by this one's, so the floor does the same essential work and
nothing more, as one hand-written DuckDB script (benchmarks/floor/floor.sql) in a fresh in-memory
database:

- every claim-valuation file of every insurer is read and mapped to the canonical columns by the
  layout's rules (cyberclaims/ingestion/configs/*.yaml, readers.py, mapping.py): value maps, date formats, unit
  multiplier, text → Decimal(38,6) → × multiplier → fen, both roundings half to even as polars does;
- a row is dropped where ingestion quarantines it: a required field missing, a date that matches none
  of the layout's formats, an amount that does not parse or is negative, an unknown code, dates out of
  order, or an exact repeat of an earlier row of the same file;
- submission_id is the SHA-256 of the file's bytes (DuckDB sha256 over read_blob); a content delivered
  again under another name counts once;
- identifiers become HMAC-SHA256 keys exactly as cyberclaims/ingestion/pseudonymize.py makes them, in SQL: the key
  block is XORed with ipad/opad as BIT strings and HMAC = sha256(k⊕opad ‖ sha256(k⊕ipad ‖ msg)), once
  per distinct message;
- per claim and valuation date the latest submission wins (int_claim_valuations__deduplicated); FX to
  CNY at the valuation month's rate with the to_cny rounding; is_open from the tax_claim_status seed.

Two layouts DuckDB 2.0 cannot read without extensions, so they are converted first and that time is
counted in the floor: Changjiang's GBK CSVs are decoded to UTF-8 temporary copies with Python's codecs
(streamed, as the pipeline's reader does), and the 赔案 sheet of each Huanan workbook is read by fastexcel
(calamine) as text into Arrow, which DuckDB scans in place. CSV UTF-8, JSON Lines, Parquet, the mapping,
the validation, the keys, the dedup, FX and the comparison are SQL. Only claim-valuation files are read:
nothing in fct_claim_valuations depends on policies or incidents.

Inputs taken from the pipeline rather than re-implemented: which submissions the submission gate did not
admit (held, rejected, still pending). Their file names, resends included, are read from the pipeline
warehouse's control.submission_files joined to control.submission_gate before the clock starts, and those files
are not read. Ingestion order is delivery-name order per insurer, as cyberclaims/ingestion/pipeline.py walks the
landing zone; the ranking uses it where the pipeline uses ingested_at, which is the same order when the
landing zone was ingested in name order (one run, or month files arriving in month order).

The floor runs in a child process so that its peak RSS (getrusage of that process, read when the table is
built) is its own; `seconds` is the child's wall time from finding the files to the finished table
(conversions included, interpreter start-up and the read of the gate's decisions excluded). The child
then attaches the pipeline warehouse READ_ONLY and compares the business columns of the two tables
(EXCEPT ALL both ways; run bookkeeping — ingested_at, changed_at, loaded_by_invocation — left out).
"""

from __future__ import annotations

import argparse
import codecs
import fnmatch
import functools
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cyberclaims.quality.gate import ADMITTED

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
SQL_PATH = Path(__file__).resolve().parent / "floor" / "floor.sql"
SEEDS_DIR = ROOT / "dbt_project" / "seeds"
DEFAULT_FX = SEEDS_DIR / "fx_rates_monthly.csv"
CLAIM_STATUS_SEED = SEEDS_DIR / "tax_claim_status.csv"

# insurer → (file pattern of its claim valuations, how the floor reads them); from cyberclaims/ingestion/configs/*.yaml.
CLAIM_LAYOUTS: dict[str, tuple[str, str]] = {
    "changjiang_ins": ("CJ_CLAIM_*.csv", "gbk_csv"),
    "dongfang_pc": ("claims_*.csv", "csv"),
    "huanan_general": ("huanan_*.xlsx", "xlsx"),
    "pearl_river_hk": ("prh_claims_*.jsonl", "jsonl"),
    "tianfu_digital": ("tf_claim_*.parquet", "parquet"),
}
GBK = "gbk"
HUANAN_SHEET, HUANAN_HEADER_ROW = "赔案", 1
MANIFEST_SUFFIX = ".manifest.json"
_CHUNK = 1 << 20

# The columns compared with the mart: everything but the run's bookkeeping.
BUSINESS_COLUMNS = (
    "claim_key", "valuation_date", "incident_key", "policy_key", "insurer_id", "coverage_section", "status",
    "is_open", "report_date", "closed_date", "currency", "fx_rate", "paid_indemnity", "paid_expense",
    "case_reserve", "recoveries", "incurred", "paid_indemnity_cny", "paid_expense_cny", "case_reserve_cny",
    "recoveries_cny", "paid_cny", "incurred_cny", "submission_id",
)
RUN_COLUMNS = ("ingested_at", "changed_at", "loaded_by_invocation")


@dataclass(frozen=True)
class ClaimFile:
    insurer_id: str
    order: int  # position among the insurer's delivered files in name order (the ingestion order)
    path: Path
    source_file: str  # landing-relative, as the pipeline records it
    kind: str


# --------------------------------------------------------------------------- inputs


def not_admitted_files(warehouse: Path) -> set[str]:
    """Landing-relative names of every file whose content the gate did not admit (held, pending, rejected)."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "SELECT f.source_file FROM control.submission_files AS f "
            "LEFT JOIN control.submission_gate AS g USING (submission_id) "
            "WHERE g.status IS NULL OR NOT list_contains(?, g.status)",
            [list(ADMITTED)],
        ).fetchall()
    return {r[0] for r in rows}


def delivered_files(landing: Path, insurer_id: str) -> list[Path]:
    """The insurer's data files in the order ingestion walks them (pipeline.landing_files)."""
    folder = landing / insurer_id
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".") and not p.name.endswith(MANIFEST_SUFFIX)
    )


def claim_files(landing: Path, excluded: set[str]) -> list[ClaimFile]:
    files = []
    for insurer_id, (pattern, kind) in CLAIM_LAYOUTS.items():
        for order, path in enumerate(delivered_files(landing, insurer_id), start=1):
            source = path.relative_to(landing).as_posix()
            if fnmatch.fnmatch(path.name, pattern) and source not in excluded:
                files.append(ClaimFile(insurer_id, order, path.resolve(), source, kind))
    return files


# --------------------------------------------------------------------------- conversions


def utf8_copy(path: Path, out: Path) -> Path:
    """GBK → UTF-8, streamed in bounded memory (DuckDB has no GBK decoder without the encodings extension)."""
    decoder = codecs.getincrementaldecoder(GBK)(errors="strict")
    with open(path, "rb") as src, open(out, "w", encoding="utf-8", newline="") as dst:
        while chunk := src.read(_CHUNK):
            dst.write(decoder.decode(chunk))
        dst.write(decoder.decode(b"", final=True))
    return out


def excel_sheet(path: Path) -> pa.Table:
    """The claims sheet of one workbook as text, the way readers.read_excel_sheet sees it."""
    import fastexcel
    import pyarrow as pa
    import pyarrow.compute as pc

    batch = fastexcel.read_excel(str(path)).load_sheet(HUANAN_SHEET, header_row=HUANAN_HEADER_ROW, dtypes="string").to_arrow()
    table = pa.Table.from_batches([batch])
    table = table.rename_columns([str(c).strip() for c in table.column_names])
    # Fully empty rows are formatting, not records, and take no row number.
    if table.num_columns:
        table = table.filter(functools.reduce(pc.or_, (pc.is_valid(c) for c in table.columns)))
    n = table.num_rows
    table = table.append_column("__path", pa.array([str(path)] * n, pa.string()))
    return table.append_column("__row", pa.array(range(1, n + 1), pa.int64()))


def excel_claims(paths: list[Path]) -> pa.Table:
    import pyarrow as pa

    # calamine parses without the GIL, so workbooks convert in parallel, one per core.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        tables = list(pool.map(excel_sheet, paths))
    return pa.concat_tables(tables, promote_options="default")


# --------------------------------------------------------------------------- the script


def statements(sql: str) -> list[tuple[str | None, str]]:
    """(layout insurer or None, statement) in order; a statement ends with ';' at the end of a line."""
    out = []
    for chunk in re.split(r";[ \t]*$", sql, flags=re.M):
        body = "\n".join(line for line in chunk.splitlines() if not line.lstrip().startswith("--")).strip()
        if not body:
            continue
        layout = re.search(r"^-- layout: (\w+)\s*$", chunk, flags=re.M)
        out.append((layout.group(1) if layout else None, chunk.strip()))
    return out


def build(con: duckdb.DuckDBPyConnection, files: list[ClaimFile], secret: bytes, fx: Path, tmp: Path) -> dict[str, float]:
    """Convert what DuckDB cannot read, then run the script; returns seconds per phase."""
    started = time.perf_counter()
    read_paths: dict[ClaimFile, Path] = {}
    for i, f in enumerate(files):
        read_paths[f] = utf8_copy(f.path, tmp / f"{i}_{f.path.name}") if f.kind == "gbk_csv" else f.path
    xlsx = [f.path for f in files if f.kind == "xlsx"]
    if xlsx:
        con.register("huanan_claims", excel_claims(xlsx))
    converted = time.perf_counter()

    variables: dict[str, Any] = {
        "hmac_secret": secret,
        "fx_path": str(fx),
        "claim_status_path": str(CLAIM_STATUS_SEED),
        "file_insurer": [f.insurer_id for f in files],
        "file_ord": [f.order for f in files],
        "file_path": [str(f.path) for f in files],
        "file_read_path": [str(read_paths[f]) for f in files],
        "file_source": [f.source_file for f in files],
    }
    for insurer_id in CLAIM_LAYOUTS:
        variables[f"files_{insurer_id}"] = [str(read_paths[f]) for f in files if f.insurer_id == insurer_id]
    for name, value in variables.items():
        con.execute(f"SET VARIABLE {name} = ?", [value])
    present = {f.insurer_id for f in files}
    for layout, statement in statements(SQL_PATH.read_text(encoding="utf-8")):
        if layout is None or layout in present:
            con.execute(statement)
        if layout == "huanan_general" and xlsx:
            con.unregister("huanan_claims")  # its rows are in `landed` now
    finished = time.perf_counter()
    return {"conversion_seconds": converted - started, "sql_seconds": finished - converted}


# --------------------------------------------------------------------------- comparison


def compare(con: duckdb.DuckDBPyConnection, warehouse: Path, show: int = 5) -> dict[str, Any]:
    quoted = str(warehouse).replace("'", "''")
    con.execute(f"ATTACH '{quoted}' AS pipeline (READ_ONLY)")
    mart = "pipeline.marts.fct_claim_valuations"
    mart_columns = [r[0] for r in con.execute(f"SELECT column_name FROM (DESCRIBE {mart})").fetchall()]
    unexpected = sorted(set(mart_columns) - set(BUSINESS_COLUMNS) - set(RUN_COLUMNS))
    if unexpected:
        print(f"note: the mart has columns the floor does not compare: {', '.join(unexpected)}", file=sys.stderr)
    cols = ", ".join(BUSINESS_COLUMNS)
    result: dict[str, Any] = {
        "rows": con.execute("SELECT count(*) FROM fct_claim_valuations").fetchone()[0],
        "pipeline_rows": con.execute(f"SELECT count(*) FROM {mart}").fetchone()[0],
    }
    for label, left, right in (("only_in_floor", "fct_claim_valuations", mart),
                               ("only_in_pipeline", mart, "fct_claim_valuations")):
        diff = f"SELECT {cols} FROM {left} EXCEPT ALL SELECT {cols} FROM {right}"
        result[label] = con.execute(f"SELECT count(*) FROM ({diff})").fetchone()[0]
        if result[label]:
            print(f"{label}: {result[label]} rows, first {show}:", file=sys.stderr)
            for row in con.execute(f"{diff} ORDER BY claim_key, valuation_date LIMIT {show}").fetchall():
                print("  " + repr(dict(zip(BUSINESS_COLUMNS, row, strict=True))), file=sys.stderr)
    result["equal"] = result["only_in_floor"] == 0 and result["only_in_pipeline"] == 0
    return result


# --------------------------------------------------------------------------- processes


def child(landing: Path, warehouse: Path, fx: Path, secret: bytes) -> dict[str, Any]:
    import duckdb

    excluded = not_admitted_files(warehouse)
    started = time.perf_counter()
    files = claim_files(landing, excluded)
    con = duckdb.connect()
    with tempfile.TemporaryDirectory(prefix="floor-") as tmp:
        phases = build(con, files, secret, fx, Path(tmp))
    seconds = time.perf_counter() - started
    # Linux reports ru_maxrss in KiB.
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    outcome = compare(con, warehouse)
    con.close()
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb, "files": len(files), **phases, **outcome}


def run_floor(landing: Path, warehouse: Path, secret: bytes, fx: Path = DEFAULT_FX) -> dict[str, Any]:
    """Build the floor in its own process and compare it with the pipeline's mart.

    Returns seconds, peak_rss_mb, rows, equal (and the row counts of the comparison, per-phase seconds).
    """
    # The secret travels on stdin, never on a command line that `ps` shows.
    process = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", "--landing", str(landing),
         "--warehouse", str(warehouse), "--fx", str(fx)],
        input=secret.hex(), capture_output=True, text=True, check=False,
    )
    if process.stderr:
        print(process.stderr, end="", file=sys.stderr)
    if process.returncode != 0:
        raise RuntimeError(f"the floor failed (exit {process.returncode})")
    return json.loads(process.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--warehouse", type=Path, required=True, help="the pipeline's warehouse (opened read-only)")
    parser.add_argument("--fx", type=Path, default=DEFAULT_FX)
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument("--secret", help="the HMAC secret ingestion used")
    secret.add_argument("--secret-file", type=Path, help="a file holding it (read as load_secret reads one)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        result = child(args.landing, args.warehouse, args.fx, bytes.fromhex(sys.stdin.read().strip()))
        print(json.dumps(result))
        return
    if args.secret is not None:
        key = args.secret.encode("utf-8")
    elif args.secret_file is not None:
        key = args.secret_file.read_text(encoding="utf-8").strip().encode("utf-8")
    else:
        parser.error("give --secret or --secret-file")
    result = run_floor(args.landing, args.warehouse, key, args.fx)
    print(f"floor: {result['rows']:,} rows from {result['files']} files in {result['seconds']:.2f}s "
          f"(conversions {result['conversion_seconds']:.2f}s, SQL {result['sql_seconds']:.2f}s), "
          f"peak RSS {result['peak_rss_mb']:.0f} MB")
    print(f"pipeline marts.fct_claim_valuations: {result['pipeline_rows']:,} rows; "
          f"only in the floor {result['only_in_floor']}, only in the pipeline {result['only_in_pipeline']}")
    print("equal" if result["equal"] else "NOT EQUAL")
    if not result["equal"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
