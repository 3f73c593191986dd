"""Per-insurer mapping configuration: onboarding an insurer is one YAML file, no code.

A config says how to read the insurer's files (format, encoding, delimiter, sheet, header row,
JSON records path) — as insurer defaults that each record type may override — which file
patterns carry which record type, and how each canonical field is found and converted: one
source column or JSON path, or a field computed from several (sum, coalesce, concat, a date
from year / month / day parts); value maps, constants, date formats (month labels anchored at
the start or the end of the month), the locale of numbers (decimal and thousands separators),
units (multipliers) and list separators, at insurer, record type or field level. Fields the
insurer cannot deliver are declared `not_delivered` (the rows carry NULL, never an invented
value). A config is validated on load; every problem is reported at once, naming the file, the
key, the problem and the allowed keys or values. `docs/onboarding.md` documents every option
(generated from this module by `ingestion.config_reference`).
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cyberclaims.ingestion.contract import FIELDS, RECORD_TYPES, field_map
from cyberclaims.ingestion.taxonomy import Taxonomy, load_taxonomy

# The bundled configs; CYBERCLAIMS_CONFIG_DIR points elsewhere (read when configs are loaded).
CONFIG_DIR = Path(__file__).resolve().parent / "configs"

DEFAULT_BOOL_MAP = {
    "true": True, "false": False, "t": True, "f": False, "y": True, "n": False,
    "yes": True, "no": False, "1": True, "0": False, "是": True, "否": False,
}

FORMATS = ("csv", "excel", "jsonl", "json", "parquet")
JSON_FORMATS = ("jsonl", "json")
DECIMAL_SEPARATORS = (".", ",")
# "" = no thousands separator; "\u00a0" and "\u202f" are the no-break spaces of French and Swiss layouts.
THOUSANDS_SEPARATORS = (",", ".", " ", "'", "\u00a0", "\u202f", "")
# strftime directives that give a day of the month; a format without one is a month or year label.
_DAY_DIRECTIVES = ("%d", "%e", "%j", "%-d")
_MONTH_DIRECTIVES = ("%m", "%b", "%B", "%h", "%-m")

Format = Literal["csv", "excel", "jsonl", "json", "parquet"]
Anchor = Literal["start", "end"]


class ConfigError(ValueError):
    """A mapping config that cannot be used; the message names file, key and problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- option groups


class ReadOptions(_Strict):
    """How files are read. Set on the insurer (defaults) or on a record type (its own files)."""

    format: Format | None = Field(None, description="csv, excel (xlsx), jsonl (JSON Lines), json (JSON documents) or parquet")
    encoding: str | None = Field(None, description="csv / json / jsonl: text encoding, e.g. utf-8, utf-8-sig (BOM), gbk, gb18030, latin-1")
    delimiter: str | None = Field(None, description="csv: field delimiter, e.g. ',' ';' '|' or '\\t'")
    sheet: str | None = Field(None, description="excel: the sheet of the record type (default: the workbook's first sheet)")
    header_row: int | None = Field(None, ge=0, description="csv / excel: 0-based row of the header (rows above are titles)")
    records_path: str | None = Field(
        None, description="json: dotted path to the array of records inside the document, e.g. data.items "
        "(default: the document itself — an array of records, or one object = one record)")
    require_final_newline: bool | None = Field(
        None, description="csv / jsonl: a file that does not end with a line break is treated as truncated")
    unexpected_columns: Literal["warn", "reject"] | None = Field(
        None, description="a column (or JSON leaf) the mapping does not use: warn, or reject the file")


class ParseOptions(_Strict):
    """How values are parsed. Set on the insurer, a record type or one field; the narrowest wins."""

    date_formats: list[str] | None = Field(
        None, description="strftime formats tried in order; a format without a day ('%b-%Y', '%Y-%m', '%Y年%m月') "
        "is a month label and needs period_anchor")
    period_anchor: Anchor | None = Field(
        None, description="a month or year label means its first day (start) or its last day (end; a "
        "bordereau month is a month-end valuation)")
    decimal_separator: str | None = Field(None, description="text numbers: '.' or ','")
    thousands_separator: str | None = Field(
        None, description="text numbers: ',', '.', ' ', \"'\", a no-break space, or '' for none")
    strip: list[str] | None = Field(
        None, description="texts removed from a number before parsing, e.g. ['€', 'EUR'] (currency symbols and units)")
    list_separator: str | None = Field(None, description="separator of list values in one cell (coverage sections, CVEs)")


