"""Map one source frame (text values, as delivered) into the canonical contract.

Vectorized in polars: every canonical field is derived from its source by the insurer's config
(`InsurerConfig.sources`: one column or path, or a sum / coalesce / concat of several, or a date
built from year / month / day parts), parsed by its kind (the number locale and units, date
formats and month labels, value maps, list separators), every row collects a list of
machine-readable reasons ("CODE:field"), identifiers are replaced by HMAC keys, and the frame
splits into rows to load and rows to quarantine. No row is dropped silently:
delivered = loaded + quarantined. A field the insurer does not deliver is NULL on every row.

Free text is published: every stored text field is checked for identities (a USCC-shaped token,
any configured insurer's id, the row's own numbers), and a coded one (pilot code, event reference,
CVE ids) for its shape, so an identity in a text field quarantines its row at its own submission
instead of failing the sector's publication audit for everyone.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import reduce

import polars as pl

from cyberclaims.ingestion import contract as c
from cyberclaims.ingestion.config import (
    DEFAULT_BOOL_MAP,
    FieldSource,
    InsurerConfig,
    config_dir,
    has_month,
    is_month_label,
)
from cyberclaims.ingestion.pseudonymize import Pseudonymizer, normalize_series
from cyberclaims.ingestion.readers import NATIVE_SUFFIX, SOURCE_ROW, SourceFrame, covers
from cyberclaims.ingestion.taxonomy import Taxonomy

REASONS = "__reasons"
_PARSE = "__parsed__"
_SRC = "__src__"
_IDENTITY = "__identity__"
_UPPER = "__upper__"
_DEC = pl.Decimal(38, 6)
_INTEGER = r"^[+-]?\d+(?:\.0*)?$"
# What the quarantine keeps of a delivered value that carries an identity.
WITHHELD = "[withheld: carries an identity]"


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
    # One entry per canonical field: how it is delivered and how many accepted rows carry a value.
    fields: list[dict] = field(default_factory=list)

    @property
    def delivered(self) -> int:
        return self.good.height + self.quarantine.height


def _text(expr: pl.Expr) -> pl.Expr:
    stripped = expr.cast(pl.String).str.strip_chars()
    return pl.when(stripped == "").then(None).otherwise(stripped)


def as_source_frame(df: pl.DataFrame | SourceFrame) -> SourceFrame:
    if isinstance(df, SourceFrame):
        return df
    return SourceFrame(df, present=[c for c in df.columns if c != SOURCE_ROW])


# --------------------------------------------------------------------------- layout


def _resolve(sf: SourceFrame, path: str) -> pl.Expr | None:
    """The source values of a configured path: a column of the file, or a JSON path into a column that holds
    JSON text (a list of objects in a Parquet or CSV file); None if the file has neither."""
    if path in sf.frame.columns:
        return pl.col(path)
    for column in sorted(sf.frame.columns, key=len, reverse=True):
        if path.startswith(column) and path[len(column):len(column) + 1] in (".", "["):
            return pl.col(column).str.json_path_match("$" + path[len(column):])
    return None


def check_layout(sf: SourceFrame, cfg: InsurerConfig, rt: str) -> list[str]:
    """Raise LayoutMismatch for missing columns; return warnings for unexpected ones."""
    sources = cfg.sources(rt)
    spec = cfg.read_spec(rt)
    fields = c.field_map(rt)
    if sf.is_json:
        # JSON omits empty keys: a required field is missing only if no record of the file has any of its paths.
        filled = sf.frame.select(pl.all().is_not_null().any()).row(0, named=True) if sf.frame.height else {}
        missing = sorted(
            s.paths[0] for name, s in sources.items()
            if sf.frame.height and fields[name].required and s.paths and s.paths[0] is not None
            and not any(filled.get(p) or any(covers(p, leaf) for leaf in sf.present) for p in s.paths if p is not None)
        )
        used = [p for s in sources.values() for p in s.paths if p is not None]
        unexpected = sorted(leaf for leaf in sf.present if not any(covers(p, leaf) for p in used))
    else:
        missing = sorted({p for s in sources.values() for p in s.paths if p is not None and _resolve(sf, p) is None})
        used = {p for s in sources.values() for p in s.paths if p is not None}
        prefixes = {col for col in sf.present for p in used if p.startswith(col) and p[len(col):len(col) + 1] in (".", "[")}
        unexpected = sorted(set(sf.present) - used - prefixes)
    if missing:
        raise LayoutMismatch(f"{rt}: expected column(s) missing: {', '.join(missing)}")
    if unexpected:
        message = f"{rt}: unexpected column(s) ignored: {', '.join(unexpected)}"
        if spec.unexpected_columns == "reject":
            raise LayoutMismatch(message.replace("ignored", "not in the layout"))
        return [message]
    return []


# --------------------------------------------------------------------------- numbers and dates


def _locale_number(raw: pl.Expr, native: pl.Expr, src: FieldSource) -> tuple[pl.Expr, pl.Expr]:
    """(normalized number text with '.' decimals, ambiguity flag) of delivered text.

    A native number (a workbook number cell, a JSON number, a typed Parquet column) is read as the
    machine wrote it; a text number by the layout's locale: digits grouped by the thousands separator
    in threes, the decimal separator, an optional sign, configured symbols stripped.
    """
    text = raw
    for token in src.strip:
        text = text.str.replace_all(token, "", literal=True)
    text = text.str.strip_chars()
    ds, ts = src.decimal_separator, src.thousands_separator
    integer = rf"\d{{1,3}}(?:{re.escape(ts)}\d{{3}})+|\d+" if ts else r"\d+"
    valid = text.str.contains(rf"^[+-]?(?:{integer})(?:{re.escape(ds)}\d+)?$")
    normalized = text.str.replace_all(ts, "", literal=True) if ts else text
    normalized = normalized.str.replace(ds, ".", literal=True) if ds != "." else normalized
    number = pl.when(valid).then(normalized) if isinstance(native, pl.Expr) and _is_false(native) else \
        pl.when(native).then(raw).when(valid).then(normalized)
    # One group of up to three digits, the decimal separator and exactly three digits: read either way it is
    # a number (1,234 is 1.234 or 1234), and three decimals cannot be money in currency units.
    ambiguous = text.str.contains(rf"^[+-]?\d{{1,3}}{re.escape(ds)}\d{{3}}$")
    if not _is_false(native):
        ambiguous = ~native & ambiguous
    return number, ambiguous


def _is_false(expr: pl.Expr) -> bool:
    return expr.meta.eq(pl.lit(False))


def _number_text(sf: SourceFrame, path: str, src: FieldSource) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(normalized number text, delivered text, ambiguity flag) for one source path."""
    raw = _text(_resolve(sf, path))
    if sf.native.get(path) == "number":  # a typed column: no text to interpret
        return raw, raw, pl.lit(False)
    number, ambiguous = _locale_number(raw, sf.is_native_number(path), src)
    return number, raw, ambiguous


