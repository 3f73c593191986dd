"""Insurer free text at ingestion and at publication.

A stored text field is published, so an identity in one (a unified social credit code in a pilot code, an insurer's
id in a campaign reference or a CVE list) used to fail the sector's publication audit for every insurer. Now such a
row is quarantined at its own submission (IDENTITY_IN_TEXT), a coded field out of its shape too (INVALID_FORMAT), and
the rest of the file and the other insurers load. When the audit still fires (a value planted in the warehouse after
ingestion), it names the submissions whose rows carry the value and the command that revokes each.

Every expected reason and value here is worked out by hand from the delivered text."""

from __future__ import annotations

import json
import os
import shlex

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner

from cyberclaims.ingestion import contract as c
from cyberclaims.ingestion import warehouse
from cyberclaims.ingestion.mapping import WITHHELD
from cyberclaims.ingestion.pipeline import ingest_insurer
from cyberclaims.publication.publish import PublicationCheckFailed, existing_versions, publish
from tests.test_hardening_files import csv_text, landing
from tests.test_layout_features import INSURER, PSEUDO, config, mapped, reasons, valid_uscc
from tests.test_publication import digest, published, tables  # noqa: F401 - published is a fixture

OTHER_INSURER = "dongfang_pc"  # a bundled config: an insurer id of the bureau other than the one delivering
FORMAT, IDENTITY = c.REASON_INVALID_FORMAT, c.REASON_IDENTITY_IN_TEXT

POLICY_COLUMNS = {
    "policy_number": "Policy", "insured_id": "USCC", "region_code": "Region", "sector_code": "Sector",
    "product_type": "Product", "coverage_sections": "Sections", "inception_date": "From", "expiry_date": "To",
    "limit_amount": "Limit", "written_premium": "Premium", "currency": "Ccy", "pilot_code": "Pilot",
}
INCIDENT_COLUMNS = {
    "incident_number": "Incident", "policy_number": "Policy", "insured_id": "USCC", "occurred_date": "Occurred",
    "reported_date": "Reported", "incident_type": "Type", "cve_ids": "CVEs", "systemic_event_ref": "Campaign",
}


def policy_row(n: int, pilot: str = "") -> dict:
    return {"Policy": f"PN-2024-{n:04d}", "USCC": valid_uscc(), "Region": "350100", "Sector": "finance",
            "Product": "liability", "Sections": "extortion", "From": "2024-01-01", "To": "2024-12-31",
            "Limit": "1000000", "Premium": "10000", "Ccy": "CNY", "Pilot": pilot}


def incident_row(n: int, cves: str = "", campaign: str = "") -> dict:
    return {"Incident": f"INC-2024-{n:04d}", "Policy": f"PN-2024-{n:04d}", "USCC": valid_uscc(),
            "Occurred": "2024-07-19", "Reported": "2024-07-22", "Type": "ransomware", "CVEs": cves,
            "Campaign": campaign}


def freetext_config(tmp_path, insurer: str = INSURER):
    cfg = config(tmp_path, {
        "policy": {"file_pattern": "pol_*.csv", "columns": POLICY_COLUMNS},
        "incident": {"file_pattern": "inc_*.csv", "columns": INCIDENT_COLUMNS},
    })
    return cfg.model_copy(update={"insurer_id": insurer})


# --------------------------------------------------------------------------- the rules, field by field


@pytest.mark.parametrize("pilot, stored", [
    ("PILOT-2024-TEL", "PILOT-2024-TEL"),  # what the bundled sample delivers
    ("pilot-2023-fin", "PILOT-2023-FIN"),  # upper case, so one code links across insurers
    ("ＰＩＬＯＴ－２０２４－ＩＯＴ", "PILOT-2024-IOT"),  # full-width, as typed in a Chinese spreadsheet
    ("MIIT-NFRA-2024-07", "MIIT-NFRA-2024-07"),  # another issuer's programme code
])
def test_a_pilot_code_of_its_shape_loads(tmp_path, pilot, stored):
    batch = mapped(freetext_config(tmp_path), [policy_row(1, pilot)], "policy")
    assert batch.quarantine.is_empty(), batch.quarantine.to_dicts()
    assert batch.good["pilot_code"].to_list() == [stored]


