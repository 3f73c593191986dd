"""Landing files the hardening review attacked and found held up, kept as regression tests: each is planted beside a
good file of the same insurer and ingested into a real DuckDB warehouse. The bad file ends as a recorded rejection
with a clear reason, or, where it is legitimately readable, loads with delivered = loaded + quarantined; the good
file loads; nothing is raised out of ingestion; a second run reads neither file again.

Also: a write lock held on the warehouse during a run makes `cyberclaims run` fail quickly, naming the lock."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import duckdb
import pytest

from cyberclaims.ingestion import warehouse
from cyberclaims.ingestion.pipeline import ingest_insurer
from tests.test_hardening_files import SECRET, assert_rejected_and_rest_loads, csv_text, good_csv, landing
from tests.test_layout_features import CLAIM_ROW, INSURER, PSEUDO, claims_config

HEADER = ",".join(CLAIM_ROW)
VALUES = list(CLAIM_ROW.values())

FORMATS = {  # format -> (config options, file extension)
    "csv": ({}, "csv"),
    "jsonl": ({"format": "jsonl", "file_pattern": "claims_*.jsonl"}, "jsonl"),
    "json": ({"format": "json", "file_pattern": "claims_*.json"}, "json"),
    "parquet": ({"format": "parquet", "file_pattern": "claims_*.parquet"}, "parquet"),
    "excel": ({"format": "excel", "file_pattern": "claims_*.xlsx"}, "xlsx"),
}


def xlsx_bytes(rows: list[dict], header: list[str] | None = None) -> bytes:
    import xlsxwriter

    out = io.BytesIO()
    wb = xlsxwriter.Workbook(out, {"in_memory": True})
    ws = wb.add_worksheet("Claims")
    ws.write_row(0, 0, header or list(CLAIM_ROW))
    for i, row in enumerate(rows, 1):
        ws.write_row(i, 0, list(row.values()))
    wb.close()
    return out.getvalue()


def good_file(folder: Path, fmt: str) -> None:
    """One valid claim row, C-GOOD, in the insurer's format."""
    import polars as pl

    row = CLAIM_ROW | {"Claim": "C-GOOD"}
    ext = FORMATS[fmt][1]
    path = folder / f"claims_202501.{ext}"
    if fmt == "csv":
        good_csv(folder)
    elif fmt == "jsonl":
        path.write_text(json.dumps(row) + "\n")
    elif fmt == "json":
        path.write_text(json.dumps([row]))
    elif fmt == "parquet":
        pl.DataFrame([row]).write_parquet(path)
    else:
        path.write_bytes(xlsx_bytes([row]))


def ingest_beside_good(tmp_path: Path, fmt: str, payload: bytes, name: str | None = None):
    """Plant payload beside a good file of the same format; ingest; return (con, cfg, root, summary, bad name)."""
    options, ext = FORMATS[fmt]
    cfg = claims_config(tmp_path, **options)
    root, folder = landing(tmp_path)
    good_file(folder, fmt)
    name = name or f"claims_202502.{ext}"
    (folder / name).write_bytes(payload)
    con = warehouse.connect(tmp_path / "wh.duckdb")
    summary = ingest_insurer(con, cfg, root, PSEUDO)
    return con, cfg, root, summary, f"{INSURER}/{name}"


def assert_second_run_reads_nothing_again(con, cfg, root) -> None:
    again = ingest_insurer(con, cfg, root, PSEUDO)
    statuses = {o.source_file: o.status for o in again.outcomes}
    assert set(statuses.values()) <= {"already_loaded", "already_rejected"}, statuses
    assert len(statuses) == 2, statuses
    recorded = {f: s for f, s in con.execute("SELECT source_file, status FROM control.submissions").fetchall()}
    assert {f: "already_" + s for f, s in recorded.items()} == statuses


def loaded_readably(summary, bad: str, delivered: int, loaded: int):
    outcome = {o.source_file: o for o in summary.outcomes}[bad]
    assert outcome.status == "loaded", (outcome.status, outcome.error)
    assert (outcome.rows_delivered, outcome.rows_loaded, outcome.rows_quarantined) == (delivered, loaded, delivered - loaded)
    others = [o for o in summary.outcomes if o.source_file != bad]
    assert others and all(o.status == "loaded" and o.rows_loaded == 1 for o in others)
    return outcome


