"""Caps on landing files (ingestion.limits) and the UTF-16 diagnosis.

A file beyond a cap is a recorded rejection whose reason names the cap, its value and its environment variable,
decided before the expensive read, while the insurer's other files load. A workbook is measured as its reader
lays it out: a zip of a few kilobytes can ask the reader for gigabytes (a million rows of minimal cells, two cells
a million rows apart, one long shared string in many cells), and such a file is rejected in bounded memory.

The truths these tests hold the measures to: the workbook reader itself (the height and width fastexcel reads
for a sheet, the text it returns for a shared-string cell), the bytes and records written into each file, and the
peak memory of a separate process that ingests the bombs."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import polars as pl
import pytest

from cyberclaims.ingestion import limits, warehouse
from cyberclaims.ingestion.limits import CAPS, FileLimits, InvalidLimit, workbook_problem
from cyberclaims.ingestion.pipeline import ingest_insurer
from tests.test_hardening_files import SECRET, csv_text, landing, submissions
from tests.test_layout_features import CLAIM_ROW, INSURER, PSEUDO, claims_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _default_caps(monkeypatch):
    """Every test starts from the defaults, whatever the environment of the run sets."""
    for cap in CAPS:
        monkeypatch.delenv(cap.env, raising=False)


# --------------------------------------------------------------------------- building workbooks byte by byte

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def xlsx(path: Path, sheet_data: bytes, shared: list[bytes] | None = None, prefix: str = "", pad: int = 0) -> Path:
    """A workbook of one sheet 'Claims' whose <sheetData> holds `sheet_data` as given (any writer's style, or a
    bomb), with an optional shared-string table of raw <si> elements; `pad` bytes of comment in the sheet."""
    p = f"{prefix}:" if prefix else ""
    xmlns = f'xmlns{":" + prefix if prefix else ""}="{_MAIN}"'
    types = ('<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
             '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
             '<Default Extension="xml" ContentType="application/xml"/>'
             '<Override PartName="/xl/workbook.xml" '
             'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
             '<Override PartName="/xl/worksheets/sheet1.xml" '
             'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>')
    rels = (f'<Relationships xmlns="{_REL.replace("officeDocument/2006/relationships", "package/2006/relationships")}">'
            f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
    book = (f'<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets><sheet name="Claims" sheetId="1" r:id="rId1"/>'
            '</sheets></workbook>')
    book_rels = (f'<Relationships xmlns="{_REL.replace("officeDocument/2006/relationships", "package/2006/relationships")}">'
                 f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
                 + (f'<Relationship Id="rId2" Type="{_REL}/sharedStrings" Target="sharedStrings.xml"/>' if shared else "")
                 + "</Relationships>")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", types)
        z.writestr("_rels/.rels", rels)
        z.writestr("xl/workbook.xml", book)
        z.writestr("xl/_rels/workbook.xml.rels", book_rels)
        if shared is not None:
            z.writestr("xl/sharedStrings.xml", f'<sst xmlns="{_MAIN}">'.encode() + b"".join(shared) + b"</sst>")
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as f:
            f.write(f'<?xml version="1.0" encoding="UTF-8"?><{p}worksheet {xmlns}>'.encode())
            if pad:
                f.write(b"<!--" + b"x" * (pad - 7) + b"-->")
            f.write(f"<{p}sheetData>".encode())
            f.write(sheet_data)
            f.write(f"</{p}sheetData></{p}worksheet>".encode())
    return path


def column(n: int) -> str:
    name = ""
    while n:
        n, rest = divmod(n - 1, 26)
        name = chr(65 + rest) + name
    return name


def claims_sheet(rows: list[dict]) -> bytes:
    """A header and records as inline strings, every cell with its reference (as xlsxwriter writes them)."""
    header = list(rows[0])
    lines = [header, *([r[h] for h in header] for r in rows)]
    return b"".join(
        f'<row r="{i}">'.encode() + b"".join(
            f'<c r="{column(j)}{i}" t="inlineStr"><is><t>{escape(str(v))}</t></is></c>'.encode()
            for j, v in enumerate(line, start=1)) + b"</row>"
        for i, line in enumerate(lines, start=1))


def claim_rows(n: int, start: int = 0) -> list[dict]:
    return [CLAIM_ROW | {"Claim": f"C-{start + i}"} for i in range(n)]


def excel_config(tmp_path: Path):
    return claims_config(tmp_path, format="excel", file_pattern="claims_*.xlsx")


def read_shape(path: Path) -> tuple[int, int]:
    """What the workbook reader itself reads for the sheet: (rows, columns) of its grid."""
    import fastexcel

    return fastexcel.read_excel(str(path)).load_sheet(0, header_row=None).to_polars().shape


def minimal_cells(rows: int, columns: int) -> bytes:
    return (b"<row>" + b"<c><v>1</v></c>" * columns + b"</row>") * rows


def shared_string_cells(index: int, count: int) -> bytes:
    return b"".join(f'<row r="{i}"><c r="A{i}" t="s"><v>{index}</v></c></row>'.encode() for i in range(1, count + 1))


# --------------------------------------------------------------------------- 1. bombs: rejected in bounded memory

MB_ = 1_000_000
# Each is a few kilobytes to 1.3 MB. Ingested unguarded, the first takes 2.3 GB (fastexcel alone 1.4 GB); the other
# two ask the reader for more memory than the machine has, and the process aborts. Guarded, the worker that
# ingests all three and two good files peaks near 220 MB.
BOMBS = {
    "claims_202502.xlsx": lambda p: xlsx(p, minimal_cells(2_000_000, 10)),  # 2 million rows of 10 cells
    "claims_202503.xlsx": lambda p: xlsx(p, b'<row r="1"><c r="A1"><v>1</v></c></row>'
                                          b'<row r="100000"><c r="XFD100000"><v>1</v></c></row>'),
    "claims_202504.xlsx": lambda p: xlsx(p, shared_string_cells(0, 2_000), [b"<si><t>" + b"x" * MB_ + b"</t></si>"]),
}

WORKER = """
import json, sys, time
from pathlib import Path
from cyberclaims.ingestion import warehouse
from cyberclaims.ingestion.config import load_config
from cyberclaims.ingestion.pipeline import ingest_insurer
from cyberclaims.ingestion.pseudonymize import Pseudonymizer
config, root, db = map(Path, sys.argv[1:4])
con = warehouse.connect(db)
started = time.perf_counter()
summary = ingest_insurer(con, load_config(config), root, Pseudonymizer(b"k" * 32))
seconds = time.perf_counter() - started
con.close()
print(json.dumps({"seconds": seconds, "outcomes": [[o.source_file, o.status, o.error] for o in summary.outcomes]}))
"""

# Runs the worker and reports its peak memory: the wrapper has no other child, so RUSAGE_CHILDREN is the worker's.
# The worker may not map more than 3 GB: read unguarded, a bomb fails there instead of taking the machine.
WRAPPER = """
import resource, subprocess, sys
limit = lambda: resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
done = subprocess.run([sys.executable, "-c", sys.argv[1], *sys.argv[2:]], capture_output=True, text=True,
                      preexec_fn=limit)