class DateParts(_Strict):
    year: str = Field(description="source of the year")
    month: str | None = Field(None, description="source of the month (1–12)")
    day: str | None = Field(None, description="source of the day of the month")


class FieldSpec(ParseOptions):
    """One canonical field: exactly one of source, sum, coalesce, concat, parts."""

    source: str | None = Field(None, description="one source column, or a path into nested JSON: a.b, a[0].b, a[*].b, a.*.b")
    sum: list[str] | None = Field(None, min_length=1, description="amounts: the sum of these sources (e.g. outstanding indemnity + fees)")
    coalesce: list[str] | None = Field(None, min_length=1, description="the first non-empty of these sources")
    concat: list[str] | None = Field(None, min_length=1, description="these sources joined by `separator`")
    parts: DateParts | None = Field(None, description="dates: built from year / month / day sources")
    separator: str = Field("", description="concat: text between the parts")
    nulls: Literal["reject", "zero", "skip"] = Field(
        "reject", description="sum / concat with some parts empty: reject (quarantine INCOMPLETE_PARTS), "
        "zero (sum: an empty part counts 0), skip (concat: join the parts present); all parts empty = empty")
    reduce: Literal["first", "last", "join"] | None = Field(
        None, description="a list value (JSON array, a[*].b path) into one value: its first or last element, or "
        "the elements joined by the list separator (default for lists of values; a list of objects is JSON text)")
    partial_dates: Literal["reject", "start", "end"] = Field(
        "reject", description="parts: a date with only a year (or year and month) is rejected (quarantine "
        "PARTIAL_DATE) or taken as the first or last day of what is given")
    multiplier: str | None = Field(None, description="amounts: decimal factor to currency units (e.g. '10000' for 万元)")

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        given = [k for k in ("source", "sum", "coalesce", "concat", "parts") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of source, sum, coalesce, concat, parts" + (f" (got {', '.join(given)})" if given else ""))
        return self


class RecordTypeConfig(ReadOptions, ParseOptions):
    file_pattern: str = Field(description="glob on the file name, e.g. 'policies_*.csv'")
    columns: dict[str, Union[str, FieldSpec]] = Field(  # noqa: UP007 (pydantic reads the annotation)
        description="canonical field → source column / JSON path, or a field spec (source, sum, coalesce, concat, parts)")
    constants: dict[str, str] = Field(
        default_factory=dict, description="canonical field → the same value on every row (e.g. currency: EUR "
        "for a layout whose headers say 'Limit EUR')")
    value_maps: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="canonical field → {insurer code: canonical code}")
    not_delivered: list[str] = Field(
        default_factory=list, description="canonical fields this insurer does not deliver: NULL on every row, "
        "shown in its feedback and the completeness view (only fields the contract allows to be missing)")
    amount_multiplier: str | None = Field(None, description="decimal; source amount × multiplier = amount in currency units")
    field_multipliers: dict[str, str] = Field(default_factory=dict, description="canonical field → its own multiplier")


class DriftThresholds(_Strict):
    """Drift of a submission against the same insurer's previous admitted submission of the record type."""

    min_previous_rows: int = Field(20, ge=1, description="assess drift only when both submissions have this many rows")
    # A book's first deliveries ramp up (claims accumulate month by month as policies are written and
    # incidents are reported), so they establish the level instead of being judged against it.
    min_admitted_history: int = Field(
        3, ge=1, description="assess drift only once this many earlier submissions of the record type were admitted"
    )
    row_count_factor: float = Field(3.0, gt=1, description="row count within [previous / f, previous × f]")
    # Incident counts spike with systemic events (the accumulation the database exists to show),
    # so by default only policies and claim valuations are held for row-count drift.
    row_count_record_types: list[str] = Field(default_factory=lambda: ["policy", "claim_valuation"],
                                              description="record types held for row-count drift")
    premium_factor: float = Field(5.0, gt=1, description="written premium total within [previous / f, previous × f]")
    paid_factor: float = Field(5.0, gt=1, description="paid (indemnity + expense) total within [previous / f, previous × f]")
    open_share_change: float = Field(0.35, gt=0, le=1, description="largest change of the share of open claims")


