"""Readers: one insurer file (or sheet) → a polars frame of source values as text.

Every reader returns the source as delivered, as text, plus `__source_row` (1-based position of
the record within its file or sheet), which columns or values were native numbers or dates in the
file (a number cell of a workbook, a JSON number, a typed Parquet column: the insurer's text locale
does not apply to those), and which columns or JSON leaves the file carries (for the layout check).
Parsing into canonical types happens in one place (`ingestion.mapping`) whatever the format, so a
date or an amount means the same thing in every layout.

Formats: CSV (any encoding, delimiter, header row), Excel workbooks (a sheet per record type, a
header row below titles), JSON Lines, JSON documents (an array of records, one object per file, or
an array under a records path), Parquet. Nested JSON is read through DuckDB's JSON functions, so a
field is addressed by a path (`a.b`, `a[0].b`, `a[*].b`, `a.*.b`) whatever the shape of the other
records; a list of objects is JSON text unless a path or `reduce` picks from it.

Before reading, the first bytes are checked against the declared format: a workbook under a CSV
pattern, a JSON array under JSON Lines or a Parquet file that is not Parquet is rejected with
"format mismatch: this looks like …"; UTF-16 text under another encoding with "wrong encoding". A file
beyond a cap of `ingestion.limits` (its size, a workbook's size once unzipped and the cells its sheets
lay out, rows) is rejected before the expensive read; rows are counted by reading at most one row past
the cap. Anything that cannot be read raises `UnreadableFile` with the reason; the caller rejects the
whole submission.
"""

from __future__ import annotations

import codecs
import json
import logging
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl
from polars.exceptions import PanicException

from cyberclaims.ingestion import limits
from cyberclaims.ingestion.config import JSON_FORMATS, InsurerConfig, ReadSpec, has_wildcard, json_path, parse_path
from cyberclaims.ingestion.limits import FileLimits

SOURCE_ROW = "__source_row"
# fastexcel warns for every empty column whose type it cannot guess; such a column is read as text.
logging.getLogger("fastexcel").setLevel(logging.ERROR)
# Beside a JSON column with native numbers: per value, whether it was a JSON number.
NATIVE_SUFFIX = "::native"
_CHUNK = 1 << 20
_UTF8 = ("utf-8", "utf8", "utf-8-sig", "utf8-sig")
_UTF16 = ("utf-16", "utf-16-le", "utf-16-be")


class UnreadableFile(Exception):
    """The file cannot be read as the insurer's layout says (truncated, wrong encoding, corrupt, wrong format)."""


@dataclass
class SourceFrame:
    frame: pl.DataFrame  # text columns (source names or JSON paths) + SOURCE_ROW
    # column → 'number' | 'date' | 'bool' where every value of the column was native in the file; a JSON
    # column with some native numbers has a boolean companion column `<column>NATIVE_SUFFIX` instead.
    native: dict[str, str] = field(default_factory=dict)
    present: list[str] = field(default_factory=list)  # columns / JSON leaf paths the file carries
    is_json: bool = False

    def is_native_number(self, column: str) -> pl.Expr:
        if self.native.get(column) == "number":
            return pl.lit(True)
        if column + NATIVE_SUFFIX in self.frame.columns:
            return pl.col(column + NATIVE_SUFFIX).fill_null(False)
        return pl.lit(False)

    def is_native_date(self, column: str) -> bool:
        return self.native.get(column) == "date"


# --------------------------------------------------------------------------- format sniffing

_LOOKS_LIKE = {
    "zip": "a ZIP archive (an xlsx workbook or a zipped upload)",
    "xls": "an Excel 97–2003 workbook (.xls)",
    "parquet": "a Parquet file",
    "gzip": "a gzip-compressed file",
    "pdf": "a PDF document",
    "json_array": "a JSON array document (format: json)",
    "json_object": "a JSON document (format: json or jsonl)",
    "utf16": "UTF-16 text",
    "text": "text (CSV or JSON Lines)",
    "binary": "a binary file",
}
_ACCEPTS = {
    "csv": {"text", "json_object"},
    "jsonl": {"json_object"},
    "json": {"json_array", "json_object"},
    "excel": {"zip", "xls"},
    "parquet": {"parquet"},
}