def _date_value(text: pl.Expr, src: FieldSource, native_date: bool) -> pl.Expr:
    if native_date:
        return text.str.slice(0, 10).str.strptime(pl.Date, "%Y-%m-%d", strict=False)
    candidates = []
    for fmt in src.date_formats:
        if not is_month_label(fmt):
            candidates.append(text.str.strptime(pl.Date, fmt, strict=False))
        elif has_month(fmt):
            d = (text + "\x1f01").str.strptime(pl.Date, fmt + "\x1f%d", strict=False)
            candidates.append(d.dt.month_end() if src.period_anchor == "end" else d)
        else:
            d = (text + "\x1f01\x1f01").str.strptime(pl.Date, fmt + "\x1f%m\x1f%d", strict=False)
            candidates.append(d.dt.offset_by("1y").dt.offset_by("-1d") if src.period_anchor == "end" else d)
    return pl.coalesce(candidates)


def date_window(field: str, today: date | None = None) -> tuple[date, date]:
    """The plausible dates of a field: from the contract's DATE_MIN to some years after today."""
    today = today or date.today()
    ahead = c.LATE_DATE_YEARS_AHEAD if field in c.LATE_DATES else c.DATE_YEARS_AHEAD
    try:
        latest = today.replace(year=today.year + ahead)
    except ValueError:  # 29 February
        latest = today.replace(year=today.year + ahead, day=28)
    return date.fromisoformat(c.DATE_MIN), latest