sys.stderr.write(done.stderr)
print(done.returncode)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(done.stdout)
"""


def test_workbook_bombs_are_rejected_quickly_in_bounded_memory_and_the_rest_loads(tmp_path):
    excel_config(tmp_path)  # written where the worker reads it
    root, folder = landing(tmp_path)
    good = {"claims_202501.xlsx": claim_rows(3), "claims_202505.xlsx": claim_rows(4, start=10)}
    for name, rows in good.items():
        xlsx(folder / name, claims_sheet(rows))
    for name, build in BOMBS.items():
        build(folder / name)
        assert (folder / name).stat().st_size < 2 * MB_
    db = tmp_path / "wh.duckdb"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", WRAPPER, WORKER, str(tmp_path / f"{INSURER}.yaml"), str(root), str(db)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - started
    returncode, peak_kb, report = done.stdout.split("\n", 2)
    assert returncode == "0", done.stderr[-3000:]
    peak_mb = int(peak_kb) / 1024
    assert peak_mb < 500, f"the worker peaked at {peak_mb:.0f} MB"
    assert elapsed < 120
    outcomes = {f: (status, error) for f, status, error in json.loads(report)["outcomes"]}
    reasons = {"claims_202502.xlsx": "CYBERCLAIMS_MAX_ROWS_PER_FILE", "claims_202503.xlsx": "CYBERCLAIMS_MAX_WORKBOOK_CELLS",
               "claims_202504.xlsx": "CYBERCLAIMS_MAX_UNCOMPRESSED_MB"}
    con = warehouse.connect(db, read_only=True)
    recorded = submissions(con)
    for name, env in reasons.items():
        status, error = outcomes[f"{INSURER}/{name}"]
        assert status == "rejected" and env in error and "over a file cap" in error, (name, error)
        assert recorded[f"{INSURER}/{name}"] == ("rejected", error)
    # The good files on either side load whole: delivered = loaded + quarantined = the rows written.
    for name, rows in good.items():
        assert outcomes[f"{INSURER}/{name}"] == ("loaded", None)
        assert con.execute("SELECT rows_delivered, rows_loaded + rows_quarantined FROM control.submissions "
                           "WHERE source_file = ?", [f"{INSURER}/{name}"]).fetchone() == (len(rows), len(rows))
    loaded = con.execute("SELECT sum(rows_loaded), sum(rows_quarantined) FROM control.submissions WHERE status = 'loaded'"
                         ).fetchone()
    assert con.execute("SELECT count(*) FROM raw.claim_valuations").fetchone()[0] == loaded[0]
    assert con.execute("SELECT count(*) FROM raw.quarantine").fetchone()[0] == loaded[1]
    assert sum(loaded) == sum(len(r) for r in good.values())


def test_a_workbook_beyond_a_cap_is_rejected_before_the_workbook_reader_opens_it(tmp_path, monkeypatch):
    import fastexcel

    monkeypatch.setenv("CYBERCLAIMS_MAX_WORKBOOK_CELLS", "1000")
    opened: list[str] = []
    real = fastexcel.read_excel
    monkeypatch.setattr(fastexcel, "read_excel", lambda path, *a, **k: opened.append(Path(path).name) or real(path, *a, **k))
    cfg = excel_config(tmp_path)
    root, folder = landing(tmp_path)
    xlsx(folder / "claims_202501.xlsx", claims_sheet(claim_rows(2)))
    # Two cells: a grid of 100 rows by 26 columns to the reader.
    xlsx(folder / "claims_202503.xlsx", b'<row r="1"><c r="A1"><v>1</v></c></row><row r="100"><c r="Z100"><v>1</v></c></row>')
    con = warehouse.connect(tmp_path / "wh.duckdb")
    summary = ingest_insurer(con, cfg, root, PSEUDO)
    assert [(o.source_file, o.status) for o in summary.outcomes] == [
        (f"{INSURER}/claims_202501.xlsx", "loaded"), (f"{INSURER}/claims_202503.xlsx", "rejected")]
    assert "more than 1,000 cells" in summary.outcomes[1].error
    assert opened == ["claims_202501.xlsx"]


# --------------------------------------------------------------------------- 2. a sheet is measured as its reader lays it out

V = b"<v>1</v>"
SHEETS = {
    "every cell with its reference": b'<row r="1"><c r="A1">' + V + b'</c><c r="C1">' + V + b'</c></row>'
                                     b'<row r="5"><c r="B5">' + V + b"</c></row>",
    "no reference at all": (b"<row><c>" + V + b"</c><c>" + V + b"</c></row>") * 3 + b"<row><c>" + V + b"</c></row>",
    "rows that jump": b'<row r="1"><c>' + V + b'</c></row><row r="7"><c>' + V + b"</c><c>" + V + b"</c><c>" + V
                      + b"</c></row><row><c>" + V + b"</c></row>",
    "references and none mixed": b'<row r="1"><c r="A1">' + V + b'</c><c r="C1">' + V + b"</c><c>" + V
                                 + b'</c></row><row><c>' + V + b'</c><c r="B2">' + V + b"</c><c>" + V + b"</c><c>" + V
                                 + b"</c></row>",
    "an empty row element": b'<row r="1"><c>' + V + b'</c></row><row r="3"/><row><c>' + V + b"</c></row>",
    "single quotes": b"<row r='1'><c r='A1' s=\"0\">" + V + b"</c><c r='D2'>" + V + b"</c></row>",
    "a quoted '>' in an attribute": b'<row r="1"><c r="A1" foo=">">' + V + b'</c><c foo=">" r="E3">' + V
                                    + b"</c></row>",
    "spaces around '='": b'<row r = "1"><c r = "A1">' + V + b'</c><c r= "B4" >' + V + b"</c></row>",
    "the reference not first": b'<row spans="1:3" r="1"><c s="0" r="A1">' + V + b'</c><c t="n" r="F2">' + V
                               + b"</c></row>",
    "cells outside any row": b'<c r="A1">' + V + b'</c><c r="B9">' + V + b"</c>",
}


def assert_measured_as_read(path: Path) -> None:
    """The rows and cells the caps count are exactly the grid the reader builds: a cap at that size lets the file
    through, one row or one cell less rejects it."""
    rows, columns = read_shape(path)
    assert workbook_problem(path, FileLimits(rows=rows, cells=rows * columns)) is None
    assert "CYBERCLAIMS_MAX_ROWS_PER_FILE" in workbook_problem(path, FileLimits(rows=rows - 1))
    assert "CYBERCLAIMS_MAX_WORKBOOK_CELLS" in workbook_problem(path, FileLimits(rows=rows, cells=rows * columns - 1))


@pytest.mark.parametrize("style", list(SHEETS))
def test_a_sheet_is_measured_as_the_reader_lays_it_out(tmp_path, style):
    assert_measured_as_read(xlsx(tmp_path / "book.xlsx", SHEETS[style]))


def test_a_sheet_with_namespace_prefixes_is_measured_as_the_reader_lays_it_out(tmp_path):
    data = b'<x:row r="1"><x:c r="A1"><x:v>1</x:v></x:c><x:c><x:v>2</x:v></x:c></x:row><x:row r="4"><x:c r="C4">' \
           b"<x:v>1</x:v></x:c></x:row><x:row><x:c><x:v>1</x:v></x:c></x:row>"
    assert_measured_as_read(xlsx(tmp_path / "book.xlsx", data, prefix="x"))


@pytest.mark.parametrize("tag", [
    b'<c s="<" r="Z5000"><v>1</v></c>',  # a '<' inside a quoted value, which the reader takes as text
    b"<c s='<' r='Z5000'><v>1</v></c>",
    b'<hyperlink display="<c x=\'" /><c r="Z5000"><v>1</v></c>',  # what looks like a tag inside a value
])
@pytest.mark.parametrize("shift", [0, 1, 4])
def test_a_cell_hidden_behind_a_quoted_lt_at_a_chunk_boundary_is_still_counted(tmp_path, tag, shift):
    """The streamed pass cuts the sheet where a token begins, never inside a tag: placed so that the '<' inside
    the quoted value is the last one before the first chunk ends, the far cell still counts."""
    head = len(b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="%s"><sheetData>' % _MAIN.encode())
    first = b'<row r="1"><c r="A1"><v>1</v></c></row>'
    filler = limits._CHUNK - head - len(first) - len(b"<row>") - tag.find(b"<", 1) - shift
    data = first + b"<!--" + b"x" * (filler - 7) + b"-->" + b"<row>" + tag + b"</row>"
    assert_measured_as_read(xlsx(tmp_path / "book.xlsx", data))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_large_irregular_sheet_is_measured_as_the_reader_lays_it_out(tmp_path, seed):
    """Over several chunks of the streamed pass: rows with and without references, jumps, empty row elements, cells
    with and without references, references that are not first."""
    import random

    rng = random.Random(seed)
    share = {1: 0.0, 2: 0.5, 3: 0.9}[seed]  # of cells with a reference
    parts, row = [b'<row r="1"><c r="A1"><v>1</v></c></row>'], 1
    for _ in range(40_000):
        kind = rng.random()
        if kind < 0.2:
            row += rng.randint(1, 3)
            parts.append(b'<row r="%d">' % row)
        elif kind < 0.25:
            row += rng.randint(1, 3)
            parts.append(b'<row r="%d"/>' % row)
            continue
        else:
            row += 1
            parts.append(b"<row>")
        col = 0
        for _ in range(rng.randint(0, 6)):
            if rng.random() < share:
                col += rng.randint(1, 4)
                at = row if rng.random() < 0.9 else rng.randint(1, row + 5)
                attrs = b't="n" r="%s%d"' % (column(col).encode(), at) if rng.random() < 0.3 else \
                    b'r="%s%d" t="n"' % (column(col).encode(), at)
                parts.append(b"<c " + attrs + b"><v>3</v></c>")
            else:
                col += 1
                parts.append(b'<c s="0"><v>2</v></c>')
        parts.append(b"</row>")
    data = b"".join(parts)
    assert len(data) > 2 * limits._CHUNK
    assert_measured_as_read(xlsx(tmp_path / "book.xlsx", data))


# --------------------------------------------------------------------------- 3. shared strings, declared sizes


def test_a_shared_string_repeated_in_many_cells_counts_once_per_cell(tmp_path):
    """The reader copies a shared string into every cell that names it. Whether an <si> without text takes an
    index differs between versions of the reader: either way, text beyond the cap is rejected."""
    import fastexcel

    long = b"y" * 100_000
    table = [b"<si></si>", b"<si><t>" + long + b"</t></si>", b"<si><t>s</t></si>"]

    def book(name: str, per_index: int) -> tuple[Path, int]:
        cells = b"".join(f'<row r="{i}"><c r="A{i}" t="s"><v>0</v></c><c r="B{i}" t="s"><v>1</v></c></row>'.encode()
                         for i in range(1, per_index + 1))
        path = xlsx(tmp_path / name, cells, table)
        text = fastexcel.read_excel(str(path)).load_sheet(0, header_row=None).to_polars().select(
            pl.all().str.len_bytes().sum()).sum_horizontal().item()
        return path, text

    under, text = book("under.xlsx", 4)
    assert text >= 4 * len(long)  # what the reader itself copies
    assert workbook_problem(under, FileLimits(uncompressed_mb=1)) is None
    over, text = book("over.xlsx", 11)
    assert text > MB_
    reason = workbook_problem(over, FileLimits(uncompressed_mb=1))
    assert "shared-string text" in reason and "CYBERCLAIMS_MAX_UNCOMPRESSED_MB" in reason


def _entries(raw: bytes, signature: bytes, name: bytes, name_length_at: int, name_at: int) -> list[int]:
    """Offsets of the zip headers (local or central) of the part `name`."""
    found, at = [], raw.find(signature)
    while at >= 0:
        length = struct.unpack_from("<H", raw, at + name_length_at)[0]
        if raw[at + name_at:at + name_at + length] == name:
            found.append(at)
        at = raw.find(signature, at + 4)
    return found


def test_a_part_larger_than_its_zip_directory_declares_is_rejected(tmp_path):
    built = xlsx(tmp_path / "built.xlsx", claims_sheet(claim_rows(50)))
    path = tmp_path / "book.xlsx"
    with zipfile.ZipFile(built) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():  # plain 32-bit headers
            dst.writestr(info.filename, src.read(info))
    raw = bytearray(path.read_bytes())
    name = b"xl/worksheets/sheet1.xml"
    # Its uncompressed size, in the local header (offset 22) and in the central directory (offset 24), says 100.
    (local,) = _entries(bytes(raw), b"PK\x03\x04", name, 26, 30)
    (central,) = _entries(bytes(raw), b"PK\x01\x02", name, 28, 46)
    struct.pack_into("<I", raw, local + 22, 100)
    struct.pack_into("<I", raw, central + 24, 100)
    path.write_bytes(bytes(raw))
    with zipfile.ZipFile(path) as z:
        assert z.getinfo(name.decode()).file_size == 100
    reason = workbook_problem(path, FileLimits())
    assert reason.startswith("not a readable Excel workbook: a part of the zip holds more than its directory declares")


def test_a_workbook_that_unzips_beyond_the_cap_is_rejected_from_its_zip_directory(tmp_path):
    """The zip directory alone rejects it (the size every part declares), before any part is decompressed."""
    path = xlsx(tmp_path / "book.xlsx", b"<row><c/></row>" * 200_000)  # 3 MB of empty cells, 7 KB zipped
    reason = workbook_problem(path, FileLimits(uncompressed_mb=2))
    assert "unzips to 3.0 MB (the sizes its zip directory declares)" in reason
    assert "CYBERCLAIMS_MAX_UNCOMPRESSED_MB" in reason and "2 MB" in reason


# --------------------------------------------------------------------------- 4. just under the caps loads, just over is rejected


def _ingest(tmp_path: Path, cfg) -> tuple[dict, object]:
    con = warehouse.connect(tmp_path / "wh.duckdb")
    summary = ingest_insurer(con, cfg, tmp_path / "landing", PSEUDO)
    return {o.source_file.split("/", 1)[1]: o for o in summary.outcomes}, con


def _assert_cap_rejection(con, outcome, env: str, value: str) -> None:
    assert outcome.status == "rejected", (outcome.status, outcome.error)
    assert env in outcome.error and f"cap of {value}" in outcome.error, outcome.error
    assert SECRET not in outcome.error
    assert submissions(con)[outcome.source_file] == ("rejected", outcome.error)


def test_a_workbook_at_the_row_and_cell_caps_loads_and_one_row_more_is_rejected(tmp_path, monkeypatch):
    # A header and 4 records of 11 columns: 5 rows, 55 cells.
    monkeypatch.setenv("CYBERCLAIMS_MAX_ROWS_PER_FILE", "5")
    monkeypatch.setenv("CYBERCLAIMS_MAX_WORKBOOK_CELLS", "55")
    cfg = excel_config(tmp_path)
    root, folder = landing(tmp_path)
    xlsx(folder / "claims_202501.xlsx", claims_sheet(claim_rows(4)))
    xlsx(folder / "claims_202502.xlsx", claims_sheet(claim_rows(5, start=10)))
    wide = [r | {"Note": "n"} for r in claim_rows(4, start=20)]  # one column more: 60 cells
    xlsx(folder / "claims_202503.xlsx", claims_sheet(wide))
    outcomes, con = _ingest(tmp_path, cfg)
    assert (outcomes["claims_202501.xlsx"].status, outcomes["claims_202501.xlsx"].rows_loaded) == ("loaded", 4)
    _assert_cap_rejection(con, outcomes["claims_202502.xlsx"], "CYBERCLAIMS_MAX_ROWS_PER_FILE", "5 rows")
    _assert_cap_rejection(con, outcomes["claims_202503.xlsx"], "CYBERCLAIMS_MAX_WORKBOOK_CELLS", "55 cells")


def _exactly(total: int, build) -> bytes:
    """The bytes `build(padding)` gives, padded to `total`."""
    first = build(0)
    return build(total - len(first))


def test_a_file_at_the_size_cap_loads_and_one_byte_more_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setenv("CYBERCLAIMS_MAX_FILE_MB", "1")
    cfg = claims_config(tmp_path)
    root, folder = landing(tmp_path)
    rows = claim_rows(2_000)

    def build(padding: int) -> bytes:
        # The padding goes into a column the layout does not map, spread over the rows.
        per, rest = divmod(padding, len(rows))
        return csv_text([r | {"Pad": "p" * (per + (i < rest))} for i, r in enumerate(rows)]).encode()

    (folder / "claims_202501.csv").write_bytes(_exactly(MB_, build))
    (folder / "claims_202502.csv").write_bytes(_exactly(MB_ + 1, build))
    assert [(folder / n).stat().st_size for n in ("claims_202501.csv", "claims_202502.csv")] == [MB_, MB_ + 1]
    outcomes, con = _ingest(tmp_path, cfg)
    ok = outcomes["claims_202501.csv"]
    assert ok.status == "loaded" and ok.rows_delivered == ok.rows_loaded + ok.rows_quarantined == len(rows)
    _assert_cap_rejection(con, outcomes["claims_202502.csv"], "CYBERCLAIMS_MAX_FILE_MB", "1 MB")
    assert "the file is 1.0 MB" in outcomes["claims_202502.csv"].error


def test_a_workbook_at_the_uncompressed_cap_loads_and_one_byte_more_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setenv("CYBERCLAIMS_MAX_UNCOMPRESSED_MB", "1")
    cfg = excel_config(tmp_path)
    root, folder = landing(tmp_path)
    sheet = claims_sheet(claim_rows(3))

    def unzipped(path: Path) -> int:
        with zipfile.ZipFile(path) as z:
            return sum(i.file_size for i in z.infolist())

    for name, total in (("claims_202501.xlsx", MB_), ("claims_202502.xlsx", MB_ + 1)):
        plain = unzipped(xlsx(folder / name, sheet))
        xlsx(folder / name, sheet, pad=total - plain)
        assert unzipped(folder / name) == total
    outcomes, con = _ingest(tmp_path, cfg)
    assert (outcomes["claims_202501.xlsx"].status, outcomes["claims_202501.xlsx"].rows_loaded) == ("loaded", 3)
    _assert_cap_rejection(con, outcomes["claims_202502.xlsx"], "CYBERCLAIMS_MAX_UNCOMPRESSED_MB", "1 MB")


def _write(fmt: str, path: Path, rows: list[dict]) -> None:
    if fmt == "csv":
        path.write_text(csv_text(rows))
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif fmt == "json":
        path.write_text(json.dumps(rows))
    elif fmt == "parquet":
        pl.DataFrame(rows).write_parquet(path)
    else:  # a workbook: its header is a row too
        xlsx(path, claims_sheet(rows))


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json", "parquet", "excel"])
def test_every_format_loads_at_the_row_cap_and_rejects_one_row_more(tmp_path, monkeypatch, fmt):
    monkeypatch.setenv("CYBERCLAIMS_MAX_ROWS_PER_FILE", "4")
    ext = {"excel": "xlsx"}.get(fmt, fmt)
    cfg = claims_config(tmp_path, format=fmt, file_pattern=f"claims_*.{ext}")
    root, folder = landing(tmp_path)
    at_cap = 3 if fmt == "excel" else 4
    _write(fmt, folder / f"claims_202501.{ext}", claim_rows(at_cap))
    _write(fmt, folder / f"claims_202502.{ext}", claim_rows(at_cap + 1, start=10))
    outcomes, con = _ingest(tmp_path, cfg)
    ok = outcomes[f"claims_202501.{ext}"]
    assert (ok.status, ok.rows_delivered, ok.rows_loaded + ok.rows_quarantined) == ("loaded", at_cap, at_cap), ok.error
    _assert_cap_rejection(con, outcomes[f"claims_202502.{ext}"], "CYBERCLAIMS_MAX_ROWS_PER_FILE", "4 rows")


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet", "excel"])
def test_every_format_is_held_to_the_file_size_cap(tmp_path, monkeypatch, fmt):
    monkeypatch.setenv("CYBERCLAIMS_MAX_FILE_MB", "1")
    ext = {"excel": "xlsx"}.get(fmt, fmt)
    cfg = claims_config(tmp_path, format=fmt, file_pattern=f"claims_*.{ext}")
    root, folder = landing(tmp_path)
    _write(fmt, folder / f"claims_202501.{ext}", claim_rows(3))
    big = folder / f"claims_202502.{ext}"
    # Random claim numbers: no format compresses them below the cap.
    import secrets

    _write(fmt, big, [CLAIM_ROW | {"Claim": secrets.token_hex(400)} for _ in range(4_000)])
    assert big.stat().st_size > MB_
    outcomes, con = _ingest(tmp_path, cfg)
    assert outcomes[f"claims_202501.{ext}"].status == "loaded"
    _assert_cap_rejection(con, outcomes[f"claims_202502.{ext}"], "CYBERCLAIMS_MAX_FILE_MB", "1 MB")


def test_parquet_text_repeated_through_its_dictionary_is_held_to_the_uncompressed_cap(tmp_path, monkeypatch):
    """A Parquet file stores a repeated value once; each later step copies it per row. Its footer declares the
    stored size: the values' size is measured once read (without copying)."""
    monkeypatch.setenv("CYBERCLAIMS_MAX_UNCOMPRESSED_MB", "1")
    cfg = claims_config(tmp_path, format="parquet", file_pattern="claims_*.parquet")
    root, folder = landing(tmp_path)
    note = "z" * 2_000
    pl.DataFrame([r | {"Note": note} for r in claim_rows(100)]).write_parquet(folder / "claims_202501.parquet")
    pl.DataFrame([r | {"Note": note} for r in claim_rows(1_000)]).write_parquet(folder / "claims_202502.parquet")
    assert (folder / "claims_202502.parquet").stat().st_size < 100_000
    outcomes, con = _ingest(tmp_path, cfg)
    assert (outcomes["claims_202501.parquet"].status, outcomes["claims_202501.parquet"].rows_loaded) == ("loaded", 100)
    rejected = outcomes["claims_202502.parquet"]
    _assert_cap_rejection(con, rejected, "CYBERCLAIMS_MAX_UNCOMPRESSED_MB", "1 MB")
    assert "values amount to" in rejected.error