def sniff(path: Path) -> str:
    """What the first bytes of a file say it is (see _LOOKS_LIKE)."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if not head:
        return "empty"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "xls"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"%PDF"):
        return "pdf"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or _utf16_without_bom(head):
        return "utf16"
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"["):
        return "json_array"
    if text.startswith(b"{"):
        return "json_object"
    if b"\x00" in head:
        return "binary"
    return "text"


def _utf16_without_bom(head: bytes) -> bool:
    """Text in UTF-16 without a byte-order mark: each ASCII character (a delimiter, a digit, a line break) is a
    printable byte beside a zero byte, the zeros all on one side (odd positions little-endian, even big-endian).
    Text that is mostly Chinese still has such a character every few dozen."""
    if len(head) < 64:
        return False
    for high, low in ((head[1::2], head[0::2]), (head[0::2], head[1::2])):  # little-endian, big-endian
        zeros = high.count(0)
        if zeros >= len(head) // 64 and low.count(0) <= zeros // 20:
            text = sum(1 for h, lo in zip(high, low, strict=False) if h == 0 and (lo in (9, 10, 13) or 32 <= lo < 127))
            if text >= zeros * 0.95:
                return True
    return False


def _utf16_order(path: Path) -> tuple[str, bool]:
    """('le' | 'be', whether a byte-order mark says so) of a file that looks like UTF-16."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return ("le" if head.startswith(b"\xff\xfe") else "be"), True
    return ("le" if head[1::2].count(0) > head[0::2].count(0) else "be"), False


def _check_utf16(path: Path, encoding: str) -> None:
    """A file that looks like UTF-16 is read only under the encoding that decodes it."""
    order, marked = _utf16_order(path)
    codec = _codec(encoding)
    how = "a UTF-16 byte-order mark" if marked else "a zero byte beside every ASCII character"
    if codec not in _UTF16:
        fix = "utf-16" if marked else f"utf-16-{order}"
        raise UnreadableFile(f"wrong encoding: the file looks like UTF-16 text ({how}), not {encoding}: set "
                             f"`encoding: {fix}` in the insurer's config")
    if codec == "utf-16" and not marked:
        raise UnreadableFile(f"wrong encoding: the file looks like UTF-16 text without a byte-order mark, which "
                             f"utf-16 requires: set `encoding: utf-16-{order}` in the insurer's config")
    if codec != "utf-16" and codec != f"utf-16-{order}":
        raise UnreadableFile(f"wrong encoding: the file looks like UTF-16 {'little' if order == 'le' else 'big'}-"
                             f"endian text ({how}), not {encoding}: set `encoding: utf-16"
                             f"{'' if marked else '-' + order}` in the insurer's config")


