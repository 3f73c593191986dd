"""Map one source frame (text columns, as delivered) into the canonical contract.

Vectorized in polars: every canonical field is derived from its source column by the
insurer's config (value maps, date formats, unit multiplier), every row collects a list
of machine-readable reasons ("CODE:field"), identifiers are replaced by HMAC keys, and the
frame splits into rows to load and rows to quarantine. No row is dropped silently:
delivered = loaded + quarantined.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import polars as pl

from ingestion import contract as c
from ingestion.config import DEFAULT_BOOL_MAP, InsurerConfig
from ingestion.pseudonymize import Pseudonymizer, normalize_series
from ingestion.readers import SOURCE_ROW
from ingestion.taxonomy import Taxonomy

REASONS = "__reasons"
_PARSE = "__parsed__"


class LayoutMismatch(Exception):
    """The file's columns do not match the configured layout (a whole-file rejection)."""


@dataclass
class MappedBatch:
    record_type: str
    good: pl.DataFrame  # stored canonical columns, identifiers replaced by keys
    quarantine: pl.DataFrame  # source_row, reasons, original_values (JSON, identifiers keyed)
    warnings: list[str] = field(default_factory=list)
    # Control totals over every delivered row (accepted or not): amount field → sum of the parsed
    # amounts in currency units, for reconciliation with the insurer's manifest.
    delivered_totals: dict[str, Decimal] = field(default_factory=dict)

    @property
    def delivered(self) -> int:
        return self.good.height + self.quarantine.height


def _text(expr: pl.Expr) -> pl.Expr:
    stripped = expr.cast(pl.String).str.strip_chars()
    return pl.when(stripped == "").then(None).otherwise(stripped)


def _code_map(cfg: InsurerConfig, rt: str, f: c.Field, taxonomy: Taxonomy) -> dict[str, str]:
    vmap = cfg.record_types[rt].value_maps.get(f.name)
    if vmap:
        return {str(k): str(v) for k, v in vmap.items()}
    allowed = taxonomy.codes[f.taxonomy] if f.taxonomy else taxonomy.codes["tax_currency"]
    return {code: code for code in allowed} | (
        {code.lower(): code for code in allowed} if f.kind == "currency" else {}
    )


def _parse_expr(f: c.Field, raw: pl.Expr, cfg: InsurerConfig, rt: str, taxonomy: Taxonomy) -> tuple[pl.Expr, list[pl.Expr]]:
    """(parsed value, reason expressions that yield 'CODE:field' or null) for one field."""
    name = f.name
    reasons: list[pl.Expr] = []

    def reason(cond: pl.Expr, code: str) -> None:
        reasons.append(pl.when(cond).then(pl.lit(f"{code}:{name}")))

    match f.kind:
        case "str" | "identifier":
            value = raw
        case "date":
            formats = cfg.date_formats_for(rt)
            value = pl.coalesce([raw.str.strptime(pl.Date, fmt, strict=False) for fmt in formats])
            reason(raw.is_not_null() & value.is_null(), c.REASON_INVALID_DATE)
        case "money" | "revenue":
            precision = c.REVENUE_PRECISION if f.kind == "revenue" else c.MONEY_PRECISION
            number = raw.str.replace_all(r"[,，\s]", "").cast(pl.Decimal(38, 6), strict=False)
            multiplier = Decimal(cfg.multiplier_for(rt, name))
            if multiplier != 1:
                number = number * pl.lit(multiplier, dtype=pl.Decimal(38, 6))
            value = number.round(c.MONEY_SCALE).cast(pl.Decimal(precision, c.MONEY_SCALE), strict=False)
            reason(raw.is_not_null() & value.is_null(), c.REASON_INVALID_NUMBER)
            reason(value < 0, c.REASON_NEGATIVE)
        case "int":
            as_float = raw.cast(pl.Float64, strict=False)
            value = pl.coalesce(
                raw.cast(pl.Int64, strict=False),
                pl.when(as_float == as_float.floor()).then(as_float.cast(pl.Int64, strict=False)),
            )
            reason(raw.is_not_null() & value.is_null(), c.REASON_INVALID_NUMBER)
            upper = 100 if name == "risk_assessment_score" else None
            out_of_range = value < 0 if upper is None else (value < 0) | (value > upper)
            reason(out_of_range, c.REASON_OUT_OF_RANGE)
        case "number":
            value = raw.cast(pl.Float64, strict=False)
            reason(raw.is_not_null() & value.is_null(), c.REASON_INVALID_NUMBER)
            reason(value < 0, c.REASON_OUT_OF_RANGE)
        case "bool":
            vmap = cfg.record_types[rt].value_maps.get(name)
            mapping = {k: v == "true" for k, v in vmap.items()} if vmap else None
            if mapping is None:
                value = raw.str.to_lowercase().replace_strict(DEFAULT_BOOL_MAP, default=None, return_dtype=pl.Boolean)
            else:
                value = raw.replace_strict(mapping, default=None, return_dtype=pl.Boolean)
            reason(raw.is_not_null() & value.is_null(), c.REASON_UNKNOWN_CODE)
        case "code" | "currency":
            value = raw.replace_strict(_code_map(cfg, rt, f, taxonomy), default=None, return_dtype=pl.String)
            reason(raw.is_not_null() & value.is_null(), c.REASON_UNKNOWN_CODE)
        case "code_list" | "str_list":
            items = raw.str.split(cfg.separator_for(rt)).list.eval(
                pl.element().str.strip_chars().filter(pl.element().str.strip_chars() != "")
            )
            if f.kind == "code_list":
                mapping = _code_map(cfg, rt, f, taxonomy)
                value = items.list.eval(pl.element().replace_strict(mapping, default=None, return_dtype=pl.String))
                reason(value.list.eval(pl.element().is_null()).list.any(), c.REASON_UNKNOWN_CODE)
            else:
                value = items
        case _:
            raise AssertionError(f.kind)
    return value, reasons


