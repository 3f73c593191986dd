"""The reference tables of docs/onboarding.md, generated from the config model and the contract.

`python -m cyberclaims.ingestion.config_reference --write docs/onboarding.md` rewrites the generated part of the
guide (between its markers); the test suite fails when the guide differs from what this module
generates, so the documentation cannot drift from the code.
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from cyberclaims.ingestion import config as cfgmod
from cyberclaims.ingestion import contract as c

BEGIN = "<!-- BEGIN GENERATED: python -m cyberclaims.ingestion.config_reference --write docs/onboarding.md -->"
END = "<!-- END GENERATED -->"


def _type(annotation) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        parts = [_type(a) for a in args if a is not type(None)]
        return " or ".join(parts)
    if origin is list:
        return f"list of {_type(args[0])}"
    if origin is dict:
        return f"map {_type(args[0])} → {_type(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {"FieldSpec": "field spec", "DateParts": "date parts", "RecordTypeConfig": "record type",
                "QualityConfig": "quality", "DriftThresholds": "drift"}.get(annotation.__name__, annotation.__name__)
    return {str: "text", int: "integer", bool: "true / false", float: "number"}.get(annotation, str(annotation))


def _default(info) -> str:
    if info.default_factory is not None:
        value = info.default_factory()
    elif info.default is PydanticUndefined:
        return "required"
    else:
        value = info.default
    if value is None:
        return "—"
    if isinstance(value, BaseModel):
        return "see below"
    if value in ([], {}):
        return "none"
    return f"`{value!r}`" if isinstance(value, str) else f"`{value}`"


def _rows(model: type[BaseModel], where: str, skip: set[str] = frozenset(), defaults: dict | None = None) -> list[str]:
    rows = []
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        default = (defaults or {}).get(name) or _default(info)
        rows.append(f"| `{name}` | {where} | {_type(info.annotation)} | {default} | {(info.description or '').replace('|', '/')} |")
    return rows


# What an option falls back to when no level sets it.
_BUILT_IN = {
    "encoding": "`'utf-8'`", "delimiter": "`','`", "header_row": "`0`", "require_final_newline": "`True`",
    "unexpected_columns": "`'warn'`", "date_formats": "`['%Y-%m-%d']`", "decimal_separator": "`'.'`",
    "thousands_separator": "`','`", "list_separator": "`';'`", "strip": "none", "sheet": "first sheet",
    "records_path": "the document", "period_anchor": "none (required for month labels)",
    "format": "the insurer's",
}


def generate() -> str:
    head = "| key | where | value | default | meaning |\n|---|---|---|---|---|"
    read = _rows(cfgmod.ReadOptions, "insurer, record type", defaults=_BUILT_IN)
    parse = _rows(cfgmod.ParseOptions, "insurer, record type, field", defaults=_BUILT_IN)
    inherited = set(cfgmod.ReadOptions.model_fields) | set(cfgmod.ParseOptions.model_fields)
    insurer = _rows(cfgmod.InsurerConfig, "insurer", skip=inherited - {"format"})
    record = _rows(cfgmod.RecordTypeConfig, "record type", skip=inherited, defaults={"amount_multiplier": "the insurer's"})
    spec = _rows(cfgmod.FieldSpec, "field", skip=set(cfgmod.ParseOptions.model_fields),
                 defaults={"multiplier": "the record type's", "reduce": "join (values) / JSON text (objects)"})
    parts = _rows(cfgmod.DateParts, "field parts")
    quality = _rows(cfgmod.QualityConfig, "quality") + _rows(cfgmod.DriftThresholds, "quality.drift")
    out = [
        BEGIN,
        "",
        "### Insurer keys",
        "", head, *insurer, "",
        "### Record type keys (under `record_types.<policy|incident|claim_valuation>`)",
        "", head, *record, "",
        "### Reading options (insurer defaults, a record type may override)",
        "", head, *read, "",
        "### Parsing options (insurer, record type or one field; the narrowest wins)",
        "", head, *parse, "",
        "### Field specs (a `columns` entry that is a mapping instead of one source name)",
        "", head, *spec, *parts, "",
        "### Submission gate thresholds (`quality:`)",
        "", head, *quality, "",
        "### Canonical fields and which may be not delivered",
        "",
        "| record type | field | 中文 | kind | required | may be not delivered | why / meaning |",
        "|---|---|---|---|---|---|---|",
    ]
    for rt, fields in c.FIELDS.items():
        for f in fields:
            kind = f.kind + (f" ({f.taxonomy})" if f.taxonomy else "") + ("" if f.stored else ", never stored")
            why = f.why if f.required else f.description
            out.append(f"| {rt} | `{f.name}` | {f.label_zh} | {kind} | {'yes' if f.required else 'no'} | "
                       f"{'yes' if f.can_be_not_delivered else '**no**'} | {why.replace('|', '/')} |")
    out += ["", "### Row-level reason codes (quarantine)", "", "| code | meaning |", "|---|---|"]
    out += [f"| `{code}` | {text} |" for code, text in c.REASON_DESCRIPTIONS.items()]
    out += ["", END]
    return "\n".join(out) + "\n"


def splice(document: str, generated: str) -> str:
    if BEGIN not in document or END not in document:
        raise ValueError("the guide has no generated section markers")
    before = document[: document.index(BEGIN)]
    after = document[document.index(END) + len(END):].lstrip("\n")
    return before + generated + ("\n" + after if after else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="rewrite the generated section of this guide")
    args = parser.parse_args(argv)
    if args.write:
        args.write.write_text(splice(args.write.read_text(encoding="utf-8"), generate()), encoding="utf-8")
    else:
        sys.stdout.write(generate())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