def _codec(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        return encoding.lower()


def check_format(path: Path, fmt: str, encoding: str = "utf-8") -> None:
    found = sniff(path)
    if found == "empty":
        raise UnreadableFile("empty file")
    if found == "utf16" and fmt in ("csv", "jsonl", "json"):
        _check_utf16(path, encoding)
        return  # the UTF-8 copy is checked again once decoded
    if _codec(encoding) in _UTF16 and found in ("text", "json_array", "json_object"):
        raise UnreadableFile(f"wrong encoding: the config says {encoding}, but the file has neither a UTF-16 "
                             "byte-order mark nor zero bytes: it looks like 8-bit text (UTF-8 or a legacy code "
                             "page): check `encoding` in the insurer's config")
    if found not in _ACCEPTS[fmt]:
        hint = " — set the record type's format" if found in ("json_array", "json_object", "zip", "parquet") else ""
        raise UnreadableFile(f"format mismatch: this looks like {_LOOKS_LIKE[found]}, not {fmt}{hint}")


def _truncated(path: Path, kind: str) -> str:
    """' — the file is truncated …' when a zip (xlsx) or Parquet file lacks the end its format requires."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(max(0, size - 65_557))
        tail = fh.read()
    if kind == "parquet" and not tail.endswith(b"PAR1"):
        return " — the file is truncated (a Parquet file ends with its footer and this one has none): deliver it again"
    if kind == "zip" and b"PK\x05\x06" not in tail:
        return (" — the file is truncated (a workbook ends with its zip directory and this one has none): "
                "deliver it again")
    return ""


def _newline(path: Path, encoding: str) -> bytes:
    """A line break in the file's encoding (UTF-16 without an explicit byte order: the order its byte-order mark
    gives, else little-endian, as Python decodes it)."""
    codec = _codec(encoding)
    if codec == "utf-16":
        with open(path, "rb") as fh:
            codec = "utf-16-be" if fh.read(2) == b"\xfe\xff" else "utf-16-le"
    return "\n".encode(codec) if codec in _UTF16 else b"\n"


def _check_final_newline(path: Path, encoding: str = "utf-8") -> None:
    size = path.stat().st_size
    newline = _newline(path, encoding)
    with open(path, "rb") as fh:
        fh.seek(max(0, size - len(newline)))
        if fh.read(len(newline)) != newline:
            raise UnreadableFile("truncated: the file does not end with a line break (incomplete last record)")


def _transcode_to_utf8(path: Path, encoding: str, tmpdir: Path) -> Path:
    """Decode a non-UTF-8 file incrementally (bounded memory) into a UTF-8 copy."""
    out = tmpdir / ("source.utf8" + "".join(ch for ch in path.suffix if ch not in _GLOB_CHARS))
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        with open(path, "rb") as src, open(out, "w", encoding="utf-8", newline="") as dst:
            while chunk := src.read(_CHUNK):
                dst.write(decoder.decode(chunk))
            dst.write(decoder.decode(b"", final=True))
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"not valid {encoding}: byte {exc.start} cannot be decoded ({exc.reason})") from None
    return out


_GLOB_CHARS = frozenset("*?[]{}")


@contextmanager
def _as_utf8(path: Path, encoding: str) -> Iterator[Path]:
    """The file as UTF-8, under a name no reader expands as a glob pattern (DuckDB reads '*', '?', '[…]' and
    '{…}' in a name as a pattern: a file named `claims_2025*.json` would read its neighbours too)."""
    if encoding.lower().replace("_", "-") in _UTF8:
        if _GLOB_CHARS.isdisjoint(str(path)):
            yield path
            return
        with tempfile.TemporaryDirectory(prefix="cyberclaims-") as tmp:
            link = Path(tmp) / ("source" + "".join(ch for ch in path.suffix if ch not in _GLOB_CHARS))
            link.symlink_to(path.resolve())
            yield link
        return
    with tempfile.TemporaryDirectory(prefix="cyberclaims-") as tmp:
        yield _transcode_to_utf8(path, encoding, Path(tmp))


def _with_row_numbers(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_row_index(SOURCE_ROW, offset=1).with_columns(pl.col(SOURCE_ROW).cast(pl.Int64))


def _trim(name) -> str:
    return str(name).lstrip("\ufeff").strip()


def _clean_headers(columns: list, raw: list | None = None) -> dict[str, str]:
    """Header → trimmed header (a byte-order mark is not part of the first header); duplicates are an error.

    `raw`: the header cells as delivered, where the reader renames exact duplicates itself (polars' `b_duplicated_0`,
    fastexcel's `b_1`): a column named twice, blanks or not, is ambiguous and rejects the file."""
    renamed = {str(c): _trim(c) for c in columns}
    seen: dict[str, int] = {}
    for name in (_trim(c) for c in raw) if raw is not None else renamed.values():
        if name:
            seen[name] = seen.get(name, 0) + 1
    duplicates = sorted(n for n, k in seen.items() if k > 1)
    if duplicates:
        raise UnreadableFile(f"duplicate column name(s) in the header: {', '.join(repr(d) for d in duplicates)}")
    if len(set(renamed.values())) < len(renamed):  # e.g. ' a' beside the reader's rename of a blank header
        raise UnreadableFile("duplicate column name(s) in the header once blanks are stripped")
    return renamed


# Exception text of polars, DuckDB or fastexcel may quote the delivered bytes (a whole CSV record, a JSON value):
# a rejection reason names the kind of error and a position, never a value.
_QUOTED = re.compile(r"`[^`]*`|\"[^\"]*\"|'[^']*'|\(\s*[^()]*\)")


def safe_reason(text: str, limit: int = 200) -> str:
    """The first line of an exception's text with anything quoted (delivered data, a path) removed."""
    first = (str(text).strip().splitlines() or [""])[0]
    for marker in ("Input:", "input:", "Field ", "value "):
        if marker in first:
            first = first[: first.index(marker)]
    first = _QUOTED.sub("…", first).strip(" .:")
    return first[:limit] or "the content cannot be parsed"


def _unbalanced_quote_line(path: Path) -> int | None:
    """The line where a quoted field opens that never closes (RFC 4180 quoting), or None."""
    open_at = None
    with open(path, "rb") as fh:
        for line, raw in enumerate(fh, start=1):
            if raw.count(b'"') % 2:
                open_at = line if open_at is None else None
    return open_at


def _machine_text(expr: pl.Expr) -> pl.Expr:
    """A native float as text: six decimals at most (floats carry binary noise finer than any amount)."""
    return expr.round(6).cast(pl.String)


# --------------------------------------------------------------------------- CSV


def read_csv(path: Path, spec: ReadSpec) -> SourceFrame:
    caps = FileLimits.from_env()
    check_format(path, "csv", spec.encoding)
    if spec.require_final_newline:
        _check_final_newline(path, spec.encoding)
    with _as_utf8(path, spec.encoding) as source:
        if source != path:
            check_format(source, "csv")
        try:
            # Read from an open file, never by name: a name with '*', '?' or '[' is a glob pattern to polars.
            # At most one row past the cap: a file beyond it is rejected without being read whole.
            with open(source, "rb") as fh:
                df = pl.read_csv(fh, separator=spec.delimiter, infer_schema=False, encoding="utf8",
                                 raise_if_empty=True, skip_rows=spec.header_row, n_rows=caps.rows + 1)
            with open(source, "rb") as fh:
                header = pl.read_csv(fh, separator=spec.delimiter, infer_schema=False, encoding="utf8",
                                     has_header=False, n_rows=1, skip_rows=spec.header_row).row(0)
        except pl.exceptions.NoDataError:
            raise UnreadableFile("empty file") from None
        except (pl.exceptions.ComputeError, pl.exceptions.PolarsError) as exc:
            msg = str(exc)
            if "invalid utf-8" in msg.lower() or "utf8" in msg.lower():
                raise UnreadableFile(f"not valid {spec.encoding}") from None
            if "not properly escaped" in msg or "unbalanced" in msg.lower() or "quote" in msg.lower():
                line = _unbalanced_quote_line(source)
                where = f" at line {line}" if line else ""
                raise UnreadableFile(f"malformed CSV: a quoted field opens{where} and never closes (unbalanced quote)") from None
            raise UnreadableFile(f"malformed CSV: {safe_reason(msg)}") from None
    _within_rows(df.height, caps, exact=False)
    df = df.rename(_clean_headers(df.columns, list(header)))
    return SourceFrame(_with_row_numbers(df), present=[c for c in df.columns])


# --------------------------------------------------------------------------- Excel


class Workbook:
    """One workbook opened once for all the record types it carries."""

    def __init__(self, path: Path):
        import fastexcel

        check_format(path, "excel")
        self.caps = FileLimits.from_env()
        # The reader lays each sheet out whole, as a grid from its first to its last used cell: the sheets are
        # measured first, from the zip directory and one streamed pass over the parts.
        if sniff(path) == "zip" and (problem := limits.workbook_problem(path, self.caps)) is not None:
            raise UnreadableFile(problem)
        try:
            self.reader = fastexcel.read_excel(str(path))
        except Exception as exc:  # fastexcel raises its own error types for corrupt archives
            raise UnreadableFile(f"not a readable Excel workbook: {safe_reason(exc)}"
                                 f"{_truncated(path, 'zip') if sniff(path) == 'zip' else ''}") from None

    def sheet(self, sheet: str | None, header_row: int) -> SourceFrame:
        names = self.reader.sheet_names
        if not names:
            raise UnreadableFile("the workbook has no sheet")
        if sheet is None:
            sheet = names[0]
        elif sheet not in names:
            raise UnreadableFile(f"sheet '{sheet}' is missing (workbook has: {', '.join(names)})")
        try:
            # One sheet's grid in memory at a time: each load is released before the next.
            df = self.reader.load_sheet(sheet, header_row=header_row, schema_sample_rows=None).to_polars()
            # The header cells as written (fastexcel renames a repeated header 'b' to 'b_1').
            first = self.reader.load_sheet(sheet, header_row=None, skip_rows=header_row, n_rows=1).to_polars()
            header = [None if v is None else str(v) for v in first.row(0)] if first.height else None
        except Exception as exc:
            raise UnreadableFile(f"sheet '{sheet}' cannot be read: {safe_reason(exc)}") from None
        _within_rows(df.height, self.caps)  # a legacy .xls is measured only once read
        df = df.rename(_clean_headers(df.columns, header))
        # Fully empty trailing rows are formatting, not records.
        df = df.filter(~pl.all_horizontal(pl.all().is_null())) if df.width else df
        native: dict[str, str] = {}
        exprs = []
        for name, dtype in df.schema.items():
            col = pl.col(name)
            if dtype.is_float():
                native[name] = "number"
                # Whole numbers as integers ('3', not '3.0'), so a code or a count in a number cell reads as written.
                col = pl.when(col == col.round(0)).then(col.cast(pl.Int64, strict=False).cast(pl.String)).otherwise(
                    _machine_text(col))
            elif dtype.is_integer():
                native[name] = "number"
            elif dtype == pl.Date:
                native[name] = "date"
                col = col.dt.strftime("%Y-%m-%d")
            elif isinstance(dtype, pl.Datetime):
                native[name] = "date"
                col = col.dt.strftime("%Y-%m-%d %H:%M:%S")
            elif dtype == pl.Boolean:
                native[name] = "bool"
            exprs.append(col.cast(pl.String).alias(name))
        df = df.select(exprs) if exprs else df
        return SourceFrame(_with_row_numbers(df), native, present=list(df.columns))


# --------------------------------------------------------------------------- Parquet


def _flatten(df: pl.DataFrame, sep: str) -> tuple[pl.DataFrame, dict[str, str]]:
    """Nested structs → dotted column names; lists of values → joined text; lists of objects → JSON text;
    numbers, dates and booleans → text (and noted as native)."""
    while any(isinstance(dt, pl.Struct) for dt in df.schema.values()):
        exprs = []
        for name, dtype in df.schema.items():
            if isinstance(dtype, pl.Struct):
                exprs.extend(pl.col(name).struct.field(f.name).alias(f"{name}.{f.name}") for f in dtype.fields)
            else:
                exprs.append(pl.col(name))
        df = df.select(exprs)
    native: dict[str, str] = {}
    exprs = []
    for name, dtype in df.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.List | pl.Array):
            inner = dtype.inner
            if inner.is_nested():
                # A list of objects (or of lists) stays whole, as JSON text.
                col = pl.struct(col.alias("v")).struct.json_encode().str.slice(5).str.strip_suffix("}")
            else:
                col = col.cast(pl.List(pl.String)).list.join(sep)
        elif dtype.is_float():
            native[name] = "number"
            col = _machine_text(col)
        elif dtype.is_integer() or isinstance(dtype, pl.Decimal):
            native[name] = "number"
        elif dtype == pl.Date:
            native[name] = "date"
        elif isinstance(dtype, pl.Datetime):
            native[name] = "date"
            col = col.dt.strftime("%Y-%m-%d %H:%M:%S")
        elif dtype == pl.Boolean:
            native[name] = "bool"
        elif dtype == pl.Binary:
            col = col.bin.encode("hex")
        elif isinstance(dtype, pl.Duration):
            col = col.dt.to_string("iso")
        exprs.append(col.cast(pl.String).alias(name))
    return df.select(exprs), native