@pytest.mark.parametrize("pilot, reason", [
    (valid_uscc(), IDENTITY),  # the insured's own unified social credit code
    ("91350100M000100Y40", IDENTITY),  # USCC-shaped with a wrong check character: still an identifier's shape
    (valid_uscc().lower(), IDENTITY),
    (f"PILOT {valid_uscc()}", IDENTITY),  # a USCC inside the text
    (OTHER_INSURER, IDENTITY),  # another insurer's id
    (OTHER_INSURER.upper(), IDENTITY),
    (INSURER, IDENTITY),  # the delivering insurer's own id
    ("PN-2024-0001", IDENTITY),  # the row's own policy number (shaped like a code, but it is the row's key)
    ("CJ-2024-CY-0001234", FORMAT),  # an insurer's policy number: a sequence of seven digits
    ("PRH/CY/2024/00123", FORMAT),
    ("张伟", FORMAT),  # a name
    ("Zhang Wei", FORMAT),
    ("PILOT-TEL", FORMAT),  # no year
    ("PILOT", FORMAT),
])
def test_a_pilot_code_carrying_an_identity_or_out_of_shape_is_quarantined(tmp_path, pilot, reason):
    batch = mapped(freetext_config(tmp_path), [policy_row(1, pilot), policy_row(2, "PILOT-2024-TEL")], "policy")
    assert reasons(batch) == {1: [f"{reason}:pilot_code"]}
    assert batch.good["pilot_code"].to_list() == ["PILOT-2024-TEL"]


@pytest.mark.parametrize("campaign, cves, expected", [
    ("CVE-2023-34362", "CVE-2023-34362", {}),
    ("VENDOR-OUTAGE-2024-07", "cve-2021-44228;CVE-2023-4966", {}),
    ("RANSOM-WAVE-2025-03", "", {}),
    (OTHER_INSURER, "", [f"{IDENTITY}:systemic_event_ref"]),
    ("", f"CVE-2023-34362;{OTHER_INSURER}", [f"{IDENTITY}:cve_ids"]),
    (valid_uscc(), valid_uscc(), [f"{IDENTITY}:cve_ids", f"{IDENTITY}:systemic_event_ref"]),
    ("INC-2024-0001", "", [f"{IDENTITY}:systemic_event_ref"]),  # the row's own incident number
    ("CJ-INC-2024-0001234", "", [f"{FORMAT}:systemic_event_ref"]),  # an incident number's shape
    ("MOVEit campaign", "", [f"{FORMAT}:systemic_event_ref"]),
    ("", "CVE-2023-34362;MOVEIT", [f"{FORMAT}:cve_ids"]),
    ("", "CVE-23-1", [f"{FORMAT}:cve_ids"]),
])
def test_a_campaign_reference_and_cve_ids_are_checked_for_identities_and_shape(tmp_path, campaign, cves, expected):
    batch = mapped(freetext_config(tmp_path), [incident_row(1, cves, campaign)], "incident")
    assert reasons(batch) == ({1: expected} if expected else {})


def test_valid_references_are_stored_in_upper_case(tmp_path):
    batch = mapped(freetext_config(tmp_path), [incident_row(1, "cve-2021-44228;ＣＶＥ－２０２３－４９６６",
                                                             "vendor-outage-2024-07")], "incident")
    row = batch.good.row(0, named=True)
    assert row["cve_ids"] == ["CVE-2021-44228", "CVE-2023-4966"]
    assert row["systemic_event_ref"] == "VENDOR-OUTAGE-2024-07"


# --------------------------------------------------------------------------- into the warehouse, per submission