def _special_reasons(rt: str, taxonomy: Taxonomy) -> tuple[list[pl.Expr], list[pl.Expr]]:
    """(replacement columns, reasons) for rules beyond one field's kind."""
    columns: list[pl.Expr] = []
    reasons: list[pl.Expr] = []
    if rt == "policy":
        region = pl.col("region_code")
        provinces = list(taxonomy.codes["tax_region"])
        reasons.append(
            pl.when(region.is_not_null() & ~(region.str.contains(r"^\d{6}$") & region.str.slice(0, 2).is_in(provinces)))
            .then(pl.lit(f"{c.REASON_INVALID_REGION}:region_code"))
        )
        # GB/T 4754 codes arrive as 'I6510', '6510' or '65': keep the digits, check the division.
        industry = pl.col("industry_code").str.replace(r"^[A-Za-z]", "")
        columns.append(industry.alias("industry_code"))
        reasons.append(
            pl.when(
                industry.is_not_null()
                & ~(industry.str.contains(r"^\d{2,4}$") & industry.str.slice(0, 2).is_in(taxonomy.known_divisions()))
            ).then(pl.lit(f"{c.REASON_UNKNOWN_CODE}:industry_code"))
        )
        reasons.append(
            pl.when(pl.col("industry_code").is_null() & pl.col("sector_code").is_null()).then(
                pl.lit(f"{c.REASON_NO_SECTOR}:sector_code")
            )
        )
    for earlier, later in c.DATE_ORDER[rt]:
        reasons.append(
            pl.when(pl.col(later) < pl.col(earlier)).then(pl.lit(f"{c.REASON_DATE_ORDER}:{later}<{earlier}"))
        )
    return columns, reasons


def check_layout(df: pl.DataFrame, cfg: InsurerConfig, rt: str) -> list[str]:
    """Raise LayoutMismatch for missing columns; return warnings for unexpected ones."""
    rtc = cfg.record_types[rt]
    fields = c.field_map(rt)
    present = set(df.columns) - {SOURCE_ROW}
    expected = set(rtc.columns.values())
    missing = sorted(
        src for name, src in rtc.columns.items()
        if src not in present and (fields[name].required or cfg.format != "jsonl")
    )
    if missing:
        raise LayoutMismatch(f"{rt}: expected column(s) missing: {', '.join(missing)}")
    unexpected = sorted(present - expected)
    if unexpected:
        message = f"{rt}: unexpected column(s) ignored: {', '.join(unexpected)}"
        if cfg.unexpected_columns == "reject":
            raise LayoutMismatch(message.replace("ignored", "not in the layout"))
        return [message]
    return []