def _int_of(number_text: pl.Expr) -> pl.Expr:
    return pl.when(number_text.str.contains(_INTEGER)).then(
        number_text.str.replace(r"\.0*$", "").cast(pl.Int64, strict=False))


def _date_from_parts(sf: SourceFrame, src: FieldSource) -> tuple[pl.Expr, pl.Expr, list[tuple[pl.Expr, str]]]:
    """(date, any part delivered, [(condition, reason)]) for a date built from year / month / day."""
    parts = []
    for path in src.paths:
        if path is None:
            parts.append((pl.lit(None, dtype=pl.Int64), pl.lit(None, dtype=pl.String)))
            continue
        number, raw, _ = _number_text(sf, path, src)
        parts.append((_int_of(number), raw))
    (year, y_raw), (month, m_raw), (day, d_raw) = parts
    delivered = y_raw.is_not_null() | m_raw.is_not_null() | d_raw.is_not_null()
    bad_part = (y_raw.is_not_null() & year.is_null()) | (m_raw.is_not_null() & month.is_null()) | (
        d_raw.is_not_null() & day.is_null())
    incomplete = year.is_null() | (month.is_null() & day.is_not_null())
    partial = ~incomplete & (month.is_null() | day.is_null())

    def build(y: pl.Expr, m: pl.Expr, d: pl.Expr) -> pl.Expr:
        text = y.cast(pl.String).str.zfill(4) + "-" + m.cast(pl.String).str.zfill(2) + "-" + d.cast(pl.String).str.zfill(2)
        return text.str.strptime(pl.Date, "%Y-%m-%d", strict=False)

    full = build(year, month, day)
    match src.partial_dates:
        case "start":
            value = build(year, month.fill_null(1), day.fill_null(1))
        case "end":
            value = pl.when(month.is_null()).then(build(year, pl.lit(12), pl.lit(31))).when(day.is_null()).then(
                build(year, month, pl.lit(1)).dt.month_end()).otherwise(full)
        case _:
            value = pl.when(partial).then(None).otherwise(full)
    value = pl.when(delivered & ~bad_part & ~incomplete).then(value)
    reasons = [
        (delivered & (bad_part | incomplete | (~partial & full.is_null())), c.REASON_INVALID_DATE),
    ]
    if src.partial_dates == "reject":
        reasons.append((delivered & ~bad_part & partial, c.REASON_PARTIAL_DATE))
    return value, delivered, reasons


# --------------------------------------------------------------------------- fields


def _code_map(cfg: InsurerConfig, rt: str, f: c.Field, taxonomy: Taxonomy) -> dict[str, str]:
    vmap = cfg.record_types[rt].value_maps.get(f.name)
    if vmap:
        return {str(k): str(v) for k, v in vmap.items()}
    allowed = taxonomy.codes[f.taxonomy] if f.taxonomy else taxonomy.codes["tax_currency"]
    return {code: code for code in allowed} | (
        {code.lower(): code for code in allowed} if f.kind == "currency" else {}
    )


@dataclass
class _Derived:
    value: pl.Expr  # parsed canonical value (or null)
    text: pl.Expr  # the delivered text the value was parsed from (null: nothing delivered)
    reasons: list[pl.Expr]