def read_parquet(path: Path, list_separator: str) -> SourceFrame:
    caps = FileLimits.from_env()
    check_format(path, "parquet")
    with open(path, "rb") as fh:
        if (problem := limits.parquet_problem(fh, caps)) is not None:
            raise UnreadableFile(problem)
    try:
        with open(path, "rb") as fh:  # by an open file, never by name: a name may read as a glob pattern
            df = pl.read_parquet(fh)
    except (Exception, PanicException) as exc:  # polars raises several types for a corrupt file, or panics
        raise UnreadableFile(f"not a readable Parquet file: {safe_reason(exc)}"
                             f"{_truncated(path, 'parquet')}") from None
    # Text a Parquet file repeats through its dictionary is read once but copied by every later step: its size
    # as values, which the footer does not give, is known once read (without copying).
    if (problem := limits.decoded_problem(df.estimated_size(), caps, "the file's values amount to")) is not None:
        raise UnreadableFile(problem)
    flat, native = _flatten(df, list_separator)
    return SourceFrame(_with_row_numbers(flat), native, present=list(flat.columns))


# --------------------------------------------------------------------------- JSON (Lines and documents)

_NUMERIC_JSON = "('BIGINT', 'UBIGINT', 'DOUBLE', 'HUGEINT')"


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _text_of(value: str, sep: str, reduce: str | None, wildcard: bool) -> str:
    """SQL: a JSON value (or, for a wildcard path, the list of its matches) as text."""
    if wildcard:
        # Matches that are lists themselves (VERIS-style action.*.variety) are flattened one level.
        elems = (f"flatten(list_transform({value}, lambda m: CASE WHEN json_type(m) = 'ARRAY' "
                 "THEN json_extract(m, '$[*]') ELSE [m] END))")
    else:
        elems = f"json_extract({value}, '$[*]')"
    scalar = "(lambda e: CASE WHEN json_type(e) IN ('OBJECT', 'ARRAY') THEN CAST(e AS VARCHAR) ELSE json_extract_string(e, '$') END)"
    join = f"array_to_string(list_filter(list_transform({elems}, {scalar}), lambda x: x IS NOT NULL), {_sql_str(sep)})"
    if reduce in ("first", "last"):
        index = 1 if reduce == "first" else -1
        pick = f"list_transform({elems}, {scalar})[{index}]"
        list_text = pick
    elif reduce == "join":
        list_text = join
    else:
        all_scalar = f"list_bool_and(list_transform({elems}, lambda e: json_type(e) NOT IN ('OBJECT', 'ARRAY')))"
        whole = f"CAST(to_json({value}) AS VARCHAR)" if wildcard else f"CAST({value} AS VARCHAR)"
        list_text = f"CASE WHEN {all_scalar} THEN {join} ELSE {whole} END"
    if wildcard:
        return f"CASE WHEN {value} IS NULL OR len({elems}) = 0 THEN NULL ELSE {list_text} END"
    return (
        f"CASE WHEN {value} IS NULL OR json_type({value}) = 'NULL' THEN NULL "
        f"WHEN json_type({value}) = 'ARRAY' THEN CASE WHEN len({elems}) = 0 THEN NULL ELSE {list_text} END "
        f"WHEN json_type({value}) = 'OBJECT' THEN CAST({value} AS VARCHAR) "
        f"ELSE json_extract_string({value}, '$') END"
    )