def test_identities_in_free_text_are_quarantined_at_their_submission_and_the_rest_loads(tmp_path):
    root, folder = landing(tmp_path)
    cfg = freetext_config(tmp_path)
    good_policies = [policy_row(n, "PILOT-2024-TEL" if n % 2 else "") for n in range(2, 6)]
    (folder / "pol_202407.csv").write_text(csv_text([policy_row(1, valid_uscc()), *good_policies]))
    (folder / "inc_202407.csv").write_text(csv_text([
        incident_row(1, "CVE-2023-34362", "CVE-2023-34362"),
        incident_row(2, "", OTHER_INSURER),
        incident_row(3, f"CVE-2024-3400;{OTHER_INSURER}", "VENDOR-OUTAGE-2024-07"),
        incident_row(4, "", "VENDOR-OUTAGE-2024-07"),
    ]))
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other = freetext_config(other_dir, "zenith_re")
    (root / "zenith_re").mkdir()
    (root / "zenith_re" / "pol_202407.csv").write_text(csv_text([policy_row(n, "PILOT-2024-FIN") for n in range(1, 4)]))

    con = warehouse.connect(tmp_path / "wh.duckdb")
    summary = ingest_insurer(con, cfg, root, PSEUDO)
    theirs = ingest_insurer(con, other, root, PSEUDO)

    outcomes = {o.source_file: o for o in summary.outcomes}
    policies, incidents = outcomes[f"{INSURER}/pol_202407.csv"], outcomes[f"{INSURER}/inc_202407.csv"]
    assert (policies.status, policies.rows_delivered, policies.rows_loaded, policies.rows_quarantined) == ("loaded", 5, 4, 1)
    assert (incidents.status, incidents.rows_delivered, incidents.rows_loaded, incidents.rows_quarantined) == (
        "loaded", 4, 2, 2)
    assert [(o.status, o.rows_loaded, o.rows_quarantined) for o in theirs.outcomes] == [("loaded", 3, 0)]

    quarantined = con.execute(
        "SELECT submission_id, record_type, source_row, reasons, original_values::VARCHAR FROM raw.quarantine "
        "ORDER BY record_type, source_row").fetchall()
    assert [(sid, rt, row, r) for sid, rt, row, r, _ in quarantined] == [
        (incidents.submission_id, "incident", 2, [f"{IDENTITY}:systemic_event_ref"]),
        (incidents.submission_id, "incident", 3, [f"{IDENTITY}:cve_ids"]),
        (policies.submission_id, "policy", 1, [f"{IDENTITY}:pilot_code"]),
    ]
    # The quarantine keeps the row's other values, never the identity itself.
    for _, _, _, _, original in quarantined:
        values = json.loads(original)
        assert valid_uscc() not in original and OTHER_INSURER not in original
        assert WITHHELD in values.values()
    assert json.loads(quarantined[2][4])["Pilot"] == WITHHELD
    assert json.loads(quarantined[1][4])["Campaign"] == "VENDOR-OUTAGE-2024-07"

    assert con.execute("SELECT insurer_id, pilot_code FROM raw.policies ORDER BY ALL NULLS FIRST").fetchall() == [
        (INSURER, None), (INSURER, None), (INSURER, "PILOT-2024-TEL"), (INSURER, "PILOT-2024-TEL"),
        ("zenith_re", "PILOT-2024-FIN"), ("zenith_re", "PILOT-2024-FIN"), ("zenith_re", "PILOT-2024-FIN")]
    assert sorted(con.execute("SELECT source_row, systemic_event_ref, cve_ids FROM raw.incidents").fetchall()) == [
        (1, "CVE-2023-34362", ["CVE-2023-34362"]), (4, "VENDOR-OUTAGE-2024-07", None)]


def test_the_bundled_samples_pilot_codes_and_event_references_all_load(sample):
    """No row of the generated sample is quarantined for its free text: every defect-free row of a loaded file is in
    raw with the pilot code, event reference and CVE ids it was generated with."""
    with sample.con() as con:
        new_reasons = con.execute(
            "SELECT count(*) FROM (SELECT unnest(reasons) AS r FROM raw.quarantine) WHERE split_part(r, ':', 1) IN (?, ?)",
            [FORMAT, IDENTITY]).fetchone()[0]
        loaded = {r[0] for r in con.execute("SELECT source_file FROM control.submissions WHERE status = 'loaded'").fetchall()}
        raw_policies = con.sql("SELECT source_file, source_row, pilot_code FROM raw.policies").pl()
        raw_incidents = con.sql("SELECT source_file, source_row, systemic_event_ref, cve_ids FROM raw.incidents").pl()
    assert new_reasons == 0
    for name, stored, columns in (("policy", raw_policies, ["pilot_code"]),
                                  ("incident", raw_incidents, ["systemic_event_ref", "cve_ids"])):
        truth = sample.truth(name).filter(pl.col("defect").is_null() & pl.col("source_file").is_in(sorted(loaded)))
        truth = truth.select("source_file", pl.col("source_row").cast(pl.Int64), *columns)
        assert truth.filter(pl.col(columns[0]).is_not_null()).height > 0, f"the sample delivers no {columns[0]}"
        joined = truth.join(stored, on=["source_file", "source_row"], how="left", suffix="_stored")
        for column in columns:
            # No CVE is an empty list in the truth and NULL once delivered as an empty cell.
            expected, got = (joined[name] if joined[name].dtype == pl.String
                             else joined.select(pl.when(pl.col(name).list.len() > 0).then(pl.col(name)))[name]
                             for name in (column, f"{column}_stored"))
            assert got.to_list() == expected.to_list(), column


# --------------------------------------------------------------------------- the publication audit names the carrier


def _admitted_row(con, table: str, where: str) -> tuple:
    """(submission id, insurer, a row's key) of a raw row of an admitted submission that is in the marts."""
    return con.execute(
        f"SELECT r.submission_id, r.insurer_id, r.rowid FROM raw.{table} r JOIN control.submission_gate g USING (submission_id) "
        f"WHERE g.status IN ('passed', 'released') AND {where} ORDER BY r.submission_id, r.rowid LIMIT 1").fetchone()


