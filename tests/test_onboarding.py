"""Onboarding as a data engineer does it: `onboard check` on a good and a bad layout, the bureau template
filled and loaded, a rejected file retried from the CLI, and a broken config or a crashing reader that
leave every other insurer's data published."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml
from click.testing import CliRunner

from cyberclaims.cli import main
from cyberclaims.ingestion import contract as c
from cyberclaims.ingestion import warehouse
from cyberclaims.ingestion.config import CONFIG_DIR, load_config
from cyberclaims.ingestion.pipeline import content_hash, ingest_insurer
from tests.conftest import materialize, publication_assets
from tests.test_ingestion_truth import expected_frame

POLICY_HEADER = "PolicyNo;InsuredUSCC;Region;Sector;Product;Sections;From;To;Limit EUR;Premium EUR"


def _uscc(serial: int) -> str:
    from cyberclaims.ingestion.pseudonymize import uscc_check_char

    body = f"91350100MA{serial:07d}"
    return body + uscc_check_char(body)


def write_layout(folder: Path) -> Path:
    config = folder / "acme_mutual.yaml"
    config.write_text(yaml.safe_dump({
        "insurer_id": "acme_mutual", "display_name": "Acme Mutual", "mapping_version": "1", "format": "csv",
        "delimiter": ";", "decimal_separator": ",", "thousands_separator": ".", "date_formats": ["%d.%m.%Y"],
        "record_types": {"policy": {
            "file_pattern": "acme_pol_*.csv",
            "columns": {"policy_number": "PolicyNo", "insured_id": "InsuredUSCC", "region_code": "Region",
                        "sector_code": "Sector", "product_type": "Product", "coverage_sections": "Sections",
                        "inception_date": "From", "expiry_date": "To", "limit_amount": "Limit EUR",
                        "written_premium": "Premium EUR"},
            "constants": {"currency": "EUR"},
            "value_maps": {"product_type": {"Cyber Liability": "liability", "Cyber Combined": "comprehensive"}},
        }},
    }), encoding="utf-8")
    return config


def policy_file(folder: Path, rows: list[str]) -> Path:
    path = folder / "acme_pol_202503.csv"
    path.write_text(POLICY_HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_onboard_check_passes_a_clean_layout_and_previews_canonical_rows(tmp_path):
    config = write_layout(tmp_path)
    data = policy_file(tmp_path, [
        f"P-1;{_uscc(1)};350100;finance;Cyber Liability;extortion;01.03.2025;28.02.2026;1.000.000,00;12.500,50",
        f"P-2;{_uscc(2)};310101;energy;Cyber Combined;incident_response;15.03.2025;14.03.2026;500.000,00;4.000,00",
    ])
    result = CliRunner().invoke(main, ["onboard", "check", str(config), str(data)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "rows read 2, would load 2, quarantine 0" in out and "would load cleanly" in out
    assert "written_premium=12500.50" in out and "limit_amount=1000000.00" in out and "inception_date=2025-03-01" in out
    # Identifiers are never shown, not even in a dry run.
    assert _uscc(1) not in out and "P-1" not in out and "policy_key=‹key›" in out


def test_onboard_check_reports_every_problem_of_a_bad_file_and_fails(tmp_path):
    config = write_layout(tmp_path)
    data = policy_file(tmp_path, [
        f"P-1;{_uscc(1)};350100;finance;Cyber liabilty;extortion;01.03.2025;28.02.2026;1.000.000,00;12.500,50",
        f"P-2;{_uscc(2)};310101;energy;Cyber Combined;incident_response;15.03.2025;14.03.2026;500000.00;4.000,00",
        f"P-3;{_uscc(3)};310101;energy;Cyber Combined;incident_response;2025-03-15;14.03.2026;5.000,00;4,000",
    ])
    result = CliRunner().invoke(main, ["onboard", "check", str(config), str(data)])
    assert result.exit_code == 1, result.output
    out = result.output
    assert "rows read 3, would load 0, quarantine 3" in out
    assert "quarantine by reason: AMBIGUOUS_NUMBER 1, INVALID_DATE 1, INVALID_NUMBER 1, UNKNOWN_CODE 1" in out
    assert "unknown code: product_type 'Cyber liabilty' (1 rows) → did you mean 'liability'?" in out
    assert "Limit EUR='500000.00'" in out  # the failing value, quoted for the engineer
    assert "locale: limit_amount (Limit EUR): 1 of 3 values end like decimals written with '.'" in out
    assert "NOT CLEAN" in out and "Traceback" not in out


def test_onboard_check_lists_every_config_problem_at_once(tmp_path):
    config = write_layout(tmp_path)
    doc = yaml.safe_load(config.read_text(encoding="utf-8"))
    doc["delimter"] = ";"
    policy = doc["record_types"]["policy"]
    policy["columns"]["polcy_number"] = policy["columns"].pop("policy_number")
    policy["value_maps"]["product_type"]["Pet"] = "cyber_pet"
    policy["not_delivered"] = ["written_premium"]
    config.write_text(yaml.safe_dump(doc), encoding="utf-8")
    result = CliRunner().invoke(main, ["onboard", "check", str(config)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if str(config) in line]
    expected = [
        "delimter: Extra inputs are not permitted; allowed keys: ",
        "record_types.policy.columns.polcy_number: not a canonical field of policy (did you mean policy_number?)",
        "record_types.policy.value_maps.product_type.Pet: 'cyber_pet' is not a code of tax_product_type",
        "record_types.policy.not_delivered: 'written_premium' is required for pricing",
        "record_types.policy.columns: required canonical field 'policy_number' is not mapped",
    ]
    for fragment in expected:
        assert any(fragment in line for line in lines), (fragment, result.output)
    assert any("delimiter" in line.split("allowed keys:")[-1] for line in lines if "allowed keys" in line)


def _cell(f: c.Field, value):
    """A canonical truth value as a template cell: dates as date cells, lists ';'-joined, money as text."""
    if value is None:
        return None
    if f.kind == "date":
        return datetime(value.year, value.month, value.day)
    if f.kind in ("code_list", "str_list"):
        return ";".join(value) or None
    if f.kind == "bool":
        return "true" if value else "false"
    if f.kind in ("money", "revenue"):
        return str(value)
    return value


@pytest.mark.parametrize("variant", ["xlsx", "csv"])
def test_a_file_filled_from_the_template_loads_with_the_template_config_and_equals_its_truth(sample, tmp_path, variant):
    from openpyxl import load_workbook

    insurer = "template_user"
    out = tmp_path / "template"
    result = CliRunner().invoke(main, ["onboard", "template", "--out", str(out), "--insurer-id", insurer,
                                       "--variant", variant])
    assert result.exit_code == 0, result.output
    cfg = load_config(out / f"{insurer}.yaml")
    landing = tmp_path / "landing"
    (landing / insurer).mkdir(parents=True)
    truths = {}
    for rt in c.RECORD_TYPES:
        truth = sample.truth(rt).filter(pl.col("defect").is_null() & (pl.col("insurer_id") == "dongfang_pc")).head(40)
        truths[rt] = truth
    if variant == "xlsx":
        wb = load_workbook(out / "bureau_template.xlsx")
        # The template's own sheets: a Chinese label row, the canonical header, drop-downs on coded columns.
        assert [cell.value for cell in wb["policy"][2]][:2] == ["policy_number", "insured_id"]
        assert wb["policy"].data_validations.dataValidation, "coded fields carry drop-down lists"
        for rt, truth in truths.items():
            ws = wb[rt]
            for i, row in enumerate(truth.iter_rows(named=True), start=3):
                for j, f in enumerate(c.FIELDS[rt], start=1):
                    ws.cell(i, j, _cell(f, row[f.name]))
        wb.save(landing / insurer / f"{insurer}_202501.xlsx")
        files = {rt: f"{insurer}/{insurer}_202501.xlsx" for rt in c.RECORD_TYPES}
    else:
        files = {}
        for rt, truth in truths.items():
            header = (out / f"bureau_template_{rt}.csv").read_text(encoding="utf-8-sig").strip()
            assert header == ",".join(f.name for f in c.FIELDS[rt])
            frame = truth.select(
                pl.col(f.name).dt.strftime("%Y-%m-%d") if f.kind == "date"
                else pl.col(f.name).list.join(";") if f.kind in ("code_list", "str_list")
                else pl.col(f.name).cast(pl.String) for f in c.FIELDS[rt])
            name = f"{insurer}_{rt}_202501.csv"
            (landing / insurer / name).write_bytes(frame.write_csv(null_value="").encode("utf-8-sig"))
            files[rt] = f"{insurer}/{name}"
    con = warehouse.connect(tmp_path / "wh.duckdb")
    summary = ingest_insurer(con, cfg, landing, sample.pseudonymizer())
    assert all(o.status == "loaded" for o in summary.outcomes), [o.error for o in summary.outcomes]
    assert summary.rows_quarantined == 0 and summary.rows_loaded == sum(t.height for t in truths.values())
    for rt, truth in truths.items():
        relabelled = truth.with_columns(pl.lit(insurer).alias("insurer_id"), pl.lit(files[rt]).alias("source_file"),
                                        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("source_row"))
        expected = expected_frame(relabelled, rt, sample.pseudonymizer(), cfg.delivered_fields(rt))
        loaded = con.sql(f"SELECT * EXCLUDE (submission_id, ingested_at, mapping_version) FROM raw.{c.RAW_TABLE[rt]}").pl()
        joined = expected.join(loaded, on=["insurer_id", "source_file", "source_row"], how="left", suffix="__wh",
                               validate="1:1")
        for column in expected.columns:
            if column in ("insurer_id", "source_file", "source_row"):
                continue
            bad = joined.filter(~pl.col(column).eq_missing(pl.col(f"{column}__wh").cast(expected.schema[column])))
            assert bad.is_empty(), (rt, column, bad.select(column, f"{column}__wh").head(3).to_dicts())


def test_a_rejected_file_is_listed_shown_and_retried_from_the_cli(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    monkeypatch.setenv("CYBERCLAIMS_DATA_DIR", str(data_dir))
    monkeypatch.delenv("CYBERCLAIMS_DUCKDB", raising=False)
    config_dir = tmp_path / "configs"
    config_dir.mkdir()
    config = write_layout(config_dir)
    cfg = load_config(config)
    landing = data_dir / "landing" / "acme_mutual"
    landing.mkdir(parents=True)
    good = f"P-1;{_uscc(1)};350100;finance;Cyber Liability;extortion;01.03.2025;28.02.2026;1.000.000,00;12.500,50"
    broken = landing / "acme_pol_202503.csv"
    broken.write_text(POLICY_HEADER.replace(";", "|") + "\n" + good.replace(";", "|") + "\n", encoding="utf-8")
    from cyberclaims.ingestion.pseudonymize import Pseudonymizer

    with warehouse.connect(data_dir / "warehouse" / "cyberclaims.duckdb") as con:
        outcome = ingest_insurer(con, cfg, data_dir / "landing", Pseudonymizer(b"k" * 32)).outcomes[0]
    assert outcome.status == "rejected" and "expected column(s) missing" in outcome.error
    sid = content_hash(broken)

    runner = CliRunner()
    listed = runner.invoke(main, ["submissions", "list", "--status", "rejected"])
    assert listed.exit_code == 0 and sid[:16] in listed.output and "file not read: policy: expected column(s)" in listed.output
    shown = runner.invoke(main, ["submissions", "show", sid[:12]])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["error"] == outcome.error
    retried = runner.invoke(main, ["submissions", "retry", sid[:12], "--note", "layout fixed", "--reviewer", "ops"])
    assert retried.exit_code == 0 and "will be read again" in retried.output
    with warehouse.connect(data_dir / "warehouse" / "cyberclaims.duckdb") as con:
        assert con.execute("SELECT actor, note FROM control.submission_gate_log WHERE status = 'retry'").fetchall() == [
            ("ops", "layout fixed")]
        # The insurer fixes its delimiter in the layout: the same file now loads.
        fixed = cfg.model_copy(update={"delimiter": "|"})
        again = ingest_insurer(con, fixed, data_dir / "landing", Pseudonymizer(b"k" * 32)).outcomes[0]
    assert again.status == "loaded" and again.rows_loaded == 1


@pytest.mark.e2e
def test_a_broken_config_and_a_crashing_reader_leave_every_other_insurer_published(sample, tmp_path, monkeypatch):
    """A seventh insurer's config is invalid and one of Tianfu's new files makes its reader raise: the cycle
    succeeds, the broken insurer's asset reports its config error, the crash file is rejected with its error,
    and the published version holds every other insurer's submissions, Tianfu's other new file included."""
    import cyberclaims.ingestion.readers as readers
    sector_claims_db, _ = publication_assets()
    from tests.conftest import all_assets, make_resources

    data_dir = tmp_path / "data"
    db = data_dir / "warehouse" / "cyberclaims.duckdb"
    db.parent.mkdir(parents=True)
    sample.scratch_copy(db)
    shutil.copytree(sample.landing, data_dir / "landing")
    configs = tmp_path / "configs"
    shutil.copytree(CONFIG_DIR, configs)
    broken = yaml.safe_load((configs / "dongfang_pc.yaml").read_text(encoding="utf-8"))
    broken["insurer_id"] = "zeta_broken"
    broken["record_types"]["policy"]["columns"]["premium"] = broken["record_types"]["policy"]["columns"].pop("written_premium")
    (configs / "zeta_broken.yaml").write_text(yaml.safe_dump(broken, allow_unicode=True), encoding="utf-8")
    zeta = data_dir / "landing" / "zeta_broken"
    zeta.mkdir()
    shutil.copy(next((sample.landing / "dongfang_pc").glob("policies_*.csv")), zeta / "policies_202501.csv")

    tianfu = data_dir / "landing" / "tianfu_digital"
    last = sorted(tianfu.glob("tf_claim_*.parquet"))[-1]
    frame = pl.read_parquet(last)
    later = frame.with_columns(pl.col("val_dt") + pl.duration(days=31)) if frame.schema["val_dt"] == pl.Date else frame
    crash, fine = tianfu / "tf_claim_209901.parquet", tianfu / "tf_claim_209902.parquet"
    later.head(5).write_parquet(crash)
    later.write_parquet(fine)
    real = readers.read_parquet

    def fragile(path, sep):
        if path.name == crash.name:
            raise ZeroDivisionError("a reader bug this file triggers")
        return real(path, sep)

    monkeypatch.setattr(readers, "read_parquet", fragile)
    monkeypatch.setenv("CYBERCLAIMS_CONFIG_DIR", str(configs))
    result = materialize([*all_assets(), sector_claims_db], make_resources(data_dir, db), raise_on_error=False)
    assert result.success, "one insurer's broken config or crashing file never stops the cycle"

    checks = {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}
    config_check = checks[("zeta_broken_submissions", "config")]
    assert not config_check.passed and "record_types.policy.columns.premium" in config_check.description
    zeta_event = next(e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "zeta_broken_submissions")
    assert zeta_event.materialization.metadata["disabled"].value is True

    with duckdb.connect(str(db), read_only=True) as con:
        status = dict(con.execute("SELECT source_file, status || coalesce(': ' || error, '') FROM control.submissions "
                                  "WHERE source_file LIKE 'tianfu_digital/tf_claim_2099%'").fetchall())
        assert con.execute("SELECT count(*) FROM control.submissions WHERE insurer_id = 'zeta_broken'").fetchall() == [(0,)]
    assert status["tianfu_digital/tf_claim_209901.parquet"] == (
        "rejected: unexpected error while reading the file (ZeroDivisionError: a reader bug this file triggers)")
    assert status["tianfu_digital/tf_claim_209902.parquet"] == "loaded"

    with duckdb.connect(str(data_dir / "published" / "sector_claims.duckdb"), read_only=True) as con:
        included = set(json.loads(con.execute(
            "SELECT value FROM publication_manifest WHERE key = 'submissions_included'").fetchall()[0][0]))
    with duckdb.connect(str(db), read_only=True) as con:
        admitted = {r[0] for r in con.execute(
            "SELECT submission_id FROM control.submission_gate WHERE status IN ('passed', 'released')").fetchall()}
        insurers = {r[0] for r in con.execute(
            "SELECT DISTINCT insurer_id FROM control.submissions WHERE submission_id IN (SELECT unnest(?))", [sorted(included)]
        ).fetchall()}
    assert included == admitted and content_hash(fine) in included
    assert insurers == set(load_sample_insurers(sample))


def load_sample_insurers(sample) -> list[str]:
    return sorted(sample.truth("files")["insurer_id"].unique())



def test_the_feedback_shows_the_fields_an_insurer_does_not_deliver(sample):
    from cyberclaims.ingestion.config import load_all_configs
    from cyberclaims.publication.feedback import _html, submission_reports

    configs = load_all_configs()
    with sample.con() as con:
        reports = submission_reports(con, {})
    declared = {(i, rt): set(configs[i].record_types[rt].not_delivered) for i in configs for rt in configs[i].record_types}
    assert any(declared.values()), "the sample market has an insurer that declares fields not delivered"
    for report in reports:
        if report["status"] != "loaded":
            continue
        cfg = configs[report["insurer_id"]]
        for rt, names in report["not_delivered"].items():
            # Declared or simply unmapped: exactly the fields the config does not deliver, NULL on every row.
            assert set(names) == {f for f in cfg.sources(rt) if f not in cfg.delivered_fields(rt)}
            assert declared[(report["insurer_id"], rt)] <= set(names)
            for f in report["fields"][rt]:
                if f["field"] in names:
                    assert f["rows_with_value"] == 0
    lindenhof = next(r for r in reports if r["insurer_id"] == "lindenhof_eu" and "policy" in r["not_delivered"]
                     and r["status"] == "loaded")
    assert "coverage_sections" in lindenhof["not_delivered"]["policy"]
    page = _html(lindenhof)
    assert "Fields delivered" in page and "not delivered" in page and "coverage_sections" in page
