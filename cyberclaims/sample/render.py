"""Render the simulated market into each insurer's own layout, with injected defects.

The renderer is the inverse of an insurer's mapping config and knows no insurer by name: it reads
`cfg.read_spec(rt)` (format, encoding, delimiter, title rows above the header, the JSON records path)
and `cfg.sources(rt)` (how each canonical field is delivered, with its resolved options) and writes
what the config says the insurer sends:

- a canonical code → the insurer's code (the value map read backwards), an amount → the insurer's unit;
- numbers in the field's locale (decimal separator; the thousands separator and symbols such as '€'
  where the layout states them, on a share of the rows); native numbers in workbooks, JSON and Parquet;
- dates in the field's formats (a share of the rows in a later one), date cells in workbooks and
  Parquet; month labels ('Mar-2025') for a field whose formats have no day;
- a concat split back on its separator, a sum split into non-negative parts that add up to the cent
  (a zero part sometimes a blank cell where the layout counts blanks as zero), a coalesce written into
  one of its sources, a date written as year / month / day parts (the day sometimes absent where the
  layout takes a partial date), a list the layout reduces written as a list;
- JSON paths written as the nested objects and lists they address (`a.b`, `a[0].b`, `a[*].b`, `a.*.b`);
- fields the layout does not deliver, and constants, not written at all.

Beside the landing files the truth is kept: every delivered row in canonical terms, as the layout's own
rules define it (a month label means its anchor day, a partial date its first or last day), and which
rows and files carry which defect, so tests can prove that ingestion recovers exactly what was meant.
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

from cyberclaims.ingestion import contract as c
from cyberclaims.ingestion.config import (
    JSON_FORMATS,
    FieldSource,
    FieldSpec,
    InsurerConfig,
    has_month,
    is_month_label,
    parse_path,
)
from cyberclaims.ingestion.manifest import manifest_path
from cyberclaims.sample.profiles import SampleProfile

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
# Which field a row defect touches: the first candidate the layout delivers in a way the defect can be
# written (a not-delivered field cannot be blanked, a constant cannot carry an unknown code).
_MISSING_CANDIDATES = {
    "policy": ("written_premium", "limit_amount", "inception_date"),
    "incident": ("reported_date", "occurred_date", "incident_type"),
    "claim_valuation": ("valuation_date", "report_date", "status"),
}
_UNKNOWN_CANDIDATES = {
    "policy": ("product_type", "sector_code"),
    "incident": ("incident_type", "attack_vector"),
    "claim_valuation": ("coverage_section", "status"),
}
_NEGATIVE_CANDIDATES = {
    "policy": ("written_premium", "limit_amount"),
    "incident": (),
    "claim_valuation": ("paid_indemnity", "paid_expense"),
}
# (earlier, later): the later date is moved before the earlier one (policy terms are swapped).
_DATE_ORDER_PAIR = {
    "policy": ("inception_date", "expiry_date"),
    "incident": ("occurred_date", "reported_date"),
    "claim_valuation": ("report_date", "closed_date"),
}
_WRITTEN = ("column", "coalesce", "concat", "sum", "parts")

# Shares of rows that exercise a layout's variants.
_LATER_DATE_FORMAT = 0.15  # a field with several date formats: rows in one of the later ones
_GROUPED_NUMBERS = 0.7  # a layout that states a thousands separator: rows with grouped digits
_WITH_SYMBOL = 0.25  # a layout that strips symbols from numbers: rows whose amounts carry one
_PARTIAL_DATE = 0.25  # a date from parts that the layout completes: rows without the day
_BLANK_ZERO_PART = 0.5  # a sum whose blank parts count zero: zero parts left blank
_LIST_DISTRACTOR = 0.3  # a list reduced to its first (last) element: rows with a second element

_EXTRA_COLUMN = {"csv": "BrokerCode", "excel": "BrokerCode", "parquet": "channel_cd", "json": "channel", "jsonl": "channel"}


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


def defect_fields(cfg: InsurerConfig, rt: str) -> dict[str, str | tuple[str, str] | None]:
    """The field (or date pair) each row defect is written into for this layout; None: the defect does not apply."""
    sources = cfg.sources(rt)
    fields = c.field_map(rt)

    def first(candidates: tuple[str, ...], fits) -> str | None:
        return next((n for n in candidates if fits(fields[n], sources[n])), None)

    earlier, later = _DATE_ORDER_PAIR[rt]
    return {
        "missing_required": first(_MISSING_CANDIDATES[rt], lambda f, s: f.required and s.delivery in _WRITTEN),
        "invalid_uscc": "insured_id" if "insured_id" in fields and sources["insured_id"].delivery in ("column", "coalesce")
        else None,
        "date_order": (earlier, later) if all(sources[n].delivery in ("column", "coalesce", "parts") for n in (earlier, later))
        else None,
        "negative_amount": first(_NEGATIVE_CANDIDATES[rt], lambda f, s: s.delivery in ("column", "coalesce", "sum")),
        "unknown_code": first(_UNKNOWN_CANDIDATES[rt], lambda f, s: s.delivery in ("column", "coalesce")),
        "duplicate_row": "row",
    }


def _assign_defects(n: int, targets: dict, rates: DefectRates, rng: np.random.Generator) -> pl.Series:
    """One defect (or null) per row, on disjoint random rows."""
    labels = np.full(n, None, dtype=object)
    free = rng.permutation(n)
    cursor = 0
    for defect in DEFECTS:
        rate = getattr(rates, defect)
        if rate <= 0 or targets[defect] is None:
            continue
        k = int(round(n * rate))
        if n >= 10:
            k = max(k, 1)
        labels[free[cursor:cursor + k]] = defect
        cursor += k
    return pl.Series("defect", labels.tolist(), dtype=pl.String)


def _apply_defects(frame: pl.DataFrame, rt: str, targets: dict) -> pl.DataFrame:
    d = pl.col("defect")
    exprs = []
    if missing := targets["missing_required"]:
        exprs.append(pl.when(d == "missing_required").then(None).otherwise(pl.col(missing)).alias(missing))
    if targets["invalid_uscc"]:
        uscc = pl.col("insured_id")
        # Any other character of the code set in the check position breaks GB 32100.
        wrong_check = pl.when(uscc.str.slice(17, 1) == "0").then(pl.lit("1")).otherwise(pl.lit("0"))
        exprs.append(pl.when(d == "invalid_uscc").then(uscc.str.slice(0, 17) + wrong_check).otherwise(uscc).alias("insured_id"))
    if targets["date_order"]:
        earlier, later = targets["date_order"]
        swap = d == "date_order"
        if rt == "policy":
            exprs.append([
                pl.when(swap).then(pl.col(later)).otherwise(pl.col(earlier)).alias(earlier),
                pl.when(swap).then(pl.col(earlier)).otherwise(pl.col(later)).alias(later),
            ])
        else:
            days = 7 if rt == "incident" else 10
            exprs.append(pl.when(swap).then(pl.col(earlier) - pl.duration(days=days)).otherwise(pl.col(later)).alias(later))
    if negative := targets["negative_amount"]:
        amount = pl.col(negative)
        exprs.append(
            pl.when((d == "negative_amount") & (amount == 0)).then(pl.lit(Decimal("-100.00")))
            .when(d == "negative_amount").then(-amount)
            .otherwise(amount).cast(frame.schema[negative]).alias(negative)
        )
    if unknown := targets["unknown_code"]:
        exprs.append(pl.when(d == "unknown_code").then(pl.lit(UNKNOWN_RAW_CODE)).otherwise(pl.col(unknown)).alias(unknown))
    # One expression per step: the missing and the negative defect may touch the same column.
    for expr in exprs:
        frame = frame.with_columns(expr)
    return frame


# --------------------------------------------------------------------------- per-row choices and the truth they imply

_U = "__u_"  # per-row uniform draws, shared by the fields of a row
_FMT = "__fmt__"  # per field: index of the date format the row is written in
_DROP = "__drop__"  # per field: a date from parts written without its day
_PATH = "__path__"  # per field: index of the coalesce source that carries the value


def _text_dates(cfg: InsurerConfig, rt: str, src: FieldSource) -> bool:
    """Whether a date field is written as text: always in CSV and JSON; in workbooks and Parquet only a
    field whose formats are all month labels (a date cell cannot say 'the month')."""
    fmt = cfg.read_spec(rt).format
    return fmt in ("csv", *JSON_FORMATS) or all(is_month_label(f) for f in src.date_formats)


def _anchor(col: pl.Expr, fmt: str, anchor: str | None) -> pl.Expr:
    """The day a label in format `fmt` stands for (its first or last day)."""
    if has_month(fmt):
        return col.dt.month_end() if anchor == "end" else col.dt.month_start()
    year = col.dt.year()
    return pl.date(year, 12, 31) if anchor == "end" else pl.date(year, 1, 1)


def _decide(frame: pl.DataFrame, cfg: InsurerConfig, rt: str, profile: SampleProfile,
            rng: np.random.Generator) -> pl.DataFrame:
    """Draw the per-row choices of the layout's variants and adjust the truth where the layout's rule defines
    the canonical value (a month label is its anchor day, a partial date its first or last day)."""
    n = frame.height
    fields = c.field_map(rt)
    sources = cfg.sources(rt)
    fmt = cfg.read_spec(rt).format
    draws = {}

    def uniform(name: str) -> pl.Expr:
        if name not in draws:
            draws[name] = pl.Series(_U + name, rng.random(n))
            nonlocal frame
            frame = frame.with_columns(draws[name])
        return pl.col(_U + name)

    for name, src in sources.items():
        f = fields[name]
        col = pl.col(name)
        if f.kind == "date" and src.delivery in ("column", "coalesce") and _text_dates(cfg, rt, src):
            formats = src.date_formats
            labels = [is_month_label(x) for x in formats]
            if len(formats) == 1:
                index = pl.lit(0)
            else:
                u = uniform("date")
                index = pl.when(u < _LATER_DATE_FORMAT).then(
                    1 + (u / _LATER_DATE_FORMAT * (len(formats) - 1)).floor().cast(pl.Int64)).otherwise(0)
                index = pl.min_horizontal(index, pl.lit(len(formats) - 1))
            if all(labels):
                anchored = pl.coalesce([pl.when(index == i).then(_anchor(col, x, src.period_anchor))
                                        for i, x in enumerate(formats)])
                frame = frame.with_columns(index.cast(pl.Int8).alias(_FMT + name), anchored.alias(name))
            else:
                # A label only where the date is its month's anchor day; elsewhere the first full-date format.
                full = labels.index(False)
                fits = pl.lit(True)
                for i, x in enumerate(formats):
                    if labels[i]:
                        fits = pl.when(index == i).then(col == _anchor(col, x, src.period_anchor)).otherwise(fits)
                frame = frame.with_columns(pl.when(fits.fill_null(True)).then(index).otherwise(full)
                                           .cast(pl.Int8).alias(_FMT + name))
        if src.delivery == "parts":
            has_m, has_d = src.paths[1] is not None, src.paths[2] is not None
            if not (has_m and has_d):
                if src.partial_dates == "reject":
                    raise ValueError(f"{cfg.insurer_id} {rt}.{name}: date parts without a "
                                     f"{'month' if not has_m else 'day'} and partial_dates: reject cannot deliver it")
                level = "%Y-%m" if has_m else "%Y"
                frame = frame.with_columns(_anchor(col, level, src.partial_dates).alias(name),
                                           pl.lit(False).alias(_DROP + name))
            elif src.partial_dates == "reject":
                frame = frame.with_columns(pl.lit(False).alias(_DROP + name))
            else:
                anchored = _anchor(col, "%Y-%m", src.partial_dates)
                # Only where completing the date keeps every date-order rule as it was (a defect stays one).
                same_order = pl.lit(True)
                for earlier, later in c.DATE_ORDER[rt]:
                    if name not in (earlier, later):
                        continue
                    before = (pl.col(later) < pl.col(earlier)).fill_null(False)
                    moved = {earlier: pl.col(earlier), later: pl.col(later), name: anchored}
                    after = (moved[later] < moved[earlier]).fill_null(False)
                    same_order = same_order & (before == after)
                drop = (uniform("part") < _PARTIAL_DATE) & same_order & col.is_not_null()
                frame = frame.with_columns(pl.when(drop).then(anchored).otherwise(col).alias(name),
                                           drop.alias(_DROP + name))
        if src.delivery == "coalesce":
            hint = profile.coalesce_paths.get(name, {})
            unknown = sorted(set(hint.values()) - set(src.paths))
            if unknown:
                raise ValueError(f"{cfg.insurer_id}: coalesce_paths.{name} names {unknown}, not sources of the coalesce")
            by_value = {code: src.paths.index(path) for code, path in hint.items()}
            spread = (pl.Series(rng.random(n)) * len(src.paths)).floor().cast(pl.Int64)
            chosen = col.cast(pl.String).replace_strict(by_value, default=None, return_dtype=pl.Int64)
            frame = frame.with_columns(chosen.fill_null(pl.lit(spread)).cast(pl.Int8).alias(_PATH + name))
        if f.kind in ("money", "revenue", "int", "number") and fmt == "csv":
            if _stated(cfg, rt, name, "thousands_separator") and src.thousands_separator:
                uniform("group")
            if src.strip and f.kind in ("money", "revenue"):
                uniform("symbol")
        if src.delivery == "sum":
            uniform("split")
            uniform("blank")
        if src.list_reduce in ("first", "last") and fmt in JSON_FORMATS:
            uniform("extra")
    return frame


def _stated(cfg: InsurerConfig, rt: str, name: str, option: str) -> bool:
    """Whether the config states a parse option for the field (on the field, its record type or the insurer),
    rather than leaving the parser's default."""
    spec = cfg.record_types[rt].columns.get(name)
    levels = [spec if isinstance(spec, FieldSpec) else None, cfg.record_types[rt], cfg]
    return any(level is not None and getattr(level, option, None) is not None for level in levels)


