"""Render the simulated market into each insurer's own layout, with injected defects.

The renderer is the inverse of an insurer's mapping config: canonical field → source
column, canonical code → the insurer's code, amount → the insurer's unit, date → the
insurer's format, and the file format itself (CSV in UTF-8 or GBK, Excel with a title row,
nested JSON Lines, typed Parquet). Beside the landing files it writes the truth: every
delivered row in canonical terms and which rows and files carry which defect, so tests can
prove that ingestion recovers exactly what was meant.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl

from ingestion import contract as c
from ingestion.config import InsurerConfig
from ingestion.manifest import manifest_path

UNKNOWN_RAW_CODE = "ZZ9"
# Month token in file names, replacing the '*' of the insurer's file pattern.
MONTH_TOKEN = "%Y%m"

DEFECTS = ("missing_required", "invalid_uscc", "date_order", "negative_amount", "unknown_code", "duplicate_row")
EXPECTED_REASON = {
    "missing_required": c.REASON_MISSING,
    "invalid_uscc": c.REASON_INVALID_USCC,
    "date_order": c.REASON_DATE_ORDER,
    "negative_amount": c.REASON_NEGATIVE,
    "unknown_code": c.REASON_UNKNOWN_CODE,
    "duplicate_row": c.REASON_DUPLICATE,
}
# Which field each row defect touches, per record type (None: the defect does not apply).
_MISSING_FIELD = {"policy": "written_premium", "incident": "reported_date", "claim_valuation": "valuation_date"}
_UNKNOWN_FIELD = {"policy": "product_type", "incident": "incident_type", "claim_valuation": "coverage_section"}
_NEGATIVE_FIELD = {"policy": "written_premium", "incident": None, "claim_valuation": "paid_indemnity"}


@dataclass(frozen=True)
class DefectRates:
    """Share of delivered rows carrying each row defect, and which file-level defects to inject."""

    missing_required: float = 0.004
    invalid_uscc: float = 0.004
    date_order: float = 0.004
    negative_amount: float = 0.004
    unknown_code: float = 0.004
    duplicate_row: float = 0.004
    file_defects: bool = True

    @classmethod
    def none(cls) -> DefectRates:
        return cls(0, 0, 0, 0, 0, 0, file_defects=False)


# --------------------------------------------------------------------------- defects


def _assign_defects(frame: pl.DataFrame, rt: str, rates: DefectRates, rng: np.random.Generator) -> pl.Series:
    """One defect (or null) per row, on disjoint random rows."""
    n = frame.height
    labels = np.full(n, None, dtype=object)
    free = rng.permutation(n)
    cursor = 0
    for defect in DEFECTS:
        rate = getattr(rates, defect)
        if rate <= 0 or (defect == "invalid_uscc" and rt == "claim_valuation"):
            continue
        if defect == "negative_amount" and _NEGATIVE_FIELD[rt] is None:
            continue
        k = int(round(n * rate))
        if n >= 10:
            k = max(k, 1)
        labels[free[cursor:cursor + k]] = defect
        cursor += k
    return pl.Series("defect", labels.tolist(), dtype=pl.String)


def _apply_defects(frame: pl.DataFrame, rt: str) -> pl.DataFrame:
    d = pl.col("defect")
    exprs = []
    missing = _MISSING_FIELD[rt]
    exprs.append(pl.when(d == "missing_required").then(None).otherwise(pl.col(missing)).alias(missing))
    if rt in ("policy", "incident"):
        uscc = pl.col("insured_id")
        # Any other character of the code set in the check position breaks GB 32100.
        wrong_check = pl.when(uscc.str.slice(17, 1) == "0").then(pl.lit("1")).otherwise(pl.lit("0"))
        exprs.append(pl.when(d == "invalid_uscc").then(uscc.str.slice(0, 17) + wrong_check).otherwise(uscc).alias("insured_id"))
    match rt:
        case "policy":
            swap = d == "date_order"
            exprs.append([
                pl.when(swap).then(pl.col("expiry_date")).otherwise(pl.col("inception_date")).alias("inception_date"),
                pl.when(swap).then(pl.col("inception_date")).otherwise(pl.col("expiry_date")).alias("expiry_date"),
            ])
        case "incident":
            exprs.append(
                pl.when(d == "date_order").then(pl.col("occurred_date") - pl.duration(days=7))
                .otherwise(pl.col("reported_date")).alias("reported_date")
            )
        case "claim_valuation":
            exprs.append(
                pl.when(d == "date_order").then(pl.col("report_date") - pl.duration(days=10))
                .otherwise(pl.col("closed_date")).alias("closed_date")
            )
    negative = _NEGATIVE_FIELD[rt]
    if negative:
        amount = pl.col(negative)
        exprs.append(
            pl.when((d == "negative_amount") & (amount == 0)).then(pl.lit(Decimal("-100.00")))
            .when(d == "negative_amount").then(-amount)
            .otherwise(amount).cast(frame.schema[negative]).alias(negative)
        )
    # One expression per step: the missing and the negative defect may touch the same column.
    for expr in exprs:
        frame = frame.with_columns(expr)
    unknown = _UNKNOWN_FIELD[rt]
    return frame.with_columns(
        pl.when(d == "unknown_code").then(pl.lit(UNKNOWN_RAW_CODE)).otherwise(pl.col(unknown)).alias(unknown)
    )


# --------------------------------------------------------------------------- rendering


def _inverse(vmap: dict[str, str]) -> dict[str, str]:
    inverse: dict[str, str] = {}
    for source, canonical in vmap.items():
        inverse.setdefault(str(canonical), str(source))
    return inverse | {UNKNOWN_RAW_CODE: UNKNOWN_RAW_CODE}


def _render_format(fmt: str) -> str:
    # Chinese long dates are written without zero padding (2024年3月5日); parsing accepts both.
    return fmt.replace("%m", "%-m").replace("%d", "%-d") if "年" in fmt else fmt


def _render_columns(frame: pl.DataFrame, cfg: InsurerConfig, rt: str) -> pl.DataFrame:
    """Canonical frame → the insurer's source columns, typed as the format would carry them."""
    rtc = cfg.record_types[rt]
    fields = c.field_map(rt)
    fmt = cfg.format
    exprs = []
    for name, source in rtc.columns.items():
        f = fields[name]
        col = pl.col(name)
        vmap = rtc.value_maps.get(name)
        match f.kind:
            case "date":
                if fmt in ("csv", "jsonl"):
                    col = col.dt.strftime(_render_format(cfg.date_formats_for(rt)[0]))
            case "money" | "revenue":
                multiplier = Decimal(cfg.multiplier_for(rt, name))
                if multiplier != 1:
                    col = col.cast(pl.Decimal(38, 6)) / pl.lit(multiplier, dtype=pl.Decimal(38, 6))
                if fmt in ("excel", "jsonl"):
                    col = col.cast(pl.Float64)
                elif fmt == "csv":
                    col = col.cast(pl.String)
            case "code" | "currency":
                if vmap:
                    col = col.replace_strict(_inverse(vmap), default=col, return_dtype=pl.String)
            case "code_list":
                if vmap:
                    inv = _inverse(vmap)
                    col = col.list.eval(pl.element().replace_strict(inv, default=pl.element(), return_dtype=pl.String))
                if fmt in ("csv", "excel"):
                    col = col.list.join(cfg.separator_for(rt))
            case "str_list":
                if fmt in ("csv", "excel"):
                    col = col.list.join(cfg.separator_for(rt))
            case "bool":
                if vmap:
                    inv = _inverse(vmap)
                    col = pl.when(col).then(pl.lit(inv["true"])).when(~col).then(pl.lit(inv["false"]))
                elif fmt == "csv":
                    col = pl.when(col).then(pl.lit("Y")).when(~col).then(pl.lit("N"))
            case "int" | "number":
                if fmt == "csv":
                    col = col.cast(pl.String)
        exprs.append(col.alias(source))
    return frame.select(exprs)