class QualityConfig(_Strict):
    """Submission-level gate thresholds (expectations/ suites read them as parameters)."""

    max_quarantine_share: float = Field(0.25, ge=0, le=1, description="held above this share of rows quarantined")
    min_rows_for_shares: int = Field(20, ge=1, description="shares are assessed from this many rows of a record type")
    min_known_policy_share: float = Field(
        0.75, ge=0, le=1, description="share of incidents / claim valuations whose policy the insurer has delivered"
    )
    paid_limit_tolerance: float = Field(0.05, ge=0, description="paid indemnity may exceed the policy limit by this share")
    reconciliation_tolerance: str = Field("1.00", description="yuan: largest difference of a control total")
    incurred_tolerance: str = Field(
        "0.05", description="currency units: largest difference between a delivered incurred and paid + reserve − recoveries")
    manifest_required: bool = Field(False, description="hold a submission delivered without its manifest")
    drift: DriftThresholds = Field(DriftThresholds(), description="drift thresholds")


class InsurerConfig(ReadOptions, ParseOptions):
    insurer_id: str = Field(pattern=r"^[a-z][a-z0-9_]{2,40}$", description="lower-case id; equals the file name")
    display_name: str = Field(description="the insurer's name, for people")
    mapping_version: str = Field(description="version of this mapping; a change re-reads the insurer's rejected files")
    format: Format = Field(description="csv, excel (xlsx), jsonl (JSON Lines), json (JSON documents) or parquet; "
                           "a record type may set its own")
    amount_multiplier: str = Field("1", description="decimal; source amount × multiplier = amount in currency units")
    record_types: dict[str, RecordTypeConfig] = Field(description="policy, incident, claim_valuation: what each file carries")
    quality: QualityConfig = Field(QualityConfig(), description="submission gate thresholds")

    @model_validator(mode="after")
    def _check_record_types(self) -> InsurerConfig:
        for rt in self.record_types:
            if rt not in RECORD_TYPES:
                raise ValueError(f"record_types.{rt}: unknown record type (expected one of {', '.join(RECORD_TYPES)})")
        return self

    # ---------------------------------------------------------------- effective settings

    def read_spec(self, rt: str) -> ReadSpec:
        rtc = self.record_types[rt]

        def pick(name: str, default):
            own = getattr(rtc, name)
            if own is not None:
                return own
            inherited = getattr(self, name)
            return default if inherited is None else inherited

        return ReadSpec(
            format=pick("format", "csv"),
            encoding=pick("encoding", "utf-8"),
            delimiter=pick("delimiter", ","),
            sheet=rtc.sheet,
            header_row=pick("header_row", 0),
            records_path=pick("records_path", None),
            require_final_newline=pick("require_final_newline", True),
            unexpected_columns=pick("unexpected_columns", "warn"),
        )

    def format_for(self, rt: str) -> str:
        return self.read_spec(rt).format

    def _parse_option(self, rt: str, spec: FieldSpec | None, name: str, default):
        for level in (spec, self.record_types[rt], self):
            value = getattr(level, name, None) if level is not None else None
            if value is not None:
                return value
        return default

    def date_formats_for(self, rt: str, field: str | None = None) -> list[str]:
        return self._parse_option(rt, self._spec(rt, field), "date_formats", ["%Y-%m-%d"])

    def multiplier_for(self, rt: str, field: str) -> str:
        spec = self._spec(rt, field)
        rtc = self.record_types[rt]
        return (spec.multiplier if spec and spec.multiplier else None) or rtc.field_multipliers.get(field) \
            or rtc.amount_multiplier or self.amount_multiplier

    def separator_for(self, rt: str, field: str | None = None) -> str:
        return self._parse_option(rt, self._spec(rt, field), "list_separator", ";")

    def _spec(self, rt: str, field: str | None) -> FieldSpec | None:
        if field is None:
            return None
        value = self.record_types[rt].columns.get(field)
        return value if isinstance(value, FieldSpec) else None

    def sources(self, rt: str) -> dict[str, FieldSource]:
        """Every canonical field of the record type with how it is delivered, effective options resolved."""
        rtc = self.record_types[rt]
        out: dict[str, FieldSource] = {}
        for f in FIELDS[rt]:
            value = rtc.columns.get(f.name)
            spec = value if isinstance(value, FieldSpec) else None

            def opt(name: str, default, spec=spec):
                return self._parse_option(rt, spec, name, default)

            common = dict(
                date_formats=tuple(opt("date_formats", ["%Y-%m-%d"])),
                period_anchor=opt("period_anchor", None),
                decimal_separator=opt("decimal_separator", "."),
                thousands_separator=opt("thousands_separator", ","),
                strip=tuple(opt("strip", [])),
                list_separator=opt("list_separator", ";"),
                multiplier=self.multiplier_for(rt, f.name),
            )
            if value is None:
                if f.name in rtc.constants:
                    out[f.name] = FieldSource(f.name, "constant", (), constant=str(rtc.constants[f.name]), **common)
                else:
                    how = "not_delivered" if f.name in rtc.not_delivered else "not_mapped"
                    out[f.name] = FieldSource(f.name, how, (), **common)
            elif spec is None:
                out[f.name] = FieldSource(f.name, "column", (value,), **common)
            else:
                for how in ("source", "sum", "coalesce", "concat"):
                    given = getattr(spec, how)
                    if given is not None:
                        paths = (given,) if how == "source" else tuple(given)
                        out[f.name] = FieldSource(
                            f.name, "column" if how == "source" else how, paths, separator=spec.separator,
                            nulls=spec.nulls, list_reduce=spec.reduce, **common)
                        break
                else:
                    assert spec.parts is not None
                    p = spec.parts
                    out[f.name] = FieldSource(
                        f.name, "parts", (p.year, p.month, p.day), partial_dates=spec.partial_dates,
                        list_reduce=spec.reduce, **common)
        return out

    def source_paths(self, rt: str) -> list[str]:
        """Every source column or path the record type's mapping reads, in mapping order."""
        paths: list[str] = []
        for source in self.sources(rt).values():
            paths.extend(p for p in source.paths if p is not None and p not in paths)
        return paths

    def delivered_fields(self, rt: str) -> frozenset[str]:
        """Canonical fields that carry a delivered (or constant) value; the rest are NULL on every row."""
        return frozenset(n for n, s in self.sources(rt).items() if s.delivery not in ("not_delivered", "not_mapped"))

    def record_types_for_file(self, file_name: str) -> list[str]:
        return [rt for rt, c in self.record_types.items() if fnmatch.fnmatch(file_name, c.file_pattern)]


