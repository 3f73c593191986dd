"""Readers: one insurer file (or sheet) → a polars frame of source columns as strings.

Every reader returns the source exactly as delivered, as text, plus `__source_row`
(1-based position of the record within its file or sheet). Parsing into canonical types
happens in one place (`ingestion.mapping`) whatever the format, so a date or an amount
means the same thing in every layout. Anything that cannot be read at all raises
`UnreadableFile` with the reason; the caller rejects the whole submission.
"""

from __future__ import annotations

import codecs
import tempfile
from pathlib import Path

import polars as pl

from ingestion.config import InsurerConfig

SOURCE_ROW = "__source_row"
_CHUNK = 1 << 20


class UnreadableFile(Exception):
    """The file cannot be read as the insurer's layout says (truncated, wrong encoding, corrupt)."""


def _check_final_newline(path: Path) -> None:
    size = path.stat().st_size
    if size == 0:
        raise UnreadableFile("empty file")
    with open(path, "rb") as fh:
        fh.seek(size - 1)
        if fh.read(1) != b"\n":
            raise UnreadableFile("truncated: the file does not end with a line break (incomplete last record)")


def _transcode_to_utf8(path: Path, encoding: str, tmpdir: Path) -> Path:
    """Decode a non-UTF-8 file incrementally (bounded memory) into a UTF-8 copy."""
    out = tmpdir / (path.stem + ".utf8" + path.suffix)
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        with open(path, "rb") as src, open(out, "w", encoding="utf-8", newline="") as dst:
            while chunk := src.read(_CHUNK):
                dst.write(decoder.decode(chunk))
            dst.write(decoder.decode(b"", final=True))
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"not valid {encoding}: byte {exc.start} cannot be decoded ({exc.reason})") from None
    return out


def _with_row_numbers(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_row_index(SOURCE_ROW, offset=1).with_columns(pl.col(SOURCE_ROW).cast(pl.Int64))


def read_csv(path: Path, cfg: InsurerConfig) -> pl.DataFrame:
    if cfg.require_final_newline:
        _check_final_newline(path)
    with tempfile.TemporaryDirectory(prefix="cyberclaims-") as tmp:
        source = path
        encoding = cfg.encoding.lower().replace("_", "-")
        if encoding not in ("utf-8", "utf8", "utf-8-sig"):
            source = _transcode_to_utf8(path, cfg.encoding, Path(tmp))
        try:
            df = pl.read_csv(
                source,
                separator=cfg.delimiter,
                infer_schema=False,
                encoding="utf8",
                raise_if_empty=True,
            )
        except pl.exceptions.ComputeError as exc:
            msg = str(exc).splitlines()[0]
            if "invalid utf-8" in msg.lower() or "utf8" in msg.lower():
                raise UnreadableFile(f"not valid {cfg.encoding}: {msg}") from None
            raise UnreadableFile(f"malformed CSV: {msg}") from None
        except pl.exceptions.NoDataError:
            raise UnreadableFile("empty file") from None
    # A UTF-8 byte-order mark is not part of the first header.
    df = df.rename({c: c.lstrip("\ufeff").strip() for c in df.columns})
    return _with_row_numbers(df)


def read_excel_sheet(path: Path, sheet: str, header_row: int) -> pl.DataFrame:
    import fastexcel

    try:
        reader = fastexcel.read_excel(str(path))
    except Exception as exc:  # fastexcel raises its own error types for corrupt archives
        raise UnreadableFile(f"not a readable Excel workbook: {str(exc).splitlines()[0]}") from None
    if sheet not in reader.sheet_names:
        raise UnreadableFile(f"sheet '{sheet}' is missing (workbook has: {', '.join(reader.sheet_names)})")
    try:
        df = reader.load_sheet(sheet, header_row=header_row, dtypes="string").to_polars()
    except Exception as exc:
        raise UnreadableFile(f"sheet '{sheet}' cannot be read: {str(exc).splitlines()[0]}") from None
    df = df.rename({c: str(c).strip() for c in df.columns})
    # Fully empty trailing rows are formatting, not records.
    df = df.filter(~pl.all_horizontal(pl.all().is_null()))
    return _with_row_numbers(df)


def _flatten(df: pl.DataFrame, sep: str) -> pl.DataFrame:
    """Nested structs → dotted column names; lists → joined text; numbers → text."""
    while any(isinstance(dt, pl.Struct) for dt in df.schema.values()):
        exprs = []
        for name, dtype in df.schema.items():
            if isinstance(dtype, pl.Struct):
                exprs.extend(pl.col(name).struct.field(f.name).alias(f"{name}.{f.name}") for f in dtype.fields)
            else:
                exprs.append(pl.col(name))
        df = df.select(exprs)
    exprs = []
    for name, dtype in df.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.List | pl.Array):
            col = col.cast(pl.List(pl.String)).list.join(sep)
        elif dtype.is_float():
            # Floats carry binary noise; six decimals is finer than any amount we map.
            col = col.round(6)
        exprs.append(col.cast(pl.String).alias(name))
    return df.select(exprs)


def read_jsonl(path: Path, cfg: InsurerConfig, list_separator: str) -> pl.DataFrame:
    if cfg.require_final_newline:
        _check_final_newline(path)
    try:
        df = pl.read_ndjson(path, infer_schema_length=None)
    except (pl.exceptions.ComputeError, pl.exceptions.PolarsError) as exc:
        raise UnreadableFile(f"malformed JSON Lines: {str(exc).splitlines()[0]}") from None
    return _with_row_numbers(_flatten(df, list_separator))


def read_parquet(path: Path, list_separator: str) -> pl.DataFrame:
    try:
        df = pl.read_parquet(path)
    except Exception as exc:  # pyarrow / polars raise several types for a corrupt footer
        raise UnreadableFile(f"not a readable Parquet file: {str(exc).splitlines()[0]}") from None
    return _with_row_numbers(_flatten(df, list_separator))


def read_source(path: Path, cfg: InsurerConfig, record_type: str) -> pl.DataFrame:
    rtc = cfg.record_types[record_type]
    sep = cfg.separator_for(record_type)
    match cfg.format:
        case "csv":
            return read_csv(path, cfg)
        case "excel":
            assert rtc.sheet is not None  # guaranteed by config validation
            return read_excel_sheet(path, rtc.sheet, rtc.header_row)
        case "jsonl":
            return read_jsonl(path, cfg, sep)
        case "parquet":
            return read_parquet(path, sep)
    raise AssertionError(cfg.format)