# --------------------------------------------------------------------------- 5. the settings


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1.5", "10MB", "1e6"])
def test_an_invalid_cap_setting_stops_the_run_instead_of_rejecting_files(tmp_path, monkeypatch, value):
    monkeypatch.setenv("CYBERCLAIMS_MAX_ROWS_PER_FILE", value)
    with pytest.raises(InvalidLimit) as raised:
        FileLimits.from_env()
    assert f"CYBERCLAIMS_MAX_ROWS_PER_FILE={value!r} is not valid" in str(raised.value)
    assert "default 1,000,000" in str(raised.value)
    # Not an Exception: the pipeline's per-file `except Exception` cannot record it as the insurer's rejection.
    assert not isinstance(raised.value, Exception)
    cfg = claims_config(tmp_path)
    root, folder = landing(tmp_path)
    (folder / "claims_202501.csv").write_text(csv_text(claim_rows(2)))
    con = warehouse.connect(tmp_path / "wh.duckdb")
    with pytest.raises(InvalidLimit):
        ingest_insurer(con, cfg, root, PSEUDO)
    assert con.execute("SELECT count(*) FROM control.submissions").fetchone()[0] == 0


def test_cap_settings_are_read_from_the_environment(monkeypatch):
    assert FileLimits.from_env() == FileLimits(256, 512, 1_000_000, 20_000_000)
    monkeypatch.setenv("CYBERCLAIMS_MAX_FILE_MB", "300")
    monkeypatch.setenv("CYBERCLAIMS_MAX_UNCOMPRESSED_MB", " 1024 ")
    monkeypatch.setenv("CYBERCLAIMS_MAX_ROWS_PER_FILE", "2_000_000")
    monkeypatch.setenv("CYBERCLAIMS_MAX_WORKBOOK_CELLS", "")
    assert FileLimits.from_env() == FileLimits(300, 1024, 2_000_000, 20_000_000)