def _check_constants(frame: pl.DataFrame, cfg: InsurerConfig, rt: str) -> None:
    """A layout that states a constant (currency: EUR) must agree with the market the profile simulates."""
    for name, src in cfg.sources(rt).items():
        if src.delivery != "constant":
            continue
        vmap = cfg.record_types[rt].value_maps.get(name) or {}
        canonical = str(vmap.get(src.constant, src.constant))
        found = frame.filter(pl.col(name).is_not_null() & (pl.col(name).cast(pl.String) != canonical))[name].unique()
        if found.len():
            raise ValueError(f"{cfg.insurer_id} {rt}: the layout states {name} = {src.constant!r} on every row, but "
                             f"the sample market gives {sorted(found.cast(pl.String).to_list())} (see its sample profile)")


# --------------------------------------------------------------------------- values in the insurer's terms


def _inverse(vmap: dict[str, str]) -> dict[str, str]:
    inverse: dict[str, str] = {}
    for source, canonical in vmap.items():
        inverse.setdefault(str(canonical), str(source))
    return inverse | {UNKNOWN_RAW_CODE: UNKNOWN_RAW_CODE}


def _render_format(fmt: str) -> str:
    # Chinese long dates are written without zero padding (2024年3月5日); parsing accepts both.
    return fmt.replace("%m", "%-m").replace("%d", "%-d") if "年" in fmt else fmt