@dataclass(frozen=True)
class ReadSpec:
    format: str
    encoding: str
    delimiter: str
    sheet: str | None
    header_row: int
    records_path: str | None
    require_final_newline: bool
    unexpected_columns: str


@dataclass(frozen=True)
class FieldSource:
    """How one canonical field is delivered, with every option resolved (field → record type → insurer)."""

    field: str
    # column | sum | coalesce | concat | parts | constant | not_delivered | not_mapped
    delivery: str
    paths: tuple[str | None, ...]  # parts: (year, month, day), month and day may be None
    date_formats: tuple[str, ...] = ("%Y-%m-%d",)
    period_anchor: str | None = None
    decimal_separator: str = "."
    thousands_separator: str = ","
    strip: tuple[str, ...] = ()
    list_separator: str = ";"
    multiplier: str = "1"
    separator: str = ""
    nulls: str = "reject"
    list_reduce: str | None = None
    partial_dates: str = "reject"
    constant: str | None = None

    def describe(self) -> str:
        """How the field is delivered, for people (onboard check, feedback, completeness)."""
        match self.delivery:
            case "column":
                return str(self.paths[0])
            case "sum" | "coalesce" | "concat":
                return f"{self.delivery}({', '.join(str(p) for p in self.paths)})"
            case "parts":
                return "date(" + ", ".join(f"{k}={p}" for k, p in zip(("year", "month", "day"), self.paths, strict=True) if p) + ")"
            case "constant":
                return f"constant {self.constant!r}"
        return self.delivery.replace("_", " ")