def _nest(frame: pl.DataFrame) -> pl.DataFrame:
    """Dotted column names → nested structs (JSON objects)."""
    tree: dict = {}
    for name in frame.columns:
        node = tree
        *parents, leaf = name.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = name

    def build(node: dict, key: str) -> pl.Expr:
        if isinstance(node, str):
            return pl.col(node).alias(key)
        return pl.struct([build(child, k) for k, child in node.items()]).alias(key)

    return frame.select([build(child, k) for k, child in tree.items()])


def _write_excel(path: Path, sheets: dict[str, tuple[str, pl.DataFrame]]) -> None:
    import xlsxwriter

    path.parent.mkdir(parents=True, exist_ok=True)
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    # A fixed creation time keeps the bytes, hence the submission id, reproducible.
    workbook.set_properties({"created": datetime(2000, 1, 1)})
    date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
    title_format = workbook.add_format({"bold": True, "font_size": 14})
    for sheet, (title, frame) in sheets.items():
        ws = workbook.add_worksheet(sheet)
        ws.write_string(0, 0, title, title_format)
        ws.write_row(1, 0, frame.columns)
        date_cols = {i for i, dt in enumerate(frame.dtypes) if dt == pl.Date}
        for r, row in enumerate(frame.iter_rows(), start=2):
            for j, value in enumerate(row):
                if value is None:
                    continue
                if j in date_cols:
                    ws.write_datetime(r, j, datetime(value.year, value.month, value.day), date_format)
                elif isinstance(value, float | int) and not isinstance(value, bool):
                    ws.write_number(r, j, value)
                else:
                    ws.write_string(r, j, str(value))
    workbook.close()