def _date_text(name: str, src: FieldSource) -> pl.Expr:
    col = pl.col(name).cast(pl.Datetime)
    index = pl.col(_FMT + name)
    return pl.coalesce([pl.when(index == i).then(col.dt.strftime(_render_format(f))) for i, f in enumerate(src.date_formats)])


def _decimal_text(expr: pl.Expr) -> pl.Expr:
    """A number as plain decimal text ('1234.5', never '1e-7')."""
    text = expr.cast(pl.String)
    return pl.when(text.str.contains("e", literal=True)).then(expr.cast(pl.Decimal(38, 9)).cast(pl.String)).otherwise(text)


def _locale_text(text: pl.Expr, src: FieldSource, grouped: bool, symbol: bool) -> pl.Expr:
    """Decimal text ('-1234567.89') in the field's locale: its decimal separator, digits grouped by its
    thousands separator on a share of the rows (where the layout states one), a stripped symbol on some."""
    sign = text.str.extract(r"^(-)", 1).fill_null("")
    whole = text.str.extract(r"^-?(\d+)", 1)
    fraction = text.str.extract(r"\.(\d+)$", 1)
    ts = src.thousands_separator
    if grouped and ts:
        groups = whole.str.reverse().str.replace_all(r"(\d{3})", "${1}" + ts).str.reverse().str.strip_prefix(ts)
        whole = pl.when(pl.col(_U + "group") < _GROUPED_NUMBERS).then(groups).otherwise(whole)
    out = pl.concat_str([sign, whole, pl.when(fraction.is_not_null()).then(src.decimal_separator + fraction).otherwise(pl.lit(""))])
    if symbol and src.strip:
        token = src.strip[0]
        u = pl.col(_U + "symbol")
        out = (pl.when(u < _WITH_SYMBOL / 2).then(pl.concat_str([pl.lit(token), out]))
               .when(u < _WITH_SYMBOL).then(pl.concat_str([out, pl.lit(" " + token)])).otherwise(out))
    return pl.when(text.is_not_null()).then(out)


