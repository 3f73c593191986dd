"""Each config feature of a layout on hand-made files: formats per record type, JSON documents and nested
lists, number locales, computed fields, dates and month labels, fields not delivered, unreadable files.

Every expected value here is the canonical meaning of what the hand-made file says, worked out by hand."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
import yaml

from cyberclaims.ingestion import contract as c
from cyberclaims.ingestion import warehouse
from cyberclaims.ingestion.config import ConfigError, load_config
from cyberclaims.ingestion.mapping import delivered_texts, map_frame
from cyberclaims.ingestion.pipeline import ingest_file, ingest_insurer
from cyberclaims.ingestion.pseudonymize import Pseudonymizer
from cyberclaims.ingestion.readers import SOURCE_ROW, read_source
from cyberclaims.ingestion.taxonomy import load_taxonomy

TAXONOMY = load_taxonomy()
PSEUDO = Pseudonymizer(b"k" * 32)
INSURER = "acme_mutual"

CLAIM_COLUMNS = {
    "claim_number": "Claim", "incident_number": "Incident", "policy_number": "Policy", "coverage_section": "Section",
    "status": "Status", "report_date": "Reported", "valuation_date": "Valued", "paid_indemnity": "Paid",
    "paid_expense": "Fees", "case_reserve": "Reserve", "currency": "Ccy",
}
CLAIM_ROW = {
    "Claim": "C-1", "Incident": "I-1", "Policy": "P-1", "Section": "extortion", "Status": "open",
    "Reported": "2025-03-05", "Valued": "2025-03-31", "Paid": "1000.50", "Fees": "20", "Reserve": "300", "Ccy": "EUR",
}


def config(tmp_path: Path, record_types: dict, **top) -> object:
    doc = {"insurer_id": INSURER, "display_name": "Acme Mutual", "mapping_version": "1", "format": "csv", **top,
           "record_types": record_types}
    path = tmp_path / f"{INSURER}.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return load_config(path)


def claims_config(tmp_path: Path, columns: dict | None = None, **rt) -> object:
    return config(tmp_path, {"claim_valuation": {"file_pattern": "claims_*", "columns": CLAIM_COLUMNS | (columns or {}), **rt}})


def frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={k: pl.String for k in rows[0]}).with_row_index(SOURCE_ROW, offset=1).with_columns(
        pl.col(SOURCE_ROW).cast(pl.Int64))


def mapped(cfg, rows: list[dict], rt: str = "claim_valuation"):
    return map_frame(frame(rows), cfg, rt, TAXONOMY, PSEUDO)


def reasons(batch) -> dict[int, list[str]]:
    return dict(zip(batch.quarantine["source_row"].to_list(), batch.quarantine["reasons"].to_list(), strict=True))


# --------------------------------------------------------------------------- numbers


def test_decimal_comma_and_thousands_dot_read_exactly_and_symbols_are_stripped(tmp_path):
    cfg = claims_config(tmp_path, decimal_separator=",", thousands_separator=".", strip=["€"])
    batch = mapped(cfg, [CLAIM_ROW | {"Paid": "1.234.567,89", "Fees": "€ 12,5", "Reserve": "0,10"}])
    row = batch.good.row(0, named=True)
    assert (row["paid_indemnity"], row["paid_expense"], row["case_reserve"]) == (
        Decimal("1234567.89"), Decimal("12.50"), Decimal("0.10"))


def test_a_number_in_the_other_locale_is_quarantined_never_rescaled(tmp_path):
    comma = claims_config(tmp_path, decimal_separator=",", thousands_separator=".")
    batch = mapped(comma, [CLAIM_ROW | {"Paid": "1234.56"}, CLAIM_ROW | {"Claim": "C-2", "Paid": "12.34"}])
    # '1234.56' is not a number with decimal commas; '12.34' has a broken thousands group.
    assert reasons(batch) == {1: ["INVALID_NUMBER:paid_indemnity"], 2: ["INVALID_NUMBER:paid_indemnity"]}
    point = claims_config(tmp_path)  # the default: '.' decimals, ',' thousands
    batch = mapped(point, [CLAIM_ROW | {"Paid": "1234,56"}])
    assert reasons(batch) == {1: ["INVALID_NUMBER:paid_indemnity"]}


@pytest.mark.parametrize("decimal, value", [(",", "1,234"), (".", "1.234")])
def test_three_decimals_of_money_are_ambiguous_and_quarantined(tmp_path, decimal, value):
    cfg = claims_config(tmp_path, decimal_separator=decimal, thousands_separator="." if decimal == "," else ",")
    batch = mapped(cfg, [CLAIM_ROW | {"Paid": value}, CLAIM_ROW | {"Claim": "C-2", "Paid": value[:-1]}])
    assert reasons(batch) == {1: ["AMBIGUOUS_NUMBER:paid_indemnity"]}
    assert batch.good["paid_indemnity"].to_list() == [Decimal("1.23")]


def test_locale_per_field_overrides_the_record_type(tmp_path):
    cfg = claims_config(tmp_path, {"paid_expense": {"source": "Fees", "decimal_separator": ".", "thousands_separator": ""}},
                        decimal_separator=",", thousands_separator=".")
    row = mapped(cfg, [CLAIM_ROW | {"Paid": "1.000,5", "Fees": "1000.5"}]).good.row(0, named=True)
    assert row["paid_indemnity"] == row["paid_expense"] == Decimal("1000.50")


def test_ten_thousand_yuan_is_a_multiplier_not_a_locale(tmp_path):
    cfg = claims_config(tmp_path, amount_multiplier="10000")
    # Four decimals of 万元 are whole yuan: not ambiguous.
    row = mapped(cfg, [CLAIM_ROW | {"Paid": "1.234", "Fees": "0.0001"}]).good.row(0, named=True)
    assert (row["paid_indemnity"], row["paid_expense"]) == (Decimal("12340.00"), Decimal("1.00"))


# --------------------------------------------------------------------------- computed fields


def test_sum_of_two_columns_and_its_null_rule(tmp_path):
    split = {"case_reserve": {"sum": ["OS Indemnity", "OS Fees"]}}
    rows = [
        CLAIM_ROW | {"OS Indemnity": "100.10", "OS Fees": "5.05"},
        CLAIM_ROW | {"Claim": "C-2", "OS Indemnity": "100", "OS Fees": ""},
        CLAIM_ROW | {"Claim": "C-3", "OS Indemnity": "", "OS Fees": ""},
    ]
    rows = [{k: v for k, v in r.items() if k != "Reserve"} for r in rows]
    strict = mapped(claims_config(tmp_path, split), rows)
    assert strict.good["case_reserve"].to_list() == [Decimal("105.15")]
    assert reasons(strict) == {2: ["INCOMPLETE_PARTS:case_reserve"], 3: ["MISSING_REQUIRED:case_reserve"]}
    zero = mapped(claims_config(tmp_path, {"case_reserve": split["case_reserve"] | {"nulls": "zero"}}), rows)
    assert zero.good["case_reserve"].to_list() == [Decimal("105.15"), Decimal("100.00")]
    assert reasons(zero) == {3: ["MISSING_REQUIRED:case_reserve"]}


def test_coalesce_takes_the_first_non_empty_and_does_not_skip_an_invalid_one(tmp_path):
    cfg = claims_config(tmp_path, {"paid_indemnity": {"coalesce": ["Paid Net", "Paid"]}})
    rows = [CLAIM_ROW | {"Paid Net": "7", "Paid": "9"}, CLAIM_ROW | {"Claim": "C-2", "Paid Net": "", "Paid": "9"},
            CLAIM_ROW | {"Claim": "C-3", "Paid Net": "x", "Paid": "9"}]
    batch = mapped(cfg, rows)
    assert batch.good["paid_indemnity"].to_list() == [Decimal("7.00"), Decimal("9.00")]
    assert reasons(batch) == {3: ["INVALID_NUMBER:paid_indemnity"]}


def test_concat_builds_an_identifier_and_an_incomplete_one_is_quarantined(tmp_path):
    cfg = claims_config(tmp_path, {"policy_number": {"concat": ["Binder", "Cert"], "separator": "/"}})
    rows = [CLAIM_ROW | {"Binder": "B24", "Cert": "0001"}, CLAIM_ROW | {"Claim": "C-2", "Binder": "B24", "Cert": ""}]
    rows = [{k: v for k, v in r.items() if k != "Policy"} for r in rows]
    batch = mapped(cfg, rows)
    assert batch.good["policy_key"].to_list() == [PSEUDO.key(f"policy|{INSURER}|B24/0001")]
    assert reasons(batch) == {2: ["INCOMPLETE_PARTS:policy_number"]}
    # The quarantined row shows the identifier as its key, never its parts.
    assert "B24" not in batch.quarantine["original_values"][0]


# --------------------------------------------------------------------------- dates


@pytest.mark.parametrize("anchor, expected", [("start", date(2025, 3, 1)), ("end", date(2025, 3, 31))])
def test_month_labels_in_several_formats_anchor_where_configured(tmp_path, anchor, expected):
    cfg = claims_config(tmp_path, {"valuation_date": {
        "source": "Valued", "date_formats": ["%b-%Y", "%Y-%m", "%Y年%m月"], "period_anchor": anchor}})
    labels = ["Mar-2025", "2025-03", "2025年3月", "MAR-2025"]
    batch = mapped(cfg, [CLAIM_ROW | {"Claim": f"C-{i}", "Reported": "2025-03-01", "Valued": v} for i, v in enumerate(labels)])
    assert batch.good["valuation_date"].to_list() == [expected] * len(labels)


def test_a_month_label_format_needs_an_anchor(tmp_path):
    with pytest.raises(ConfigError, match="period_anchor"):
        claims_config(tmp_path, {"valuation_date": {"source": "Valued", "date_formats": ["%b-%Y"]}})


def test_several_date_formats_per_field(tmp_path):
    cfg = claims_config(tmp_path, {"report_date": {"source": "Reported", "date_formats": ["%d.%m.%Y", "%Y-%m-%d"]}})
    batch = mapped(cfg, [CLAIM_ROW | {"Reported": "05.03.2025"}, CLAIM_ROW | {"Claim": "C-2", "Reported": "2025-03-06"},
                         CLAIM_ROW | {"Claim": "C-3", "Reported": "03/07/2025"}])
    assert batch.good["report_date"].to_list() == [date(2025, 3, 5), date(2025, 3, 6)]
    assert reasons(batch) == {3: ["INVALID_DATE:report_date"]}


@pytest.mark.parametrize("rule, expected", [
    ("start", [date(2025, 3, 5), date(2025, 3, 1), date(2025, 1, 1)]),
    ("end", [date(2025, 3, 5), date(2025, 3, 31), date(2025, 12, 31)]),
    ("reject", [date(2025, 3, 5)]),
])
def test_a_date_from_parts_and_the_partial_date_rule(tmp_path, rule, expected):
    cfg = claims_config(tmp_path, {"report_date": {"parts": {"year": "Y", "month": "M", "day": "D"}, "partial_dates": rule}})
    rows = [{"Y": "2025", "M": "3", "D": "5"}, {"Y": "2025", "M": "03", "D": ""}, {"Y": "2025", "M": "", "D": ""},
            {"Y": "", "M": "3", "D": "5"}, {"Y": "2025", "M": "2", "D": "30"}]
    rows = [{k: v for k, v in CLAIM_ROW.items() if k != "Reported"} | r | {"Claim": f"C-{i}", "Valued": "2025-12-31"}
            for i, r in enumerate(rows)]
    batch = mapped(cfg, rows)
    assert batch.good["report_date"].to_list() == expected
    got = reasons(batch)
    assert got[4] == ["INVALID_DATE:report_date"] and got[5] == ["INVALID_DATE:report_date"]
    if rule == "reject":
        assert got[2] == got[3] == ["PARTIAL_DATE:report_date"]


# --------------------------------------------------------------------------- not delivered


def test_a_field_not_delivered_is_null_and_never_missing(tmp_path):
    columns = {k: v for k, v in CLAIM_COLUMNS.items() if k != "coverage_section"}
    cfg = config(tmp_path, {"claim_valuation": {"file_pattern": "claims_*", "columns": columns,
                                                "not_delivered": ["coverage_section"]}})
    batch = mapped(cfg, [{k: v for k, v in CLAIM_ROW.items() if k != "Section"}])
    assert batch.quarantine.is_empty() and batch.good["coverage_section"].to_list() == [None]
    stats = {f["field"]: f for f in batch.fields}
    assert stats["coverage_section"]["delivery"] == "not_delivered" and stats["coverage_section"]["rows_with_value"] == 0
    assert stats["paid_indemnity"]["delivery"] == "column" and stats["paid_indemnity"]["rows_with_value"] == 1


def test_only_fields_the_contract_allows_may_be_not_delivered(tmp_path):
    columns = {k: v for k, v in CLAIM_COLUMNS.items() if k != "paid_expense"}
    with pytest.raises(ConfigError, match="'paid_expense' is required for pricing"):
        config(tmp_path, {"claim_valuation": {"file_pattern": "c_*", "columns": columns, "not_delivered": ["paid_expense"]}})


# --------------------------------------------------------------------------- JSON documents and nested lists

INCIDENT = {
    "ref": "I-1", "policy": {"no": "P-1"}, "insured": {"uscc": "91350100M000100Y43"},
    "dates": {"occurred": "2025-03-01", "reported": "2025-03-04"},
    "action": {"malware": {"variety": ["Ransomware"], "vector": ["Email attachment"]}},
    "data": [{"variety": "Personal", "amount": 10}, {"variety": "Payment", "amount": 2}],
    "notes": [{"by": "broker", "text": "first"}, {"by": "insured", "text": "second"}],
    "campaign": "VENDOR-OUTAGE-2025-03",
}
INCIDENT_COLUMNS = {
    "incident_number": "ref", "policy_number": "policy.no", "insured_id": "insured.uscc",
    "occurred_date": "dates.occurred", "reported_date": "dates.reported",
    "incident_type": {"coalesce": ["action.hacking.variety", "action.malware.variety"], "reduce": "first"},
    "attack_vector": {"source": "action.*.vector", "reduce": "first"},
    "data_types": "data[*].variety", "records_affected": "data[0].amount", "systemic_event_ref": "campaign",
}
# A list of objects mapped whole to a text field: its JSON text, which no coded field accepts.
NOTES_COLUMNS = INCIDENT_COLUMNS | {"systemic_event_ref": "notes"}
INCIDENT_MAPS = {"incident_type": {"Ransomware": "ransomware"}, "attack_vector": {"Email attachment": "phishing"},
                 "data_types": {"Personal": "PII", "Payment": "PCI"}}


def json_config(tmp_path, **read):
    return config(tmp_path, {"incident": {"file_pattern": "inc_*", "format": "json", "columns": INCIDENT_COLUMNS,
                                          "value_maps": INCIDENT_MAPS, **read}})


def valid_uscc() -> str:
    from cyberclaims.ingestion.pseudonymize import uscc_check_char

    body = "91350100M000100Y4"
    return body + uscc_check_char(body)


@pytest.mark.parametrize("shape", ["array", "object", "records_path"])
def test_json_documents_in_every_shape(tmp_path, shape):
    record = INCIDENT | {"insured": {"uscc": valid_uscc()}}
    second = record | {"ref": "I-2", "action": {"hacking": {"variety": ["Ransomware", "Other"]}}}
    if shape == "array":
        doc, records, read = [record, second], 2, {}
    elif shape == "object":
        doc, records, read = record, 1, {}
    else:
        doc, records, read = {"meta": {"month": "2025-03"}, "data": {"items": [record, second]}}, 2, {"records_path": "data.items"}
    path = tmp_path / "inc_202503.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    cfg = json_config(tmp_path, **read)
    batch = map_frame(read_source(path, cfg, "incident"), cfg, "incident", TAXONOMY, PSEUDO)
    assert batch.quarantine.is_empty(), batch.quarantine.to_dicts()
    assert batch.good.height == records
    row = batch.good.row(0, named=True)
    assert row["incident_type"] == "ransomware" and row["attack_vector"] == "phishing"
    assert row["data_types"] == ["PII", "PCI"] and row["records_affected"] == 10
    assert row["systemic_event_ref"] == "VENDOR-OUTAGE-2025-03"
    assert batch.warnings == ["incident: unexpected column(s) ignored: notes[*].by, notes[*].text"]
    # A list of objects mapped whole is its JSON text; an event reference it is not.
    notes = config(tmp_path, {"incident": {"file_pattern": "inc_*", "format": "json", "columns": NOTES_COLUMNS,
                                           "value_maps": INCIDENT_MAPS, **read}})
    source = read_source(path, notes, "incident")
    assert json.loads(delivered_texts(source, notes, "incident", TAXONOMY)["systemic_event_ref"][0]) == INCIDENT["notes"]
    quarantined = map_frame(source, notes, "incident", TAXONOMY, PSEUDO)
    assert quarantined.warnings == ["incident: unexpected column(s) ignored: campaign"]
    assert quarantined.good.is_empty() and set(map(tuple, reasons(quarantined).values())) == {
        (f"{c.REASON_INVALID_FORMAT}:systemic_event_ref",)}


def test_json_records_of_different_shapes_never_crash_the_reader(tmp_path):
    # The same key holds a list of objects, a string, a number and nothing at all in four records.
    records = [INCIDENT | {"ref": f"I-{i}", "insured": {"uscc": valid_uscc()}, "notes": notes}
               for i, notes in enumerate([[{"a": 1}], "plain", 12, None])]
    path = tmp_path / "inc_202503.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    cfg = config(tmp_path, {"incident": {"file_pattern": "inc_*", "format": "jsonl", "columns": NOTES_COLUMNS,
                                         "value_maps": INCIDENT_MAPS}})
    source = read_source(path, cfg, "incident")
    assert delivered_texts(source, cfg, "incident", TAXONOMY)["systemic_event_ref"].to_list() == [
        '[{"a":1}]', "plain", "12", None]
    # None of these texts is an event reference: their rows are quarantined, the empty one loads.
    batch = map_frame(source, cfg, "incident", TAXONOMY, PSEUDO)
    assert batch.good.height == 1 and batch.good["systemic_event_ref"].to_list() == [None]
    assert batch.quarantine.height == 3 and set(map(tuple, reasons(batch).values())) == {
        (f"{c.REASON_INVALID_FORMAT}:systemic_event_ref",)}


def test_json_numbers_are_native_and_text_numbers_follow_the_locale(tmp_path):
    rows = [{"Claim": "C-1", "Paid": 1234.5, "Fees": "1.234,50"}, {"Claim": "C-2", "Paid": "12,5", "Fees": 7}]
    records = [{k: v for k, v in CLAIM_ROW.items() if k not in r} | r for r in rows]
    path = tmp_path / "claims_202503.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    cfg = claims_config(tmp_path, format="json", decimal_separator=",", thousands_separator=".")
    batch = map_frame(read_source(path, cfg, "claim_valuation"), cfg, "claim_valuation", TAXONOMY, PSEUDO)
    assert batch.good["paid_indemnity"].to_list() == [Decimal("1234.50"), Decimal("12.50")]
    assert batch.good["paid_expense"].to_list() == [Decimal("1234.50"), Decimal("7.00")]


# --------------------------------------------------------------------------- formats per record type and diagnosis


def test_one_insurer_sends_csv_json_and_xlsx(tmp_path):
    import xlsxwriter

    uscc = valid_uscc()
    landing = tmp_path / "landing"
    folder = landing / INSURER
    folder.mkdir(parents=True)
    policy = {"Policy": "P-1", "USCC": uscc, "Region": "350100", "Sector": "finance", "Product": "liability",
              "Sections": "extortion", "From": "01.03.2025", "To": "28.02.2026", "Limit EUR": "1.000.000,00",
              "Premium EUR": "12.500,00"}
    (folder / "pol_202503.csv").write_bytes(
        (";".join(policy) + "\n" + ";".join(policy.values()) + "\n").encode("utf-8-sig"))
    (folder / "inc_202503.json").write_text(json.dumps({"data": {"items": [INCIDENT | {"insured": {"uscc": uscc}}]}}))
    wb = xlsxwriter.Workbook(str(folder / "clm_202503.xlsx"))
    ws = wb.add_worksheet("Bordereau")
    ws.write_row(0, 0, ["Claims bordereau March 2025"])
    header = [h for h in CLAIM_ROW if h != "Ccy"]
    ws.write_row(1, 0, header)
    ws.write_row(2, 0, [CLAIM_ROW[h] for h in header[:7]] + [1000.5, 20, 300])
    wb.close()
    cfg = config(tmp_path, {
        "policy": {"file_pattern": "pol_*.csv", "encoding": "utf-8-sig", "delimiter": ";", "decimal_separator": ",",
                   "thousands_separator": ".", "date_formats": ["%d.%m.%Y"],
                   "columns": {"policy_number": "Policy", "insured_id": "USCC", "region_code": "Region",
                               "sector_code": "Sector", "product_type": "Product", "coverage_sections": "Sections",
                               "inception_date": "From", "expiry_date": "To", "limit_amount": "Limit EUR",
                               "written_premium": "Premium EUR"},
                   "constants": {"currency": "EUR"}},
        "incident": {"file_pattern": "inc_*.json", "format": "json", "records_path": "data.items",
                     "columns": INCIDENT_COLUMNS, "value_maps": INCIDENT_MAPS},
        "claim_valuation": {"file_pattern": "clm_*.xlsx", "format": "excel", "header_row": 1,
                            "columns": {k: v for k, v in CLAIM_COLUMNS.items() if k != "currency"},
                            "constants": {"currency": "EUR"}},
    })
    con = warehouse.connect(tmp_path / "wh.duckdb")
    summary = ingest_insurer(con, cfg, landing, PSEUDO)
    assert [o.status for o in summary.outcomes] == ["loaded"] * 3, [o.error for o in summary.outcomes]
    assert summary.rows_loaded == 3 and summary.rows_quarantined == 0
    limit, premium, start = con.execute("SELECT limit_amount, written_premium, inception_date FROM raw.policies").fetchall()[0]
    assert (limit, premium, start) == (Decimal("1000000.00"), Decimal("12500.00"), date(2025, 3, 1))
    assert con.execute("SELECT paid_indemnity, valuation_date FROM raw.claim_valuations").fetchall() == [
        (Decimal("1000.50"), date(2025, 3, 31))]
    fields = dict(con.execute("SELECT field, delivery FROM control.submission_fields WHERE record_type = 'policy'").fetchall())
    assert fields["coverage_sections"] == "column" and fields["deductible"] == "not_mapped" and fields["currency"] == "constant"


@pytest.mark.parametrize("fmt, content, looks_like", [
    ("csv", b"PK\x03\x04" + b"\x00" * 64, "ZIP archive"),
    ("jsonl", b'[{"a": 1}]\n', "JSON array"),
    ("parquet", b"Claim,Paid\nC-1,1\n", "text"),
    ("excel", b"Claim,Paid\nC-1,1\n", "text"),
    ("csv", b"PAR1" + b"\x00" * 64 + b"PAR1", "Parquet"),
])
def test_a_file_in_another_format_is_rejected_for_what_it_is(tmp_path, fmt, content, looks_like):
    cfg = claims_config(tmp_path, format=fmt)
    landing = tmp_path / "landing"
    (landing / INSURER).mkdir(parents=True)
    path = landing / INSURER / "claims_202503.dat"
    path.write_bytes(content)
    con = warehouse.connect(tmp_path / "wh.duckdb")
    outcome = ingest_file(con, path, landing, cfg, PSEUDO)
    assert outcome.status == "rejected" and outcome.error.startswith("format mismatch: this looks like"), outcome.error
    assert looks_like in outcome.error
    assert con.execute("SELECT status, error FROM control.submissions").fetchall() == [("rejected", outcome.error)]


@pytest.mark.parametrize("fmt, suffix", [("parquet", "parquet"), ("excel", "xlsx")])
def test_an_interrupted_upload_is_rejected_as_truncated(tmp_path, fmt, suffix):
    cfg = claims_config(tmp_path, format=fmt)
    landing = tmp_path / "landing"
    (landing / INSURER).mkdir(parents=True)
    whole = tmp_path / f"whole.{suffix}"
    rows = pl.DataFrame([CLAIM_ROW | {"Claim": f"C-{i}"} for i in range(2000)])
    rows.write_parquet(whole) if fmt == "parquet" else rows.write_excel(whole)
    data = whole.read_bytes()
    (landing / INSURER / f"claims_202503.{suffix}").write_bytes(data[: len(data) * 2 // 3])
    (landing / INSURER / f"claims_202504.{suffix}").write_bytes(data)
    con = warehouse.connect(tmp_path / "wh.duckdb")
    summary = ingest_insurer(con, cfg, landing, PSEUDO)
    outcomes = {o.source_file: o for o in summary.outcomes}
    cut = outcomes[f"{INSURER}/claims_202503.{suffix}"]
    assert cut.status == "rejected" and "the file is truncated" in cut.error, cut.error
    assert outcomes[f"{INSURER}/claims_202504.{suffix}"].status == "loaded"
    assert con.execute("SELECT count(*) FROM raw.claim_valuations").fetchall() == [(2000,)]


def test_an_unexpected_reader_error_rejects_the_file_and_the_rest_loads(tmp_path, monkeypatch):
    cfg = claims_config(tmp_path)
    landing = tmp_path / "landing"
    (landing / INSURER).mkdir(parents=True)
    header = ",".join(CLAIM_ROW)
    for month in ("202501", "202502", "202503"):
        row = CLAIM_ROW | {"Claim": f"C-{month}"}
        (landing / INSURER / f"claims_{month}.csv").write_text(header + "\n" + ",".join(row.values()) + "\n")
    import cyberclaims.ingestion.readers as readers

    real = readers.read_csv

    def fragile(path, spec):
        if path.name == "claims_202502.csv":
            raise ZeroDivisionError("division by zero in a reader")
        return real(path, spec)

    monkeypatch.setattr(readers, "read_csv", fragile)
    con = warehouse.connect(tmp_path / "wh.duckdb")
    summary = ingest_insurer(con, cfg, landing, PSEUDO)
    statuses = {o.source_file: (o.status, o.error) for o in summary.outcomes}
    assert statuses[f"{INSURER}/claims_202501.csv"][0] == statuses[f"{INSURER}/claims_202503.csv"][0] == "loaded"
    status, error = statuses[f"{INSURER}/claims_202502.csv"]
    assert status == "rejected" and "ZeroDivisionError" in error
    assert con.execute("SELECT count(*) FROM raw.claim_valuations").fetchall() == [(2,)]
    # A rejected file is read again once the mapping changes (here: the reader is fixed and the version bumped).
    monkeypatch.setattr(readers, "read_csv", real)
    again = ingest_insurer(con, cfg, landing, PSEUDO)
    assert {o.status for o in again.outcomes} == {"already_loaded", "already_rejected"}
    bumped = cfg.model_copy(update={"mapping_version": "2"})
    retried = ingest_insurer(con, bumped, landing, PSEUDO)
    assert {o.source_file: o.status for o in retried.outcomes}[f"{INSURER}/claims_202502.csv"] == "loaded"
    assert con.execute("SELECT count(*) FROM raw.claim_valuations").fetchall() == [(3,)]
    assert con.execute("SELECT status FROM control.submission_gate_log WHERE status = 'retry'").fetchall() == [("retry",)]


def test_a_parquet_file_with_nested_lists_and_odd_types_is_read(tmp_path):
    from datetime import timedelta

    rows = pl.DataFrame({
        **{k: [v] for k, v in CLAIM_ROW.items() if k not in ("Paid", "Fees", "Reserve")},
        "Paid": [Decimal("1000.50")], "Fees": [20.0], "Reserve": [300],
        "parties": [[{"section": "extortion", "share": 0.5}]], "lag": [timedelta(days=3)], "blob": [b"\x01"],
    }).drop("Section")
    path = tmp_path / "claims_202503.parquet"
    rows.write_parquet(path)
    cfg = claims_config(tmp_path, {"coverage_section": "parties[0].section"}, format="parquet")
    batch = map_frame(read_source(path, cfg, "claim_valuation"), cfg, "claim_valuation", TAXONOMY, PSEUDO)
    assert batch.quarantine.is_empty()
    row = batch.good.row(0, named=True)
    assert (row["paid_indemnity"], row["paid_expense"], row["case_reserve"]) == (
        Decimal("1000.50"), Decimal("20.00"), Decimal("300.00"))
    assert batch.warnings == ["claim_valuation: unexpected column(s) ignored: blob, lag"]