def _derive(f: c.Field, src: FieldSource, sf: SourceFrame, cfg: InsurerConfig, rt: str, taxonomy: Taxonomy) -> _Derived:
    """The canonical value of one field from its delivered sources, with the row's reasons."""
    name = f.name
    reasons: list[pl.Expr] = []

    def reason(cond: pl.Expr, code: str) -> None:
        reasons.append(pl.when(cond).then(pl.lit(f"{code}:{name}")))

    # ---- the delivered text (or, for sums and date parts, the value itself)
    number: pl.Expr | None = None
    date: pl.Expr | None = None
    present: pl.Expr | None = None  # anything delivered for the field (when it differs from the text)
    match src.delivery:
        case "not_delivered" | "not_mapped":
            text = pl.lit(None, dtype=pl.String)
        case "constant":
            text = pl.lit(src.constant, dtype=pl.String)
        case "column":
            text = _text(_resolve(sf, src.paths[0]))
        case "coalesce":
            text = pl.coalesce([_text(_resolve(sf, p)) for p in src.paths])
        case "concat":
            parts = [_text(_resolve(sf, p)) for p in src.paths]
            some = pl.any_horizontal([p.is_not_null() for p in parts])
            every = pl.all_horizontal([p.is_not_null() for p in parts])
            joined = pl.concat_str(parts, separator=src.separator, ignore_nulls=True)
            present = some
            if src.nulls == "skip":
                text = pl.when(some).then(joined)
            else:
                text = pl.when(every).then(joined)
                reason(some & ~every, c.REASON_INCOMPLETE_PARTS)
        case "sum":
            texts = [_number_text(sf, p, src) for p in src.paths]
            values = [n.cast(_DEC, strict=False) for n, _, _ in texts]
            some = pl.any_horizontal([raw.is_not_null() for _, raw, _ in texts])
            every = pl.all_horizontal([raw.is_not_null() for _, raw, _ in texts])
            for (_n, raw, ambiguous), v in zip(texts, values, strict=True):
                reason(raw.is_not_null() & v.is_null(), c.REASON_INVALID_NUMBER)
                if f.kind in ("money", "revenue") and Decimal(src.multiplier) == 1:
                    reason(ambiguous, c.REASON_AMBIGUOUS_NUMBER)
            total = pl.sum_horizontal([v.fill_null(Decimal(0)) for v in values]).cast(_DEC)
            if src.nulls == "zero":
                number = pl.when(some).then(total)
            else:
                number = pl.when(every).then(total)
                reason(some & ~every, c.REASON_INCOMPLETE_PARTS)
            text = pl.when(some).then(pl.lit("sum"))
        case "parts":
            date, present, part_reasons = _date_from_parts(sf, src)
            for cond, code in part_reasons:
                reason(cond, code)
            text = pl.when(present).then(pl.lit("date"))
        case other:
            raise AssertionError(other)

    # ---- parse by kind
    single_path = src.paths[0] if src.delivery == "column" else None
    match f.kind:
        case "str" if f.shape is not None:
            value = _code_text(text)
        case "str" | "identifier":
            value = text
        case "date":
            if date is None:
                date = _date_value(text, src, single_path is not None and sf.is_native_date(single_path))
                reason(text.is_not_null() & date.is_null(), c.REASON_INVALID_DATE)
            earliest, latest = date_window(name)
            reason((date < pl.lit(earliest)) | (date > pl.lit(latest)), c.REASON_OUT_OF_RANGE)
            value = date
        case "money" | "revenue" | "int" | "number":
            if number is None:
                if single_path is not None:
                    number_text, _, ambiguous = _number_text(sf, single_path, src)
                elif src.delivery == "coalesce":
                    # The first delivered source decides; an invalid one is not skipped over.
                    number_text, ambiguous = pl.lit(None, dtype=pl.String), pl.lit(False)
                    for path in reversed(src.paths):
                        n, raw, amb = _number_text(sf, path, src)
                        number_text = pl.when(raw.is_not_null()).then(n).otherwise(number_text)
                        ambiguous = pl.when(raw.is_not_null()).then(amb).otherwise(ambiguous)
                else:  # a constant, or a concat of text sources: read by the locale
                    number_text, ambiguous = _locale_number(text, pl.lit(False), src)
                if f.kind in ("money", "revenue") and Decimal(src.multiplier) == 1:
                    reason(text.is_not_null() & ambiguous, c.REASON_AMBIGUOUS_NUMBER)
                decimal = number_text.cast(_DEC, strict=False)
            else:
                number_text, decimal = None, number
            # What a value must come out of: the text, or for a sum its complete parts (their own reasons cover the rest).
            has_input = text.is_not_null() if number_text is not None else decimal.is_not_null()
            match f.kind:
                case "money" | "revenue":
                    precision = c.REVENUE_PRECISION if f.kind == "revenue" else c.MONEY_PRECISION
                    multiplier = Decimal(src.multiplier)
                    scaled = decimal * pl.lit(multiplier, dtype=_DEC) if multiplier != 1 else decimal
                    value = scaled.round(c.MONEY_SCALE).cast(pl.Decimal(precision, c.MONEY_SCALE), strict=False)
                    reason(has_input & value.is_null(), c.REASON_INVALID_NUMBER)
                    reason(value < 0, c.REASON_NEGATIVE)
                case "int":
                    value = _int_of(number_text) if number_text is not None else decimal.round(0).cast(pl.Int64, strict=False)
                    reason(has_input & value.is_null(), c.REASON_INVALID_NUMBER)
                    upper = 100 if name == "risk_assessment_score" else None
                    out_of_range = value < 0 if upper is None else (value < 0) | (value > upper)
                    reason(out_of_range, c.REASON_OUT_OF_RANGE)
                case _:
                    value = decimal.cast(pl.Float64)
                    reason(has_input & value.is_null(), c.REASON_INVALID_NUMBER)
                    reason(value < 0, c.REASON_OUT_OF_RANGE)
        case "bool":
            vmap = cfg.record_types[rt].value_maps.get(name)
            mapping = {k: v == "true" for k, v in vmap.items()} if vmap else None
            if mapping is None:
                value = text.str.to_lowercase().replace_strict(DEFAULT_BOOL_MAP, default=None, return_dtype=pl.Boolean)
            else:
                value = text.replace_strict(mapping, default=None, return_dtype=pl.Boolean)
            reason(text.is_not_null() & value.is_null(), c.REASON_UNKNOWN_CODE)
        case "code" | "currency":
            value = text.replace_strict(_code_map(cfg, rt, f, taxonomy), default=None, return_dtype=pl.String)
            reason(text.is_not_null() & value.is_null(), c.REASON_UNKNOWN_CODE)
        case "code_list" | "str_list":
            items = text.str.split(src.list_separator).list.eval(
                pl.element().str.strip_chars().filter(pl.element().str.strip_chars() != "")
            )
            if f.kind == "code_list":
                mapping = _code_map(cfg, rt, f, taxonomy)
                value = items.list.eval(pl.element().replace_strict(mapping, default=None, return_dtype=pl.String))
                reason(value.list.eval(pl.element().is_null()).list.any(), c.REASON_UNKNOWN_CODE)
            else:
                value = items.list.eval(_code_text(pl.element())) if f.shape is not None else items
        case _:
            raise AssertionError(f.kind)
    if src.delivery in ("column", "coalesce", "concat"):
        reason(text.str.len_chars() > c.MAX_VALUE_LENGTH, c.REASON_TOO_LONG)
    if f.required and src.delivery not in ("not_delivered",):
        missing = ~present if present is not None else text.is_null()
        reasons.insert(0, pl.when(missing).then(pl.lit(f"{c.REASON_MISSING}:{name}")))
    return _Derived(value, text, reasons)