def _in_source_units(expr: pl.Expr, src: FieldSource) -> pl.Expr:
    multiplier = Decimal(src.multiplier)
    if multiplier == 1:
        return expr
    return expr.cast(pl.Decimal(38, 6)) / pl.lit(multiplier, dtype=pl.Decimal(38, 6))


def _json_str(expr: pl.Expr) -> pl.Expr:
    escaped = expr.cast(pl.String)
    for raw, code in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        escaped = escaped.str.replace_all(raw, code, literal=True)
    return pl.concat_str([pl.lit('"'), escaped, pl.lit('"')])


@dataclass(frozen=True)
class _Leaf:
    """One source column (or JSON path) and its values as the file format carries them."""

    path: str
    expr: pl.Expr
    is_list: bool = False  # JSON: a list of JSON texts (an array), else one JSON text
    # JSON: an empty value is written as null (a column of the insurer's export), else the key is left out
    # (the sources of a coalesce that do not carry the value, a day a partial date does not have).
    keep_null: bool = True


class _Renderer:
    """Canonical values of one record type → the insurer's source columns in the record type's format."""

    def __init__(self, cfg: InsurerConfig, rt: str, frame_schema: pl.Schema):
        self.cfg, self.rt = cfg, rt
        self.spec = cfg.read_spec(rt)
        self.fmt = self.spec.format
        self.json = self.fmt in JSON_FORMATS
        self.fields = c.field_map(rt)
        self.sources = cfg.sources(rt)
        self.vmaps = cfg.record_types[rt].value_maps
        self.schema = frame_schema

    # ---- scalar values

    def text(self, name: str) -> pl.Expr:
        """A text-like value (string, code, bool, list) as the insurer writes it in a text cell."""
        f, src = self.fields[name], self.sources[name]
        col = pl.col(name)
        vmap = self.vmaps.get(name)
        match f.kind:
            case "code" | "currency":
                return col.replace_strict(_inverse(vmap), default=col, return_dtype=pl.String) if vmap else col
            case "bool":
                inv = _inverse(vmap) if vmap else {"true": "Y", "false": "N"}
                return pl.when(col).then(pl.lit(inv["true"])).when(~col).then(pl.lit(inv["false"]))
            case "code_list" | "str_list":
                return self.items(name).list.join(src.list_separator)
        return col

    def items(self, name: str) -> pl.Expr:
        vmap = self.vmaps.get(name)
        col = pl.col(name)
        if vmap and self.fields[name].kind == "code_list":
            inv = _inverse(vmap)
            col = col.list.eval(pl.element().replace_strict(inv, default=pl.element(), return_dtype=pl.String))
        return col

    def number(self, name: str, expr: pl.Expr) -> pl.Expr:
        """An amount or count (expr in canonical units) in the format's number representation."""
        f, src = self.fields[name], self.sources[name]
        value = _in_source_units(expr, src) if f.kind in ("money", "revenue") else expr
        match self.fmt:
            case "csv":
                grouped = _stated(self.cfg, self.rt, name, "thousands_separator")
                return _locale_text(_decimal_text(value), src, grouped, f.kind in ("money", "revenue"))
            case "excel":
                return value.cast(pl.Float64) if f.kind != "int" else value.cast(pl.Int64)
            case "json" | "jsonl":
                return _decimal_text(value)
            case _:
                return value

    def value(self, name: str) -> pl.Expr:
        """The field's value in the format (a JSON text, a list of them, or a typed column)."""
        f, src = self.fields[name], self.sources[name]
        col = pl.col(name)
        if f.kind in ("money", "revenue", "int", "number"):
            return self.number(name, col)
        if f.kind == "date":
            if _FMT + name in self.schema:
                text = _date_text(name, src)
                return _json_str(text) if self.json else text
            return col  # a date cell (workbook) or a typed date (Parquet)
        if self.json:
            match f.kind:
                case "code_list" | "str_list":
                    return self.items(name).list.eval(_json_str(pl.element()))
                case "bool" if not self.vmaps.get(name):
                    return pl.when(col).then(pl.lit("true")).when(~col).then(pl.lit("false"))
            return _json_str(self.text(name))
        if self.fmt == "parquet":
            if f.kind in ("code_list", "str_list"):
                return self.items(name)
            if f.kind == "bool" and not self.vmaps.get(name):
                return col
        return self.text(name)

    def is_list_value(self, name: str) -> bool:
        return self.json and self.fields[name].kind in ("code_list", "str_list")

    def reduced(self, name: str, value: pl.Expr) -> pl.Expr:
        """JSON: a value the layout reduces from a list, written as a list (sometimes with a second element)."""
        src = self.sources[name]
        single = pl.when(value.is_not_null()).then(pl.concat_list([value]))
        if src.list_reduce not in ("first", "last"):
            return single
        vmap = self.vmaps.get(name)
        others = sorted(str(k) for k in vmap) if vmap else []
        if not others:
            return single
        u = pl.col(_U + "extra")
        pick = (u / _LIST_DISTRACTOR * len(others)).floor().cast(pl.Int64).clip(0, len(others) - 1)
        other = _json_str(pl.lit(pl.Series(others)).gather(pick))
        pair = pl.concat_list([value, other] if src.list_reduce == "first" else [other, value])
        return pl.when(value.is_not_null() & (u < _LIST_DISTRACTOR)).then(pair).otherwise(single)

    # ---- the field's source columns

    def leaves(self, name: str) -> list[_Leaf]:
        src = self.sources[name]
        match src.delivery:
            case "constant" | "not_delivered" | "not_mapped":
                return []
            case "column" | "coalesce":
                value = self.value(name)
                is_list = self.is_list_value(name)
                if self.json and src.list_reduce is not None and not is_list:
                    value, is_list = self.reduced(name, value), True
                if src.delivery == "column":
                    return [_Leaf(src.paths[0], value, is_list)]
                chosen = pl.col(_PATH + name)
                return [_Leaf(p, pl.when(chosen == i).then(value), is_list, keep_null=False) for i, p in enumerate(src.paths)]
            case "concat":
                return self._concat(name, src)
            case "sum":
                return self._sum(name, src)
            case "parts":
                return self._parts(name, src)
        raise AssertionError(src.delivery)

    def _concat(self, name: str, src: FieldSource) -> list[_Leaf]:
        if not src.separator:
            raise ValueError(f"{self.cfg.insurer_id} {self.rt}.{name}: a concat without a separator cannot be split back")
        k = len(src.paths)
        parts = self.text(name).str.splitn(src.separator, k)
        leaves = []
        for i, path in enumerate(src.paths):
            part = parts.struct.field(f"field_{i}")
            leaves.append(_Leaf(path, _json_str(part) if self.json else part))
        return leaves

    def check_concat(self, frame: pl.DataFrame) -> None:
        """Every delivered value must split into as many non-empty parts as the concat has sources."""
        for name, src in self.sources.items():
            if src.delivery != "concat":
                continue
            k = len(src.paths)
            parts = frame.select(self.text(name).alias("v")).filter(pl.col("v").is_not_null())["v"].str.splitn(
                src.separator, k).struct.unnest()
            empty = parts.select(pl.any_horizontal([pl.col(p).is_null() | (pl.col(p) == "") for p in parts.columns]))
            if parts.width < k or empty.to_series().any():
                raise ValueError(f"{self.cfg.insurer_id} {self.rt}.{name} is delivered as {k} columns joined by "
                                 f"{src.separator!r}: its numbers need that separator {k - 1} time(s) (see the sample "
                                 "profile's number patterns)")

    def _sum(self, name: str, src: FieldSource) -> list[_Leaf]:
        k = len(src.paths)
        cents = (pl.col(name).cast(pl.Decimal(38, 2)) * 100).cast(pl.Int64)
        u, blank = pl.col(_U + "split"), pl.col(_U + "blank")
        # All in the first part, all in the last, or a random split; a negative total stays whole in the first.
        first_share = pl.when(u < 0.3).then(1.0).when(u < 0.4).then(0.0).otherwise((u - 0.4) / 0.6)
        first = pl.when(cents < 0).then(cents).otherwise((cents.cast(pl.Float64) * first_share).round(0).cast(pl.Int64))
        rest = cents - first
        parts = [first]
        for i in range(1, k):
            # The rest in equal shares, the remainder in the last part: the parts add up to the cent.
            share = rest // (k - 1)
            parts.append(share if i < k - 1 else rest - share * (k - 2))
        all_zero = cents == 0
        leaves = []
        for i, (path, part) in enumerate(zip(src.paths, parts, strict=True)):
            value = self.number(name, (part.cast(pl.Decimal(38, 2)) / 100).cast(pl.Decimal(38, 2)))
            if src.nulls == "zero":
                # A zero part may be a blank cell; of a zero total the first part stays (all blank = no value).
                blank_cell = (part == 0) & (blank < _BLANK_ZERO_PART) & ~(all_zero & (i == 0))
                value = pl.when(~blank_cell).then(value)
            leaves.append(_Leaf(path, pl.when(pl.col(name).is_not_null()).then(value)))
        return leaves

    def _parts(self, name: str, src: FieldSource) -> list[_Leaf]:
        col = pl.col(name)
        dropped = pl.col(_DROP + name)
        leaves = []
        for i, (path, value) in enumerate(zip(src.paths, (col.dt.year(), col.dt.month(), col.dt.day()), strict=True)):
            if path is None:
                continue
            value = value.cast(pl.Int64)
            if self.fmt in ("csv", *JSON_FORMATS):
                value = value.cast(pl.String)
            if i == 2:
                if self.json:
                    # A partial date has no day at all; a date not delivered has every part empty.
                    leaves.append(_Leaf(path, pl.when(~dropped).then(value.fill_null(pl.lit("null"))), keep_null=False))
                    continue
                value = pl.when(~dropped).then(value)
            leaves.append(_Leaf(path, value))
        return leaves

    def all_leaves(self) -> list[_Leaf]:
        return [leaf for name in self.sources for leaf in self.leaves(name)]