def claims_in_warehouse(con) -> int:
    return con.execute("SELECT count(*) FROM raw.claim_valuations").fetchone()[0]


# --------------------------------------------------------------------------- empty and header-only files


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet", "excel"])
def test_an_empty_file_is_a_recorded_rejection_and_the_good_file_loads(tmp_path, fmt):
    con, cfg, root, summary, bad = ingest_beside_good(tmp_path, fmt, b"")
    assert_rejected_and_rest_loads(con, summary, bad, "empty file")
    assert_second_run_reads_nothing_again(con, cfg, root)


@pytest.mark.parametrize("fmt, payload", [
    ("csv", (HEADER + "\n").encode()),
    ("excel", xlsx_bytes([])),
])
def test_a_header_only_file_is_a_recorded_submission_of_no_rows(tmp_path, fmt, payload):
    # Headers without records are a legitimate (empty) delivery: recorded as loaded with 0 rows, never a crash.
    con, cfg, root, summary, bad = ingest_beside_good(tmp_path, fmt, payload)
    loaded_readably(summary, bad, delivered=0, loaded=0)
    assert con.execute("SELECT status FROM control.submissions WHERE source_file = ?", [bad]).fetchone() == ("loaded",)
    assert claims_in_warehouse(con) == 1
    assert con.execute("SELECT count(*) FROM raw.quarantine").fetchone()[0] == 0
    assert_second_run_reads_nothing_again(con, cfg, root)


# --------------------------------------------------------------------------- hostile content


def test_a_json_lines_file_nested_ten_thousand_deep_is_a_recorded_rejection(tmp_path):
    payload = ("[" * 10_000 + "]" * 10_000 + "\n").encode()
    con, cfg, root, summary, bad = ingest_beside_good(tmp_path, "jsonl", payload)
    error = assert_rejected_and_rest_loads(con, summary, bad, "format mismatch")
    assert "unexpected error" not in error and "RecursionError" not in error
    assert_second_run_reads_nothing_again(con, cfg, root)


@pytest.mark.parametrize("payload", ["[" * 10_000 + "]" * 10_000, '{"a": ' * 10_000 + "1" + "}" * 10_000])
def test_a_json_document_nested_ten_thousand_deep_is_rejected_with_a_clear_reason(tmp_path, payload):
    con, cfg, root, summary, bad = ingest_beside_good(tmp_path, "json", payload.encode())
    error = assert_rejected_and_rest_loads(con, summary, bad)
    assert "nested too deeply" in error or "format mismatch" in error or "malformed JSON" in error, error
    assert "unexpected error" not in error and "RecursionError" not in error
    assert_second_run_reads_nothing_again(con, cfg, root)


def _parquet_variants(seed: int, n: int) -> list[bytes]:
    """A valid two-row Parquet file with one bit flipped at n seeded positions, and truncated at n more."""
    import random

    import polars as pl

    buffer = io.BytesIO()
    pl.DataFrame([CLAIM_ROW | {"Claim": "C-2"}, CLAIM_ROW | {"Claim": "C-3"}]).write_parquet(buffer)
    valid = buffer.getvalue()
    rng = random.Random(seed)
    variants = []
    for _ in range(n):
        flipped = bytearray(valid)
        position = rng.randrange(len(valid))
        flipped[position] ^= 1 << rng.randrange(8)
        variants.append(bytes(flipped))
    variants += [valid[: rng.randrange(4, len(valid))] for _ in range(n)]
    # A flip polars' reader answered with a Rust panic (no Exception) that stopped the insurer's ingestion.
    known = bytearray(valid)
    if len(known) > 1198:
        known[1198] ^= 1 << 5
        variants.append(bytes(known))
    return variants