def _code_text(text: pl.Expr) -> pl.Expr:
    """A coded text value as compared and stored: NFKC (full-width ＣＶＥ－２０２３ is CVE-2023), upper case, so one
    code links across insurers however each writes it."""
    return text.str.normalize("NFKC").str.to_uppercase()


def _has_shape(value: pl.Expr, shape: c.Shape) -> pl.Expr:
    forms = [
        reduce(operator.and_, [value.str.contains(r) for r in form.all_of] + [~value.str.contains(r) for r in form.none_of])
        for form in shape.forms
    ]
    return reduce(operator.or_, forms)


def configured_insurer_ids(cfg: InsurerConfig) -> list[str]:
    """The insurer's own id and every id of the config folder (a config's file name is its insurer id, valid or not)."""
    return sorted({cfg.insurer_id, *(p.stem for p in config_dir().glob("*.yaml"))})


def _text_checks(rt: str, insurer_ids: Iterable[str]) -> tuple[list[pl.Expr], list[pl.Expr], list[pl.Expr]]:
    """(columns to prepare, identity flag columns, reasons) of the stored text fields, applied in that order: an
    identity in one quarantines the row (IDENTITY_IN_TEXT), a coded one out of its shape too (INVALID_FORMAT, when no
    identity explains it). A coded value is compared with the row's own numbers too; a coded field's value is
    already normalized (_code_text), any other is upper-cased for the USCC test."""
    ids = sorted({i for i in insurer_ids if i})
    # An insurer id as a whole word in any case: 'dongfang_pc', 'DONGFANG_PC', 'via dongfang_pc'.
    insurer = rf"(?i)(^|[^0-9a-z_])({'|'.join(re.escape(i) for i in ids)})([^0-9a-z_]|$)" if ids else None
    text_fields = [f for f in c.stored_fields(rt) if f.kind in c.TEXT_KINDS]
    numbers = [f.name for f in c.FIELDS[rt] if f.kind == "identifier"] if any(f.shape for f in text_fields) else []
    prepare = [pl.col(n).str.to_uppercase().alias(_UPPER + n) for n in numbers]
    flags: list[pl.Expr] = []
    reasons: list[pl.Expr] = []
    for f in text_fields:
        value = pl.col(f.name)
        text = value.list.join(" ") if f.kind == "str_list" else value
        found = [(text if f.shape else text.str.to_uppercase()).str.contains(c.USCC_REGEX)]
        if insurer:
            found.append(text.str.contains(insurer))
        if f.shape is not None:
            own = [pl.col(_UPPER + n) for n in numbers]
            found += [value.list.contains(n) for n in own] if f.kind == "str_list" else [value == n for n in own]
        flags.append(reduce(operator.or_, [e.fill_null(False) for e in found]).alias(_IDENTITY + f.name))
        identity = pl.col(_IDENTITY + f.name)
        reasons.append(pl.when(identity).then(pl.lit(f"{c.REASON_IDENTITY_IN_TEXT}:{f.name}")))
        if f.shape is not None:
            shaped = value.list.eval(_has_shape(pl.element(), f.shape)).list.all() if f.kind == "str_list" \
                else _has_shape(value, f.shape)
            reasons.append(pl.when(~identity & ~shaped).then(pl.lit(f"{c.REASON_INVALID_FORMAT}:{f.name}")))
    return prepare, flags, reasons