# --------------------------------------------------------------------------- JSON records from leaves


def _json_key(key: str) -> str:
    return json.dumps(key, ensure_ascii=False) + ":"


def _present(leaf: _Leaf) -> pl.Expr:
    return leaf.expr.list.len().fill_null(0) > 0 if leaf.is_list else leaf.expr.is_not_null()


# Each expression below uses its parts once: nested objects would otherwise grow the expression tree
# exponentially with the depth of the paths (null propagates through concat_str; empties become null).


def _array(leaf: _Leaf) -> pl.Expr:
    return pl.concat_str([pl.lit("["), leaf.expr.list.join(","), pl.lit("]")]).replace("[]", None)


def _expand_wildcards(entries: list[tuple[list, _Leaf]]) -> list[tuple[list, _Leaf]]:
    """`a.*.b`: the key is the one a sibling source of the same row uses under `a` (VERIS: the vector under the
    action category that carries the variety), else the first such key; 'unknown' when there is none."""
    while True:
        at = next(((k, segs.index("*")) for k, (segs, _) in enumerate(entries) if "*" in segs), None)
        if at is None:
            return entries
        k, pos = at
        segs, leaf = entries[k]
        prefix = segs[:pos]
        candidates: list[str] = []
        for other, _ in entries:
            if (other[:pos] == prefix and len(other) > pos and isinstance(other[pos], str)
                    and other[pos] not in ("*", "[*]", *candidates)):
                candidates.append(other[pos])
        candidates = candidates or ["unknown"]
        used = [pl.when(pl.any_horizontal([_present(o) for s, o in entries if s[:pos + 1] == [*prefix, key]]))
                .then(pl.lit(j)) for j, key in enumerate(candidates)
                if any(s[:pos + 1] == [*prefix, key] for s, _ in entries)]
        chosen = pl.coalesce([*used, pl.lit(0)])
        expanded = [([*prefix, key, *segs[pos + 1:]],
                     _Leaf(leaf.path, pl.when(chosen == j).then(leaf.expr), leaf.is_list, keep_null=False))
                    for j, key in enumerate(candidates)]
        entries = entries[:k] + expanded + entries[k + 1:]