# --------------------------------------------------------------------------- 6. UTF-16 under another encoding


def _utf16(text: str, kind: str) -> bytes:
    return {"bom": text.encode("utf-16"), "le": text.encode("utf-16-le"), "be": text.encode("utf-16-be")}[kind]


@pytest.mark.parametrize("kind, fix", [("bom", "utf-16"), ("le", "utf-16-le"), ("be", "utf-16-be")])
def test_a_utf16_csv_declared_utf8_is_diagnosed_as_utf16(tmp_path, kind, fix):
    cfg = claims_config(tmp_path)
    root, folder = landing(tmp_path)
    (folder / "claims_202501.csv").write_text(csv_text(claim_rows(1)))
    (folder / "claims_202502.csv").write_bytes(_utf16(csv_text([CLAIM_ROW | {"Claim": SECRET}]), kind))
    outcomes, con = _ingest(tmp_path, cfg)
    assert outcomes["claims_202501.csv"].status == "loaded"
    bad = outcomes["claims_202502.csv"]
    assert bad.status == "rejected" and bad.error.startswith("wrong encoding: the file looks like UTF-16 text"), bad.error
    assert f"set `encoding: {fix}` in the insurer's config" in bad.error
    assert "truncated" not in bad.error and "binary" not in bad.error and SECRET not in bad.error
    assert submissions(con)[bad.source_file] == ("rejected", bad.error)