def delivered_texts(source: pl.DataFrame | SourceFrame, cfg: InsurerConfig, rt: str, taxonomy: Taxonomy) -> pl.DataFrame:
    """Per row, the text each canonical field is parsed from (for `onboard check`'s per-field profile)."""
    sf = as_source_frame(source)
    sources = cfg.sources(rt)
    return sf.frame.select(
        pl.col(SOURCE_ROW),
        *(_derive(f, sources[f.name], sf, cfg, rt, taxonomy).text.alias(f.name) for f in c.FIELDS[rt]),
    )


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


# --------------------------------------------------------------------------- the frame


def map_frame(
    source: pl.DataFrame | SourceFrame,
    cfg: InsurerConfig,
    rt: str,
    taxonomy: Taxonomy,
    pseudonymizer: Pseudonymizer,
    insurer_ids: Iterable[str] | None = None,
) -> MappedBatch:
    """insurer_ids: the ids no stored text may carry (default: configured_insurer_ids)."""
    sf = as_source_frame(source)
    warnings = check_layout(sf, cfg, rt)
    sources = cfg.sources(rt)
    df = sf.frame
    used_paths = cfg.source_paths(rt)
    source_exprs = {p: _resolve(sf, p) for p in used_paths}

    derived = {f.name: _derive(f, sources[f.name], sf, cfg, rt, taxonomy) for f in c.FIELDS[rt]}
    # One lazy plan, so the expressions fields share (a column's trimmed text, its parsed number) run once.
    parsed = df.lazy().select(
        pl.col(SOURCE_ROW),
        *(d.value.alias(_PARSE + name) for name, d in derived.items()),
        pl.concat_list([r for d in derived.values() for r in d.reasons]).list.drop_nulls().alias(REASONS),
        *(_text(e).alias(_SRC + p) for p, e in source_exprs.items()),
    ).collect()
    parsed = parsed.rename({_PARSE + f.name: f.name for f in c.FIELDS[rt]})
    # Identifiers are normalized before anything compares or hashes them.
    id_fields = [f for f in c.FIELDS[rt] if f.kind == "identifier"]
    parsed = parsed.with_columns(
        normalize_series(parsed[f.name]).alias(f.name) for f in id_fields if f.key_scope == "insured"
    )
    src_columns = [_SRC + p for p in used_paths]
    duplicate = pl.when(~pl.struct(src_columns).is_first_distinct()).then(pl.lit(c.REASON_DUPLICATE)) \
        if src_columns else pl.lit(None, dtype=pl.String)
    special_cols, special_reasons = _special_reasons(rt, taxonomy)
    if special_cols:
        parsed = parsed.with_columns(special_cols)
    prepare, identity_flags, text_reasons = _text_checks(
        rt, configured_insurer_ids(cfg) if insurer_ids is None else insurer_ids)
    if prepare:
        parsed = parsed.with_columns(prepare)
    mapped = parsed.with_columns(identity_flags).with_columns(
        pl.concat_list([pl.col(REASONS), pl.concat_list([*special_reasons, *text_reasons, duplicate]).list.drop_nulls()])
        .alias(REASONS),
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

    # Control totals of the amounts the layout delivers (one it does not deliver has nothing to reconcile).
    delivered = cfg.delivered_fields(rt)
    money = [f.name for f in c.FIELDS[rt] if f.kind == "money" and f.name in delivered]
    sums = mapped.select(pl.col(money).cast(pl.Decimal(38, c.MONEY_SCALE)).sum()).row(0, named=True) if money else {}
    delivered_totals = {name: Decimal(value or 0) for name, value in sums.items()}

    is_good = pl.col(REASONS).list.len() == 0
    stored = [c.key_column(f) if f.kind == "identifier" else f.name for f in c.stored_fields(rt)]
    accepted = mapped.filter(is_good)
    good = accepted.select(pl.col(SOURCE_ROW).alias("source_row"), *stored)
    with_value = accepted.select(pl.col(f.name).is_not_null().sum() for f in c.FIELDS[rt]).row(0, named=True) \
        if accepted.height else {f.name: 0 for f in c.FIELDS[rt]}
    field_stats = [
        {"field": f.name, "delivery": sources[f.name].delivery, "source": sources[f.name].describe(),
         "rows_accepted": accepted.height, "rows_with_value": int(with_value[f.name])}
        for f in c.FIELDS[rt]
    ]

    # Quarantine keeps what was delivered, but identifiers only as keys and no names or free text: a source
    # feeding an identifier appears as the key, one feeding a field that is never stored not at all.
    original = []
    hidden: set[str] = set()
    for f in c.FIELDS[rt]:
        s = sources[f.name]
        if f.kind == "identifier" or not f.stored:
            hidden.update(p for p in s.paths if p is not None)
    for f in id_fields:
        s = sources[f.name]
        label = s.paths[0] if s.delivery == "column" else f.name
        if s.paths:
            original.append(pl.col(c.key_column(f)).alias(label))
    # A value is kept as a short sample at most (a megabyte in one cell is a fault, not evidence to store), and not
    # at all where it carries an identity: a USCC in a pilot code is as clear as in insured_id.
    sample = c.QUARANTINE_SAMPLE
    identity_of: dict[str, list[pl.Expr]] = {}
    for f in c.stored_fields(rt):
        if f.kind in c.TEXT_KINDS:
            for p in sources[f.name].paths:
                if p is not None:
                    identity_of.setdefault(p, []).append(pl.col(_IDENTITY + f.name))
    original += [
        pl.when(reduce(operator.or_, identity_of[p]) if p in identity_of else pl.lit(False)).then(pl.lit(WITHHELD))
        .when(pl.col(_SRC + p).str.len_chars() > sample)
        .then(pl.col(_SRC + p).str.slice(0, sample) + pl.lit("…"))
        .otherwise(pl.col(_SRC + p)).alias(p)
        for p in used_paths if p not in hidden
    ]
    quarantine = mapped.filter(~is_good).select(
        pl.col(SOURCE_ROW).alias("source_row"),
        pl.col(REASONS).list.unique(maintain_order=True).alias("reasons"),
        (pl.struct(original).struct.json_encode() if original else pl.lit("{}")).alias("original_values"),
    )
    return MappedBatch(rt, good, quarantine, warnings, delivered_totals, field_stats)


__all__ = ["LayoutMismatch", "MappedBatch", "NATIVE_SUFFIX", "WITHHELD", "check_layout", "configured_insurer_ids",
           "map_frame"]