def _json_object(entries: list[tuple[list, _Leaf]], where: str = "") -> pl.Expr:
    """JSON text of an object from (path segments below it, leaf) entries; null when no member has a value."""
    groups: dict[str, list[tuple[list, _Leaf]]] = {}
    for segs, leaf in entries:
        if not isinstance(segs[0], str) or segs[0] == "[*]":
            raise ValueError(f"{leaf.path}: a list where an object is expected under '{where}'")
        groups.setdefault(segs[0], []).append((segs[1:], leaf))
    members = []
    for key, items in groups.items():
        here = f"{where}.{key}" if where else key
        direct = [leaf for segs, leaf in items if not segs]
        nested = [(segs, leaf) for segs, leaf in items if segs]
        if direct and (nested or len(direct) > 1):
            raise ValueError(f"two sources write '{here}'")
        if direct:
            leaf = direct[0]
            value = _array(leaf) if leaf.is_list else leaf.expr
            if leaf.keep_null:
                value = value.fill_null(pl.lit("null"))
        elif all(segs[0] == "[*]" for segs, _ in nested):
            value = _json_each(nested, here)
        elif all(isinstance(segs[0], int) for segs, _ in nested):
            value = _json_indexed(nested, here)
        else:
            value = _json_object(nested, here)
        members.append(pl.concat_str([pl.lit(_json_key(key)), value]))
    body = pl.concat_str(members, separator=",", ignore_nulls=True)
    return pl.concat_str([pl.lit("{"), body, pl.lit("}")]).replace("{}", None)


def _json_each(nested: list[tuple[list, _Leaf]], where: str) -> pl.Expr:
    """`a[*].b.c`: one object per element of the field's list."""
    if len(nested) != 1:
        raise ValueError(f"'{where}[*]': the sample writes one source per list of objects")
    segs, leaf = nested[0]
    keys = segs[1:]
    if not all(isinstance(k, str) and k not in ("*", "[*]") for k in keys):
        raise ValueError(f"'{leaf.path}': below [*] the sample writes plain keys only")
    values = leaf.expr if leaf.is_list else pl.concat_list([leaf.expr]).list.drop_nulls()
    element = pl.element()
    for key in reversed(keys):
        element = pl.concat_str([pl.lit("{" + _json_key(key)), element, pl.lit("}")])
    array = _array(_Leaf(leaf.path, values.list.eval(element), True))
    return array.fill_null(pl.lit("null")) if leaf.keep_null else array


def _json_indexed(nested: list[tuple[list, _Leaf]], where: str) -> pl.Expr:
    """`a[0].b`: a list whose element i is the object (or value) of the sources at index i."""
    by_index: dict[int, list[tuple[list, _Leaf]]] = defaultdict(list)
    for segs, leaf in nested:
        by_index[segs[0]].append((segs[1:], leaf))
    elements = []
    for i in range(max(by_index) + 1):
        items = by_index.get(i, [])
        if not items:
            elements.append(None)
        elif any(not segs for segs, _ in items):
            if len(items) > 1:
                raise ValueError(f"two sources write '{where}[{i}]'")
            leaf = items[0][1]
            elements.append(_array(leaf) if leaf.is_list else leaf.expr)
        else:
            elements.append(_json_object(items, f"{where}[{i}]"))
    if len(elements) == 1:
        return pl.concat_str([pl.lit("["), elements[0], pl.lit("]")])
    empty = ",".join(["{}"] * len(elements))
    filled = [pl.lit("{}") if e is None else e.fill_null(pl.lit("{}")) for e in elements]
    return pl.concat_str([pl.lit("["), pl.concat_str(filled, separator=","), pl.lit("]")]).replace(f"[{empty}]", None)


def _json_records(leaves: list[_Leaf]) -> pl.Expr:
    entries = _expand_wildcards([(list(parse_path(leaf.path)), leaf) for leaf in leaves])
    return _json_object(entries).fill_null(pl.lit("{}"))


# --------------------------------------------------------------------------- files


def _titles(cfg: InsurerConfig, profile: SampleProfile, rt: str, month: date, rows: int) -> list[str]:
    """Title rows above the header (as many as the layout's header_row)."""
    name = cfg.display_name.split(" (")[0]
    if profile.language == "en":
        what = {"policy": "policy bordereau", "incident": "incident notifications", "claim_valuation": "claims bordereau"}[rt]
        lines = [f"{name} — cyber {what}, {month:%B %Y}", f"Reporting period {month:%Y-%m} · prepared for the sector claims database"]
    else:
        lines = [f"{name} 网络安全保险数据报送 {month:%Y年%m月}", f"报送期间 {month:%Y-%m}"]
    return (lines + [""] * rows)[:rows]