def test_fuzzed_parquet_files_load_or_are_recorded_rejections_and_never_stop_ingestion(tmp_path):
    cfg = claims_config(tmp_path, **FORMATS["parquet"][0])
    root, folder = landing(tmp_path)
    import polars as pl

    pl.DataFrame([CLAIM_ROW]).write_parquet(folder / "claims_202501.parquet")
    variants = _parquet_variants(20250101, 25)
    for i, payload in enumerate(variants):
        (folder / f"claims_2025{i:03d}.parquet").write_bytes(payload)
    con = warehouse.connect(tmp_path / "wh.duckdb")
    summary = ingest_insurer(con, cfg, root, PSEUDO)
    outcomes = {o.source_file: o for o in summary.outcomes}
    assert len(outcomes) == len(variants) + 1  # every file has its outcome: none stopped the rest
    assert outcomes[f"{INSURER}/claims_202501.parquet"].status == "loaded"
    recorded = dict(con.execute("SELECT source_file, status FROM control.submissions").fetchall())
    for name, outcome in outcomes.items():
        assert outcome.status in ("loaded", "rejected", "already_loaded", "already_rejected"), (name, outcome)
        if outcome.status == "rejected":
            assert recorded[name] == "rejected" and "unexpected error" not in (outcome.error or ""), outcome.error
    assert any(o.status == "rejected" for o in outcomes.values())
    counts = con.execute("SELECT sum(rows_delivered), sum(rows_loaded + rows_quarantined) FROM control.submissions "
                         "WHERE status = 'loaded'").fetchone()
    assert counts[0] == counts[1]


@pytest.mark.parametrize("where", ["value", "header"])
def test_nul_bytes_in_a_csv_are_a_recorded_rejection(tmp_path, where):
    if where == "value":
        text = csv_text([CLAIM_ROW | {"Claim": SECRET + "\x00X"}])
    else:
        text = csv_text([CLAIM_ROW | {"Claim": SECRET}], [*list(CLAIM_ROW)[:-1], "Ccy\x00"])
    con, cfg, root, summary, bad = ingest_beside_good(tmp_path, "csv", text.encode())
    assert_rejected_and_rest_loads(con, summary, bad, "binary file")
    assert_second_run_reads_nothing_again(con, cfg, root)


def test_a_csv_row_with_fewer_fields_than_the_header_is_quarantined_the_rest_loads(tmp_path):
    text = HEADER + "\n" + ",".join(["C-2", *VALUES[1:]]) + "\n" + ",".join(["C-3", *VALUES[1:-1]]) + "\n"
    con, cfg, root, summary, bad = ingest_beside_good(tmp_path, "csv", text.encode())
    loaded_readably(summary, bad, delivered=2, loaded=1)
    (row, _reasons), = con.execute("SELECT source_row, reasons FROM raw.quarantine WHERE source_file = ?", [bad]).fetchall()
    assert row == 2  # the short record (the header is not counted)
    assert claims_in_warehouse(con) == 2
    assert_second_run_reads_nothing_again(con, cfg, root)


def test_a_csv_row_with_more_fields_than_the_header_rejects_the_file(tmp_path):
    text = (HEADER + "\n" + ",".join(["C-2", *VALUES[1:]]) + "\n" + ",".join(["C-3", *VALUES[1:-1]]) + "\n"
            + ",".join([SECRET, *VALUES[1:], "surplus"]) + "\n")
    con, cfg, root, summary, bad = ingest_beside_good(tmp_path, "csv", text.encode())
    assert_rejected_and_rest_loads(con, summary, bad, "malformed CSV", "more fields")
    assert con.execute("SELECT count(*) FROM raw.quarantine").fetchone()[0] == 0  # rejected whole
    assert_second_run_reads_nothing_again(con, cfg, root)


def test_a_utf8_bom_before_a_csv_declared_utf8_is_read_and_the_first_header_recognised(tmp_path):
    assert claims_config(tmp_path).record_types["claim_valuation"].encoding in (None, "utf-8")
    payload = b"\xef\xbb\xbf" + csv_text([CLAIM_ROW | {"Claim": "C-2"}]).encode()
    con, cfg, root, summary, bad = ingest_beside_good(tmp_path, "csv", payload)
    outcome = loaded_readably(summary, bad, delivered=1, loaded=1)
    assert outcome.warnings == []  # no '\ufeffClaim' left over as an unexpected column
    assert con.execute("SELECT count(DISTINCT claim_key) FROM raw.claim_valuations").fetchone()[0] == 2
    assert_second_run_reads_nothing_again(con, cfg, root)


