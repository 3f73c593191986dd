"""`cyberclaims onboard check CONFIG FILE...`: a dry run of a new insurer's layout that writes nothing.

It validates the config (every problem at once), reads each file with the record types its name
matches, maps it exactly as ingestion would (with a throwaway pseudonymization key) and reports,
per record type: rows read and rows that would load, a preview of canonical rows (identifiers
never shown), per field how it is delivered and the share parsed / empty / failed with examples,
codes that no value map or taxonomy knows with the canonical code they most resemble (matched on
the taxonomies' English and Chinese labels), numbers that look like another locale, and the
quarantine the file would produce by reason. The files would load cleanly when no file is rejected
and no row is quarantined.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from cyberclaims.ingestion import contract as c
from cyberclaims.ingestion.config import ConfigError, InsurerConfig, load_config
from cyberclaims.ingestion.mapping import REASONS, delivered_texts, map_frame
from cyberclaims.ingestion.pipeline import describe_error
from cyberclaims.ingestion.pseudonymize import Pseudonymizer
from cyberclaims.ingestion.readers import SOURCE_ROW, SourceFrame, read_sources
from cyberclaims.ingestion.taxonomy import CODE_COLUMN, Taxonomy, load_taxonomy, read_seed

PREVIEW_ROWS = 3
EXAMPLES = 3


@dataclass
class FieldProfile:
    field: str
    delivery: str
    rows: int
    with_value: int
    failed: int
    reasons: dict[str, int]
    examples: list[str]

    @property
    def empty(self) -> int:
        return self.rows - self.with_value


@dataclass
class UnknownCode:
    field: str
    value: str
    rows: int
    suggestion: str | None


@dataclass
class RecordTypeReport:
    record_type: str
    rows_read: int
    rows_loaded: int
    quarantine_by_reason: dict[str, int]
    warnings: list[str]
    preview: list[dict]
    fields: list[FieldProfile]
    unknown_codes: list[UnknownCode]
    locale_hints: list[str]


@dataclass
class FileReport:
    file: str
    record_types: list[str]
    error: str | None = None
    reports: list[RecordTypeReport] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return self.error is None and all(r.rows_loaded == r.rows_read for r in self.reports)


@dataclass
class CheckReport:
    config: str
    config_error: str | None
    insurer_id: str | None = None
    not_delivered: dict[str, list[str]] = field(default_factory=dict)
    files: list[FileReport] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return self.config_error is None and bool(self.files) and all(f.clean for f in self.files)


# --------------------------------------------------------------------------- suggestions


def _labels(taxonomy_name: str) -> dict[str, list[str]]:
    code_column = CODE_COLUMN[taxonomy_name]
    out: dict[str, list[str]] = {}
    for row in read_seed(taxonomy_name):
        out[row[code_column]] = [row[code_column], row.get("name_en", ""), row.get("name_zh", "")]
    return out


def suggest_code(value: str, taxonomy_name: str) -> str | None:
    """The canonical code whose code or English / Chinese label the delivered value most resembles."""
    needle = value.strip().lower()
    best, score = None, 0.0
    for code, labels in _labels(taxonomy_name).items():
        for label in labels:
            label = label.strip().lower()
            if not label:
                continue
            ratio = difflib.SequenceMatcher(None, needle, label).ratio()
            if needle and (needle in label or label in needle):
                ratio = max(ratio, 0.8)
            if ratio > score:
                best, score = code, ratio
    return best if score >= 0.5 else None


# --------------------------------------------------------------------------- the check


def _field_of(reason: str) -> str | None:
    if ":" not in reason:
        return None
    target = reason.split(":", 1)[1]
    return target.split("<", 1)[0]


def _profile(cfg: InsurerConfig, rt: str, sf: SourceFrame, texts: pl.DataFrame, reasons: pl.DataFrame,
             taxonomy: Taxonomy) -> tuple[list[FieldProfile], list[UnknownCode], list[str]]:
    sources = cfg.sources(rt)
    by_row = dict(zip(reasons[SOURCE_ROW].to_list(), reasons[REASONS].to_list(), strict=True))
    exploded = [(row, r) for row, rs in by_row.items() for r in rs]
    profiles, unknown, hints = [], [], []
    for f in c.FIELDS[rt]:
        src = sources[f.name]
        column = texts[f.name]
        mine = [(row, r) for row, r in exploded if _field_of(r) == f.name]
        counts: dict[str, int] = {}
        for _, r in mine:
            code = r.split(":", 1)[0]
            counts[code] = counts.get(code, 0) + 1
        failed_rows = sorted({row for row, _ in mine})
        examples: list[str] = []
        # Delivered identifiers, names and free text are never quoted.
        if failed_rows and f.kind != "identifier" and f.stored and src.paths:
            sample = sf.frame.filter(pl.col(SOURCE_ROW).is_in(failed_rows[:EXAMPLES]))
            for row in sample.iter_rows(named=True):
                values = {p: row.get(p) for p in src.paths if p is not None and p in row}
                examples.append(", ".join(f"{p}={v!r}" for p, v in values.items()) + f" (row {row[SOURCE_ROW]})")
        profiles.append(FieldProfile(f.name, src.describe(), texts.height, column.is_not_null().sum(), len(failed_rows),
                                     counts, examples))
        if "UNKNOWN_CODE" in counts and f.kind in ("code", "currency", "code_list", "bool"):
            rows = [row for row, r in mine if r.startswith("UNKNOWN_CODE")]
            values = texts.filter(pl.col(SOURCE_ROW).is_in(rows))[f.name]
            vmap = cfg.record_types[rt].value_maps.get(f.name) or {}
            if f.kind == "code_list":
                items = values.str.split(src.list_separator).explode().str.strip_chars()
                known = set(vmap) if vmap else set(taxonomy.codes[f.taxonomy])
                values = items.filter(~items.is_in(list(known)) & (items != ""))
            taxonomy_name = f.taxonomy or ("tax_currency" if f.kind == "currency" else None)
            for value, n in values.value_counts(sort=True).iter_rows():
                unknown.append(UnknownCode(f.name, value, n, suggest_code(value, taxonomy_name) if taxonomy_name else None))
        if f.kind in ("money", "revenue", "int", "number") and src.paths:
            for path in src.paths:
                if path is None or path not in sf.frame.columns or sf.native.get(path) == "number":
                    continue
                text = sf.frame.filter(~sf.is_native_number(path))[path].drop_nulls().str.strip_chars()
                if not text.len():
                    continue
                other = r"\d,\d{1,2}$" if src.decimal_separator == "." else r"\d\.\d{1,2}$"
                looks = text.str.contains(other).sum()
                if looks:
                    sep = "," if src.decimal_separator == "." else "."
                    hints.append(f"{f.name} ({path}): {looks} of {text.len()} values end like decimals written with "
                                 f"'{sep}' (e.g. {text.filter(text.str.contains(other))[0]!r}); the layout says "
                                 f"decimal_separator '{src.decimal_separator}'")
    return profiles, unknown, hints


def _preview(good: pl.DataFrame, rt: str) -> list[dict]:
    rows = []
    keys = {c.key_column(f) for f in c.FIELDS[rt] if f.kind == "identifier"}
    for row in good.head(PREVIEW_ROWS).iter_rows(named=True):
        rows.append({k: ("‹key›" if k in keys and v is not None else v) for k, v in row.items()})
    return rows


def check_files(config_path: Path, files: list[Path], taxonomy: Taxonomy | None = None) -> CheckReport:
    """Dry-run ingestion of the files under the config; nothing is written anywhere."""
    taxonomy = taxonomy or load_taxonomy()
    try:
        cfg = load_config(config_path, taxonomy)
    except ConfigError as exc:
        return CheckReport(str(config_path), str(exc))
    report = CheckReport(str(config_path), None, cfg.insurer_id,
                         {rt: sorted(n for n, s in cfg.sources(rt).items() if s.delivery in ("not_delivered", "not_mapped"))
                          for rt in cfg.record_types})
    # A throwaway key: a dry run links nothing and shows no key.
    pseudonymizer = Pseudonymizer(os.urandom(32))
    for path in files:
        record_types = cfg.record_types_for_file(path.name)
        fr = FileReport(str(path), record_types)
        report.files.append(fr)
        if not record_types:
            patterns = ", ".join(dict.fromkeys(r.file_pattern for r in cfg.record_types.values()))
            fr.error = f"the file name matches none of the layout's patterns ({patterns})"
            continue
        try:
            frames = read_sources(path, cfg, record_types)
            for rt, sf in frames.items():
                batch = map_frame(sf, cfg, rt, taxonomy, pseudonymizer)
                texts = delivered_texts(sf, cfg, rt, taxonomy)
                reasons = batch.quarantine.select(pl.col("source_row").alias(SOURCE_ROW), pl.col("reasons").alias(REASONS))
                by_reason: dict[str, int] = {}
                for rs in reasons[REASONS].to_list():
                    for code in dict.fromkeys(r.split(":", 1)[0] for r in rs):
                        by_reason[code] = by_reason.get(code, 0) + 1
                profiles, unknown, hints = _profile(cfg, rt, sf, texts, reasons, taxonomy)
                fr.reports.append(RecordTypeReport(rt, batch.delivered, batch.good.height, dict(sorted(by_reason.items())),
                                                   batch.warnings, _preview(batch.good, rt), profiles, unknown, hints))
        except Exception as exc:  # noqa: BLE001 - the check reports what ingestion would reject the file for
            fr.error = describe_error(exc)
            fr.reports = []
    return report


# --------------------------------------------------------------------------- rendering


def _pct(n: int, d: int) -> str:
    return f"{100 * n / d:5.1f}%" if d else "    –"


def render(report: CheckReport) -> str:
    out = [f"Config {report.config}"]
    if report.config_error:
        out.append("  INVALID — fix every problem below:")
        out += ["    " + line for line in report.config_error.splitlines()[1:] or [report.config_error]]
        return "\n".join(out) + "\n"
    out.append(f"  valid: insurer {report.insurer_id}")
    for rt, names in report.not_delivered.items():
        if names:
            out.append(f"  {rt}: not delivered (NULL on every row): {', '.join(names)}")
    if not report.files:
        out.append("  no files given")
    for fr in report.files:
        out.append("")
        out.append(f"File {fr.file}  →  {', '.join(fr.record_types) or 'no record type'}")
        if fr.error:
            out.append(f"  WOULD BE REJECTED: {fr.error}")
            continue
        for r in fr.reports:
            out.append(f"  [{r.record_type}] rows read {r.rows_read:,}, would load {r.rows_loaded:,}, "
                       f"quarantine {r.rows_read - r.rows_loaded:,}")
            for w in r.warnings:
                out.append(f"    warning: {w}")
            if r.quarantine_by_reason:
                out.append("    quarantine by reason: " + ", ".join(f"{k} {v:,}" for k, v in r.quarantine_by_reason.items()))
            out.append("    field                     delivered as                              parsed   empty  failed")
            for p in r.fields:
                parsed = p.with_value - p.failed
                out.append(f"    {p.field:25s} {p.delivery[:40]:40s} {_pct(max(parsed, 0), p.rows)} {_pct(p.empty, p.rows)} "
                           f"{_pct(p.failed, p.rows)}" + (f"  {', '.join(f'{k} {v}' for k, v in p.reasons.items())}" if p.reasons else ""))
                for e in p.examples:
                    out.append(f"        e.g. {e}")
            for u in r.unknown_codes:
                hint = f" → did you mean '{u.suggestion}'?" if u.suggestion else ""
                out.append(f"    unknown code: {u.field} {u.value!r} ({u.rows} rows){hint}")
            for h in r.locale_hints:
                out.append(f"    locale: {h}")
            if r.preview:
                out.append("    preview of canonical rows (identifiers as ‹key›):")
                for row in r.preview:
                    shown = {k: v for k, v in row.items() if v is not None}
                    out.append("      " + ", ".join(f"{k}={_short(v)}" for k, v in shown.items()))
    out.append("")
    out.append("RESULT: the files would load cleanly" if report.clean else
               "RESULT: NOT CLEAN — rejected files or quarantined rows above")
    return "\n".join(out) + "\n"


def _short(value) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "…"


__all__ = ["CheckReport", "check_files", "render", "suggest_code"]