def _source_frame(part: pl.DataFrame, renderer: _Renderer, extra_column: bool) -> pl.DataFrame:
    """The rows of one file as the insurer's columns (for JSON: one column of record texts)."""
    leaves = renderer.all_leaves()
    if extra_column:
        name = _EXTRA_COLUMN[renderer.fmt]
        value = (pl.concat_str([pl.lit("B"), (pl.int_range(pl.len()) % 7).cast(pl.String)])
                 if renderer.fmt in ("csv", "excel") else pl.lit("web" if renderer.fmt == "parquet" else "broker"))
        leaves.append(_Leaf(name, _json_str(value) if renderer.json else value))
    if renderer.json:
        return part.select(_json_records(leaves).alias("record"))
    names = [leaf.path for leaf in leaves]
    if len(set(names)) != len(names):
        raise ValueError(f"{renderer.cfg.insurer_id} {renderer.rt}: two fields write the same column")
    return part.select(leaf.expr.alias(leaf.path) for leaf in leaves)


def _json_document(records: pl.Series, records_path: str | None) -> str:
    body = "[\n" + records.str.join(",\n").item() + "\n]" if records.len() else "[]"
    if records_path:
        for key in reversed(parse_path(records_path)):
            if not isinstance(key, str) or key in ("*", "[*]"):
                raise ValueError(f"records_path {records_path!r}: the sample writes plain keys only")
            body = "{" + _json_key(key) + body + "}"
    return body + "\n"


def _write_text_file(path: Path, renderer: _Renderer, source: pl.DataFrame, titles: list[str]) -> None:
    spec = renderer.spec
    if renderer.fmt == "csv":
        text = source.write_csv(separator=spec.delimiter, null_value="")
        text = "".join(t + "\n" for t in titles) + text
    elif renderer.fmt == "jsonl":
        text = source["record"].str.join("\n").item() + "\n" if source.height else ""
    else:
        text = _json_document(source["record"], spec.records_path)
    path.write_bytes(text.encode(spec.encoding))


def _write_excel(path: Path, sheets: dict[str, tuple[list[str], pl.DataFrame]]) -> None:
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    # A fixed creation time keeps the bytes, hence the submission id, reproducible.
    workbook.set_properties({"created": datetime(2000, 1, 1)})
    date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
    title_format = workbook.add_format({"bold": True, "font_size": 14})
    for sheet, (titles, frame) in sheets.items():
        ws = workbook.add_worksheet(sheet)
        for r, title in enumerate(titles):
            ws.write_string(r, 0, title, title_format if r == 0 else None)
        top = len(titles)
        ws.write_row(top, 0, frame.columns)
        date_cols = {i for i, dt in enumerate(frame.dtypes) if dt == pl.Date}
        for r, row in enumerate(frame.iter_rows(), start=top + 1):
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
    """The insurer's control totals for a data file: rows and amount totals per record type, in the file's units;
    an amount column is named by its header, an amount computed from several by its canonical name."""
    sections = {}
    for rt, part in parts.items():
        totals = {}
        for name, src in cfg.sources(rt).items():
            if c.field_map(rt)[name].kind != "money" or src.delivery not in _WRITTEN:
                continue
            total = part.select(pl.col(name).cast(pl.Decimal(38, 2)).sum()).item() or Decimal(0)
            key = src.paths[0] if src.delivery == "column" else name
            totals[key] = str(Decimal(total) / Decimal(src.multiplier))
        sections[rt] = {"row_count": part.height, "totals": totals}
    doc = {"manifest_version": "1", "data_file": path.name, "insurer": cfg.insurer_id, "record_types": sections}
    manifest_path(path).write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")


def _file_name(pattern: str, month: date) -> str:
    if "*" not in pattern:
        raise ValueError(f"file pattern {pattern!r} has no '*' for the month")
    return pattern.replace("*", month.strftime(MONTH_TOKEN), 1).replace("*", "")


def _delivered_parts(truth: pl.DataFrame, cfg: InsurerConfig, profile: SampleProfile, rt: str, rates: DefectRates,
                     rng: np.random.Generator) -> list[tuple[str, date, pl.DataFrame]]:
    """(file name, month, rows) of one record type: defects applied, per-row choices drawn, duplicates doubled."""
    frame = truth.filter(pl.col("insurer_id") == cfg.insurer_id)
    _check_constants(frame, cfg, rt)
    targets = defect_fields(cfg, rt)
    frame = frame.with_columns(_assign_defects(frame.height, targets, rates, rng))
    frame = _apply_defects(frame, rt, targets)
    frame = _decide(frame, cfg, rt, profile, rng)
    out = []
    pattern = cfg.record_types[rt].file_pattern
    for (month,), part in frame.sort("submission_month", maintain_order=True).partition_by(
        "submission_month", as_dict=True, maintain_order=True
    ).items():
        name = _file_name(pattern, month)
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
        out.append((name, month, part))
    return out


