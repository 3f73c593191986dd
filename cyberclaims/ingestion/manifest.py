"""Submission manifests: the insurer's own control totals, delivered beside a data file.

A manifest is a JSON file named after its data file plus `.manifest.json`
(`claims_202403.csv` → `claims_202403.csv.manifest.json`), delivered before or with the data
file. It states, per record type in the file, the number of rows and the total of each amount
column, in the file's own units (a 万元 layout states 万元):

    {"manifest_version": "1", "data_file": "claims_202403.csv",
     "record_types": {"claim_valuation": {"row_count": 48,
                      "totals": {"PaidIndemnity": "1234567.89", "PaidExpense": "2345.60"}}}}

Amount columns are named by the insurer's header or by the canonical field name. Ingestion
stores the manifest's figures (converted to currency units) beside the figures it counted;
the submission gate reconciles the two.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from cyberclaims.ingestion import contract as c
from cyberclaims.ingestion.config import InsurerConfig
from cyberclaims.ingestion.readers import UnreadableFile

MANIFEST_SUFFIX = ".manifest.json"
ROW_COUNT = "row_count"
# A manifest is a few hundred bytes: one far larger, nested deeper or stating a figure no column can hold is not a
# manifest but an attack on the reader, and rejects its submission (never a crash, never a half-read manifest).
MAX_MANIFEST_BYTES = 1 << 20
MAX_MANIFEST_DEPTH = 32
MAX_FIGURE = Decimal(10) ** 30


class ManifestRejected(UnreadableFile):
    """The manifest cannot be taken as control totals at all: its submission is rejected."""


def manifest_path(data_file: Path) -> Path:
    return data_file.with_name(data_file.name + MANIFEST_SUFFIX)


def is_manifest(path: Path) -> bool:
    return path.name.endswith(MANIFEST_SUFFIX)


@dataclass
class Manifest:
    file: str  # landing-relative name of the manifest
    # (record_type, measure) → figure in currency units; measure is ROW_COUNT or a canonical amount field
    figures: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    error: str | None = None


def read_manifest(data_file: Path, landing_dir: Path, cfg: InsurerConfig, record_types: list[str]) -> Manifest | None:
    """The data file's manifest, or None if none was delivered. Problems are kept in `error`."""
    path = manifest_path(data_file)
    if not path.is_file():
        return None
    manifest = Manifest(path.relative_to(landing_dir).as_posix())
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise ManifestRejected(f"manifest {manifest.file}: larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        text = path.read_text(encoding="utf-8")
        if _depth(text) > MAX_MANIFEST_DEPTH:
            raise ManifestRejected(f"manifest {manifest.file}: nested deeper than {MAX_MANIFEST_DEPTH} levels")
        doc = json.loads(text, parse_constant=_non_finite)
        manifest.figures = _figures(doc, data_file.name, cfg, record_types)
    except ManifestRejected:
        raise
    except _NonFinite as exc:
        raise ManifestRejected(f"manifest {manifest.file}: {exc}") from None
    except RecursionError:
        raise ManifestRejected(f"manifest {manifest.file}: nested too deeply to read") from None
    except (ValueError, TypeError, KeyError, AttributeError, InvalidOperation) as exc:
        manifest.error = f"{manifest.file}: {exc}" if isinstance(exc, _Invalid) else f"{manifest.file}: not readable: {exc}"
        manifest.figures = {}
    return manifest


class _Invalid(ValueError):
    pass


class _NonFinite(Exception):
    """A figure that is not a finite number (NaN, Infinity) or beyond any amount: rejects the submission."""


def _non_finite(literal: str):
    raise _NonFinite(f"a figure is {literal}, not a finite number")


def _depth(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON text (brackets inside strings not counted)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _figures(doc: dict, data_name: str, cfg: InsurerConfig, record_types: list[str]) -> dict[tuple[str, str], Decimal]:
    if not isinstance(doc, dict):
        raise _Invalid("not a JSON object")
    if doc.get("data_file") != data_name:
        raise _Invalid(f"data_file is {doc.get('data_file')!r}, not {data_name!r}")
    sections = doc.get("record_types")
    if not isinstance(sections, dict):
        raise _Invalid("record_types is missing or not an object")
    unknown = sorted(set(sections) - set(record_types))
    if unknown:
        raise _Invalid(f"record type(s) not in the data file: {', '.join(unknown)}")
    figures: dict[tuple[str, str], Decimal] = {}
    for rt, section in sections.items():
        count = section.get(ROW_COUNT)
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise _Invalid(f"{rt}.row_count must be a non-negative integer, got {count!r}")
        if count > MAX_FIGURE:
            raise _NonFinite(f"{rt}.row_count is beyond any file's row count")
        figures[(rt, ROW_COUNT)] = Decimal(count)
        by_name = {f.name: f.name for f in c.FIELDS[rt] if f.kind == "money"}
        by_name |= {s.paths[0]: name for name, s in cfg.sources(rt).items() if name in by_name and s.delivery == "column"}
        for key, value in (section.get("totals") or {}).items():
            if key not in by_name:
                raise _Invalid(f"{rt}.totals.{key} is not an amount column of the layout")
            name = by_name[key]
            if isinstance(value, float) and value != value or value in (float("inf"), float("-inf")):
                raise _NonFinite(f"{rt}.totals.{key} is not a finite number")
            amount = Decimal(str(value).replace(",", ""))
            if not amount.is_finite():
                raise _NonFinite(f"{rt}.totals.{key} is not a finite number")
            if abs(amount) >= MAX_FIGURE:
                raise _NonFinite(f"{rt}.totals.{key} is beyond any amount the warehouse holds")
            amount *= Decimal(cfg.multiplier_for(rt, name))
            figures[(rt, name)] = amount.quantize(Decimal("0.01"))
    return figures