def _write(path: Path, cfg: InsurerConfig, frame: pl.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    match cfg.format:
        case "csv":
            text = frame.write_csv(null_value="")
            path.write_bytes(text.encode(cfg.encoding))
        case "jsonl":
            _nest(frame).write_ndjson(path)
        case "parquet":
            frame.write_parquet(path)
        case _:
            raise AssertionError(cfg.format)


# --------------------------------------------------------------------------- driver


@dataclass
class FileTruth:
    insurer_id: str
    source_file: str
    kind: str  # regular | resubmission | truncated | unknown_layout | extra_column | manifest_mismatch
    expected_status: str  # loaded | already_loaded | rejected
    rows: int
    record_types: str
    manifest: bool = False
    expected_gate: str = "passed"  # passed | held | "" (not loaded)


def _write_manifest(path: Path, cfg: InsurerConfig, parts: dict[str, pl.DataFrame]) -> None:
    """The insurer's control totals for a data file: rows and amount totals per record type, in the file's units."""
    sections = {}
    for rt, part in parts.items():
        totals = {}
        for name, source in cfg.record_types[rt].columns.items():
            if c.field_map(rt)[name].kind != "money":
                continue
            total = part.select(pl.col(name).cast(pl.Decimal(38, 2)).sum()).item() or Decimal(0)
            totals[source] = str(Decimal(total) / Decimal(cfg.multiplier_for(rt, name)))
        sections[rt] = {"row_count": part.height, "totals": totals}
    doc = {"manifest_version": "1", "data_file": path.name, "insurer": cfg.insurer_id, "record_types": sections}
    manifest_path(path).write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")

def _file_name(pattern: str, month: date) -> str:
    return pattern.replace("*", month.strftime(MONTH_TOKEN))


def render_insurer(
    truth: dict[str, pl.DataFrame],
    cfg: InsurerConfig,
    landing_dir: Path,
    rates: DefectRates,
    rng: np.random.Generator,
) -> tuple[dict[str, pl.DataFrame], list[FileTruth]]:
    """Write one insurer's monthly submissions; return (delivered rows per record type, file truths)."""
    delivered: dict[str, list[pl.DataFrame]] = defaultdict(list)
    files: list[FileTruth] = []
    # Excel carries all record types of a month in one workbook.
    workbooks: dict[str, dict[str, tuple[str, pl.DataFrame]]] = defaultdict(dict)
    workbook_parts: dict[str, dict[str, pl.DataFrame]] = defaultdict(dict)
    # Insurers whose config requires a manifest deliver one with every data file.
    with_manifest = cfg.quality.manifest_required
    for rt, rtc in cfg.record_types.items():
        frame = truth[rt].filter(pl.col("insurer_id") == cfg.insurer_id)
        frame = frame.with_columns(_assign_defects(frame, rt, rates, rng))
        frame = _apply_defects(frame, rt)
        for (month,), part in frame.sort("submission_month").partition_by(
            "submission_month", as_dict=True, maintain_order=True
        ).items():
            name = _file_name(rtc.file_pattern, month)
            # A duplicated row is delivered twice in a row; the second copy is the defect.
            is_dup = pl.col("defect") == "duplicate_row"
            part = part.with_row_index("__order")
            part = pl.concat([
                part.with_columns(pl.lit(0).alias("__copy"), pl.when(is_dup).then(None).otherwise(pl.col("defect")).alias("defect")),
                part.filter(is_dup).with_columns(pl.lit(1).alias("__copy")),
            ]).sort("__order", "__copy").drop("__order", "__copy")
            part = part.with_columns(
                pl.lit(f"{cfg.insurer_id}/{name}").alias("source_file"),
                pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("source_row"),
            )
            delivered[rt].append(part)
            source = _render_columns(part, cfg, rt)
            if cfg.format == "excel":
                title = f"{cfg.display_name.split(' (')[0]} 网络安全保险数据报送 {month:%Y年%m月}"
                workbooks[name][rtc.sheet] = (title, source)
                workbook_parts[name][rt] = part
            else:
                _write(landing_dir / cfg.insurer_id / name, cfg, source)
                if with_manifest:
                    _write_manifest(landing_dir / cfg.insurer_id / name, cfg, {rt: part})
                files.append(FileTruth(cfg.insurer_id, f"{cfg.insurer_id}/{name}", "regular", "loaded", part.height, rt,
                                       manifest=with_manifest))
    for name, sheets in workbooks.items():
        for rt, rtc in cfg.record_types.items():
            # A month without, say, incidents still delivers the sheet, with its header only.
            if rtc.sheet not in sheets:
                empty = _render_columns(truth[rt].clear(), cfg, rt)
                sheets[rtc.sheet] = (next(iter(sheets.values()))[0], empty)
        _write_excel(landing_dir / cfg.insurer_id / name, sheets)
        if with_manifest:
            parts = {rt: workbook_parts[name].get(rt, truth[rt].clear()) for rt in cfg.record_types}
            _write_manifest(landing_dir / cfg.insurer_id / name, cfg, parts)
        rows = sum(f.height for _, f in sheets.values())
        files.append(FileTruth(cfg.insurer_id, f"{cfg.insurer_id}/{name}", "regular", "loaded", rows,
                               ",".join(cfg.record_types), manifest=with_manifest))
    return {rt: pl.concat(parts, how="vertical_relaxed") for rt, parts in delivered.items()}, files


def inject_file_defects(landing_dir: Path, cfg: InsurerConfig, files: list[FileTruth], index: int) -> list[FileTruth]:
    """File-level defects, spread over insurers by their position `index`.

    Every insurer resubmits one file under a new name; then, in turn: a truncated upload
    (the complete file is delivered too), a file with an extra unexpected column, and a
    file whose name matches no layout. An insurer that delivers manifests also sends one
    claim file whose manifest states three rows more than the file holds (rows lost in
    transfer): the submission gate must hold that file back.
    """
    regular = sorted((f for f in files if f.kind == "regular"), key=lambda f: f.source_file)
    if not regular:
        return []
    extra: list[FileTruth] = []
    original = regular[len(regular) // 2]
    src = landing_dir / original.source_file
    resent = src.with_name(src.stem + "_resend" + src.suffix)
    shutil.copyfile(src, resent)
    extra.append(FileTruth(cfg.insurer_id, f"{cfg.insurer_id}/{resent.name}", "resubmission", "already_loaded",
                           original.rows, original.record_types, manifest=False, expected_gate=""))
    if original.manifest:
        shutil.copyfile(manifest_path(src), manifest_path(resent))

    claim_files = [f for f in regular if "claim_valuation" in f.record_types.split(",") and f.manifest and f.rows > 0]
    if claim_files:
        mismatch = claim_files[(2 * len(claim_files)) // 3]
        mpath = manifest_path(landing_dir / mismatch.source_file)
        doc = json.loads(mpath.read_text(encoding="utf-8"))
        doc["record_types"]["claim_valuation"]["row_count"] += 3
        mpath.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
        mismatch.kind, mismatch.expected_gate = "manifest_mismatch", "held"

    kind = ("truncated", "extra_column", "unknown_layout", "truncated", "extra_column")[index % 5]
    target = regular[len(regular) // 3]
    path = landing_dir / target.source_file
    if kind == "truncated":
        data = path.read_bytes()
        cut = path.with_name(path.stem + "_upload1" + path.suffix)
        # Cut inside a record, as an interrupted upload does.
        cut.write_bytes(data[: int(len(data) * 0.6)].rstrip(b"\n"))
        extra.append(FileTruth(cfg.insurer_id, f"{cfg.insurer_id}/{cut.name}", "truncated", "rejected", 0,
                               target.record_types, expected_gate=""))
    elif kind == "extra_column":
        _add_extra_column(path, cfg, target)
        target.kind = "extra_column"
    else:
        notes = path.with_name("delivery_notes.txt")
        notes.write_text("Monthly delivery. Contact the data office for questions.\n", encoding="utf-8")
        extra.append(FileTruth(cfg.insurer_id, f"{cfg.insurer_id}/{notes.name}", "unknown_layout", "rejected", 0, "",
                               expected_gate=""))
    return extra


def _add_extra_column(path: Path, cfg: InsurerConfig, target: FileTruth) -> None:
    match cfg.format:
        case "csv":
            text = path.read_bytes().decode(cfg.encoding)
            lines = text.split("\n")
            header = "BrokerCode" if cfg.encoding.lower() == "utf-8" else "经纪人代码"
            lines = [f"{line},{header if i == 0 else 'B' + str(i % 7)}" if line else line for i, line in enumerate(lines)]
            path.write_bytes("\n".join(lines).encode(cfg.encoding))
        case "parquet":
            frame = pl.read_parquet(path)
            frame.with_columns(pl.lit("web").alias("channel_cd")).write_parquet(path)
        case "jsonl":
            frame = pl.read_ndjson(path)
            frame.with_columns(pl.lit("broker").alias("channel")).write_ndjson(path)
        case "excel":
            raise AssertionError("excel extra column is not generated")


def file_truth_frame(files: list[FileTruth]) -> pl.DataFrame:
    return pl.DataFrame([asdict(f) for f in files])