def render_insurer(
    truth: dict[str, pl.DataFrame],
    cfg: InsurerConfig,
    profile: SampleProfile,
    landing_dir: Path,
    rates: DefectRates,
    rng: np.random.Generator,
) -> tuple[dict[str, pl.DataFrame], list[FileTruth]]:
    """Write one insurer's monthly submissions (and, if rates.file_defects, its file-level defects);
    return (delivered rows per record type, in canonical terms, with their defect; file truths)."""
    folder = landing_dir / cfg.insurer_id
    folder.mkdir(parents=True, exist_ok=True)
    # file name → record type → (month, rows); a workbook may carry several record types, one sheet each.
    plan: dict[str, dict[str, tuple[date, pl.DataFrame]]] = defaultdict(dict)
    delivered: dict[str, list[pl.DataFrame]] = defaultdict(list)
    for rt in cfg.record_types:
        for name, month, part in _delivered_parts(truth[rt], cfg, profile, rt, rates, rng):
            plan[name][rt] = (month, part)
    for name, parts in plan.items():
        formats = {cfg.read_spec(rt).format for rt in parts}
        if len(parts) > 1 and formats != {"excel"}:
            raise ValueError(f"{cfg.insurer_id}: record types {sorted(parts)} share the file {name}, which only a "
                             "workbook (one sheet each) can carry")
    names = sorted(plan)
    extra_column = None
    if rates.file_defects and profile.file_defect == "extra_column" and names:
        extra_column = names[len(names) // 3]

    files: list[FileTruth] = []
    with_manifest = cfg.quality.manifest_required
    for name in names:
        parts = plan[name]
        path = folder / name
        month = next(iter(parts.values()))[0]
        sheets: dict[str, tuple[list[str], pl.DataFrame]] = {}
        written: dict[str, pl.DataFrame] = {}
        rts = list(parts)
        if cfg.read_spec(rts[0]).format == "excel":
            # Every record type the workbook pattern carries has its sheet, with its header only in a month without rows.
            rts = [rt for rt in cfg.record_types if _file_name(cfg.record_types[rt].file_pattern, month) == name]
        for rt in rts:
            part = parts[rt][1] if rt in parts else _empty_part(truth[rt], cfg, rt)
            renderer = _Renderer(cfg, rt, part.schema)
            renderer.check_concat(part)
            source = _source_frame(part, renderer, extra_column == name)
            titles = _titles(cfg, profile, rt, month, renderer.spec.header_row)
            written[rt] = part
            if renderer.fmt == "excel":
                sheets[cfg.record_types[rt].sheet or rt] = (titles, source)
            elif renderer.fmt == "parquet":
                source.write_parquet(path)
            else:
                _write_text_file(path, renderer, source, titles)
        if sheets:
            _write_excel(path, sheets)
        if with_manifest:
            _write_manifest(path, cfg, written)
        for rt, (_, part) in parts.items():
            delivered[rt].append(part)
        files.append(FileTruth(cfg.insurer_id, f"{cfg.insurer_id}/{name}", "extra_column" if extra_column == name else "regular",
                               "loaded", sum(p.height for p in written.values()), ",".join(written), manifest=with_manifest))
    if rates.file_defects:
        files += _inject_file_defects(landing_dir, cfg, profile, files)
    rows = {}
    for rt, parts in delivered.items():
        frame = pl.concat(parts, how="vertical_relaxed")
        rows[rt] = frame.drop(col for col in frame.columns if col.startswith("__"))
    return rows, files


def _empty_part(truth: pl.DataFrame, cfg: InsurerConfig, rt: str) -> pl.DataFrame:
    """A record type's rows of a month without any: the columns its renderer reads, no rows."""
    frame = truth.clear()
    sources = cfg.sources(rt)
    extra = {}
    for name, src in sources.items():
        f = c.field_map(rt)[name]
        if f.kind == "date" and src.delivery in ("column", "coalesce") and _text_dates(cfg, rt, src):
            extra[_FMT + name] = pl.Int8
        if src.delivery == "parts":
            extra[_DROP + name] = pl.Boolean
        if src.delivery == "coalesce":
            extra[_PATH + name] = pl.Int8
    for u in ("date", "part", "group", "symbol", "split", "blank", "extra"):
        extra[_U + u] = pl.Float64
    return frame.with_columns(pl.lit(None, dtype=dtype).alias(col) for col, dtype in extra.items()).with_columns(
        pl.lit(None, dtype=pl.String).alias("source_file"), pl.lit(None, dtype=pl.Int64).alias("source_row"))


def _inject_file_defects(landing_dir: Path, cfg: InsurerConfig, profile: SampleProfile, files: list[FileTruth]) -> list[FileTruth]:
    """File-level defects. Every insurer resubmits one file under a new name; then, per its sample profile, a
    truncated upload (the complete file is delivered too), a file with an extra unexpected column (written
    with the regular files), or a file whose name matches no layout. An insurer that delivers manifests also
    sends one claim file whose manifest states three rows more than the file holds (rows lost in transfer):
    the submission gate must hold that file back."""
    regular = sorted((f for f in files if f.kind in ("regular", "extra_column")), key=lambda f: f.source_file)
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
        mismatch.expected_gate = "held"
        if mismatch.kind == "regular":
            mismatch.kind = "manifest_mismatch"

    target = regular[len(regular) // 3]
    path = landing_dir / target.source_file
    if profile.file_defect == "truncated":
        data = path.read_bytes()
        cut = path.with_name(path.stem + "_upload1" + path.suffix)
        # Cut inside a record, as an interrupted upload does.
        cut.write_bytes(data[: int(len(data) * 0.6)].rstrip(b"\n"))
        extra.append(FileTruth(cfg.insurer_id, f"{cfg.insurer_id}/{cut.name}", "truncated", "rejected", 0,
                               target.record_types, expected_gate=""))
    elif profile.file_defect == "unknown_layout":
        notes = path.with_name("delivery_notes.txt")
        notes.write_text("Monthly delivery. Contact the data office for questions.\n", encoding="utf-8")
        extra.append(FileTruth(cfg.insurer_id, f"{cfg.insurer_id}/{notes.name}", "unknown_layout", "rejected", 0, "",
                               expected_gate=""))
    return extra


def file_truth_frame(files: list[FileTruth]) -> pl.DataFrame:
    return pl.DataFrame([asdict(f) for f in files])