def test_utf16_json_lines_without_a_byte_order_mark_are_not_called_truncated(tmp_path):
    cfg = claims_config(tmp_path, format="jsonl", file_pattern="claims_*.jsonl")
    root, folder = landing(tmp_path)
    (folder / "claims_202501.jsonl").write_bytes((json.dumps(CLAIM_ROW) + "\n").encode("utf-16-le"))
    outcomes, _ = _ingest(tmp_path, cfg)
    error = outcomes["claims_202501.jsonl"].error
    assert error.startswith("wrong encoding: the file looks like UTF-16 text") and "utf-16-le" in error, error


@pytest.mark.parametrize("kind, encoding", [("bom", "utf-16"), ("le", "utf-16-le"), ("be", "utf-16-be"),
                                            ("bom", "utf-16-le")])
def test_a_utf16_csv_loads_under_the_encoding_the_diagnosis_suggests(tmp_path, kind, encoding):
    cfg = claims_config(tmp_path, encoding=encoding)
    root, folder = landing(tmp_path)
    rows = [CLAIM_ROW | {"Claim": "C-1", "Paid": "1000.50"}, CLAIM_ROW | {"Claim": "C-2", "Paid": "7.25"}]
    (folder / "claims_202501.csv").write_bytes(_utf16(csv_text(rows), kind))
    outcomes, con = _ingest(tmp_path, cfg)
    ok = outcomes["claims_202501.csv"]
    assert (ok.status, ok.rows_loaded, ok.rows_quarantined) == ("loaded", 2, 0), ok.error
    paid = sorted(str(v) for (v,) in con.execute("SELECT paid_indemnity FROM raw.claim_valuations").fetchall())
    assert paid == ["1000.50", "7.25"]


