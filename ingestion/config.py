"""Per-insurer mapping configuration: onboarding an insurer is one YAML file, no code.

A config says how to read the insurer's files (format, encoding, sheets, header row),
which file patterns carry which record type, and how each canonical field is found and
converted (source column, value map, date formats, unit multiplier, constants). It is
validated on load; every problem is reported with the file, the key and what is wrong.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ingestion.contract import FIELDS, RECORD_TYPES, field_map
from ingestion.taxonomy import Taxonomy, load_taxonomy

CONFIG_DIR = Path(__file__).resolve().parent / "configs"

DEFAULT_BOOL_MAP = {
    "true": True, "false": False, "t": True, "f": False, "y": True, "n": False,
    "yes": True, "no": False, "1": True, "0": False, "是": True, "否": False,
}


class ConfigError(ValueError):
    """A mapping config that cannot be used; the message names file, key and problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RecordTypeConfig(_Strict):
    file_pattern: str = Field(description="glob on the file name, e.g. 'policies_*.csv'")
    sheet: str | None = Field(None, description="Excel: sheet that holds this record type")
    header_row: int = Field(0, ge=0, description="Excel: 0-based row of the header (rows above are titles)")
    columns: dict[str, str] = Field(description="canonical field → source column (dotted path for nested JSON)")
    constants: dict[str, str] = Field(default_factory=dict, description="canonical field → fixed value")
    value_maps: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="canonical field → {source code: canonical code}"
    )
    date_formats: list[str] | None = None
    amount_multiplier: str | None = Field(None, description="decimal; source amount × multiplier = amount in currency units")
    field_multipliers: dict[str, str] = Field(default_factory=dict)
    list_separator: str | None = None


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
    row_count_record_types: list[str] = Field(default_factory=lambda: ["policy", "claim_valuation"])
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
    manifest_required: bool = Field(False, description="hold a submission delivered without its manifest")
    drift: DriftThresholds = DriftThresholds()


class InsurerConfig(_Strict):
    insurer_id: str = Field(pattern=r"^[a-z][a-z0-9_]{2,40}$")
    display_name: str
    mapping_version: str
    format: Literal["csv", "excel", "jsonl", "parquet"]
    encoding: str = "utf-8"
    delimiter: str = ","
    require_final_newline: bool = Field(
        True, description="csv/jsonl: a file that does not end with a line break is treated as truncated"
    )
    unexpected_columns: Literal["warn", "reject"] = "warn"
    date_formats: list[str] = Field(default_factory=lambda: ["%Y-%m-%d"])
    amount_multiplier: str = "1"
    list_separator: str = ";"
    record_types: dict[str, RecordTypeConfig]
    quality: QualityConfig = QualityConfig()

    @model_validator(mode="after")
    def _check_record_types(self) -> InsurerConfig:
        for rt in self.record_types:
            if rt not in RECORD_TYPES:
                raise ValueError(f"record_types.{rt}: unknown record type (expected one of {', '.join(RECORD_TYPES)})")
        return self

    # Effective settings: the record type's own value, else the insurer default.
    def date_formats_for(self, rt: str) -> list[str]:
        return self.record_types[rt].date_formats or self.date_formats

    def multiplier_for(self, rt: str, field: str) -> str:
        rtc = self.record_types[rt]
        return rtc.field_multipliers.get(field) or rtc.amount_multiplier or self.amount_multiplier

    def separator_for(self, rt: str) -> str:
        return self.record_types[rt].list_separator or self.list_separator

    def record_types_for_file(self, file_name: str) -> list[str]:
        return [rt for rt, c in self.record_types.items() if fnmatch.fnmatch(file_name, c.file_pattern)]


def _semantic_problems(cfg: InsurerConfig, taxonomy: Taxonomy) -> list[tuple[str, str]]:
    """Checks pydantic cannot express: canonical names, required fields, taxonomy targets."""
    problems: list[tuple[str, str]] = []
    for rt, rtc in cfg.record_types.items():
        fields = field_map(rt)
        base = f"record_types.{rt}"
        for section in ("columns", "constants", "value_maps", "field_multipliers"):
            for name in getattr(rtc, section):
                if name not in fields:
                    problems.append((f"{base}.{section}.{name}", f"not a canonical field of {rt}"))
        for f in FIELDS[rt]:
            if f.required and f.name not in rtc.columns and f.name not in rtc.constants:
                problems.append((f"{base}.columns", f"required canonical field '{f.name}' is not mapped"))
        for name, vmap in rtc.value_maps.items():
            f = fields.get(name)
            if f is None:
                continue
            if f.kind == "bool":
                allowed = {"true", "false"}
            elif f.taxonomy:
                allowed = taxonomy.codes[f.taxonomy]
            elif f.kind == "currency":
                allowed = taxonomy.codes["tax_currency"]
            else:
                problems.append((f"{base}.value_maps.{name}", f"field kind '{f.kind}' takes no value map"))
                continue
            for src, target in vmap.items():
                if target not in allowed:
                    problems.append((f"{base}.value_maps.{name}.{src}", f"'{target}' is not a code of {f.taxonomy or f.kind}"))
        if cfg.format == "excel" and not rtc.sheet:
            problems.append((f"{base}.sheet", "an Excel layout must name the sheet of each record type"))
        for key, value in [("amount_multiplier", rtc.amount_multiplier), *rtc.field_multipliers.items()]:
            if value is not None:
                try:
                    float(value)
                except ValueError:
                    problems.append((f"{base}.{key}", f"'{value}' is not a decimal number"))
    for rt in cfg.quality.drift.row_count_record_types:
        if rt not in RECORD_TYPES:
            problems.append(("quality.drift.row_count_record_types", f"'{rt}' is not a record type"))
    try:
        float(cfg.quality.reconciliation_tolerance)
    except ValueError:
        problems.append(("quality.reconciliation_tolerance", "not a decimal number"))
    try:
        "".encode(cfg.encoding)
    except LookupError:
        problems.append(("encoding", f"unknown encoding '{cfg.encoding}'"))
    return problems


def load_config(path: Path, taxonomy: Taxonomy | None = None) -> InsurerConfig:
    taxonomy = taxonomy or load_taxonomy()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        cfg = InsurerConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{path}: {'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid mapping config\n" + "\n".join(lines)) from None
    problems = _semantic_problems(cfg, taxonomy)
    if problems:
        raise ConfigError("invalid mapping config\n" + "\n".join(f"{path}: {k}: {p}" for k, p in problems))
    if path.stem != cfg.insurer_id:
        raise ConfigError(f"{path}: insurer_id: '{cfg.insurer_id}' must equal the file name '{path.stem}'")
    return cfg


def load_all_configs(config_dir: Path = CONFIG_DIR) -> dict[str, InsurerConfig]:
    configs = [load_config(p) for p in sorted(config_dir.glob("*.yaml"))]
    return {c.insurer_id: c for c in configs}