def test_ten_thousand_columns_load_quickly_with_the_unknown_ones_warned(tmp_path):
    extra = [f"x{i}" for i in range(10_000 - len(CLAIM_ROW))]
    text = ",".join([*CLAIM_ROW, *extra]) + "\n" + ",".join(["C-2", *VALUES[1:], *(["v"] * len(extra))]) + "\n"
    started = time.monotonic()
    con, cfg, root, summary, bad = ingest_beside_good(tmp_path, "csv", text.encode())
    assert time.monotonic() - started < 30
    outcome = loaded_readably(summary, bad, delivered=1, loaded=1)
    assert len(outcome.warnings) == 1 and "unexpected column(s) ignored" in outcome.warnings[0]
    assert "x0" in outcome.warnings[0]
    assert claims_in_warehouse(con) == 2
    assert_second_run_reads_nothing_again(con, cfg, root)


def with_empty_rows(workbook: bytes, n: int) -> bytes:
    """The workbook with n empty row elements (<row r="N"/>) after its data, and a dimension that claims them."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(workbook)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                text = data.decode()
                last = int(re.findall(r'<row r="(\d+)"', text)[-1])
                empty = "".join(f'<row r="{r}"/>' for r in range(last + 1, last + 1 + n))
                text = text.replace("</sheetData>", empty + "</sheetData>", 1)
                text = re.sub(r'<dimension ref="[^"]*"/>', f'<dimension ref="A1:K{last + n}"/>', text, count=1)
                data = text.encode()
            zout.writestr(item, data)
    return out.getvalue()


def test_an_xlsx_with_a_million_empty_rows_after_the_data_loads_its_real_rows(tmp_path):
    payload = with_empty_rows(xlsx_bytes([CLAIM_ROW | {"Claim": "C-2"}, CLAIM_ROW | {"Claim": "C-3"}]), 1_000_000)
    with zipfile.ZipFile(io.BytesIO(payload)) as z:
        assert z.read("xl/worksheets/sheet1.xml").count(b"<row ") == 1_000_003
    started = time.monotonic()
    con, cfg, root, summary, bad = ingest_beside_good(tmp_path, "excel", payload)
    assert time.monotonic() - started < 30
    loaded_readably(summary, bad, delivered=2, loaded=2)
    assert claims_in_warehouse(con) == 3
    assert_second_run_reads_nothing_again(con, cfg, root)


# --------------------------------------------------------------------------- a write lock held during a run


def test_a_write_lock_held_on_the_warehouse_fails_the_run_quickly_naming_the_lock(tmp_path):
    root = tmp_path / "case"
    (root / "configs").mkdir(parents=True)
    claims_config(root / "configs")
    data = root / "data"
    folder = data / "landing" / INSURER
    folder.mkdir(parents=True)
    good_csv(folder)
    # A tiny warehouse ingested here, copied to where the run expects it.
    built = tmp_path / "built.duckdb"
    with warehouse.connect(built) as con:
        assert ingest_insurer(con, claims_config(root), data / "landing", PSEUDO).count("loaded") == 1
    target = data / "warehouse" / "cyberclaims.duckdb"
    target.parent.mkdir(parents=True)
    shutil.copyfile(built, target)
    good_csv(folder, "claims_202502.csv", "C-2")  # new work for the run
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CYBERCLAIMS_", "DAGSTER_HOME"))}
    env |= {"CYBERCLAIMS_DATA_DIR": str(data), "CYBERCLAIMS_CONFIG_DIR": str(root / "configs"),
            "CYBERCLAIMS_DUCKDB": str(target), "DAGSTER_HOME": str(root / "dagster_home"),
            "CYBERCLAIMS_HMAC_KEY": "k" * 32}
    holder = duckdb.connect(str(target))  # the write lock, held by this process
    try:
        started = time.monotonic()
        run = subprocess.run([sys.executable, "-m", "cyberclaims.cli", "run", "--job", "ingest_landing"], env=env,
                             capture_output=True, text=True, timeout=180)
        elapsed = time.monotonic() - started
    finally:
        holder.close()
    assert run.returncode != 0, run.stdout
    assert elapsed < 120
    assert "ingest_landing': FAILURE" in run.stdout, run.stdout
    assert "Could not set lock on file" in run.stderr and str(target) in run.stderr
    assert f"PID {os.getpid()}" in run.stderr  # it says who holds the lock
    assert "is locked by another process" in run.stdout and "Traceback" not in run.stderr  # the status after it
    # Nothing was written: the warehouse still holds only what was ingested before the run.
    with duckdb.connect(str(target), read_only=True) as con:
        assert con.execute("SELECT source_file FROM control.submissions").fetchall() == [(f"{INSURER}/claims_202501.csv",)]