def _leaf_paths(structure, prefix: str = "") -> list[str]:
    """json_group_structure output → leaf paths in config syntax (a[*].b for arrays of objects)."""
    if isinstance(structure, dict):
        if not structure:
            return [prefix] if prefix else []
        out = []
        for key, child in structure.items():
            name = key if all(ch not in key for ch in '.[]"') else '"' + key + '"'
            out += _leaf_paths(child, f"{prefix}.{name}" if prefix else name)
        return out
    if isinstance(structure, list):
        child = structure[0] if structure else None
        if isinstance(child, dict | list):
            return _leaf_paths(child, prefix + "[*]")
        return [prefix]
    return [prefix] if prefix else []


_JSON_CON: duckdb.DuckDBPyConnection | None = None
STRUCTURE_RECORDS = 20_000


def _json_connection() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB for the process's JSON reading (a connection costs more than a small file)."""
    global _JSON_CON
    if _JSON_CON is None:
        from cyberclaims.settings import limit_memory

        _JSON_CON = duckdb.connect()
        _JSON_CON.execute("SET threads = 1")  # record order is the file's order
        limit_memory(_JSON_CON)
    return _JSON_CON


def read_json(path: Path, spec: ReadSpec, paths: list[str], options: dict[str, tuple[str | None, str]]) -> SourceFrame:
    """JSON Lines (one record a line) or a JSON document (an array of records, one object, or an array under
    records_path) → one text column per configured path, in record order.

    A first pass reads every plain path as text with its JSON type (one parse of each record); only the paths
    where some record holds a list or an object are read again, turned into a list's values or JSON text.
    `options`: path → (reduce, list separator) of the field that reads it."""
    fmt = spec.format
    caps = FileLimits.from_env()
    check_format(path, fmt, spec.encoding)
    if fmt == "jsonl" and spec.require_final_newline:
        _check_final_newline(path, spec.encoding)
    con = _json_connection()
    with _as_utf8(path, spec.encoding) as source:
        if source != path:
            check_format(source, fmt)
        size = max(path.stat().st_size, 1) + 1024
        location = _sql_str(str(source))
        if fmt == "jsonl":
            records = f"SELECT json AS r FROM read_json_objects({location}, format = 'newline_delimited')"
        elif spec.records_path:
            records = (f"SELECT unnest(json_extract(json, {_sql_str(json_path(spec.records_path) + '[*]')})) AS r "
                       f"FROM read_json_objects({location}, format = 'unstructured', maximum_object_size = {size})")
        elif sniff(source) == "json_array":
            records = f"SELECT json AS r FROM read_json_objects({location}, format = 'array', maximum_object_size = {size})"
        else:
            records = f"SELECT json AS r FROM read_json_objects({location}, format = 'unstructured', maximum_object_size = {size})"
        plain = [p for p in paths if not has_wildcard(p)]
        wild = [p for p in paths if has_wildcard(p)]
        try:
            # At most one record past the cap: a file beyond it is rejected before its values are extracted.
            con.execute(f"CREATE OR REPLACE TEMP TABLE __records AS {records} LIMIT {caps.rows + 1}")
            count = con.execute("SELECT count(*) FROM __records").fetchall()[0][0]
            _within_rows(count, caps, exact=False)
            # The keys the file carries (for the unexpected-columns warning): every record of a file of up to
            # STRUCTURE_RECORDS, else the first records and an even spread of the rest (the structure of every
            # record costs more than reading the values). A missing required path is judged on all records.
            step = max(1, count // STRUCTURE_RECORDS)
            structure = con.execute(
                f"SELECT json_group_structure(r) FROM __records WHERE rowid < 1000 OR rowid % {step} = 0"
            ).fetchall()[0][0]
            if plain:
                listed = ", ".join(_sql_str(json_path(p)) for p in plain)
                first = con.sql(f"SELECT json_extract_string(r, [{listed}]) AS s, json_type(r, [{listed}]) AS t "
                                "FROM __records").pl()
                numeric = ["BIGINT", "UBIGINT", "DOUBLE", "HUGEINT"]
                kinds = first.select(
                    *(pl.col("t").list.get(i).is_in(numeric).any().alias(f"n{i}") for i in range(len(plain))),
                    *(pl.col("t").list.get(i).is_in(["ARRAY", "OBJECT"]).any().alias(f"x{i}") for i in range(len(plain))),
                ).row(0, named=True) if first.height else {}
                df = first.select(
                    *(pl.col("s").list.get(i).alias(p) for i, p in enumerate(plain)),
                    *(pl.when(pl.col("t").list.get(i).is_in(numeric)).then(True).alias(p + NATIVE_SUFFIX)
                      for i, p in enumerate(plain) if kinds.get(f"n{i}")),
                )
                nested = [p for i, p in enumerate(plain) if kinds.get(f"x{i}") or options[p][0] is not None]
            else:
                df, nested = pl.DataFrame({"__n": [None] * count}), []
            again = [(p, False) for p in nested] + [(p, True) for p in wild]
            if again:
                exprs = [
                    f"{_text_of(f'json_extract(r, {_sql_str(json_path(p))})', options[p][1], options[p][0], is_wild)} "
                    f"AS {_ident(p)}" for p, is_wild in again
                ]
                second = con.sql(f"SELECT {', '.join(exprs)} FROM __records").pl()
                df = df.with_columns(second.get_column(p) for p, _ in again)
        except duckdb.Error as exc:
            what = "JSON Lines" if fmt == "jsonl" else "JSON"
            raise UnreadableFile(f"malformed {what}: {safe_reason(str(exc).replace(str(source), 'the file'))}") from None
        finally:
            con.execute("DROP TABLE IF EXISTS __records")
    if "__n" in df.columns:
        df = df.drop("__n")
    try:
        present = _leaf_paths(json.loads(structure)) if structure else []
    except RecursionError:
        raise UnreadableFile("malformed JSON: the records are nested too deeply to read") from None
    return SourceFrame(_with_row_numbers(df), {}, present=present, is_json=True)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --------------------------------------------------------------------------- dispatch


def _within_rows(rows: int, caps: FileLimits, exact: bool = True) -> None:
    if (problem := limits.rows_problem(rows, caps, exact=exact)) is not None:
        raise UnreadableFile(problem)


def read_sources(path: Path, cfg: InsurerConfig, record_types: list[str]) -> dict[str, SourceFrame]:
    """Each record type's source frame from one file (a workbook is opened once for all its sheets)."""
    if (problem := limits.file_size_problem(path, FileLimits.from_env())) is not None:
        raise UnreadableFile(problem)
    frames: dict[str, SourceFrame] = {}
    workbook: Workbook | None = None
    for rt in record_types:
        spec = cfg.read_spec(rt)
        match spec.format:
            case "csv":
                frames[rt] = read_csv(path, spec)
            case "excel":
                workbook = workbook or Workbook(path)
                frames[rt] = workbook.sheet(spec.sheet, spec.header_row)
            case "jsonl" | "json":
                options = {p: (s.list_reduce, s.list_separator) for s in cfg.sources(rt).values() for p in s.paths
                           if p is not None}
                frames[rt] = read_json(path, spec, cfg.source_paths(rt), options)
            case "parquet":
                frames[rt] = read_parquet(path, cfg.separator_for(rt))
            case other:
                raise AssertionError(other)
    return frames


def read_source(path: Path, cfg: InsurerConfig, record_type: str) -> SourceFrame:
    return read_sources(path, cfg, [record_type])[record_type]


def path_segments(path: str) -> list:
    """Segments of a configured path with every index as '[*]' (for matching against the file's leaves)."""
    try:
        return ["[*]" if isinstance(s, int) else s for s in parse_path(path)]
    except ValueError:
        return [path]


def covers(configured: str, leaf: str) -> bool:
    """Whether a configured path reads the file's leaf path (one is a prefix of the other, wildcards match)."""
    a, b = path_segments(configured), path_segments(leaf)
    for x, y in zip(a, b, strict=False):
        if x == y or (x == "*" and y != "[*]") or (y == "*" and x != "[*]"):
            continue
        return False
    return True


__all__ = ["JSON_FORMATS", "SOURCE_ROW", "SourceFrame", "UnreadableFile", "covers", "read_source", "read_sources", "sniff"]