def is_month_label(fmt: str) -> bool:
    """A date format without a day: a month label ('%b-%Y') or a year ('%Y')."""
    return not any(d in fmt for d in _DAY_DIRECTIVES)


def has_month(fmt: str) -> bool:
    return any(d in fmt for d in _MONTH_DIRECTIVES)


# --------------------------------------------------------------------------- paths

_INDEX = re.compile(r"\[(\d+|\*)\]")
_KEY = re.compile(r'"((?:[^"\\]|\\.)*)"|([^.\[\]"]+)')


def parse_path(path: str) -> list[str | int]:
    """'a.b[0].c', 'a[*].b', 'a.*.b', '"key.with.dots".x' → segments: keys, indices, '[*]' (every element)
    and '*' (every key). Raises ValueError."""
    segments: list[str | int] = []
    i, n = 0, len(path)
    expect_key = True
    while i < n:
        if path[i] == "[":
            m = _INDEX.match(path, i)
            if not m:
                raise ValueError(f"bad index at position {i} (use [0], [1], … or [*])")
            segments.append("[*]" if m.group(1) == "*" else int(m.group(1)))
            i = m.end()
            expect_key = False
            continue
        if path[i] == ".":
            if expect_key:
                raise ValueError(f"empty key at position {i}")
            i += 1
            expect_key = True
            continue
        if not expect_key:
            raise ValueError(f"expected '.' or '[' at position {i}")
        m = _KEY.match(path, i)
        if not m:
            raise ValueError(f"bad key at position {i}")
        segments.append(m.group(1) if m.group(1) is not None else m.group(2))
        i = m.end()
        expect_key = False
    if not segments or expect_key:
        raise ValueError("empty path or trailing '.'")
    return segments


def json_path(path: str) -> str:
    """The DuckDB JSONPath of a config path ('a[0].b' → '$."a"[0]."b"')."""
    out = "$"
    for seg in parse_path(path):
        if seg == "[*]":
            out += "[*]"
        elif seg == "*":
            out += ".*"
        elif isinstance(seg, int):
            out += f"[{seg}]"
        else:
            out += '."' + seg.replace('"', '\\"') + '"'
    return out


def has_wildcard(path: str) -> bool:
    return any(seg in ("*", "[*]") for seg in parse_path(path))


# --------------------------------------------------------------------------- validation