def test_a_failing_identity_audit_names_the_submissions_that_carry_the_values(sample, published, tmp_path):  # noqa: F811
    broken = tmp_path / "broken.duckdb"
    sample.scratch_copy(broken)
    with duckdb.connect(str(broken)) as con:
        # A USCC in one policy's pilot code, written into raw and the mart after ingestion, bypassing its checks.
        policy_sid, policy_insurer, rowid = _admitted_row(
            con, "policies",
            "(r.policy_key, r.submission_id) IN (SELECT (policy_key, submission_id) FROM marts.fct_policies) "
            "AND r.pilot_code IS NOT NULL")
        key = con.execute("SELECT policy_key FROM raw.policies WHERE rowid = ?", [rowid]).fetchone()[0]
        con.execute("UPDATE raw.policies SET pilot_code = ? WHERE rowid = ?", [valid_uscc(), rowid])
        con.execute("UPDATE marts.pub_fct_policies SET pilot_code = ? WHERE policy_key = ?", [valid_uscc(), key])
        # Another insurer's id as one incident's campaign reference, and so as its systemic event's reference.
        incident_sid, incident_insurer, rowid = _admitted_row(
            con, "incidents", f"r.systemic_event_ref IS NOT NULL AND r.insurer_id <> '{OTHER_INSURER}' "
                              f"AND r.submission_id <> '{policy_sid}'")
        ref = con.execute("SELECT systemic_event_ref FROM raw.incidents WHERE rowid = ?", [rowid]).fetchone()[0]
        con.execute("UPDATE raw.incidents SET systemic_event_ref = ? WHERE rowid = ?", [OTHER_INSURER, rowid])
        con.execute("UPDATE marts.pub_fct_systemic_events SET systemic_event_ref = ? WHERE systemic_event_ref = ?",
                    [OTHER_INSURER, ref])
        source_files = dict(con.execute("SELECT submission_id, source_file FROM control.submissions").fetchall())
    before = digest(published / "sector_claims.duckdb")

    with pytest.raises(PublicationCheckFailed) as failed:
        publish(broken, published, tables(), {})
    message = str(failed.value)
    details = {r.name: r.detail for r in failed.value.results if not r.passed}
    # The planted policy is also a change of one insurer's row since version 1 (the difference rule).
    assert set(details) == {"no_clear_identifiers", "no_insurer_identity", "difference_from_enough_insurers"}
    assert details["no_clear_identifiers"].startswith("fct_policies.pilot_code (1 rows)")
    assert f"submission {policy_sid[:16]} of {policy_insurer} ({source_files[policy_sid]}" in details["no_clear_identifiers"]
    assert incident_sid[:16] not in details["no_clear_identifiers"]
    assert f"submission {incident_sid[:16]} of {incident_insurer} ({source_files[incident_sid]}" in \
        details["no_insurer_identity"]
    assert policy_sid[:16] not in details["no_insurer_identity"]
    assert {(x.submission_id, x.insurer_id, x.checks) for x in failed.value.carriers} == {
        (policy_sid, policy_insurer, ("no_clear_identifiers",)), (incident_sid, incident_insurer, ("no_insurer_identity",))}
    assert valid_uscc() not in message  # the message names where the value is, never the value
    assert digest(published / "sector_claims.duckdb") == before and existing_versions(published) == [1]

    # The command the message gives revokes exactly that submission.
    from cyberclaims.cli import main

    command = next(x.revoke for x in failed.value.carriers if x.submission_id == policy_sid)
    assert f"`{command}`" in details["no_clear_identifiers"]
    umask = os.umask(0o022)  # the CLI sets the bureau's umask for its process: this one's is restored after
    os.umask(umask)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("CYBERCLAIMS_DUCKDB", str(broken))
            result = CliRunner().invoke(main, shlex.split(command)[1:])
    finally:
        os.umask(umask)
    assert result.exit_code == 0, result.output
    with duckdb.connect(str(broken), read_only=True) as con:
        assert con.execute("SELECT submission_id, status FROM control.submission_gate_log WHERE status = 'revoked'").fetchall() \
            == [(policy_sid, "revoked")]


@pytest.mark.parametrize("table, column", [
    ("fct_policies", "pilot_code"),
    ("fct_systemic_events", "systemic_event_ref"),
])
def test_an_identity_no_submission_carries_is_said_to_come_from_the_project(sample, published, tmp_path,  # noqa: F811
                                                                            table, column):
    broken = tmp_path / "broken.duckdb"
    sample.scratch_copy(broken)
    with duckdb.connect(str(broken)) as con:
        # Into the mart published as that table (pub_*).
        con.execute(f"UPDATE marts.pub_{table} SET {column} = ? WHERE rowid = 0", [OTHER_INSURER])
    with pytest.raises(PublicationCheckFailed) as failed:
        publish(broken, published, tables(), {})
    assert failed.value.carriers == []
    detail = next(r.detail for r in failed.value.results if r.name == "no_insurer_identity")
    assert detail.startswith(f"{table}.{column} (1 rows) — no admitted submission's raw rows carry it")
    assert existing_versions(published) == [1]
