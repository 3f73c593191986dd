"""Hostile files in a landing folder: each attack is planted beside good files of the same insurer, and each test
checks that the bad file becomes a recorded rejection (or its rows a quarantine with the right reason), that the
insurer's other files still load, and that no delivered value is quoted back in a message.

Attacks: headers duplicated once blanks are stripped, hostile manifests, file names that are not UTF-8 or that are
glob patterns, reader errors that would quote the file, non-finite numbers, overlong values, implausible dates,
symbolic links out of the landing folder, and the same bytes delivered by two insurers."""

from __future__ import annotations

import json
import os
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from cyberclaims.ingestion import contract as c
from cyberclaims.ingestion import warehouse
from cyberclaims.ingestion.pipeline import content_hash, ingest_file, ingest_insurer
from tests.test_layout_features import (
    CLAIM_ROW,
    INSURER,
    PSEUDO,
    claims_config,
    config,
    mapped,
    reasons,
    valid_uscc,
)

SECRET = "C-SECRET-4711"  # a delivered value no message may quote


def landing(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "landing"
    folder = root / INSURER
    folder.mkdir(parents=True)
    return root, folder


def csv_text(rows: list[dict], header: list[str] | None = None) -> str:
    header = header or list(rows[0])
    return ",".join(header) + "\n" + "".join(",".join(r.values()) + "\n" for r in rows)


def good_csv(folder: Path, name: str = "claims_202501.csv", claim: str = "C-GOOD") -> Path:
    path = folder / name
    path.write_text(csv_text([CLAIM_ROW | {"Claim": claim}]))
    return path


def submissions(con) -> dict[str, tuple[str, str | None]]:
    return {f: (s, e) for f, s, e in con.execute("SELECT source_file, status, error FROM control.submissions").fetchall()}


def assert_rejected_and_rest_loads(con, summary, bad: str, *needles: str, rows_loaded: int = 1) -> str:
    """The bad file is a recorded rejection whose reason holds each needle and no delivered value; the rest loads."""
    outcomes = {o.source_file: o for o in summary.outcomes}
    outcome = outcomes[bad]
    assert outcome.status == "rejected", (outcome.status, outcome.error)
    recorded = submissions(con)[bad]
    assert recorded == ("rejected", outcome.error)
    for needle in needles:
        assert needle in outcome.error, outcome.error
    assert SECRET not in outcome.error
    others = [o for f, o in outcomes.items() if f != bad]
    assert others and all(o.status == "loaded" for o in others), [(o.source_file, o.status, o.error) for o in others]
    assert con.execute("SELECT count(*) FROM raw.claim_valuations").fetchone()[0] == rows_loaded
    return outcome.error


def quarantine(con) -> list[tuple[int, list[str], str]]:
    return con.execute("SELECT source_row, reasons, original_values::VARCHAR FROM raw.quarantine ORDER BY source_row").fetchall()


# --------------------------------------------------------------------------- 1. duplicated headers


@pytest.mark.parametrize("extra", ["Ccy", " Ccy", "Ccy ", "\tCcy"])
def test_a_csv_header_duplicated_once_blanks_are_stripped_is_a_recorded_rejection(tmp_path, extra):
    cfg = claims_config(tmp_path)
    root, folder = landing(tmp_path)
    good_csv(folder)
    row = CLAIM_ROW | {"Claim": SECRET}
    (folder / "claims_202502.csv").write_text(csv_text([row | {"__extra": "USD"}], [*CLAIM_ROW, extra]))
    con = warehouse.connect(tmp_path / "wh.duckdb")
    summary = ingest_insurer(con, cfg, root, PSEUDO)
    assert_rejected_and_rest_loads(con, summary, f"{INSURER}/claims_202502.csv", "duplicate column name", "'Ccy'")


@pytest.mark.parametrize("extra", ["Claim", " Claim", "Claim "])
def test_an_xlsx_header_duplicated_once_blanks_are_stripped_is_a_recorded_rejection(tmp_path, extra):
    import xlsxwriter

    cfg = claims_config(tmp_path, format="excel", file_pattern="claims_*.xlsx")
    root, folder = landing(tmp_path)
    for name, claim, header in (("claims_202501.xlsx", "C-GOOD", list(CLAIM_ROW)),
                                ("claims_202502.xlsx", SECRET, [*CLAIM_ROW, extra])):
        wb = xlsxwriter.Workbook(str(folder / name))
        ws = wb.add_worksheet("Claims")
        ws.write_row(0, 0, header)
        ws.write_row(1, 0, [*(CLAIM_ROW | {"Claim": claim}).values(), "C-OTHER"][: len(header)])
        wb.close()
    con = warehouse.connect(tmp_path / "wh.duckdb")
    summary = ingest_insurer(con, cfg, root, PSEUDO)
    assert_rejected_and_rest_loads(con, summary, f"{INSURER}/claims_202502.xlsx", "duplicate column name", "'Claim'")


# --------------------------------------------------------------------------- 2. hostile manifests


def _manifest(total) -> str:
    return json.dumps({"manifest_version": "1", "data_file": "claims_202502.csv",
                       "record_types": {"claim_valuation": {"row_count": 1, "totals": {"Paid": total}}}})


@pytest.mark.parametrize("manifest, reason", [
    ("[" * 10_000 + "]" * 10_000, "nested deeper than"),
    ('{"a": ' * 10_000 + "1" + "}" * 10_000, "nested deeper than"),
    (_manifest("NaN"), "not a finite number"),
    (_manifest("-Infinity"), "not a finite number"),
    (_manifest("sNaN"), "not a finite number"),
    (_manifest(1).replace("1}}", "NaN}}"), "not a finite number"),  # the non-standard NaN literal
    (_manifest(1).replace("1}}", "1e999}}"), "not a finite number"),  # a float that overflows to infinity
    (_manifest("1e400"), "beyond any amount"),
])
def test_a_hostile_manifest_rejects_its_submission_with_a_clear_reason(tmp_path, manifest, reason):
    cfg = claims_config(tmp_path)
    root, folder = landing(tmp_path)
    good_csv(folder)
    good_csv(folder, "claims_202502.csv", SECRET)
    (folder / "claims_202502.csv.manifest.json").write_text(manifest)
    con = warehouse.connect(tmp_path / "wh.duckdb")
    summary = ingest_insurer(con, cfg, root, PSEUDO)
    error = assert_rejected_and_rest_loads(con, summary, f"{INSURER}/claims_202502.csv", reason)
    assert error.startswith(f"manifest {INSURER}/claims_202502.csv.manifest.json: "), error
    assert "unexpected error" not in error


# --------------------------------------------------------------------------- 3. file names that are not UTF-8


def test_a_file_name_that_is_not_utf8_is_rejected_with_the_name_escaped(tmp_path):
    cfg = claims_config(tmp_path)
    root, folder = landing(tmp_path)
    good_csv(folder)
    bad = os.path.join(os.fsencode(folder), b"claims_2025\xff\xfe.csv")
    fd = os.open(bad, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, csv_text([CLAIM_ROW | {"Claim": SECRET}]).encode())
    os.close(fd)
    con = warehouse.connect(tmp_path / "wh.duckdb")
    summary = ingest_insurer(con, cfg, root, PSEUDO)
    name = f"{INSURER}/claims_2025\\xff\\xfe.csv"
    assert_rejected_and_rest_loads(con, summary, name, "not valid UTF-8")
    # The next run neither crashes nor reads the file again.
    again = ingest_insurer(con, cfg, root, PSEUDO)
    assert {o.source_file: o.status for o in again.outcomes} == {
        name: "already_rejected", f"{INSURER}/claims_202501.csv": "already_loaded"}


# --------------------------------------------------------------------------- 4. messages quote no delivered value


def test_an_unbalanced_quote_is_reported_by_line_never_by_content(tmp_path):
    cfg = claims_config(tmp_path)
    root, folder = landing(tmp_path)
    good_csv(folder)
    rows = [CLAIM_ROW | {"Claim": "C-2"}, CLAIM_ROW | {"Claim": '"' + SECRET, "Policy": "ACME Trading Ltd"}]
    (folder / "claims_202502.csv").write_text(csv_text(rows))
    con = warehouse.connect(tmp_path / "wh.duckdb")
    summary = ingest_insurer(con, cfg, root, PSEUDO)
    error = assert_rejected_and_rest_loads(con, summary, f"{INSURER}/claims_202502.csv", "unbalanced quote", "line 3")
    assert "ACME" not in error and "extortion" not in error and "2025-03" not in error


def test_malformed_json_lines_are_reported_without_their_content_or_the_path(tmp_path):
    cfg = claims_config(tmp_path, format="jsonl", file_pattern="claims_*.jsonl")
    root, folder = landing(tmp_path)
    (folder / "claims_202501.jsonl").write_text(json.dumps(CLAIM_ROW) + "\n")
    (folder / "claims_202502.jsonl").write_text(json.dumps(CLAIM_ROW)[:-1] + f', "x": {SECRET}}}\n')
    con = warehouse.connect(tmp_path / "wh.duckdb")
    summary = ingest_insurer(con, cfg, root, PSEUDO)
    error = assert_rejected_and_rest_loads(con, summary, f"{INSURER}/claims_202502.jsonl", "malformed JSON Lines")
    assert str(tmp_path) not in error


def test_an_unexpected_error_quoting_a_value_is_reported_without_it(tmp_path, monkeypatch):
    import cyberclaims.ingestion.readers as readers

    cfg = claims_config(tmp_path)
    root, folder = landing(tmp_path)
    good_csv(folder)
    good_csv(folder, "claims_202502.csv", SECRET)
    real = readers.read_csv

    def fragile(path, spec):
        if path.name == "claims_202502.csv":
            raise ValueError(f"could not convert '{SECRET}' to a number: `{SECRET},I-1` (\"{SECRET}\")")
        return real(path, spec)

    monkeypatch.setattr(readers, "read_csv", fragile)
    con = warehouse.connect(tmp_path / "wh.duckdb")
    summary = ingest_insurer(con, cfg, root, PSEUDO)
    assert_rejected_and_rest_loads(con, summary, f"{INSURER}/claims_202502.csv", "ValueError", "could not convert")


# --------------------------------------------------------------------------- 5. glob characters in names


def _write(fmt: str, path: Path, claim: str) -> None:
    row = CLAIM_ROW | {"Claim": claim}
    if fmt == "csv":
        path.write_text(csv_text([row]))
    elif fmt == "parquet":
        pl.DataFrame([row]).write_parquet(path)
    else:
        path.write_text(json.dumps(row) + "\n")


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
@pytest.mark.parametrize("stem", ["claims_2025*", "claims_2025?", "claims_202[5]?", "claims_{20251,20252}"])
def test_a_file_named_like_a_glob_pattern_reads_only_itself(tmp_path, fmt, stem):
    cfg = claims_config(tmp_path, format=fmt)
    root, folder = landing(tmp_path)
    names = [f"{stem}.{fmt}", f"claims_20251.{fmt}", f"claims_20252.{fmt}"]
    for i, name in enumerate(names):
        _write(fmt, folder / name, f"C-{i}")
    con = warehouse.connect(tmp_path / "wh.duckdb")
    summary = ingest_insurer(con, cfg, root, PSEUDO)
    loaded = {o.source_file: (o.status, o.rows_loaded, o.error) for o in summary.outcomes}
    assert loaded == {f"{INSURER}/{n}": ("loaded", 1, None) for n in names}
    assert con.execute("SELECT count(*) FROM raw.claim_valuations").fetchone()[0] == 3


# --------------------------------------------------------------------------- 6. non-finite numbers


NON_FINITE_TEXT = ["inf", "-inf", "Infinity", "NaN", "nan", "1e308", "1E+308", "-1e308"]


def test_non_finite_text_numbers_are_quarantined(tmp_path):
    cfg = claims_config(tmp_path)
    root, folder = landing(tmp_path)
    good_csv(folder)
    rows = [CLAIM_ROW | {"Claim": f"C-{i}", "Paid": v} for i, v in enumerate(NON_FINITE_TEXT)]
    (folder / "claims_202502.csv").write_text(csv_text(rows))
    con = warehouse.connect(tmp_path / "wh.duckdb")
    summary = ingest_insurer(con, cfg, root, PSEUDO)
    assert [(o.status, o.rows_loaded, o.rows_quarantined) for o in summary.outcomes] == [("loaded", 1, 0),
                                                                                     ("loaded", 0, len(rows))]
    assert {tuple(r) for _, r, _ in quarantine(con)} == {(f"{c.REASON_INVALID_NUMBER}:paid_indemnity",)}


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_non_finite_native_numbers_are_quarantined(tmp_path, fmt):
    cfg = claims_config(tmp_path, format=fmt)
    root, folder = landing(tmp_path)
    values = [float("inf"), float("-inf"), 1e308, -1e308] + ([float("nan")] if fmt == "parquet" else [])
    rows = [CLAIM_ROW | {"Claim": f"C-{i}", "Paid": v, "Fees": 1.5, "Reserve": 2.0} for i, v in enumerate(values)]
    rows.append(CLAIM_ROW | {"Claim": "C-GOOD", "Paid": 10.25, "Fees": 1.5, "Reserve": 2.0})
    path = folder / f"claims_202502.{fmt}"
    if fmt == "parquet":
        pl.DataFrame(rows).write_parquet(path)
    else:  # JSON has no infinity: 1e999 is the number a writer emits for it
        path.write_text("".join(json.dumps(r).replace("-Infinity", "-1e999").replace("Infinity", "1e999") + "\n"
                                for r in rows))
    con = warehouse.connect(tmp_path / "wh.duckdb")
    summary = ingest_insurer(con, cfg, root, PSEUDO)
    assert [(o.status, o.rows_loaded, o.rows_quarantined) for o in summary.outcomes] == [("loaded", 1, len(values))]
    assert {tuple(r) for _, r, _ in quarantine(con)} == {(f"{c.REASON_INVALID_NUMBER}:paid_indemnity",)}


def test_non_finite_hours_and_counts_are_quarantined(tmp_path):
    cfg = config(tmp_path, {"incident": {"file_pattern": "inc_*", "columns": {
        "incident_number": "Ref", "policy_number": "Policy", "insured_id": "USCC", "occurred_date": "Occurred",
        "reported_date": "Reported", "incident_type": "Type", "downtime_hours": "Hours", "records_affected": "Records"}}})
    base = {"Ref": "I-1", "Policy": "P-1", "USCC": valid_uscc(), "Occurred": "2025-03-01", "Reported": "2025-03-04",
            "Type": "ransomware", "Hours": "12.5", "Records": "10"}
    rows = [base | {"Ref": f"I-{i}", "Hours": v} for i, v in enumerate(NON_FINITE_TEXT)]
    rows += [base | {"Ref": f"J-{i}", "Records": v} for i, v in enumerate(NON_FINITE_TEXT)]
    rows.append(base | {"Ref": "I-GOOD"})
    batch = mapped(cfg, rows, "incident")
    assert batch.good.height == 1
    got = set(map(tuple, reasons(batch).values()))
    assert got == {(f"{c.REASON_INVALID_NUMBER}:downtime_hours",), (f"{c.REASON_INVALID_NUMBER}:records_affected",)}


# --------------------------------------------------------------------------- 7. overlong values


@pytest.mark.parametrize("column, field", [("Claim", "claim_number"), ("Status", "status"), ("Paid", "paid_indemnity"),
                                           ("Reported", "report_date")])
def test_a_value_longer_than_the_cap_is_quarantined_and_only_a_sample_is_kept(tmp_path, column, field):
    cfg = claims_config(tmp_path)
    root, folder = landing(tmp_path)
    good_csv(folder)
    long = "9" * (c.MAX_VALUE_LENGTH + 1) if column == "Paid" else SECRET + "x" * 5_000
    just_fits = "y" * c.MAX_VALUE_LENGTH
    rows = [CLAIM_ROW | {"Claim": "C-1", column: long}, CLAIM_ROW | {"Claim": "C-2", "Status": just_fits}]
    (folder / "claims_202502.csv").write_text(csv_text(rows))
    con = warehouse.connect(tmp_path / "wh.duckdb")
    summary = ingest_insurer(con, cfg, root, PSEUDO)
    assert [o.status for o in summary.outcomes] == ["loaded", "loaded"]
    (row1, reasons1, original1), (row2, reasons2, _) = quarantine(con)
    assert row1 == 1 and f"{c.REASON_TOO_LONG}:{field}" in reasons1
    # The row one character shorter is not too long (its status is simply no code).
    assert row2 == 2 and reasons2 == ["UNKNOWN_CODE:status"]
    assert len(original1) < 1_000 and "x" * 100 not in original1 and "9" * 100 not in original1
    assert all(len(v) <= c.QUARANTINE_SAMPLE + 1 for v in json.loads(original1).values())
    assert c.REASON_TOO_LONG in c.REASON_DESCRIPTIONS


# --------------------------------------------------------------------------- 8. implausible dates


def test_claim_dates_outside_the_plausible_window_are_out_of_range(tmp_path):
    cfg = claims_config(tmp_path)
    root, folder = landing(tmp_path)
    good_csv(folder)
    today = date.today()
    far = today.replace(year=today.year + 6).isoformat() if (today.month, today.day) != (2, 29) else "2999-01-01"
    rows = [
        CLAIM_ROW | {"Claim": "C-1", "Reported": "1066-10-14"},
        CLAIM_ROW | {"Claim": "C-2", "Reported": "1989-12-31"},
        CLAIM_ROW | {"Claim": "C-3", "Valued": far},
        CLAIM_ROW | {"Claim": "C-4", "Reported": "1990-01-01", "Valued": (today + timedelta(days=365 * 4)).isoformat()},
    ]
    (folder / "claims_202502.csv").write_text(csv_text(rows))
    con = warehouse.connect(tmp_path / "wh.duckdb")
    summary = ingest_insurer(con, cfg, root, PSEUDO)
    assert [(o.status, o.rows_loaded, o.rows_quarantined) for o in summary.outcomes] == [("loaded", 1, 0),
                                                                                     ("loaded", 1, 3)]
    got = {row: r for row, r, _ in quarantine(con)}
    assert got == {1: [f"{c.REASON_OUT_OF_RANGE}:report_date"], 2: [f"{c.REASON_OUT_OF_RANGE}:report_date"],
                   3: [f"{c.REASON_OUT_OF_RANGE}:valuation_date"]}


def test_a_policy_expiry_may_lie_further_ahead_than_an_event_date(tmp_path):
    cfg = config(tmp_path, {"policy": {"file_pattern": "pol_*", "columns": {
        "policy_number": "Policy", "insured_id": "USCC", "region_code": "Region", "sector_code": "Sector",
        "product_type": "Product", "coverage_sections": "Sections", "inception_date": "From", "expiry_date": "To",
        "limit_amount": "Limit", "written_premium": "Premium", "currency": "Ccy"}}})
    today = date.today()
    base = {"Policy": "P-1", "USCC": valid_uscc(), "Region": "350100", "Sector": "finance", "Product": "liability",
            "Sections": "extortion", "From": "2025-01-01", "To": "2026-01-01", "Limit": "1000", "Premium": "10",
            "Ccy": "EUR"}
    in8 = (today + timedelta(days=365 * 8)).isoformat()
    in11 = (today + timedelta(days=365 * 11 + 3)).isoformat()
    batch = mapped(cfg, [base, base | {"Policy": "P-2", "To": in8}, base | {"Policy": "P-3", "To": in11},
                         base | {"Policy": "P-4", "From": in8, "To": in8}], "policy")
    assert reasons(batch) == {3: [f"{c.REASON_OUT_OF_RANGE}:expiry_date"], 4: [f"{c.REASON_OUT_OF_RANGE}:inception_date"]}
    assert batch.good.height == 2


# --------------------------------------------------------------------------- 9. symbolic links out of the folder


def test_a_symlink_out_of_the_landing_folder_is_refused_unread(tmp_path, monkeypatch):
    import cyberclaims.ingestion.pipeline as pipeline

    cfg = claims_config(tmp_path)
    root, folder = landing(tmp_path)
    good_csv(folder)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    secret = good_csv(outside, "claims_secret.csv", SECRET)
    other_insurer = root / "other_insurer"
    other_insurer.mkdir()
    theirs = good_csv(other_insurer, "claims_theirs.csv", SECRET)
    (folder / "claims_202502.csv").symlink_to(secret)
    (folder / "claims_202503.csv").symlink_to(Path("..") / "other_insurer" / "claims_theirs.csv")
    (folder / "sub").symlink_to(outside, target_is_directory=True)
    inside = folder / "claims_202504.csv"
    inside.symlink_to(folder / "claims_202501.csv")  # a link within the folder is read (the same content)
    hashed: list[Path] = []
    real = pipeline.content_hash
    monkeypatch.setattr(pipeline, "content_hash", lambda p: hashed.append(p) or real(p))
    con = warehouse.connect(tmp_path / "wh.duckdb")
    files = [*pipeline.landing_files(root, INSURER), folder / "sub" / "claims_secret.csv"]
    summary = ingest_insurer(con, cfg, root, PSEUDO, files=files)
    outcomes = {o.source_file: o for o in summary.outcomes}
    for bad in ("claims_202502.csv", "claims_202503.csv", "sub/claims_secret.csv"):
        outcome = outcomes[f"{INSURER}/{bad}"]
        assert outcome.status == "rejected" and "symbolic link that leads outside" in outcome.error, outcome
        assert submissions(con)[f"{INSURER}/{bad}"] == ("rejected", outcome.error)
        assert outcome.submission_id not in (content_hash(secret), content_hash(theirs))
    assert outcomes[f"{INSURER}/claims_202501.csv"].status == "loaded"
    assert outcomes[f"{INSURER}/claims_202504.csv"].status == "already_loaded"
    assert secret not in hashed and theirs not in hashed and all(p.resolve().is_relative_to(folder) for p in hashed)
    assert con.execute("SELECT count(*) FROM raw.claim_valuations").fetchone()[0] == 1
    again = ingest_insurer(con, cfg, root, PSEUDO, files=files)
    assert {o.status for o in again.outcomes} == {"already_rejected", "already_loaded"}


# --------------------------------------------------------------------------- 10. submission identity


def test_the_same_bytes_from_two_insurers_are_two_submissions(tmp_path):
    root = tmp_path / "landing"
    cfgs = {}
    for insurer in ("acme_mutual", "zenith_re"):
        (root / insurer).mkdir(parents=True)
        (root / insurer / "claims_202501.csv").write_text(csv_text([CLAIM_ROW]))
        sub = tmp_path / insurer
        sub.mkdir()
        cfgs[insurer] = claims_config(sub).model_copy(update={"insurer_id": insurer})
    con = warehouse.connect(tmp_path / "wh.duckdb")
    first = ingest_insurer(con, cfgs["acme_mutual"], root, PSEUDO)
    second = ingest_insurer(con, cfgs["zenith_re"], root, PSEUDO)
    assert [o.status for o in first.outcomes] == [o.status for o in second.outcomes] == ["loaded"]
    ids = {first.outcomes[0].submission_id, second.outcomes[0].submission_id}
    assert len(ids) == 2 and content_hash(root / "acme_mutual" / "claims_202501.csv") in ids
    assert sorted(con.execute("SELECT insurer_id, status FROM control.submissions").fetchall()) == [
        ("acme_mutual", "loaded"), ("zenith_re", "loaded")]
    assert sorted(con.execute("SELECT insurer_id FROM raw.claim_valuations").fetchall()) == [
        ("acme_mutual",), ("zenith_re",)]
    assert sorted(con.execute("SELECT insurer_id, status FROM control.submission_gate").fetchall()) == [
        ("acme_mutual", "pending"), ("zenith_re", "pending")]
    # Each prefix of the two ids resolves to its own submission; each insurer's next run knows its own file.
    for sid in ids:
        assert warehouse.resolve_submission_id(con, sid[:12]) == sid
    assert [o.status for o in ingest_insurer(con, cfgs["zenith_re"], root, PSEUDO).outcomes] == ["already_loaded"]
    os.utime(root / "zenith_re" / "claims_202501.csv", ns=(1, 1))  # touched: hashed again, still its own
    again = ingest_file(con, root / "zenith_re" / "claims_202501.csv", root, cfgs["zenith_re"], PSEUDO)
    assert again.status == "already_loaded" and again.submission_id == second.outcomes[0].submission_id