def _suggest(name: str, allowed) -> str:
    close = difflib.get_close_matches(name, list(allowed), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def _semantic_problems(cfg: InsurerConfig, taxonomy: Taxonomy) -> list[tuple[str, str]]:
    """Checks pydantic cannot express: canonical names, required fields, taxonomy targets, option combinations."""
    problems: list[tuple[str, str]] = []
    for rt, rtc in cfg.record_types.items():
        fields = field_map(rt)
        base = f"record_types.{rt}"
        allowed = ", ".join(fields)
        for section in ("columns", "constants", "value_maps", "field_multipliers"):
            for name in getattr(rtc, section):
                if name not in fields:
                    problems.append((f"{base}.{section}.{name}",
                                     f"not a canonical field of {rt}{_suggest(name, fields)}; allowed: {allowed}"))
        for name in rtc.not_delivered:
            f = fields.get(name)
            if f is None:
                problems.append((f"{base}.not_delivered", f"'{name}' is not a canonical field of {rt}{_suggest(name, fields)}"))
            elif not f.can_be_not_delivered:
                problems.append((f"{base}.not_delivered", f"'{name}' is required for pricing and cannot be declared "
                                 f"not delivered ({f.why or 'see docs/onboarding.md'})"))
            elif name in rtc.columns or name in rtc.constants:
                problems.append((f"{base}.not_delivered", f"'{name}' is declared not delivered but also mapped"))
        for name in set(rtc.columns) & set(rtc.constants):
            problems.append((f"{base}.constants.{name}", "a field is either mapped (columns) or a constant, not both"))
        for name in rtc.constants:
            f = fields.get(name)
            if f is not None and f.kind == "identifier":
                problems.append((f"{base}.constants.{name}", "an identifier cannot be a constant"))
        for f in FIELDS[rt]:
            if f.required and f.name not in rtc.columns and f.name not in rtc.constants and f.name not in rtc.not_delivered:
                hint = " (or declare it in not_delivered)" if f.may_be_not_delivered else ""
                problems.append((f"{base}.columns", f"required canonical field '{f.name}' is not mapped{hint}"))
        for name, vmap in rtc.value_maps.items():
            f = fields.get(name)
            if f is None:
                continue
            if f.kind == "bool":
                targets = {"true", "false"}
            elif f.taxonomy:
                targets = taxonomy.codes[f.taxonomy]
            elif f.kind == "currency":
                targets = taxonomy.codes["tax_currency"]
            else:
                problems.append((f"{base}.value_maps.{name}", f"field kind '{f.kind}' takes no value map"))
                continue
            for src, target in vmap.items():
                if target not in targets:
                    problems.append((f"{base}.value_maps.{name}.{src}",
                                     f"'{target}' is not a code of {f.taxonomy or f.kind}{_suggest(str(target), targets)}"))
        read = cfg.read_spec(rt)
        problems += _read_problems(cfg, rt, read, base)
        problems += _field_problems(cfg, rt, base)
        for key, value in [("amount_multiplier", rtc.amount_multiplier), *rtc.field_multipliers.items()]:
            if value is not None and not _is_decimal(value):
                problems.append((f"{base}.{key}", f"'{value}' is not a decimal number"))
    # Excel record types that share a workbook must each name their sheet.
    by_pattern: dict[str, list[str]] = {}
    for rt in cfg.record_types:
        if cfg.read_spec(rt).format == "excel":
            by_pattern.setdefault(cfg.record_types[rt].file_pattern, []).append(rt)
    for _pattern, rts in by_pattern.items():
        if len(rts) > 1:
            for rt in rts:
                if not cfg.record_types[rt].sheet:
                    problems.append((f"record_types.{rt}.sheet", f"record types {', '.join(rts)} share one workbook: "
                                     "each must name its sheet"))
    for rt in cfg.quality.drift.row_count_record_types:
        if rt not in RECORD_TYPES:
            problems.append(("quality.drift.row_count_record_types", f"'{rt}' is not a record type"))
    for key in ("reconciliation_tolerance", "incurred_tolerance"):
        if not _is_decimal(getattr(cfg.quality, key)):
            problems.append((f"quality.{key}", "not a decimal number"))
    if not _is_decimal(cfg.amount_multiplier):
        problems.append(("amount_multiplier", f"'{cfg.amount_multiplier}' is not a decimal number"))
    problems += _separator_problems(cfg, "")
    return list(dict.fromkeys(problems))


def _is_decimal(value: str) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _read_problems(cfg: InsurerConfig, rt: str, read: ReadSpec, base: str) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    try:
        "".encode(read.encoding)
    except LookupError:
        problems.append((f"{base}.encoding" if cfg.record_types[rt].encoding else "encoding",
                         f"unknown encoding '{read.encoding}'"))
    if len(read.delimiter) != 1:
        problems.append((f"{base}.delimiter", f"a delimiter is one character, got {read.delimiter!r}"))
    if read.records_path is not None:
        if read.format != "json":
            problems.append((f"{base}.records_path", f"records_path is for the json format, not {read.format}"))
        else:
            try:
                parse_path(read.records_path)
            except ValueError as exc:
                problems.append((f"{base}.records_path", f"'{read.records_path}': {exc}"))
    if read.sheet is not None and read.format != "excel":
        problems.append((f"{base}.sheet", f"sheet is for the excel format, not {read.format}"))
    return problems


def _separator_problems(level, key: str) -> list[tuple[str, str]]:
    problems = []
    ds, ts = getattr(level, "decimal_separator", None), getattr(level, "thousands_separator", None)
    if ds is not None and ds not in DECIMAL_SEPARATORS:
        problems.append((f"{key}decimal_separator", f"must be one of {DECIMAL_SEPARATORS}, got {ds!r}"))
    if ts is not None and ts not in THOUSANDS_SEPARATORS:
        problems.append((f"{key}thousands_separator", f"must be one of {THOUSANDS_SEPARATORS}, got {ts!r}"))
    return problems


def _field_problems(cfg: InsurerConfig, rt: str, base: str) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    problems += _separator_problems(cfg.record_types[rt], f"{base}.")
    for name, value in cfg.record_types[rt].columns.items():
        if isinstance(value, FieldSpec):
            problems += _separator_problems(value, f"{base}.columns.{name}.")
    fields = field_map(rt)
    read = cfg.read_spec(rt)
    for name, source in cfg.sources(rt).items():
        f = fields[name]
        key = f"{base}.columns.{name}"
        for path in source.paths:
            if path is None:
                continue
            if read.format in JSON_FORMATS:
                try:
                    parse_path(path)
                except ValueError as exc:
                    problems.append((key, f"'{path}' is not a valid path: {exc}"))
        if source.delivery == "sum" and f.kind not in ("money", "revenue", "int", "number"):
            problems.append((key, f"sum is for amounts and counts, not a {f.kind} field"))
        if source.delivery == "parts" and f.kind != "date":
            problems.append((key, f"parts build dates, not a {f.kind} field"))
        if source.delivery == "concat" and f.kind not in ("str", "identifier", "code", "currency"):
            problems.append((key, f"concat is for text, identifiers and codes, not a {f.kind} field"))
        if source.delivery == "sum" and source.nulls == "skip":
            problems.append((key, "a sum's empty parts are rejected or counted as zero (nulls: reject | zero)"))
        if source.delivery == "concat" and source.nulls == "zero":
            problems.append((key, "a concat's empty parts are rejected or skipped (nulls: reject | skip)"))
        if source.thousands_separator == source.decimal_separator:
            problems.append((key if cfg._spec(rt, name) else f"{base}.thousands_separator",
                             f"the thousands and decimal separators are both {source.decimal_separator!r}"))
        if f.kind == "date" and source.delivery != "parts":
            labels = [fmt for fmt in source.date_formats if is_month_label(fmt)]
            if labels and source.period_anchor is None:
                problems.append((key, f"date format(s) {labels} have no day: set period_anchor: start | end"))
            for fmt in labels:
                if "%Y" not in fmt and "%y" not in fmt:
                    problems.append((key, f"date format {fmt!r} has neither a day nor a year"))
        if not _is_decimal(source.multiplier):
            problems.append((key, f"multiplier '{source.multiplier}' is not a decimal number"))
    return problems


# --------------------------------------------------------------------------- loading


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model a validation error location points into (for the list of allowed keys)."""
    model: type[BaseModel] | None = InsurerConfig
    for part in loc[:-1]:
        if model is None:
            return None
        info = model.model_fields.get(str(part))
        if info is None:
            # Inside a dict (record type name, field name): the value's model is unchanged from the annotation.
            continue
        model = _model_of(info.annotation)
    return model


def _model_of(annotation) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation) or ():
        found = _model_of(arg)
        if found is not None:
            return found
    if get_origin(annotation) is None:
        return None
    return None


def _pydantic_lines(path: Path, exc: ValidationError) -> list[str]:
    lines = []
    seen = set()
    for e in exc.errors():
        # A field spec that is neither a string nor a valid spec yields one error per union member.
        loc = tuple(p for p in e["loc"] if p not in ("str", "FieldSpec"))
        key = ".".join(str(p) for p in loc) or "(top)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            model = _model_at(loc)
            if model is not None:
                msg += f"; allowed keys: {', '.join(model.model_fields)}"
        elif e["type"] == "string_type" and any(p == "columns" for p in loc):
            continue  # the FieldSpec branch reports the useful error
        if (key, msg) in seen:
            continue
        seen.add((key, msg))
        lines.append(f"{path}: {key}: {msg}")
    return lines


def load_config(path: Path, taxonomy: Taxonomy | None = None) -> InsurerConfig:
    """Load and validate one config; raise ConfigError listing every problem at once."""
    taxonomy = taxonomy or load_taxonomy()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    lines: list[str] = []
    cfg = None
    candidate = raw
    # Every problem at once: after a structural error, the keys at fault are set aside and the rest is
    # validated again, so the semantic problems of the remainder are reported too.
    for _ in range(5):
        try:
            cfg = InsurerConfig.model_validate(candidate)
            break
        except ValidationError as exc:
            for line in _pydantic_lines(path, exc):
                if line not in lines:
                    lines.append(line)
            candidate = _without(candidate, [e["loc"] for e in exc.errors()])
            if candidate is None:
                break
    problems = _semantic_problems(cfg, taxonomy) if cfg is not None else []
    if cfg is not None and path.stem != cfg.insurer_id:
        problems.append(("insurer_id", f"'{cfg.insurer_id}' must equal the file name '{path.stem}'"))
    lines += [f"{path}: {k}: {p}" for k, p in problems]
    if lines:
        raise ConfigError("invalid mapping config\n" + "\n".join(lines))
    assert cfg is not None
    return cfg


def _without(raw: dict, locations: list[tuple]) -> dict | None:
    """A copy of the raw config without the keys at the given error locations (None: nothing left to drop)."""
    import copy

    out = copy.deepcopy(raw)
    dropped = False
    for loc in locations:
        loc = tuple(p for p in loc if p not in ("str", "FieldSpec"))
        node = out
        for part in loc[:-1]:
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                node = None
                break
        if isinstance(node, dict) and loc and loc[-1] in node:
            del node[loc[-1]]
            dropped = True
        elif len(loc) >= 2:
            # An error inside a value (a field spec): drop the whole entry.
            parent = out
            for part in loc[:-2]:
                parent = parent.get(part) if isinstance(parent, dict) else None
            if isinstance(parent, dict) and loc[-2] in parent:
                del parent[loc[-2]]
                dropped = True
    return out if dropped else None


def config_dir() -> Path:
    """CYBERCLAIMS_CONFIG_DIR, else the bundled configs (read when asked, never at import)."""
    return Path(os.environ.get("CYBERCLAIMS_CONFIG_DIR") or CONFIG_DIR).resolve()


@dataclass
class ConfigSet:
    """The insurer configs of a folder: the valid ones, and per file stem the error of each invalid one."""

    configs: dict[str, InsurerConfig]
    errors: dict[str, str]

    @property
    def insurer_ids(self) -> list[str]:
        return sorted({*self.configs, *self.errors})


def load_configs(folder: Path | None = None) -> ConfigSet:
    """Every config of the folder; an invalid one disables only its insurer (its error is kept)."""
    folder = folder or config_dir()
    taxonomy = load_taxonomy()
    configs, errors = {}, {}
    for path in sorted(folder.glob("*.yaml")):
        try:
            cfg = load_config(path, taxonomy)
        except ConfigError as exc:
            errors[path.stem] = str(exc)
            continue
        configs[cfg.insurer_id] = cfg
    return ConfigSet(configs, errors)


def load_all_configs(folder: Path | None = None) -> dict[str, InsurerConfig]:
    """Every config of the folder; raises ConfigError if any is invalid (for tools that need all of them)."""
    loaded = load_configs(folder)
    if loaded.errors:
        raise ConfigError("\n".join(loaded.errors.values()))
    return loaded.configs
