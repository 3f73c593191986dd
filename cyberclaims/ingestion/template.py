"""The bureau's standard submission template: an insurer without a layout of its own delivers in it
with zero mapping work.

`cyberclaims onboard template` writes
- `bureau_template.xlsx`: one sheet per record type (a Chinese label row above the canonical English
  header), drop-down lists of the taxonomy codes for every coded field, a `notes` sheet defining each
  field (how to write it, whether it is required or may be left out) and a `codes` sheet with every
  code's Chinese and English label;
- `bureau_template_<record type>.csv`: the same columns as CSV (UTF-8 with a byte-order mark);
- `<insurer_id>.yaml`: the ready mapping config that reads the workbook (or, with `--variant csv`, the
  CSV files): every canonical field is its own column, codes are the taxonomy's own, numbers are
  plain ('.' decimals, no thousands separators), dates are date cells or YYYY-MM-DD.
Everything is derived from the contract (ingestion/contract.py) and the taxonomy seeds, so the
template changes with them.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from cyberclaims.ingestion import contract as c
from cyberclaims.ingestion.taxonomy import CODE_COLUMN, read_seed

TEMPLATE_VERSION = f"bureau-template-{c.CONTRACT_VERSION}"
WORKBOOK = "bureau_template.xlsx"
SHEET_ZH = {"policy": "保单", "incident": "事故", "claim_valuation": "赔案估值"}
# Rows of a sheet that carry drop-down lists (the data validation ranges).
VALIDATED_ROWS = 50_000

_HOW = {
    "identifier": "text, exactly as in your systems (pseudonymized on arrival)",
    "str": "text",
    "date": "a date cell, or text YYYY-MM-DD",
    "money": "a number in currency units (yuan, not 万元), '.' for decimals, no thousands separators",
    "revenue": "a number in currency units, '.' for decimals, no thousands separators",
    "int": "a whole number",
    "number": "a number, '.' for decimals",
    "bool": "true or false",
    "code": "one code of the codes sheet (drop-down)",
    "currency": "an ISO 4217 code of the codes sheet (drop-down)",
    "code_list": "codes of the codes sheet separated by ';'",
    "str_list": "values separated by ';'",
}


def _taxonomy_of(f: c.Field) -> str | None:
    return f.taxonomy or ("tax_currency" if f.kind == "currency" else None)


def template_config(insurer_id: str, display_name: str, variant: str = "xlsx") -> dict:
    """The mapping config that reads the template: every field is its own canonical column."""
    record_types = {}
    for rt, fields in c.FIELDS.items():
        spec: dict = {}
        if variant == "xlsx":
            spec |= {"file_pattern": f"{insurer_id}_*.xlsx", "sheet": rt, "header_row": 1}
        else:
            spec |= {"file_pattern": f"{insurer_id}_{rt}_*.csv"}
        spec["columns"] = {f.name: f.name for f in fields}
        record_types[rt] = spec
    return {
        "insurer_id": insurer_id,
        "display_name": display_name,
        "mapping_version": TEMPLATE_VERSION,
        "format": "excel" if variant == "xlsx" else "csv",
        **({"encoding": "utf-8-sig"} if variant == "csv" else {}),
        "date_formats": ["%Y-%m-%d"],
        "decimal_separator": ".",
        "thousands_separator": "",
        "list_separator": ";",
        "record_types": record_types,
    }


def _notes_rows() -> list[list[str]]:
    rows = []
    for rt, fields in c.FIELDS.items():
        for f in fields:
            taxonomy = _taxonomy_of(f)
            rows.append([
                rt, f.name, f.label_zh, _HOW[f.kind],
                "required" if f.required else "optional",
                "may be left out (declare not_delivered)" if f.required and f.may_be_not_delivered else "",
                f"codes sheet: {taxonomy}" if taxonomy else "",
                f.description + ("" if f.stored else " — read for nothing, stored nowhere"),
                f.why if f.required else "",
            ])
    return rows


def write_workbook(path: Path) -> None:
    import xlsxwriter

    path.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(path))
    bold = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    label = wb.add_format({"bold": True, "font_color": "#444444"})
    text = wb.add_format({"num_format": "@"})
    date = wb.add_format({"num_format": "yyyy-mm-dd"})

    # The codes sheet first in the file so the drop-downs can point at it; shown after the data sheets.
    taxonomies = sorted({t for fields in c.FIELDS.values() for f in fields if (t := _taxonomy_of(f))})
    ranges: dict[str, str] = {}
    sheets = {rt: wb.add_worksheet(rt) for rt in c.FIELDS}
    notes = wb.add_worksheet("notes 说明")
    codes = wb.add_worksheet("codes 代码表")
    col = 0
    for name in taxonomies:
        rows = read_seed(name)
        code_column = CODE_COLUMN[name]
        codes.write_row(0, col, [name, "中文", "English"], bold)
        for i, row in enumerate(rows, start=1):
            codes.write_row(i, col, [row[code_column], row.get("name_zh", ""), row.get("name_en", "")])
        letter = xlsxwriter.utility.xl_col_to_name(col)
        ranges[name] = f"='codes 代码表'!${letter}$2:${letter}${len(rows) + 1}"
        codes.set_column(col, col + 2, 18)
        col += 4

    for rt, ws in sheets.items():
        ws.write(0, 0, f"{SHEET_ZH[rt]} — {rt} (template {TEMPLATE_VERSION}; fill from row 3, one record a row)")
        for j, f in enumerate(c.FIELDS[rt]):
            ws.write(0, j, f.label_zh + (" *" if f.required else ""), label)
            ws.write(1, j, f.name, bold)
            ws.set_column(j, j, max(14, len(f.name) + 2),
                          date if f.kind == "date" else text if f.kind in ("identifier", "str") else None)
            taxonomy = _taxonomy_of(f)
            if f.kind in ("code", "currency") and taxonomy:
                ws.data_validation(2, j, VALIDATED_ROWS, j, {
                    "validate": "list", "source": ranges[taxonomy],
                    "error_title": f.name, "error_message": f"Use a code of {taxonomy} (codes sheet).",
                })
            elif f.kind == "bool":
                ws.data_validation(2, j, VALIDATED_ROWS, j, {"validate": "list", "source": ["true", "false"]})
            ws.write_comment(1, j, f"{f.label_zh} {f.name}: {_HOW[f.kind]}. {f.description}")
        ws.freeze_panes(2, 0)

    headers = ["record type", "field", "中文", "how to write it", "required", "may be left out", "allowed values",
               "meaning", "why it is required"]
    notes.write_row(0, 0, headers, bold)
    for i, row in enumerate(_notes_rows(), start=1):
        notes.write_row(i, 0, row)
    notes.set_column(0, 2, 16)
    notes.set_column(3, 8, 40)
    wb.close()


def write_csv_templates(folder: Path) -> list[Path]:
    paths = []
    for rt, fields in c.FIELDS.items():
        path = folder / f"bureau_template_{rt}.csv"
        path.write_bytes((",".join(f.name for f in fields) + "\n").encode("utf-8-sig"))
        paths.append(path)
    return paths


def write_template(folder: Path, insurer_id: str, display_name: str, variant: str = "xlsx") -> list[Path]:
    """The workbook, the CSV files and the ready config; returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    workbook = folder / WORKBOOK
    write_workbook(workbook)
    csvs = write_csv_templates(folder)
    config = folder / f"{insurer_id}.yaml"
    comment = (
        f"# Reads the bureau's standard submission template ({variant}; {TEMPLATE_VERSION}): every canonical field is\n"
        f"# its own column, so no mapping is needed. Deliver files named "
        + (f"{insurer_id}_<yyyymm>.xlsx" if variant == "xlsx" else f"{insurer_id}_<record type>_<yyyymm>.csv")
        + ".\n"
    )
    config.write_text(comment + yaml.safe_dump(template_config(insurer_id, display_name, variant), sort_keys=False,
                                               allow_unicode=True), encoding="utf-8")
    return [workbook, *csvs, config]