def test_utf16_without_a_byte_order_mark_under_plain_utf16_names_the_byte_order(tmp_path):
    cfg = claims_config(tmp_path, encoding="utf-16")
    root, folder = landing(tmp_path)
    (folder / "claims_202501.csv").write_bytes(_utf16(csv_text(claim_rows(1)), "be"))
    outcomes, _ = _ingest(tmp_path, cfg)
    error = outcomes["claims_202501.csv"].error
    assert "without a byte-order mark" in error and "`encoding: utf-16-be`" in error, error


def test_eight_bit_text_under_a_utf16_encoding_is_diagnosed_too(tmp_path):
    cfg = claims_config(tmp_path, encoding="utf-16")
    root, folder = landing(tmp_path)
    (folder / "claims_202501.csv").write_text(csv_text(claim_rows(1)))
    outcomes, _ = _ingest(tmp_path, cfg)
    error = outcomes["claims_202501.csv"].error
    assert error.startswith("wrong encoding: the config says utf-16, but the file has neither a UTF-16 byte-order "
                            "mark nor zero bytes"), error


def test_utf16_mostly_chinese_text_without_a_byte_order_mark_is_recognised(tmp_path):
    cfg = claims_config(tmp_path)
    root, folder = landing(tmp_path)
    text = "".join(f"{'未决赔案正在处理中请耐心等待' * 3},{i}\n" for i in range(100))
    data = text.encode("utf-16-le")
    assert data[:4096].count(0) < 4096 // 16  # one ASCII character in about twenty
    (folder / "claims_202501.csv").write_bytes(data)
    outcomes, _ = _ingest(tmp_path, cfg)
    error = outcomes["claims_202501.csv"].error
    assert error.startswith("wrong encoding: the file looks like UTF-16 text") and "utf-16-le" in error, error