def map_frame(
    df: pl.DataFrame,
    cfg: InsurerConfig,
    rt: str,
    taxonomy: Taxonomy,
    pseudonymizer: Pseudonymizer,
) -> MappedBatch:
    rtc = cfg.record_types[rt]
    warnings = check_layout(df, cfg, rt)
    source_cols = [src for src in dict.fromkeys(rtc.columns.values()) if src in df.columns]

    raw_exprs = []
    for f in c.FIELDS[rt]:
        if f.name in rtc.columns and rtc.columns[f.name] in df.columns:
            raw_exprs.append(_text(pl.col(rtc.columns[f.name])).alias(f.name))
        elif f.name in rtc.constants:
            raw_exprs.append(pl.lit(rtc.constants[f.name], dtype=pl.String).alias(f.name))
        else:
            raw_exprs.append(pl.lit(None, dtype=pl.String).alias(f.name))
    raw = df.select(pl.col(SOURCE_ROW), *raw_exprs)

    # Identifiers are normalized before anything compares or hashes them.
    id_fields = [f for f in c.FIELDS[rt] if f.kind == "identifier"]
    raw = raw.with_columns(
        normalize_series(raw[f.name]).alias(f.name) for f in id_fields if f.key_scope == "insured"
    )

    reason_exprs: list[pl.Expr] = []
    parsed_exprs: list[pl.Expr] = []
    for f in c.FIELDS[rt]:
        column = pl.col(f.name)
        if f.required:
            reason_exprs.append(pl.when(column.is_null()).then(pl.lit(f"{c.REASON_MISSING}:{f.name}")))
        value, reasons = _parse_expr(f, column, cfg, rt, taxonomy)
        parsed_exprs.append(value.alias(_PARSE + f.name))
        reason_exprs.extend(reasons)
    source = df.select(source_cols).rename({s: f"__src__{s}" for s in source_cols})
    reason_exprs.append(pl.when(~pl.struct(source.columns).is_first_distinct()).then(pl.lit(c.REASON_DUPLICATE)))

    mapped = pl.concat([raw, source], how="horizontal").with_columns(
        *parsed_exprs, pl.concat_list(reason_exprs).list.drop_nulls().alias(REASONS)
    )
    mapped = mapped.drop([f.name for f in c.FIELDS[rt]]).rename({_PARSE + f.name: f.name for f in c.FIELDS[rt]})
    special_cols, special_reasons = _special_reasons(rt, taxonomy)
    if special_cols:
        mapped = mapped.with_columns(special_cols)
    mapped = mapped.with_columns(
        pl.concat_list([pl.col(REASONS), pl.concat_list(special_reasons).list.drop_nulls()]).alias(REASONS)
    )

    # Pseudonymize: keys replace identifiers; an insured id must carry a valid check digit.
    key_cols: list[pl.Series] = []
    for f in id_fields:
        if f.key_scope == "insured":
            keys, valid = pseudonymizer.insured_keys(mapped[f.name])
            mapped = mapped.with_columns(
                pl.when(valid.is_not_null() & ~valid)
                .then(pl.col(REASONS).list.concat(pl.lit([f"{c.REASON_INVALID_USCC}:{f.name}"])))
                .otherwise(pl.col(REASONS))
                .alias(REASONS)
            )
        else:
            keys = pseudonymizer.scoped_keys(mapped[f.name], cfg.insurer_id, f.key_scope or f.name)
        key_cols.append(keys.alias(c.key_column(f)))
    mapped = mapped.with_columns(key_cols)

    money = [f.name for f in c.FIELDS[rt] if f.kind == "money"]
    sums = mapped.select(pl.col(money).cast(pl.Decimal(38, c.MONEY_SCALE)).sum()).row(0, named=True) if money else {}
    delivered_totals = {name: Decimal(value or 0) for name, value in sums.items()}

    is_good = pl.col(REASONS).list.len() == 0
    stored = [c.key_column(f) if f.kind == "identifier" else f.name for f in c.stored_fields(rt)]
    good = mapped.filter(is_good).select(pl.col(SOURCE_ROW).alias("source_row"), *stored)

    # Quarantine keeps what was delivered, but identifiers only as keys and no names or free text.
    by_source = {rtc.columns[f.name]: f for f in c.FIELDS[rt] if f.name in rtc.columns}
    original = []
    for src in source_cols:
        f = by_source[src]
        if not f.stored:
            continue
        original.append((pl.col(c.key_column(f)) if f.kind == "identifier" else pl.col(f"__src__{src}")).alias(src))
    quarantine = mapped.filter(~is_good).select(
        pl.col(SOURCE_ROW).alias("source_row"),
        pl.col(REASONS).alias("reasons"),
        pl.struct(original).struct.json_encode().alias("original_values"),
    )
    return MappedBatch(rt, good, quarantine, warnings, delivered_totals)

